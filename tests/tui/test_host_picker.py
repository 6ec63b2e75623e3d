"""The launch dialog's host picker (issue 15, "same UI"): every configured host with
its kind, the default preselected, the launch going to the host picked; the edit
and re-run form offers the job's own host first. Keys only.

The hosts are Docker hosts nobody listens on (a closed loopback port): the dialog
and the launch need no Docker; the run the launch makes is cancelled before the
engine's retries of the unreachable host matter."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Select

from picsellia_tui.engine.hostconfig import HostConfig
from picsellia_tui.tui.app import AppEngineHandle, PicselliaApp
from picsellia_tui.tui.dialogs.launch import LaunchDialog
from picsellia_tui.tui.screens.main import MainScreen
from picsellia_tui.tui.widgets.host_picker import HostPicker
from picsellia_tui.tui.widgets.jobs import JobsPane
from tests.tui.helpers import ready, screen_text, until, workspace

pytestmark = pytest.mark.anyio
SIZE = (100, 30)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def hosts_ws(tmp_path: Path) -> Iterator[AppEngineHandle]:
    dead = f"tcp://127.0.0.1:{_closed_port()}"
    hosts = [
        HostConfig(name="local", url="local"),
        HostConfig(name="gpu-box", url=dead),
        HostConfig(
            name="cluster", url=dead, kind="swarm", api_url=f"http://127.0.0.1:{_closed_port()}"
        ),
    ]
    with workspace(tmp_path, executor="docker", hosts=hosts, default_host="gpu-box") as handle:
        yield handle


async def _open_launch(pilot: Pilot[Any]) -> LaunchDialog:
    await until(pilot, lambda: isinstance(pilot.app.screen, LaunchDialog))
    dialog = pilot.app.screen
    assert isinstance(dialog, LaunchDialog)
    await until(pilot, lambda: dialog.query("#param-lines") and dialog.query("#version-name"))
    return dialog


async def _tab_to(pilot: Pilot[Any], dialog: LaunchDialog, selector: str) -> None:
    widget = dialog.query_one(selector)
    for _ in range(12):
        if dialog.focused is widget:
            return
        await pilot.press("tab")
    raise AssertionError(f"could not tab to {selector}")


def _cancel_active(handle: AppEngineHandle, job_id: int) -> None:
    job = handle.call(lambda e: e.job(job_id))
    if job.status in ("pending", "running"):
        handle.call(lambda e: e.cancel(job_id))


async def test_launch_dialog_offers_every_host_and_launches_on_the_one_picked(
    hosts_ws: AppEngineHandle,
) -> None:
    app = PicselliaApp(hosts_ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("enter")  # launch test-copy
        dialog = await _open_launch(pilot)
        picker = dialog.query_one("#launch-host", Select)
        assert picker.value == "gpu-box"  # the default host, preselected
        text = screen_text(app)
        assert "gpu-box (docker, default)" in text
        await _tab_to(pilot, dialog, "#launch-host")
        await pilot.press("enter")  # opens the list: every host with its kind
        await until(pilot, lambda: picker.expanded)
        shown = screen_text(app)
        for label in ("local (docker)", "gpu-box (docker, default)", "cluster (swarm)"):
            assert label in shown, shown
        await pilot.press("down", "enter")  # the one after the default: cluster
        await until(pilot, lambda: picker.value == "cluster")
        where = dialog.query_one("#launch-host-where")
        await until(pilot, lambda: "Swarm picks the node" in str(where.render()))
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        job = hosts_ws.call(lambda e: e.job(1))
        _cancel_active(hosts_ws, job.id)
        assert job.host == "cluster" and job.runs[0].host == "cluster"


async def test_edit_and_rerun_offers_the_jobs_host_first(hosts_ws: AppEngineHandle) -> None:
    job = hosts_ws.call(lambda e: e.launch("test-copy", "m/v1", {"lines": 2}, host="cluster"))
    _cancel_active(hosts_ws, job.id)
    app = PicselliaApp(hosts_ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("3")
        pane = app.screen_stack[0].query_one(JobsPane)
        await until(pilot, lambda: pane.detail.current is not None)
        await pilot.press("R")
        dialog = await _open_launch(pilot)
        assert dialog.query_one("#launch-host", Select).value == "cluster"
        await _tab_to(pilot, dialog, "#launch-host")
        await pilot.press("enter")
        picker = dialog.query_one("#launch-host", Select)
        await until(pilot, lambda: picker.expanded)
        await pilot.press("up", "up", "enter")  # up to local
        await until(pilot, lambda: picker.value == "local")
        await pilot.press("escape")  # nothing launched
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
    assert hosts_ws.call(lambda e: e.count_jobs()) == 1


async def test_one_host_is_shown_but_is_no_stop_for_tab(tmp_path: Path) -> None:
    hosts = [HostConfig(name="local", url=f"tcp://127.0.0.1:{_closed_port()}")]
    with workspace(tmp_path, executor="docker", hosts=hosts) as handle:
        app = PicselliaApp(handle, frozen_time=True)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            await pilot.press("enter")
            dialog = await _open_launch(pilot)
            picker = dialog.query_one("#launch-host", Select)
            assert picker.value == "local" and picker.disabled
            assert "local (docker, default)" in screen_text(app)
            for _ in range(12):
                await pilot.press("tab")
                assert dialog.focused is not picker


async def test_process_executor_says_where_it_runs(tmp_path: Path) -> None:
    with workspace(tmp_path) as handle:  # the process executor
        app = PicselliaApp(handle, frozen_time=True)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            await pilot.press("enter")
            dialog = await _open_launch(pilot)
            assert not dialog.query("#launch-host")
            assert "the process executor runs it as a local process" in screen_text(app)


async def test_a_swarms_node_count_joins_its_label_once_the_manager_answers(
    hosts_ws: AppEngineHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The manager's answer is made up (no swarm here): its own test on a real swarm
    # is tests/docker/test_swarm_tui.py. The dead hosts' answer (None) keeps the kind.
    from picsellia_tui.engine.core import Engine

    async def three(self: Engine, host: str) -> int | None:
        return 3 if host == "cluster" else None

    monkeypatch.setattr(Engine, "swarm_node_count", three)
    app = PicselliaApp(hosts_ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("enter")
        dialog = await _open_launch(pilot)
        row = dialog.query_one(HostPicker)
        await until(pilot, lambda: row.nodes == {"cluster": 3})
        picker = dialog.query_one("#launch-host", Select)
        assert picker.value == "gpu-box"  # the relabelling kept the choice
        await _tab_to(pilot, dialog, "#launch-host")
        await pilot.press("enter")
        await until(pilot, lambda: picker.expanded)
        shown = screen_text(app)
        assert "cluster (swarm, 3 nodes)" in shown and "gpu-box (docker, default)" in shown
