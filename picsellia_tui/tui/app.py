"""The Textual application: `run_app(settings)` is what `picsellia-tui` opens.

The engine runs in its own thread and event loop (`EngineHandle`); every call to
it happens in a Textual thread worker, and its events arrive here as
`EngineEvent` messages, so the interface never waits on SQLite, Docker or a
remote host.
"""

from __future__ import annotations

import sys
from typing import Any

from textual import work
from textual.app import App
from textual.screen import Screen
from textual.worker import Worker, get_current_worker

from picsellia_tui.engine.config import Settings
from picsellia_tui.engine.embedded import EngineHandle
from picsellia_tui.engine.events import (
    ExternalChange,
    JobCreated,
    Resync,
    RunChanged,
    VersionCreated,
)
from picsellia_tui.engine.views import EngineStats, JobView
from picsellia_tui.tui.keymap import GLOBAL_BINDINGS, ActionsProvider
from picsellia_tui.tui.messages import EngineEvent, LaunchRequested, ShowJob
from picsellia_tui.tui.screens.main import MainScreen
from picsellia_tui.tui.widgets.base import report_worker_error
from picsellia_tui.tui.widgets.format import Clock
from picsellia_tui.tui.widgets.jobs import JobsPane
from picsellia_tui.tui.widgets.versions import VersionsPane

# The engine's own handle now keeps its task group in one portal task.
AppEngineHandle = EngineHandle


class PicselliaApp(App[None]):
    """Processings, ModelVersions and Jobs, over one engine handle."""

    CSS_PATH = "app.tcss"
    TITLE = "picsellia-tui"
    COMMANDS = App.COMMANDS | {ActionsProvider}
    BINDINGS = GLOBAL_BINDINGS
    ENABLE_COMMAND_PALETTE = True
    # Screens under 30 rows (80x24) get a tighter Jobs layout (see app.tcss).
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]

    def __init__(self, handle: EngineHandle, *, frozen_time: bool | None = None) -> None:
        super().__init__()
        self.handle = handle
        self.clock = Clock(frozen_time)
        self.stats: EngineStats | None = None
        self._stats_dirty = True
        self._versions_dirty = False

    def get_default_screen(self) -> Screen[Any]:
        return MainScreen()

    def on_mount(self) -> None:
        self.handle.on_event(self._from_engine)
        self.set_interval(0.3, self._tick)
        self._tick()

    # -- engine events ----------------------------------------------------------------------

    def _from_engine(self, event: Any) -> None:
        """Called in the engine's thread: hand the event to the UI loop."""
        self.post_message(EngineEvent(event))

    def on_engine_event(self, message: EngineEvent) -> None:
        ev = message.event
        if isinstance(ev, JobCreated | RunChanged | ExternalChange | Resync):
            self._stats_dirty = True
        if isinstance(ev, VersionCreated | ExternalChange | Resync):
            self._versions_dirty = True
        screen = self._main()
        if screen is not None:
            for pane in screen.query(JobsPane):  # none while the screen is composing
                pane.engine_event(ev)

    def _tick(self) -> None:
        if self._stats_dirty:
            self._stats_dirty = False
            self._load_stats()
        if self._versions_dirty:
            self._versions_dirty = False
            screen = self._main()
            if screen is not None:
                for pane in screen.query(VersionsPane):
                    pane.load()

    @work(thread=True, exit_on_error=False, exclusive=True, group="stats")
    def _load_stats(self) -> None:
        stats = self.handle.call(lambda e: e.stats())
        if get_current_worker().is_cancelled:  # a newer one runs: its answer is fresher
            return
        self.call_from_thread(self._show_stats, stats)

    def _show_stats(self, stats: EngineStats) -> None:
        self.stats = stats
        screen = self._main()
        if screen is not None:
            from picsellia_tui.tui.widgets.header import StatusHeader

            for header in screen.query(StatusHeader):
                header.show(stats)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report_worker_error(self, event)

    def _main(self) -> MainScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return None

    # -- actions ---------------------------------------------------------------------------------

    def action_show_tab(self, tab: str) -> None:
        screen = self._main()
        if screen is not None:
            screen.show_tab(tab)

    def action_help(self) -> None:
        from picsellia_tui.tui.dialogs.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def run_view_action(self, tab: str | None, selector: str | None, action: str) -> None:
        """Run an action of a view (from the command palette): show its tab first."""
        screen = self._main()
        if screen is None:
            return
        if tab is not None:
            screen.show_tab(tab)
        if selector is None:
            self.call_after_refresh(self.run_action, action)
            return
        target = screen.query_one(selector)
        self.call_after_refresh(target.run_action, action)

    def on_launch_requested(self, message: LaunchRequested) -> None:
        from picsellia_tui.tui.dialogs.launch import LaunchDialog

        def launched(job: JobView | None) -> None:
            if job is not None:
                self.notify(f"Job {job.id}: {job.processing} on {job.target} launched.")
                # After the modal is gone and focus restored, or the tab flips back.
                self.call_after_refresh(self.show_job, job.id, True)

        self.push_screen(
            LaunchDialog(
                processing=message.processing,
                version=message.version,
                params=message.params,
                output_version_name=message.output_version_name,
                title=message.title,
            ),
            launched,
        )

    def on_show_job(self, message: ShowJob) -> None:
        self.show_job(message.job_id, follow=message.follow)

    def show_job(self, job_id: int, follow: bool = True) -> None:
        screen = self._main()
        if screen is None:
            return
        screen.show_tab("jobs")
        screen.query_one(JobsPane).focus_job(job_id, follow=follow)


def run_app(settings: Settings) -> None:
    """Open the interface on the configured workspace; exit 1 with one line when
    the engine cannot start."""
    from picsellia_tui.engine.errors import EngineError

    handle = AppEngineHandle(settings, supervise=True)
    try:
        handle.start()
    except (EngineError, OSError, ValueError) as exc:
        print(f"picsellia-tui: cannot open the workspace: {_first_line(exc)}", file=sys.stderr)
        raise SystemExit(1) from None
    except Exception as exc:
        print(
            f"picsellia-tui: the engine did not start: {type(exc).__name__}: {_first_line(exc)}",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    try:
        PicselliaApp(handle).run()
    finally:
        handle.stop()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
