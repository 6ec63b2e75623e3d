"""Nothing of a finished Swarm run is left behind, even when its engine stops right
after the run ends: no service, no task container, no files folder.

The cause found (issue 15): the run's final status was written, then its service and
files folder removed in a cancellable step; an engine stopping in between (an idle
background engine leaving, Ctrl-C, the end of a command's or a test's own engine)
left them for good, as nothing looks at a final run again. Now the status and the
cleanup are settled together before the engine stops.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from picsellia_tui.engine.core import Engine
from tests.core.helpers import model_file
from tests.core.test_control import Workspace
from tests.docker.swarm_env import (
    as_async,
    cluster_host,
    copy_image,
    run_containers,
    services,
    swarm,
    swarm_settings_for,
    wait_for,
)

__all__ = ["copy_image", "swarm"]  # session fixtures, used here
pytestmark = [pytest.mark.anyio, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(300)]


def _files_folders(data_dir: Path) -> list[str]:
    scratch = data_dir / "scratch"
    return sorted(p.name for p in scratch.iterdir()) if scratch.is_dir() else []


async def test_engine_stopping_as_the_run_ends_leaves_nothing(
    tmp_path: Path, docker_client: Any, swarm: str, copy_image: str
) -> None:
    """Failed before the fix: the run's files folder stayed in scratch/ every time
    (and the service too when the stop came before its removal)."""
    settings = swarm_settings_for(tmp_path, docker_client)
    async with Engine(settings, supervise=True) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        job = await e.launch("test-copy", "m/v1", {"lines": "2"})
        run = await e.wait_run(job.runs[0].id)
        ws = e.ws.workspace_id
    # The engine has stopped the moment the run was final.
    assert run.status == "succeeded", run.error_summary
    assert not services(docker_client, ws)
    assert not run_containers(docker_client, ws)
    assert _files_folders(settings.data_dir) == []


@pytest.fixture
def cli_ws(
    tmp_path: Path, docker_client: Any, copy_image: str, swarm: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    w = Workspace(tmp_path)
    host = cluster_host(docker_client)
    config = tmp_path / "config.toml"
    config.write_text(
        'default_host = "cluster"\n\n[[hosts]]\nname = "cluster"\nurl = "local"\n'
        f'kind = "swarm"\napi_url = "{host.api_url}"\n'
    )
    # The background engine leaves as soon as nothing runs: right after the run.
    w.env.update(
        PICSELLIA_TUI_EXECUTOR="docker",
        PICSELLIA_TUI_CONFIG=str(config),
        PICSELLIA_TUI_ENGINE_IDLE_SECONDS="0.2",
    )
    for k, v in w.env.items():
        monkeypatch.setenv(k, v)
    r = w.cli("models", "import", "m/v1", str(model_file(tmp_path)), "--framework", "onnx")
    assert r.returncode == 0, r.stderr
    yield w
    w.close()


async def test_background_engine_launch_without_wait_leaves_nothing(
    cli_ws: Workspace, docker_client: Any, tmp_path: Path
) -> None:
    """As a user: `launch` (no --wait, no app, no engine serving) on a swarm host,
    then `docker service ls`, `docker ps -a`, the scratch folder."""
    r = cli_ws.cli("launch", "test-copy", "m/v1", "-p", "lines=3", "-p", "sleep=1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("job 1 run #1: running"), r.stdout
    deadline = time.monotonic() + 60
    while True:
        show = cli_ws.cli("jobs", "show", "1", "--json")
        assert show.returncode == 0, show.stderr
        run = json.loads(show.stdout)["runs"][0]
        if run["status"] not in ("pending", "running"):
            break
        assert time.monotonic() < deadline, run
        time.sleep(0.2)
    assert run["status"] == "succeeded", run
    # The engine that ran it leaves by itself, having removed what the run left.
    await wait_for("engine gone", as_async(lambda: not cli_ws.background_engines()), 30)
    ws = _workspace_id(cli_ws)
    assert not services(docker_client, ws)
    assert not run_containers(docker_client, ws)
    assert _files_folders(tmp_path / "data") == []


def _workspace_id(w: Workspace) -> str:
    import sqlite3

    con = sqlite3.connect(f"file:{w.database}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'workspace_id'").fetchone()
    finally:
        con.close()
    return str(row[0])
