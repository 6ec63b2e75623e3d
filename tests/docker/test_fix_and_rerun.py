"""The platform's story with the command line (issue 11): a processing from the
template gets a bug, is built and launched -> failed with the traceback; the bug is
fixed and the image rebuilt; a `--same-image` re-run reproduces the failure exactly
(it pins the digest the previous run ran), a plain re-run runs the fixed image and
succeeds. The run history shows each run's digest and marks where it changed.

Every step is `picsellia-tui ...` in a subprocess on a temp workspace and the local
Docker daemon; the processing's name carries a random suffix and its image is removed
at the end (the rebuilt-over one too)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("picsellia-tui")
BUG = '    raise RuntimeError("bug in process")\n'
OUTCOME = r"^job {job} run #{run}: {status} in \S+ \(exit {code}\)$"


@pytest.fixture
def proc(docker_client: Any) -> Iterator[tuple[str, list[str]]]:
    """(name, image ids built for it): every build is removed at the end."""
    name = f"my-proc-{uuid.uuid4().hex[:6]}"
    built: list[str] = []
    yield name, built
    import docker.errors

    for ref in [f"picsellia-tui/{name}:0.1.0", *built]:
        try:
            docker_client.images.remove(ref, force=True)
        except docker.errors.APIError:
            pass


def test_fix_rebuild_rerun_and_same_image(
    tmp_path: Path, proc: tuple[str, list[str]], docker_client: Any
) -> None:
    name, built = proc
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICSELLIA_TUI_")}
    env.update(
        PICSELLIA_TUI_DATA_DIR=str(tmp_path / "data"),
        PICSELLIA_TUI_PROCESSINGS_DIR=str(ROOT / "processings"),
        PICSELLIA_TUI_EXECUTOR="docker",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        NO_COLOR="1",
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CLI), *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )

    def ok(*args: str) -> subprocess.CompletedProcess[str]:
        p = cli(*args)
        assert p.returncode == 0, f"{args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
        return p

    def build() -> str:
        ok("processings", "build", name)
        image_id = str(docker_client.images.get(f"picsellia-tui/{name}:0.1.0").id)
        built.append(image_id)
        return image_id

    ok("processings", "create", "--from-template", name, "--dest", str(tmp_path))
    main_py = tmp_path / name / "main.py"
    fixed = main_py.read_text()
    anchor = '    """Do the work; return what goes to result.json."""\n'
    assert anchor in fixed
    main_py.write_text(fixed.replace(anchor, anchor + BUG))
    model = tmp_path / "src" / "model.onnx"
    model.parent.mkdir()
    model.write_bytes(b"\x08\x07" + os.urandom(256))
    ok("models", "import", "m/v1", str(model), "--framework", "onnx")

    # 1. The bug: failed, with the stack trace.
    buggy = build()
    p = cli("launch", name, "m/v1", "--wait")
    assert p.returncode == 1, p.stdout + p.stderr
    job = int(re.findall(r"^job (\d+): ", p.stderr, re.M)[0])
    assert "RuntimeError: bug in process" in p.stdout
    assert re.search(OUTCOME.format(job=job, run=1, status="failed", code=1), p.stdout, re.M)

    # 2. Fixed and rebuilt: a new image under the same tag.
    main_py.write_text(fixed)
    fixed_id = build()
    assert fixed_id != buggy

    # 3. --same-image reproduces run #1 exactly: the old digest, the same failure.
    p = cli("jobs", "rerun", str(job), "--same-image", "--wait")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "RuntimeError: bug in process" in p.stdout
    assert re.search(OUTCOME.format(job=job, run=2, status="failed", code=1), p.stdout, re.M)

    # 4. A plain re-run runs the processing's current image: the fix reaches it.
    p = cli("jobs", "rerun", str(job), "--wait")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "bug in process" not in p.stdout and "done" in p.stdout.splitlines()
    # the same final line as launch --wait
    assert re.search(OUTCOME.format(job=job, run=3, status="succeeded", code=0), p.stdout, re.M)

    # 5. The history: each run's digest, the change marked.
    shown = json.loads(ok("jobs", "show", str(job), "--json").stdout)
    assert "image_digest" not in shown  # per run, not per job
    runs = shown["runs"]
    assert [r["image_digest"] for r in runs] == [buggy, buggy, fixed_id]
    assert [r["image_changed"] for r in runs] == [False, False, True]
    assert runs[1]["image_ref"] == buggy  # pinned
    assert runs[2]["image_ref"] == f"picsellia-tui/{name}:0.1.0"
    text = ok("jobs", "show", str(job)).stdout
    short_old, short_new = buggy[7:19], fixed_id[7:19]
    rows = {line.split()[0]: line for line in text.splitlines() if line[:1].isdigit()}
    assert short_old in rows["1"] and "(" not in rows["1"], text
    assert f"{short_old} (pinned)" in rows["2"], text
    assert f"{short_new} (changed)" in rows["3"], text

    # 6. The pinned image is gone (pruned): --same-image says so in one line, and what to do.
    docker_client.images.remove(fixed_id, force=True)  # the image run #3 ran
    p = cli("jobs", "rerun", str(job), "--same-image", "--wait")
    assert p.returncode == 1, p.stdout + p.stderr
    assert f"image {fixed_id} is no longer on host local" in p.stderr, p.stderr
    assert "re-run without --same-image" in p.stderr and "Traceback" not in p.stdout + p.stderr
