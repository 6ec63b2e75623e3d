"""The interface is event-driven: idle, no timer runs; engine events bring every
update (the job row, the header counts, the log pane) without polling; the app
paints before its engine is up and starts it itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import TabbedContent

from picsellia_tui.tui.app import AppEngineHandle, PicselliaApp
from picsellia_tui.tui.screens.main import MainScreen
from picsellia_tui.tui.widgets import log_view
from picsellia_tui.tui.widgets.jobs import JobsPane
from picsellia_tui.tui.widgets.jobs_table import JobsTable
from picsellia_tui.tui.widgets.log_view import LogView
from tests.tui.helpers import make_settings, ready, screen_text, until, wait_for

pytestmark = pytest.mark.anyio
SIZE = (100, 30)


def jobs_pane(app: PicselliaApp) -> JobsPane:
    return app.screen_stack[0].query_one(JobsPane)


def idle_timers(app: PicselliaApp) -> dict[str, Any]:
    """The app's own timers that are live (each must be None when idle)."""
    pane = jobs_pane(app)
    return {
        "app refresh": app._refresh_timer,
        "jobs tick": pane.table._tick_timer,
        "durations": pane.table._duration_timer,
        "detail tick": pane.detail._tick_timer,
        "run durations": pane.detail._duration_timer,
        "log poll": pane.query_one(LogView)._poll,
    }


def log_text(app: PicselliaApp) -> str:
    return "\n".join(jobs_pane(app).query_one(LogView).log_lines.visible_text())


async def test_idle_app_runs_no_timer(ws: AppEngineHandle) -> None:
    """A finished job shown in the Jobs tab: once settled, nothing polls."""
    job = ws.call(lambda e: e.launch("test-copy", "m/v1", {"lines": 2}))
    wait_for(lambda: ws.call(lambda e: e.job(job.id)).status == "succeeded", timeout=30)
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("3")
        pane = jobs_pane(app)
        await until(
            pilot, lambda: pane.detail.current is not None and pane.detail.current.id == job.id
        )
        await until(pilot, lambda: "done" in log_text(app))
        await until(pilot, lambda: not any(idle_timers(app).values()))
        assert not pane.query_one(LogView).live
        await pilot.pause(1.0)
        assert idle_timers(app) == dict.fromkeys(idle_timers(app))


async def test_a_finishing_job_updates_row_header_and_log_without_polling(
    ws: AppEngineHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log pane's file poll is made an hour long: the running job's lines,
    its end, the row's status and the header counts all arrive by engine events."""
    monkeypatch.setattr(log_view, "FOLLOW_POLL_S", 3600.0)
    monkeypatch.setattr(log_view, "IDLE_POLL_S", 3600.0)
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("3")
        await until(pilot, lambda: not any(idle_timers(app).values()))
        job = ws.call(lambda e: e.launch("test-copy", "m/v1", {"lines": 3, "sleep": 1.5}))
        pane = jobs_pane(app)

        def status() -> str | None:
            j = pane.table.jobs.get(job.id)
            return j.status if j else None

        await until(pilot, lambda: status() == "running")
        await until(pilot, lambda: "1 running" in screen_text(app).splitlines()[0])
        pane.focus_job(job.id)
        log = pane.query_one(LogView)
        await until(pilot, lambda: log.live and "line 2" in log_text(app))
        assert status() == "running"  # lines came while it ran
        # A running row on screen: its duration ticks (only then).
        await until(pilot, lambda: pane.table._duration_timer is not None)
        await until(pilot, lambda: status() == "succeeded", timeout=30)
        await until(pilot, lambda: "done" in log_text(app))
        row = pane.query_one(JobsTable).get_row(str(job.id))
        assert "succeeded" in str(row[1])
        await until(pilot, lambda: "0 running" in screen_text(app).splitlines()[0])
        # Over: nothing polls any more.
        await until(pilot, lambda: not any(idle_timers(app).values()))
        assert not log.live


async def test_app_paints_then_starts_its_engine(tmp_path: Path) -> None:
    """Given settings, the app shows its tabs with "starting engine…" before the
    engine is imported; keys work meanwhile; the tabs fill once it is up."""
    settings = make_settings(tmp_path)
    app = PicselliaApp(settings=settings, frozen_time=True)
    try:
        async with app.run_test(size=SIZE) as pilot:
            first = screen_text(app)
            assert "Processings" in first
            assert app.handle is None and "starting engine…" in first.splitlines()[0]
            await pilot.press("3")  # keys work while the engine starts
            assert app.screen_stack[0].query_one(TabbedContent).active == "jobs"
            await pilot.press("1")
            await ready(pilot)
            assert app.engine_ready
            await until(pilot, lambda: "acme" in screen_text(app).splitlines()[0])
            assert "starting engine" not in screen_text(app)
    finally:
        app.stop_engine()
    assert app.engine_error is None


async def test_app_settings_can_load_after_the_first_frame(tmp_path: Path) -> None:
    loaded: list[bool] = []

    def load() -> Any:
        loaded.append(True)
        return make_settings(tmp_path)

    app = PicselliaApp(settings=load, frozen_time=True)
    try:
        async with app.run_test(size=SIZE) as pilot:
            assert isinstance(app.screen_stack[0], MainScreen)
            await ready(pilot)
            assert loaded == [True] and app.settings is not None
    finally:
        app.stop_engine()


async def test_engine_that_cannot_start_closes_the_app_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    app = PicselliaApp(settings=make_settings(tmp_path, data_dir=blocker / "data"))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.engine_error is not None)
            await pilot.pause(0.2)
    finally:
        app.stop_engine()
    assert app.return_code == 1
    assert app.engine_error is not None
    assert app.engine_error.startswith("picsellia-tui: cannot open the workspace: ")
    assert "\n" not in app.engine_error
