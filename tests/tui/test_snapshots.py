"""Snapshots of each tab, the launch modal with an error, a failed job with its
stack trace and the help screen (100x30).

Deterministic: a fresh workspace in the run's own temp dir, its processings
folder at a fixed path (it shows in a processing's details and in stack traces),
jobs finished before the app opens, the clock frozen (times and durations render
as fixed text), no toast on screen. test-copy writes all its stdout before its
stderr, so a log's merged order does not depend on when the engine read it.
Update with `pytest tests/tui/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import fcntl
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
from picsellia_tui.tui.widgets.log_view import LogView
from picsellia_tui.tui.widgets.versions import VersionsPane
from tests.tui.helpers import FIXTURES, ready, until, wait_for, workspace

SIZE = (100, 30)
SHARED = Path("/tmp/picsellia-tui-snapshots")


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[AppEngineHandle]:
    """Database, blobs and logs in this run's tmp_path. Only the processings folder
    is at a fixed path, since it is drawn; a lock held for the whole test makes two
    runs at once take turns with it instead of replacing it under each other."""
    SHARED.mkdir(exist_ok=True)
    with (SHARED / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        procs = SHARED / "processings"
        shutil.rmtree(procs, ignore_errors=True)
        shutil.copytree(FIXTURES / "proc_copy", procs / "test-copy")
        with workspace(tmp_path, processings_dir=procs) as handle:
            yield handle


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


def shown_log(pane: JobsPane) -> str:
    """What the job's log pane draws (it loads after the job's detail)."""
    return "\n".join(pane.query_one(LogView).log_lines.visible_text())


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
        await until(pilot, lambda: "done" in shown_log(pane))
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
        await until(pilot, lambda: not pane.query_one("#run-error").has_class("-hidden"))
        await until(pilot, lambda: "RuntimeError: asked to fail" in shown_log(pane))
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
