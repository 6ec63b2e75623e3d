"""A virtualized, file-backed log pane for one run.

:class:`LogView` is what screens mount: a :class:`~.log_lines.LogLines` (the rows,
tui/widgets/log_lines.py), a search bar and a small hint line ("+N new lines").
Nothing holds the whole log in memory: the reader keeps the offset index, the rows
an LRU cache of rendered lines and, when wrapping, one row offset a line. Searching
and saving read the whole file: thread workers do it and post their results as
messages.

Keys (shown in the footer): ``f`` follow, ``w`` wrap, ``t`` timestamps, ``g`` / ``G``
top / bottom, ``/`` search, ``n`` / ``N`` next / previous match, ``s`` save.

The app calls :meth:`LogView.refresh_source` when engine events say a run wrote
lines. While :attr:`LogView.live` (the run may still write: another process's
engine writes without telling this one) a timer also polls the file, every
0.25 s while following, 1 s otherwise; a finished run's log is not polled.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Input, Static
from textual.worker import Worker, get_current_worker

from picsellia_tui.engine.logtext import strip_ansi
from picsellia_tui.storage.logfile import search as logsearch
from picsellia_tui.storage.logfile.reader import LogReader
from picsellia_tui.tui.widgets.log_lines import LogLines

DEFAULT_SAVE_DIR = Path("~/picsellia-logs")
FOLLOW_POLL_S = 0.25
IDLE_POLL_S = 1.0


def compile_search(pattern: str) -> tuple[re.Pattern[str], str, bool, bool] | None:
    """The UI's search syntax: ``re:<regex>`` or a literal; case-insensitive unless
    the pattern has a capital letter (smart case). Returns (compiled, pattern, regex,
    case_sensitive), or None for an empty pattern. Raises re.error."""
    regex = pattern.startswith("re:")
    if regex:
        pattern = pattern[3:]
    if not pattern:
        return None
    case_sensitive = any(c.isupper() for c in pattern)
    rx = re.compile(pattern if regex else re.escape(pattern), 0 if case_sensitive else re.I)
    return rx, pattern, regex, case_sensitive


class _FromView(Message):
    """A message of a LogView's: `control` is the view (`@on(..., "#id")` selects it)."""

    def __init__(self, view: LogView) -> None:
        super().__init__()
        self.view = view

    @property
    def control(self) -> LogView:
        return self.view


@dataclass
class _Found(Message, bubble=False):
    """A background search is done (to its LogView): `line` matched, or None."""

    worker: Worker[None]
    reader: LogReader
    search: tuple[re.Pattern[str], str, bool, bool]
    line: int | None
    wrapped: bool
    backwards: bool


