"""Images keep their own entrypoint (issue 11): a processing.toml without `command`,
and an image registered with `processings create --image` alone, run the image's own
ENTRYPOINT through the Docker executor, on the local daemon and on the ssh:// test
host; an `entrypoint` given at registration replaces the image's.

Every step is the real command line in a subprocess, on a workspace in a temp dir; the
ssh:// host is this machine's dockerd reached through the test sshd (conftest)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "entrypoint_image"
TAG = "picsellia-tui-test/entry:0.1.0"
CLI = Path(sys.executable).with_name("picsellia-tui")


@pytest.fixture(scope="module")
def entry_image(docker_client: Any) -> Iterator[str]:
    docker_client.images.build(path=str(FIXTURE), tag=TAG, rm=True)
    yield TAG
    import docker.errors

    try:
        docker_client.images.remove(TAG, force=True)
    except docker.errors.APIError:
        pass  # another session still uses it


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def _ok(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    p = _cli(env, *args)
    assert p.returncode == 0, f"{args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def _workspace(tmp: Path, ssh_url: str) -> dict[str, str]:
    config = tmp / "config.toml"
    # One [[hosts]] table: `local` stays available beside it.
    config.write_text(f'[[hosts]]\nname = "remote"\nurl = "{ssh_url}"\n')
    (tmp / "procs").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICSELLIA_TUI_")}
    env.update(
        PICSELLIA_TUI_CONFIG=str(config),
        PICSELLIA_TUI_DATA_DIR=str(tmp / "data"),
        PICSELLIA_TUI_PROCESSINGS_DIR=str(tmp / "procs"),  # no bundled processing
        PICSELLIA_TUI_EXECUTOR="docker",
        NO_COLOR="1",
    )
    model = tmp / "src" / "model.onnx"
    model.parent.mkdir()
    model.write_bytes(b"onnx bytes")
    _ok(env, "models", "import", "m/v1", str(model), "--framework", "onnx")
    return env


def test_images_run_their_own_entrypoint_locally_and_over_ssh(
    ssh_path: Any, tmp_path: Path, entry_image: str
) -> None:
    env = _workspace(tmp_path, ssh_path.url)
    # From a folder whose processing.toml names no command.
    _ok(env, "processings", "create", str(FIXTURE))
    # From the image alone: no name (the image's), no command.
    p = _ok(env, "processings", "create", "--image", entry_image)
    assert "private processing entry 1.0.0 saved" in p.stdout, p.stdout
    shown = json.loads(_ok(env, "processings", "show", "entry", "--json").stdout)
    assert shown["command"] == [] and shown["entrypoint"] is None
    assert "command: (the image's own)" in _ok(env, "processings", "show", "entry").stdout

    for name in ("test-entry", "entry"):
        for host in ("local", "remote"):
            p = _cli(env, "launch", name, "m/v1", "--host", host, "--wait")
            assert p.returncode == 0, f"{name} on {host}:\n{p.stdout}\n{p.stderr}"
            # The image's ENTRYPOINT ran, with no arguments appended.
            assert re.search(r"^entrypoint ran: args=\[\] job=\d+$", p.stdout, re.M), p.stdout
            assert "input model.onnx" in p.stdout
            job_id = int(re.findall(r"^job (\d+) run #1: succeeded", p.stdout, re.M)[0])
            job = json.loads(_ok(env, "jobs", "show", str(job_id), "--json").stdout)
            assert job["host"] == host and job["runs"][0]["image_digest"].startswith("sha256:")
            log = _ok(env, "jobs", "logs", str(job_id)).stdout
            assert "entrypoint ran: args=[]" in log


def test_entrypoint_key_replaces_the_images(
    tmp_path: Path, entry_image: str, ssh_path: Any
) -> None:
    env = _workspace(tmp_path, ssh_path.url)
    _ok(
        env,
        "processings", "create", "--image", entry_image, "--name", "entry-override",
        "--entrypoint", "python -c", "--command", "\"print('override ran')\"",
        "--output-mode", "none",
    )  # fmt: skip
    p = _cli(env, "launch", "entry-override", "m/v1", "--wait")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "override ran" in p.stdout and "entrypoint ran" not in p.stdout


def test_process_executor_refuses_a_processing_without_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICSELLIA_TUI_")}
    env.update(
        PICSELLIA_TUI_DATA_DIR=str(tmp_path / "data"),
        PICSELLIA_TUI_PROCESSINGS_DIR=str(tmp_path),
        PICSELLIA_TUI_EXECUTOR="process",
    )
    model = tmp_path / "model.onnx"
    model.write_bytes(b"x")
    _ok(env, "models", "import", "m/v1", str(model), "--framework", "onnx")
    _ok(env, "processings", "create", str(FIXTURE))
    p = _cli(env, "launch", "test-entry", "m/v1", "--wait")
    assert p.returncode != 0
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "has no command: the process executor" in lines[0], p.stderr
