"""Snapshots of each tab, the launch modal with an error, a failed job with its
stack trace and the help screen (100x30).

Deterministic: a fresh workspace at a fixed path (paths show in a processing's
folder and in stack traces), jobs finished before the app opens, the clock
frozen (times and durations render as fixed text), no toast on screen.
Update with `pytest tests/tui/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from picsellia_tui.tui.app import AppEngineHandle, PicselliaApp
from picsellia_tui.tui.dialogs.help import HelpScreen
from picsellia_tui.tui.dialogs.launch import LaunchDialog
from picsellia_tui.tui.dialogs.new_processing import NewProcessingDialog
from picsellia_tui.tui.screens.main import MainScreen
from picsellia_tui.tui.widgets.jobs import JobsPane
from picsellia_tui.tui.widgets.versions import VersionsPane
from tests.tui.helpers import ready, until, wait_for, workspace

SIZE = (100, 30)
ROOT = Path("/tmp/picsellia-tui-snapshots")


@pytest.fixture
def ws(request: pytest.FixtureRequest) -> Iterator[AppEngineHandle]:
    root = ROOT / request.node.name
    shutil.rmtree(root, ignore_errors=True)
    with workspace(root) as handle:
        yield handle
    shutil.rmtree(root, ignore_errors=True)


def run_job(handle: AppEngineHandle, **params: Any) -> int:
    job = handle.call(lambda e: e.launch("test-copy", "m/v1", params))

    def final() -> bool:
        return handle.call(lambda e: e.job(job.id)).status not in ("pending", "running")

    wait_for(final, timeout=30)
    return job.id


def main(app: Any) -> MainScreen:
    screen = app.screen_stack[0]
    assert isinstance(screen, MainScreen)
    return screen


async def settle(pilot: Pilot[Any]) -> None:
    """Everything loaded (header counts, each job's duration), no toast, no
    blinking cursor, everything laid out."""
    app = pilot.app
    pane = main(app).query_one(JobsPane)
    await until(pilot, lambda: app.stats is not None)
    await until(pilot, lambda: all(j in pane.table.latest_runs for j in pane.table.jobs))
    for box in pilot.app.screen.query(Input):
        box.cursor_blink = False
    pilot.app.clear_notifications()
    await pilot.pause(0.3)
    pilot.app.clear_notifications()
    await pilot.wait_for_scheduled_animations()


def test_processings_tab(ws: AppEngineHandle, snap_compare: Any) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        await settle(pilot)

    assert snap_compare(PicselliaApp(ws, frozen_time=True), terminal_size=SIZE, run_before=before)


def test_versions_tab(ws: AppEngineHandle, snap_compare: Any) -> None:
    run_job(ws, lines=2)

    async def before(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        await pilot.press("2")
        table = main(pilot.app).query_one("#versions-table")
        await until(pilot, lambda: table.row_count == 2)
        await pilot.press("down")  # m/v1-copy: files and lineage (made by job 1)
        pane = main(pilot.app).query_one(VersionsPane)
        await until(pilot, lambda: any(v.name == "v1-copy" for v in pane.details.values()))
        await pilot.pause(0.5)
        await settle(pilot)

    assert snap_compare(PicselliaApp(ws, frozen_time=True), terminal_size=SIZE, run_before=before)


def test_jobs_tab(ws: AppEngineHandle, snap_compare: Any) -> None:
    run_job(ws, lines=5)
    run_job(ws, lines=1, mode="empty")

    async def before(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        await pilot.press("3")
        pane = main(pilot.app).query_one(JobsPane)
        await until(pilot, lambda: len(pane.table.jobs) == 2 and pane.detail.current is not None)
        await pilot.press("down")  # job 1, succeeded, with its log
        await until(pilot, lambda: pane.detail.current is not None and pane.detail.current.id == 1)
        await pilot.pause(0.5)
        await settle(pilot)

    assert snap_compare(PicselliaApp(ws, frozen_time=True), terminal_size=SIZE, run_before=before)


def test_failed_job_shows_its_stack_trace(ws: AppEngineHandle, snap_compare: Any) -> None:
    run_job(ws, fail=True)

    async def before(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        await pilot.press("3")
        pane = main(pilot.app).query_one(JobsPane)
        await until(
            pilot,
            lambda: pane.detail.current is not None and pane.detail.current.status == "failed",
        )
        await pilot.pause(0.5)
        await settle(pilot)

    assert snap_compare(PicselliaApp(ws, frozen_time=True), terminal_size=SIZE, run_before=before)


def test_launch_modal_with_an_error(ws: AppEngineHandle, snap_compare: Any) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, LaunchDialog))
        dialog = pilot.app.screen
        await until(
            pilot,
            lambda: (
                dialog.query("#version-name") and dialog.query_one("#version-name", Input).value
            ),
        )
        for _ in range(3):
            if dialog.focused is dialog.query_one("#param-lines"):
                break
            await pilot.press("tab")
        await pilot.press("end", "ctrl+u", *"abc", "enter")
        await pilot.pause(0.5)
        await settle(pilot)

    assert snap_compare(PicselliaApp(ws, frozen_time=True), terminal_size=SIZE, run_before=before)


def test_help_screen(ws: AppEngineHandle, snap_compare: Any) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))
        await settle(pilot)

    assert snap_compare(PicselliaApp(ws, frozen_time=True), terminal_size=SIZE, run_before=before)


def test_new_processing_dialog_with_an_error(ws: AppEngineHandle, snap_compare: Any) -> None:
    """`n`, from an image: the engine's refusal of the name, under the name field."""

    async def before(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(pilot.app.screen, NewProcessingDialog))
        dialog = pilot.app.screen
        await pilot.press("right", "right", "tab", *"Bad Name", "tab", *"example/convert:2")
        dialog.query_one("#new-image-command", Input).value = "python run.py"
        dialog.query_one("#new-image-frameworks", Input).value = "onnx"
        await pilot.press("enter")
        await until(pilot, lambda: dialog.query_one("#err-new-image-name").has_class("-shown"))
        await settle(pilot)

    assert snap_compare(PicselliaApp(ws, frozen_time=True), terminal_size=SIZE, run_before=before)