class LogView(Vertical):
    """A run's log: virtualized, follows growth, searchable, savable."""

    ALLOW_MAXIMIZE = True  # maximize the pane with its search bar, not just the rows

    BINDINGS = [
        Binding("f", "toggle_follow", "Follow", tooltip="Follow new lines"),
        Binding("w", "toggle_wrap", "Wrap", tooltip="Wrap long lines"),
        Binding("t", "toggle_timestamps", "Times", tooltip="Show timestamps"),
        Binding("g", "top", "Top", tooltip="First line"),
        Binding("G", "bottom", "Bottom", tooltip="Last line, and follow"),
        Binding("slash", "search", "Search", tooltip="Search (re:<regex> for a regex)"),
        Binding("n", "next_match", "Next", tooltip="Next match"),
        Binding("N", "previous_match", "Prev", tooltip="Previous match"),
        Binding("s", "save", "Save", tooltip="Save the log to a file"),
    ]

    DEFAULT_CSS = """
    LogView {
        height: 1fr;
        & > #log-hint {
            dock: bottom;
            height: 1;
            padding: 0 1;
            background: $accent 30%;
            color: $text;
            display: none;
            &.-shown { display: block; }
        }
        & > #log-search {
            dock: bottom;
            display: none;
            &.-shown { display: block; }
        }
    }
    """

    follow: reactive[bool] = reactive(True)
    wrap: reactive[bool] = reactive(False)
    show_timestamps: reactive[bool] = reactive(False)
    pending_lines: reactive[int] = reactive(0)
    search_pattern: reactive[str] = reactive("")

    # ---------------------------------------------------------------- messages
    class Saved(_FromView):
        """The log was written to `path` (`lines` lines)."""

        def __init__(self, view: LogView, path: Path, lines: int) -> None:
            super().__init__(view)
            self.path = path
            self.log_lines = lines

    class SaveFailed(_FromView):
        def __init__(self, view: LogView, path: Path, error: str) -> None:
            super().__init__(view)
            self.path = path
            self.error = error

    class FollowChanged(_FromView):
        def __init__(self, view: LogView, follow: bool) -> None:
            super().__init__(view)
            self.follow = follow

    class SearchDone(_FromView):
        """A search finished: `line` is the match shown, or None."""

        def __init__(self, view: LogView, pattern: str, line: int | None) -> None:
            super().__init__(view)
            self.pattern = pattern
            self.line = line

    # ---------------------------------------------------------------- setup
    def __init__(
        self,
        path: Path | None = None,
        *,
        save_dir: Path | None = None,
        save_name: str | None = None,
        follow: bool = True,
        live: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.path: Path | None = path
        self.save_dir = save_dir or DEFAULT_SAVE_DIR
        self.save_name = save_name
        self.log_lines = LogLines(id="log-lines")
        self._poll: Timer | None = None
        self._live = live
        self._search: tuple[re.Pattern[str], str, bool, bool] | None = None
        self.set_reactive(LogView.follow, follow)
        self.log_lines.follow = follow

    def compose(self) -> ComposeResult:
        yield self.log_lines
        yield Static("", id="log-hint")
        yield Input(
            placeholder="Search: text (capitals make it case-sensitive) or re:<regex>",
            id="log-search",
        )

    def on_mount(self) -> None:
        self.set_source(self.path)
        self._restart_poll()

    @property
    def reader(self) -> LogReader | None:
        return self.log_lines.reader

    def focus(self, scroll_visible: bool = True) -> LogView:
        self.log_lines.focus(scroll_visible)
        return self

    # ---------------------------------------------------------------- source
    def set_source(self, path: Path | None, *, save_name: str | None = None) -> None:
        """Show another run's log (None: nothing)."""
        self.path = path
        if save_name is not None:
            self.save_name = save_name
        self.workers.cancel_group(self, "log-search")
        self.pending_lines = 0
        self.log_lines.set_reader(LogReader(path) if path is not None else None)
        if self.follow:
            self.log_lines.call_after_refresh(self.log_lines.scroll_to_bottom)
        else:
            self.log_lines.scroll_to(y=0, animate=False)

    def refresh_source(self) -> int:
        """Pick up lines written since the last call; returns how many."""
        reader = self.log_lines.reader
        if reader is None:
            return 0
        old = len(reader)
        new = reader.refresh()
        if not new and len(reader) == old:
            return 0
        self.log_lines.lines_added(old)
        if self.follow:
            self.log_lines.call_after_refresh(self.log_lines.scroll_to_bottom)
        else:
            self.pending_lines += new
        return new

    @property
    def live(self) -> bool:
        """The log may still grow: poll its file (else only refresh_source calls)."""
        return self._live

    @live.setter
    def live(self, live: bool) -> None:
        if live != self._live:
            self._live = live
            if self.is_mounted:
                self._restart_poll()

    def _restart_poll(self) -> None:
        if self._poll is not None:
            self._poll.stop()
            self._poll = None
        if self._live:
            self._poll = self.set_interval(
                FOLLOW_POLL_S if self.follow else IDLE_POLL_S, self.refresh_source
            )

    # ---------------------------------------------------------------- reactives
    def watch_follow(self, follow: bool) -> None:
        self.log_lines.follow = follow
        if not self.is_mounted:
            return
        self._restart_poll()
        if follow:
            self.pending_lines = 0
            self.refresh_source()
            self.log_lines.scroll_to_bottom()
            self.log_lines.call_after_refresh(self.log_lines.scroll_to_bottom)
        self._update_hint()
        self.post_message(self.FollowChanged(self, follow))

    def watch_wrap(self, wrap: bool) -> None:
        if not self.is_mounted:
            return
        self.log_lines.wrap = wrap
        self.log_lines.clear_cache()
        self.log_lines.rebuild_wrap()
        self._update_hint()

    def watch_show_timestamps(self, show: bool) -> None:
        if not self.is_mounted:
            return
        self.log_lines.set_timestamps(show)

    def watch_pending_lines(self) -> None:
        self._update_hint()

    def _update_hint(self) -> None:
        if not self.is_mounted:
            return
        hint = self.query_one("#log-hint", Static)
        parts = []
        if self.pending_lines and not self.follow:
            n = self.pending_lines
            parts.append(f"+{n:,} new line{'s' if n != 1 else ''} (G to follow)")
        if self.log_lines.wrapping:
            parts.append("wrapping…")
        hint.update("  ".join(parts))
        hint.set_class(bool(parts), "-shown")

    @on(LogLines.UserScrolledUp)
    def _user_scrolled(self) -> None:
        self.follow = False

    @on(LogLines.WrapReady)
    def _wrap_ready(self) -> None:
        self._update_hint()

    # ---------------------------------------------------------------- actions
    def action_toggle_follow(self) -> None:
        self.follow = not self.follow

    def action_toggle_wrap(self) -> None:
        self.wrap = not self.wrap

    def action_toggle_timestamps(self) -> None:
        self.show_timestamps = not self.show_timestamps

    def action_top(self) -> None:
        self.follow = False
        self.log_lines.scroll_to(y=0, animate=False)

    def action_bottom(self) -> None:
        self.follow = True
        self.log_lines.scroll_to_bottom()

    # ---------------------------------------------------------------- search
    def action_search(self) -> None:
        bar = self.query_one("#log-search", Input)
        bar.add_class("-shown")
        bar.value = ""  # n / N repeat the last search; / starts a new one
        bar.focus()

    def _close_search_bar(self) -> None:
        self.query_one("#log-search", Input).remove_class("-shown")
        self.log_lines.focus()

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape" and self.query_one("#log-search", Input).has_focus:
            event.stop()
            self._close_search_bar()

    @on(Input.Submitted, "#log-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._close_search_bar()
        self.search(event.value)

    def search(self, pattern: str) -> None:
        """Highlight `pattern` and jump to its first match from the top of the view."""
        self.search_pattern = pattern
        try:
            compiled = compile_search(pattern)
        except re.error as exc:
            self.notify(f"Bad regex: {exc}", severity="error")
            return
        self._search = compiled
        self.log_lines.highlight = compiled[0] if compiled else None
        self.log_lines.current_line = None
        self.log_lines.clear_cache()
        if compiled is None:
            return
        self.follow = False
        self._find(self.log_lines.top_line, backwards=False)

    def action_next_match(self) -> None:
        if self._search is None:
            self.action_search()
            return
        current = self.log_lines.current_line
        self._find(self.log_lines.top_line if current is None else current + 1, backwards=False)

    def action_previous_match(self) -> None:
        if self._search is None:
            self.action_search()
            return
        current = self.log_lines.current_line
        start = self.log_lines.bottom_line if current is None else current - 1
        self._find(start, backwards=True)

    def _find(self, start: int, backwards: bool) -> None:
        reader = self.log_lines.reader
        if reader is None or self._search is None:
            return
        self.follow = False
        self._search_worker(reader, self._search, start, backwards)

    @work(thread=True, exclusive=True, group="log-search")
    def _search_worker(
        self,
        reader: LogReader,
        search: tuple[re.Pattern[str], str, bool, bool],
        start: int,
        backwards: bool,
    ) -> None:
        worker = get_current_worker()
        _, pattern, regex, case = search

        def find(begin: int) -> int | None:
            return logsearch.search(
                reader,
                pattern,
                begin,
                backwards=backwards,
                regex=regex,
                case_sensitive=case,
                clean=strip_ansi,
                cancelled=lambda: worker.is_cancelled,
            )

        found = find(start)
        wrapped = False
        if found is None and not worker.is_cancelled:
            n = len(reader)
            restart = n - 1 if backwards else 0
            if (backwards and start < n - 1) or (not backwards and start > 0):
                found = find(restart)
                wrapped = found is not None
        if not worker.is_cancelled:
            self.post_message(_Found(worker, reader, search, found, wrapped, backwards))

    @on(_Found)
    def _show_match(self, message: _Found) -> None:
        reader, search, line = message.reader, message.search, message.line
        wrapped, backwards = message.wrapped, message.backwards
        if message.worker.is_cancelled:  # another search (or log) came meanwhile
            return
        if reader is not self.log_lines.reader or search is not self._search:
            return
        if line is None:
            self.notify(f"Not found: {search[1]}", severity="warning", timeout=3)
        else:
            if wrapped:
                where = "bottom" if backwards else "top"
                self.notify(f"Search wrapped to the {where}", timeout=2)
            self.log_lines.show_current(line)
        self.post_message(self.SearchDone(self, search[1], line))

    # ---------------------------------------------------------------- save
    def save_path(self) -> Path:
        """Where `s` writes: <save_dir>/<name>.log, numbered if it exists."""
        directory = self.save_dir.expanduser()
        stem = self.save_name or (self.path.stem if self.path is not None else "log")
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "log"
        candidate = directory / f"{stem}.log"
        for k in itertools.count(1):
            if not candidate.exists():
                return candidate
            candidate = directory / f"{stem}-{k}.log"
        raise AssertionError("unreachable")

    def action_save(self) -> None:
        reader = self.log_lines.reader
        if reader is None:
            self.notify("No log to save", severity="warning")
            return
        self._save_worker(reader, self.save_path(), self.show_timestamps)

    @work(thread=True, exclusive=True, group="log-save")
    def _save_worker(self, reader: LogReader, dest: Path, timestamps: bool) -> None:
        """Off the event loop (a big file is written); says how it went as a message."""
        try:
            count = logsearch.export(reader, dest, timestamps=timestamps, clean=strip_ansi)
        except OSError as exc:
            self.post_message(self.SaveFailed(self, dest, exc.strerror or str(exc)))
        else:
            self.post_message(self.Saved(self, dest, count))

    @on(Saved)
    def _saved(self, message: Saved) -> None:
        self.notify(f"Saved {message.log_lines:,} lines to {message.path}", title="Log saved")

    @on(SaveFailed)
    def _save_failed(self, message: SaveFailed) -> None:
        self.notify(f"Could not save {message.path}: {message.error}", severity="error")


__all__ = ["DEFAULT_SAVE_DIR", "LogLines", "LogView", "compile_search"]
