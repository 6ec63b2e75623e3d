"""The app on a real Swarm (issue 15, "same UI"), keys only: the launch dialog's
host picker sends the run to the swarm host, the Jobs tab shows the node it landed
on and its log, `r` re-runs it there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Select

from picsellia_tui.engine.hostconfig import HostConfig
from picsellia_tui.tui.app import AppEngineHandle, PicselliaApp
from picsellia_tui.tui.dialogs.launch import LaunchDialog
from picsellia_tui.tui.dialogs.rerun import RerunDialog
from picsellia_tui.tui.screens.main import MainScreen
from picsellia_tui.tui.widgets.host_picker import HostPicker
from picsellia_tui.tui.widgets.job_detail import RunsTable
from picsellia_tui.tui.widgets.jobs import JobsPane
from picsellia_tui.tui.widgets.log_view import LogView
from tests.docker.swarm_env import bridge_gateway as _bridge_gateway
from tests.docker.swarm_env import copy_image, swarm  # noqa: F401
from tests.docker.swarm_env import free_port as _free_port
from tests.tui.helpers import ready, screen_text, until, workspace

pytestmark = [pytest.mark.anyio, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(300)]
SIZE = (120, 36)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app_ws(
    tmp_path: Path,
    docker_client: Any,
    swarm: str,  # noqa: F811
    copy_image: str,  # noqa: F811
) -> Iterator[AppEngineHandle]:
    gw = _bridge_gateway(docker_client)
    hosts = [
        HostConfig(name="local", url="local"),
        HostConfig(
            name="cluster",
            url="local",
            kind="swarm",
            api_url=f"http://{gw}:{_free_port(gw)}",
            reservations=False,  # see tests/docker/swarm_env.py
        ),
    ]
    # Small reservations: a node update on the shared test swarm re-counts them and
    # rejects a running task that no longer fits (moby #52652).
    with workspace(
        tmp_path,
        executor="docker",
        hosts=hosts,
        default_host="local",
        default_cpu=0.25,
        default_memory="256m",
    ) as handle:
        yield handle


async def test_launch_on_the_swarm_from_the_dialog_see_its_node_and_rerun(
    app_ws: AppEngineHandle, docker_client: Any
) -> None:
    node = docker_client.info()["Name"]
    app = PicselliaApp(app_ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("enter")  # launch test-copy
        await until(pilot, lambda: isinstance(app.screen, LaunchDialog))
        dialog = app.screen
        await until(pilot, lambda: dialog.query("#param-lines") and dialog.query("#version-name"))
        picker = dialog.query_one("#launch-host", Select)
        assert picker.value == "local"
        nodes = len(docker_client.nodes.list())
        row = dialog.query_one(HostPicker)
        await until(pilot, lambda: row.nodes == {"cluster": nodes})  # asked of the manager
        for _ in range(12):
            if dialog.focused is picker:
                break
            await pilot.press("tab")
        assert dialog.focused is picker
        await pilot.press("enter")
        await until(pilot, lambda: picker.expanded)
        assert f"cluster (swarm, {nodes} node" in screen_text(app)
        await pilot.press("down", "enter")
        await until(pilot, lambda: picker.value == "cluster")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))

        pane = app.screen.query_one(JobsPane)
        runs = pane.query_one(RunsTable)

        def status(attempts: int = 1) -> str | None:
            job = pane.table.jobs.get(1)
            return job.status if job and job.attempts == attempts else None

        await until(pilot, lambda: status() == "succeeded", timeout=120)
        job = app_ws.call(lambda e: e.job(1))
        assert job.host == "cluster" and job.runs[0].node == node, job.runs[0].error_summary
        await until(pilot, lambda: f"cluster · {node}" in screen_text(app))
        log = pane.query_one(LogView)
        await until(pilot, lambda: "done" in "\n".join(log.log_lines.visible_text()))

        await pilot.press("r")  # re-run: a new service on the same swarm
        await until(pilot, lambda: isinstance(app.screen, RerunDialog))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        await until(pilot, lambda: runs.row_count == 2)
        await until(pilot, lambda: status(2) == "succeeded", timeout=120)
        job = app_ws.call(lambda e: e.job(1))
        assert [r.status for r in job.runs] == ["succeeded", "succeeded"], job.runs[
            -1
        ].error_summary
        assert [(r.host, r.node) for r in job.runs] == [("cluster", node)] * 2
        await until(pilot, lambda: screen_text(app).count(f"cluster · {node}") == 2)
