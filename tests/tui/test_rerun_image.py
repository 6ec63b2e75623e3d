"""The Jobs tab's side of per-run image digests: the run history shows each run's
short digest and marks where it changed; the re-run confirmation's "same image"
toggle pins the previous run's digest. And what the job writes, told right."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static

from picsellia_tui.tui.app import AppEngineHandle, PicselliaApp
from picsellia_tui.tui.dialogs.rerun import RerunDialog
from picsellia_tui.tui.screens.main import MainScreen
from picsellia_tui.tui.widgets.job_detail import RunsTable
from picsellia_tui.tui.widgets.jobs import JobsPane
from tests.tui.helpers import FIXTURES, ready, until, wait_for

pytestmark = pytest.mark.anyio
SIZE = (120, 36)
A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def _pane(app: PicselliaApp) -> JobsPane:
    screen = app.screen_stack[0]
    assert isinstance(screen, MainScreen)
    return screen.query_one(JobsPane)


def _final(ws: AppEngineHandle, job_id: int) -> Any:
    def done() -> Any:
        job = ws.call(lambda e: e.job(job_id))
        return job if not job.active else None

    return wait_for(done, timeout=30)


def _record_digest(ws: AppEngineHandle, run_id: int, digest: str) -> None:
    """What a Docker host would have recorded (these runs are local processes)."""
    con = sqlite3.connect(ws.settings.database_path)
    with con:
        con.execute("UPDATE run SET image_digest = ? WHERE id = ?", (digest, run_id))
    con.close()


async def test_run_history_marks_the_image_change_and_same_image_pins_it(
    ws: AppEngineHandle,
) -> None:
    job = ws.call(lambda e: e.launch("test-copy", "m/v1", {"lines": 1}))
    _final(ws, job.id)
    _record_digest(ws, job.runs[0].id, A)
    run2 = ws.call(lambda e: e.rerun(job.id))
    _final(ws, job.id)
    _record_digest(ws, run2.id, B)

    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("3")
        pane = _pane(app)
        await until(
            pilot, lambda: pane.detail.current is not None and len(pane.detail.current.runs) == 2
        )
        runs = pane.query_one(RunsTable)
        cells = [str(runs.get_cell(str(r.id), "image")) for r in pane.detail.current.runs]
        assert cells == ["  " + "a" * 12, "● " + "b" * 12]

        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RerunDialog))
        dialog = app.screen
        assert isinstance(dialog, RerunDialog)
        assert dialog.pin == "run #2, " + "b" * 12
        assert not dialog.same_image
        message = dialog.query_one("#confirm-message", Static)
        assert "current definition and image" in str(message.render())
        await pilot.press("i")
        assert dialog.same_image
        assert "image of run #2, bbbbbbbbbbbb again" in str(message.render())
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        await until(pilot, lambda: pane.table.jobs[job.id].attempts == 3)
    last = _final(ws, job.id).runs[-1]
    assert last.attempt == 3 and last.image_ref == B


async def test_job_detail_says_what_a_job_without_output_writes(
    ws: AppEngineHandle, tmp_path: Path
) -> None:
    folder = tmp_path / "mine" / "just-check"
    shutil.copytree(FIXTURES / "proc_copy", folder)
    toml = folder / "processing.toml"
    toml.write_text(
        toml.read_text()
        .replace('name = "test-copy"', 'name = "just-check"')
        .replace('"picsellia-tui/test-copy:', '"example/just-check:')
        .replace('output_mode = "new_model_version"', 'output_mode = "none"')
    )
    ws.call(lambda e: e.create_processing(folder))
    job = ws.call(lambda e: e.launch("just-check", "m/v1", {"lines": 1}))
    assert job.output_label == "(no output version)"

    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("3")
        pane = _pane(app)
        await until(pilot, lambda: pane.detail.current is not None)
        summary = str(pane.query_one("#job-summary").render())
        assert "→ (no output version)" in summary and "updates the input" not in summary
