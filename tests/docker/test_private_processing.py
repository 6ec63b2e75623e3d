"""A private processing through the real command line, as the README shows it:
scaffold from the template, build, launch, get a new version; an incompatible version
is refused with one line, and launching before the build gives the build hint.

Every step is `picsellia-tui ...` in a subprocess, on a workspace in a temp dir
(PICSELLIA_TUI_DATA_DIR) with the repository's processings (PICSELLIA_TUI_PROCESSINGS_DIR)
and the local Docker daemon. The processing's name carries a random suffix, so its
image (`picsellia-tui/<name>:0.1.0`) is surely missing at first and concurrent test
sessions on the same daemon do not share it; the image is removed at the end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("picsellia-tui")
TEMPLATE_TAG = "processed"  # the `tag` parameter's default in processings/_template


@dataclass
class Cli:
    env: dict[str, str]
    cwd: Path

    def __call__(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CLI), *args],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def ok(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        p = self(*args, timeout=timeout)
        assert p.returncode == 0, f"{args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
        return p

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)


@pytest.fixture
def cli(tmp_path: Path, docker_client: Any) -> Cli:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PICSELLIA_TUI_") and k not in ("NO_COLOR", "COLUMNS")
    }
    env.update(
        PICSELLIA_TUI_DATA_DIR=str(tmp_path / "data"),
        PICSELLIA_TUI_PROCESSINGS_DIR=str(ROOT / "processings"),
        PICSELLIA_TUI_EXECUTOR="docker",
        XDG_CONFIG_HOME=str(tmp_path / "config"),  # no user config file applies
        NO_COLOR="1",
    )
    (tmp_path / "work").mkdir()
    return Cli(env, tmp_path / "work")


@pytest.fixture
def proc_name(docker_client: Any) -> Iterator[str]:
    name = f"my-proc-{uuid.uuid4().hex[:6]}"
    yield name
    import docker.errors

    try:
        docker_client.images.remove(f"picsellia-tui/{name}:0.1.0", force=True)
    except docker.errors.ImageNotFound:
        pass


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{text}"
    return lines[0]


def test_private_processing_create_build_launch(cli: Cli, proc_name: str, tmp_path: Path) -> None:
    dest = tmp_path / "procs"
    dest.mkdir()
    # 1. Scaffold and register.
    p = cli.ok("processings", "create", "--from-template", proc_name, "--dest", str(dest))
    folder = dest / proc_name
    assert (folder / "processing.toml").is_file() and (folder / "main.py").is_file()
    assert (folder / "Dockerfile").is_file()
    assert f"processings build {proc_name}" in p.stderr
    image = f"picsellia-tui/{proc_name}:0.1.0"
    assert f"private processing {proc_name} 0.1.0 saved (image {image})" in p.stdout
    shown = cli.json("processings", "show", proc_name)
    assert shown["visibility"] == "private" and shown["image"] == image
    assert shown["source_dir"] == str(folder.resolve())

    # 2. Versions to run it on: files of any kind (the template copies them).
    src = tmp_path / "src"
    src.mkdir()
    (src / "model.onnx").write_bytes(b"\x08\x07" + os.urandom(2048))
    (src / "labels.json").write_text('["cat", "dog"]\n')
    (tmp_path / "saved_model.pb").write_bytes(os.urandom(512))
    cli.ok("models", "import", "m/v1", str(src), "--framework", "onnx", "--tag", "source")
    cli.ok("models", "import", "m/tf1", str(tmp_path / "saved_model.pb"), "--framework",
           "tensorflow")  # fmt: skip

    # 3. Launched before its image is built: the run fails at once with the hint.
    p = cli("launch", proc_name, "m/v1", "--wait", timeout=180)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert f"picsellia-tui processings build {proc_name}" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr + p.stdout
    assert len(cli.json("models", "list")) == 2  # no new version

    # 4. Build its image, then launch: a new version.
    p = cli.ok("processings", "build", proc_name, timeout=900)
    assert image in p.stdout + p.stderr
    p = cli.ok("launch", proc_name, "m/v1", "--wait", timeout=300)
    m = re.search(r"^job (\d+): ", p.stderr, re.M)
    assert m, p.stderr
    job_id = int(m.group(1))
    assert "done" in p.stdout.splitlines()  # the run's log, followed
    assert re.search(rf"^job {job_id} run #1: succeeded", p.stdout, re.M), p.stdout

    versions = {v["model"] + "/" + v["name"]: v for v in cli.json("models", "list")}
    source = versions["m/v1"]
    (new,) = [v for v in versions.values() if v["origin_job_id"] == job_id]
    assert new["model"] == "m" and new["parent"] == "m/v1" and new["parent_id"] == source["id"]
    assert new["tags"] == [TEMPLATE_TAG]
    assert new["framework"] == "onnx" and new["labels"] == source["labels"]
    assert new["metrics"] == {"files": 2, "size_bytes": source["size_bytes"]}
    shown = cli.json("models", "show", new["model"] + "/" + new["name"])
    original = cli.json("models", "show", "m/v1")
    assert {(f["path"], f["sha256"]) for f in shown["files"]} == {
        (f["path"], f["sha256"]) for f in original["files"]
    }
    job = cli.json("jobs", "show", str(job_id))
    assert job["processing"] == proc_name and job["status"] == "succeeded"
    assert (job["runs"][-1]["image_digest"] or "").startswith("sha256:")

    # 5. The user restricts it to ONNX and registers the edit: TensorFlow is refused
    # with one line, and no job is made.
    toml = folder / "processing.toml"
    text = toml.read_text()
    assert "frameworks = []" in text
    toml.write_text(text.replace("frameworks = []", 'frameworks = ["onnx"]', 1))
    cli.ok("processings", "update", proc_name)
    jobs_before = cli.json("jobs", "list")
    p = cli("launch", proc_name, "m/tf1", "--wait", timeout=120)
    assert p.returncode != 0
    reason = one_line(p.stderr)
    assert "tensorflow" in reason and "m/tf1" in reason, reason
    assert "Traceback" not in p.stderr
    assert cli.json("jobs", "list") == jobs_before
    # The ONNX version is still accepted by the edited definition.
    cli.ok("launch", proc_name, "m/v1", "--wait", "-p", "tag=reviewed", timeout=300)
    tags = {tuple(v["tags"]) for v in cli.json("models", "list") if v["parent"] == "m/v1"}
    assert tags == {(TEMPLATE_TAG,), ("reviewed",)}
