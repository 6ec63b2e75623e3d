"""The Textual application: `run_app(settings)` is what `picsellia-tui` opens.

The engine runs in its own thread and event loop (`EngineHandle`); every call to
it happens in a Textual thread worker, and its events arrive here as
`EngineEvent` messages, so the interface never waits on SQLite, Docker or a
remote host.

Paint first: this module imports Textual and the views only (no SQLModel, no
Docker SDK, no pydantic). Given settings (or a function loading them) rather than
a started handle, the app shows its tabs with "starting engine…" in the header,
then loads the settings and imports and starts the engine in a thread after the
first frame; views' engine calls made meanwhile wait for it
(keys stay live), and the tabs fill once it is up. The app is event-driven: no
timer runs while nothing happens (engine events schedule one-shot refreshes).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from textual import work
from textual.app import App
from textual.binding import BindingType
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import Worker

from picsellia_tui.humanize import first_line
from picsellia_tui.tui.keymap import GLOBAL_BINDINGS, ActionsProvider
from picsellia_tui.tui.messages import EngineEvent, LaunchRequested, RunViewAction, ShowJob
from picsellia_tui.tui.screens.main import MainScreen
from picsellia_tui.tui.toasts import SWEEP_GRACE, sweep_toasts
from picsellia_tui.tui.widgets.base import EngineUnavailable, report_worker_error
from picsellia_tui.tui.widgets.format import Clock
from picsellia_tui.tui.widgets.header import StatusHeader
from picsellia_tui.tui.widgets.jobs import JobsPane
from picsellia_tui.tui.widgets.processings import ProcessingsPane
from picsellia_tui.tui.widgets.versions import VersionsPane

if TYPE_CHECKING:
    from picsellia_tui.engine.config import Settings
    from picsellia_tui.engine.core import Engine
    from picsellia_tui.engine.embedded import EngineHandle
    from picsellia_tui.engine.embedded import EngineHandle as AppEngineHandle  # noqa: F401
    from picsellia_tui.engine.remote import RemoteHandle
    from picsellia_tui.engine.views import EngineStats, JobView, RunView
else:

    def __getattr__(name: str) -> Any:
        # `AppEngineHandle` (the handle tests and benches start themselves) is
        # imported on demand: importing it loads the whole engine.
        if name == "AppEngineHandle":
            from picsellia_tui.engine.embedded import EngineHandle

            return EngineHandle
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


T = TypeVar("T")
REFRESH_DELAY = 0.3  # events within this window cost one stats query
FINAL_STATUSES = ("succeeded", "failed", "killed")


class EngineStarted(Message):
    """The engine the app started is up."""


class EngineFailed(Message):
    """The engine the app started could not start; `line` says why."""

    def __init__(self, line: str) -> None:
        super().__init__()
        self.line = line


class PicselliaApp(App[None]):
    """Processings, ModelVersions and Jobs, over one engine handle.

    `PicselliaApp(handle)` uses a started handle (tests, benches);
    `PicselliaApp(settings=...)` starts its own after the first frame (and
    `stop_engine()` stops it). `settings` may be a function returning them, called
    in that thread too (loading settings imports pydantic).
    """

    CSS_PATH = "app.tcss"
    TITLE = "picsellia-tui"
    COMMANDS = App.COMMANDS | {ActionsProvider}
    BINDINGS: ClassVar[list[BindingType]] = [*GLOBAL_BINDINGS]
    ENABLE_COMMAND_PALETTE = True
    # Screens under 30 rows (80x24) get a tighter Jobs layout (see app.tcss).
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]

    def __init__(
        self,
        handle: EngineHandle | RemoteHandle | None = None,
        *,
        settings: Settings | Callable[[], Settings] | None = None,
        supervise: bool = True,
        frozen_time: bool | None = None,
    ) -> None:
        super().__init__()
        if handle is None and settings is None:
            raise TypeError("PicselliaApp needs a started handle or settings")
        self._settings_loader: Callable[[], Settings] | None = None
        if handle is not None:
            settings = handle.settings
        elif callable(settings):
            self._settings_loader, settings = settings, None
        # None until loaded (with a loader): the views read it once the engine is up.
        self.settings: Settings | None = settings
        self.settings_error: BaseException | None = None  # what loading the settings raised
        # In-process (tests, benches, or no shared engine reachable) or a client
        # of the workspace's background engine: the same calls either way.
        self.handle: EngineHandle | RemoteHandle | None = handle
        self.engine_error: str | None = None  # why the engine did not start
        self.clock = Clock(frozen_time)
        self.stats: EngineStats | None = None
        self._supervise = supervise
        # Mount the hidden tabs' views after the first frame (see MainScreen); with
        # a started handle the data is there at once, and callers query the views.
        self.lazy_views = handle is None
        self._engine_settled = threading.Event()  # set once the engine is up, or failed
        self._engine_closing = False
        self._starter: threading.Thread | None = None
        self._stats_dirty = True
        self._versions_dirty = False
        self._refresh_timer: Timer | None = None
        if handle is not None:
            self._engine_settled.set()

    @property
    def engine_ready(self) -> bool:
        return self.handle is not None

    def get_default_screen(self) -> Screen[Any]:
        return MainScreen(lazy_views=self.lazy_views, engine_ready=self.engine_ready)

    def on_mount(self) -> None:
        if self.handle is not None:
            self._engine_up()
        else:
            # After the first frame is on the terminal: importing the engine holds
            # the GIL for a while.
            self.call_after_refresh(self._start_engine)

    # -- the engine ------------------------------------------------------------------------

    async def engine_await(self, fn: Callable[[Engine], Awaitable[T]]) -> T:
        """Call the engine from the UI loop (an async worker): the call runs in the
        engine's loop and nothing here blocks; waits while the engine starts.

        A worker cancelled meanwhile (its view closed, a newer reload) stops waiting
        but never cuts the call short: a service (create, save, remove, launch) is
        done whole, as the engine decided, and only its answer is dropped."""
        if not self._engine_settled.is_set():
            await asyncio.to_thread(self._engine_settled.wait)
        handle = self.handle
        if handle is None or self._engine_closing:
            raise EngineUnavailable(self.engine_error or "the engine is not running")
        call = asyncio.wrap_future(handle.submit(fn))
        call.add_done_callback(_retrieved)
        return await asyncio.shield(call)

    def _start_engine(self) -> None:
        if self._starter is not None or self._engine_closing:
            return
        # A plain thread, not a worker: views' workers may wait on it meanwhile.
        self._starter = threading.Thread(
            target=self._engine_thread, name="picsellia-engine-start", daemon=True
        )
        self._starter.start()

    def _engine_thread(self) -> None:
        if self._settings_loader is not None:
            try:
                self.settings = self._settings_loader()
            except Exception as exc:
                # Raised again by run_app once the terminal is restored: the command
                # line reports it as it reports any bad configuration.
                self.settings_error = exc
                self.engine_error = f"picsellia-tui: {first_line(exc)}"
                self._engine_settled.set()
                self.post_message(EngineFailed(self.engine_error))
                return
        try:
            assert self.settings is not None
            handle = self._client_handle(self.settings)
            if handle is None:
                from picsellia_tui.engine.embedded import EngineHandle

                handle = EngineHandle(self.settings, supervise=self._supervise)
                handle.start()
        except BaseException as exc:
            self.engine_error = engine_error_line(exc)
            self._engine_settled.set()
            self.post_message(EngineFailed(self.engine_error))
            return
        self.handle = handle
        self._engine_settled.set()
        self.post_message(EngineStarted())

    def _client_handle(self, settings: Settings) -> Any:
        """A started handle on the workspace's shared engine (started in the
        background when none serves it), or None when the app must run an engine
        of its own: settings another process cannot load the same (built in
        code: tests, benches), or no engine can be reached (then the reason is
        logged and the app works as before, with the engine in-process)."""
        if not (self._supervise and settings.reproducible):
            return None
        import logging

        from picsellia_tui.engine.remote import RemoteHandle, Unreachable

        handle = RemoteHandle(settings)
        try:
            handle.start()
        except Unreachable as exc:
            logging.getLogger(__name__).warning("no shared engine (%s); running one here", exc)
            return None
        return handle

    def on_engine_started(self, _: EngineStarted) -> None:
        if self._engine_closing:
            return
        self._engine_up()

    def on_engine_failed(self, message: EngineFailed) -> None:
        # run_app prints the line once the terminal is restored.
        self.exit(return_code=1)

    def _engine_up(self) -> None:
        assert self.handle is not None
        self.handle.on_event(self._from_engine)
        self._stats_dirty = True
        self._schedule_refresh(0)

    def stop_engine(self) -> None:
        """After the app has exited: stop the engine it started (waiting for a
        start under way to end first)."""
        self._engine_closing = True
        starter = self._starter
        if starter is not None:
            starter.join()
        self._engine_settled.set()  # nothing waits on a start any more
        if starter is not None and self.handle is not None:
            self.handle.stop()

    # -- engine events ----------------------------------------------------------------------

    def _from_engine(self, event: Any) -> None:
        """Called in the engine's thread: hand the event to the UI loop."""
        self.post_message(EngineEvent(event))

    def on_engine_event(self, message: EngineEvent) -> None:
        from picsellia_tui.engine.events import (
            ExternalChange,
            JobCreated,
            Resync,
            RunChanged,
            VersionCreated,
        )

        ev = message.event
        if isinstance(ev, RunChanged) and ev.status in FINAL_STATUSES:
            self._run_ended(ev.job_id, ev.run_id)
        if isinstance(ev, JobCreated | RunChanged | ExternalChange | Resync):
            self._stats_dirty = True
            self._schedule_refresh()
        if isinstance(ev, VersionCreated | ExternalChange | Resync):
            self._versions_dirty = True
            self._schedule_refresh()
        screen = self._main()
        if screen is not None:
            for pane in screen.query(JobsPane):  # none while the screen is composing
                pane.engine_event(ev)
            for procs in screen.query(ProcessingsPane):
                procs.engine_event(ev)

    @work(exit_on_error=False, group="run-ended")
    async def _run_ended(self, job_id: int, run_id: int) -> None:
        """Tell the user a run ended, wherever it was launched from (the shared
        engine sends every run's events to every app)."""
        job = await self.engine_await(lambda e: e.job(job_id))
        run = next((r for r in job.runs if r.id == run_id), None)
        if run is None:
            return
        self._announce_end(job, run)

    def _announce_end(self, job: JobView, run: RunView) -> None:
        title = f"Job {job.id} {run.status}"
        text = f"{job.processing} on {job.target}: run #{run.attempt} {run.status}"
        if run.exit_code is not None and run.status != "succeeded":
            text += f" (exit {run.exit_code})"
        severity = {"succeeded": "information", "killed": "warning"}.get(run.status, "error")
        self.notify(text, title=title, severity=severity)  # type: ignore[arg-type]
        mode = self.settings.notify_terminal if self.settings is not None else "off"
        sequence = terminal_notification(mode, f"picsellia-tui: {title}", text)
        if sequence and not self.is_headless and self._driver is not None:
            self._driver.write(sequence)

    def _schedule_refresh(self, delay: float = REFRESH_DELAY) -> None:
        """One refresh after `delay` for whatever was marked dirty meanwhile."""
        if self._refresh_timer is None:
            self._refresh_timer = self.set_timer(max(delay, 0.01), self._refresh_dirty)

    def _refresh_dirty(self) -> None:
        self._refresh_timer = None
        if self._stats_dirty:
            self._stats_dirty = False
            self._load_stats()
        if self._versions_dirty:
            self._versions_dirty = False
            screen = self._main()
            if screen is not None:
                for pane in screen.query(VersionsPane):
                    pane.load()

    @work(exit_on_error=False, exclusive=True, group="stats")
    async def _load_stats(self) -> None:
        # Exclusive: a newer one cancels this one at its await (its answer is fresher).
        stats = await self.engine_await(lambda e: e.stats())
        self.stats = stats
        screen = self._main()
        if screen is not None:
            for header in screen.query(StatusHeader):
                header.show(stats)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report_worker_error(self, event)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)
        # A second path to the toast's removal, the app's own timer (see tui/toasts.py).
        due = self.NOTIFICATION_TIMEOUT if timeout is None else timeout
        self.set_timer(due + SWEEP_GRACE, lambda: sweep_toasts(self))

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

    def on_run_view_action(self, message: RunViewAction) -> None:
        self.run_view_action(message.tab, message.selector, message.action)

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
        targets = screen.query(selector)
        if not targets:  # a view not mounted yet (they mount after the first frame)
            self.call_after_refresh(self.run_view_action, None, selector, action)
            return
        self.call_after_refresh(targets.first().run_action, action)

    def on_launch_requested(self, message: LaunchRequested) -> None:
        from picsellia_tui.tui.dialogs.launch import LaunchDialog

        def launched(job: JobView | None) -> None:
            if job is not None:
                self.notify(f"Job {job.id}: {job.processing} on {job.target} launched.")
                # After the modal is gone and focus restored, or the tab flips back.
                self.call_after_refresh(self.show_job, job.id, True)

        self.push_screen(LaunchDialog(message.request), launched)

    def on_show_job(self, message: ShowJob) -> None:
        self.show_job(message.job_id, follow=message.follow)

    def show_job(self, job_id: int, follow: bool = True) -> None:
        screen = self._main()
        if screen is None:
            return
        screen.show_tab("jobs")
        panes = screen.query(JobsPane)
        if not panes:  # not mounted yet (it mounts after the first frame)
            self.call_after_refresh(self.show_job, job_id, follow)
            return
        panes.first().focus_job(job_id, follow=follow)


