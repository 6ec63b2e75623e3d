"""What every view needs from the app: engine calls, settings and the clock.

Views call the engine with `await self.engine_await(fn)` in an async worker
(`@work` on an async method): the call runs in the engine's loop, the result is
there, on the UI loop, with no hand-back. Work of the view's own that would hold
the loop (reading a big log file) goes to a thread worker that posts its result
as a message (`post_message` is thread-safe).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist
from textual.worker import Worker, WorkerState

from picsellia_tui.humanize import first_line
from picsellia_tui.tui.widgets.format import Clock

if TYPE_CHECKING:
    from picsellia_tui.engine.config import Settings
    from picsellia_tui.engine.core import Engine

T = TypeVar("T")


class EngineUnavailable(Exception):
    """The engine did not start (or the app is closing): str() says why."""


class EngineAccess:
    """Mixin for widgets and screens of the app."""

    app: Any

    @property
    def settings(self) -> Settings:
        """The app's settings: loaded once the engine is up (engine_await returned)."""
        settings = self.app.settings
        assert settings is not None, "settings are read once the engine is up"
        return cast("Settings", settings)

    @property
    def clock(self) -> Clock:
        return cast(Clock, self.app.clock)

    async def engine_await(self, fn: Callable[[Engine], Awaitable[T]]) -> T:
        """Call the engine from an async worker (`@work` on an async method): waits
        while the engine starts (the app starts it after its first frame), holds no
        thread."""
        return cast(T, await self.app.engine_await(fn))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Workers run with exit_on_error=False: a failed engine call is a notice,
        never a crash of the interface."""
        report_worker_error(self.app, event)


def tick_while(
    widget: Widget, timer: Timer | None, wanted: bool, tick: Callable[[], object]
) -> Timer | None:
    """A one-second interval timer that runs only while `wanted` (durations of running
    runs on screen): started or stopped as needed; returns the timer to keep."""
    if not wanted:
        if timer is not None:
            timer.stop()
        return None
    return timer or widget.set_interval(1.0, tick)


def report_worker_error(app: Any, event: Worker.StateChanged) -> None:
    if event.state != WorkerState.ERROR or event.worker.error is None:
        return
    if not app.is_running:
        return
    app.notify(first_line(event.worker.error), title="Engine call failed", severity="error")


class Table(DataTable[Any]):
    """A row-cursor DataTable that keeps the cursor on a row key across updates."""

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("cursor_type", "row")
        kw.setdefault("zebra_stripes", False)
        super().__init__(**kw)

    @property
    def cursor_key(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except CellDoesNotExist:
            return None
        return key.value

    def select_key(self, key: str, *, scroll: bool = True) -> bool:
        try:
            index = self.get_row_index(key)
        except RowDoesNotExist:
            return False
        self.move_cursor(row=index, scroll=scroll)
        return True

    def has_key(self, key: str) -> bool:
        return key in self.rows
