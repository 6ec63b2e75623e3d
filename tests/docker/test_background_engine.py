"""The background engine with real containers (issue 12): every command is a real
`picsellia-tui` process; the test starts no app and no `engine serve`."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.core.test_control import Workspace
from tests.docker.test_engine_on_docker import copy_image as copy_image  # the fixture
from tests.reliability.helpers import docker_by_stream, stored_by_stream

pytestmark = pytest.mark.docker


@pytest.fixture
def dws(tmp_path: Path, copy_image: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    w = Workspace(tmp_path)
    w.env.update(
        PICSELLIA_TUI_EXECUTOR="docker",
        PICSELLIA_TUI_KEEP_FAILED_CONTAINERS="true",
        PICSELLIA_TUI_ENGINE_IDLE_SECONDS="10",
    )
    for k, v in w.env.items():
        monkeypatch.setenv(k, v)
    model = tmp_path / "src" / "model.onnx"
    model.parent.mkdir()
    model.write_bytes(b"fake onnx bytes")
    r = w.cli("models", "import", "m/v1", str(model), "--framework", "onnx")
    assert r.returncode == 0, r.stderr
    yield w
    w.close()


def _container(client: Any, job_id: int) -> Any:
    found = client.containers.list(
        all=True, sparse=True, filters={"label": [f"picsellia-tui.job_id={job_id}"]}
    )
    return found[0] if found else None


def _show(ws: Workspace, job_id: int) -> dict[str, Any]:
    r = ws.cli("jobs", "show", str(job_id), "--json")
    assert r.returncode == 0, r.stderr
    data: dict[str, Any] = json.loads(r.stdout)
    return data


def test_launch_with_no_engine_is_final_soon_after_the_container_exits(
    dws: Workspace, docker_client: Any
) -> None:
    r = dws.cli("launch", "test-copy", "m/v1", "-p", "lines=50", "-p", "sleep=2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "job 1 run #1: running"
    # The command is gone; no app, no `engine serve`: only the background engine.
    deadline = time.monotonic() + 30
    while (c := _container(docker_client, 1)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert c is not None
    docker_client.api.wait(c.id)  # returns once the container has exited
    exited = time.monotonic()
    # The bound: final status and the output version within 2 s of the exit.
    while True:
        j = _show(dws, 1)
        if j["status"] == "succeeded" and j["runs"][0]["output_version_id"] is not None:
            break
        assert time.monotonic() - exited < 2.0, j
        time.sleep(0.05)
    log = dws.cli("jobs", "logs", "1").stdout.splitlines()
    assert [t for t in log if t.startswith("line ")] == [f"line {i}" for i in range(50)]
    assert log[-1] == "done"
    assert len(dws.background_engines()) == 1


def test_background_engine_killed_mid_run_next_command_adopts_it(
    dws: Workspace, docker_client: Any
) -> None:
    # fail=true at the end keeps the container so docker logs can be compared.
    r = dws.cli(
        "launch", "test-copy", "m/v1", "-p", "lines=300", "-p", "sleep=4", "-p", "fail=true"
    )
    assert r.returncode == 0, r.stderr
    (pid,) = dws.background_engines()
    deadline = time.monotonic() + 30
    while len(dws.cli("jobs", "logs", "1").stdout.splitlines()) < 100:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    while dws.background_engines():
        time.sleep(0.05)
    c = _container(docker_client, 1)
    c.reload()
    assert c.status == "running"  # the container outlives the engine
    # The next command needing an engine starts one, which adopts the run.
    r = dws.cli("jobs", "wait", "1")
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.strip() == "job 1 run #1: failed (exit 1)"
    (new,) = dws.background_engines()
    assert new != pid
    run = _show(dws, 1)["runs"][0]
    c.reload()
    stored = stored_by_stream(run["log_path"])
    assert stored == docker_by_stream(c)
    assert [t for t in stored["stdout"] if t.startswith("line ")] == [
        f"line {i}" for i in range(300)
    ]