def run_app(settings: Settings | Callable[[], Settings]) -> None:
    """Open the interface on the configured workspace (the engine starts behind
    the first frame); exit 1 with one line when the engine cannot start.

    `settings` may be a function loading them: it is called after the first frame
    too, and what it raises is raised here once the app has closed."""
    app = PicselliaApp(settings=settings, supervise=True)
    try:
        app.run()
    finally:
        app.stop_engine()
    if app.settings_error is not None:
        raise app.settings_error
    if app.engine_error is not None:
        print(app.engine_error, file=sys.stderr)
        raise SystemExit(1)


def terminal_notification(mode: str, title: str, body: str) -> str:
    """The escape sequence of a desktop notification from the terminal: OSC 9
    (iTerm2, WezTerm, kitty, foot), OSC 777 (VTE, rxvt), or the bell. Inside
    tmux an OSC goes through as a passthrough (tmux rings its own bell)."""
    from picsellia_tui.engine.logtext import strip_ansi

    def clean(text: str) -> str:  # no control character may end the sequence early
        return "".join(c for c in strip_ansi(text) if c.isprintable()).replace(";", ",")

    if mode == "bell":
        return "\a"
    if mode == "osc9":
        seq = f"\x1b]9;{clean(title)}: {clean(body)}\x07"
    elif mode == "osc777":
        seq = f"\x1b]777;notify;{clean(title)};{clean(body)}\x07"
    else:
        return ""
    if os.environ.get("TMUX"):
        seq = "\x1bPtmux;" + seq.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return seq


def engine_error_line(exc: BaseException) -> str:
    """The one line shown when the engine cannot start."""
    from picsellia_tui.engine.errors import EngineError

    if isinstance(exc, EngineError | OSError | ValueError):
        return f"picsellia-tui: cannot open the workspace: {first_line(exc)}"
    return f"picsellia-tui: the engine did not start: {type(exc).__name__}: {first_line(exc)}"


def _retrieved(call: asyncio.Future[Any]) -> None:
    """An engine call whose waiter left: its error is nobody's to report (and
    asyncio would print it to the terminal as never retrieved)."""
    if not call.cancelled():
        call.exception()
