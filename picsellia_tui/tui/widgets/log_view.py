"""A virtualized, file-backed log pane for one run.

:class:`LogView` is what screens mount: a :class:`LogLines` (a ``ScrollView`` that
renders only the visible rows, reading records on demand from a
:class:`~picsellia_tui.storage.logfile.reader.LogReader`), a search bar and a small hint
line ("+N new lines"). Nothing holds the whole log in memory: the reader keeps the
offset index, the view an LRU cache of rendered lines and, when wrapping, one row
offset a line.

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
from array import array
from bisect import bisect_right
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from rich.cells import cell_len
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.timer import Timer
from textual.widgets import Input, Static
from textual.worker import Worker, get_current_worker

from picsellia_tui.engine.logtext import sanitize, strip_ansi
from picsellia_tui.storage.logfile import search as logsearch
from picsellia_tui.storage.logfile.reader import LogReader
from picsellia_tui.storage.logfile.record import LogRecord, decode_text

DEFAULT_SAVE_DIR = Path("~/picsellia-logs")
DISPLAY_CAP = 10_000  # cells shown of one line (the rest is "…"); export keeps all
_RAW_CAP = 4 * DISPLAY_CAP  # characters of a record looked at to render it
_TS_WIDTH = 13  # "HH:MM:SS.mmm "
_GUTTER = 2  # stderr marker + space
_SYNC_WRAP_LINES = 20_000  # up to this many lines, wrap heights are measured inline
FOLLOW_POLL_S = 0.25
IDLE_POLL_S = 1.0


def _ts_label(ts_ns: int) -> str:
    try:
        return datetime.fromtimestamp(ts_ns / 1e9).strftime("%H:%M:%S.%f")[:12]
    except (OverflowError, OSError, ValueError):
        return "--:--:--.---"


def _plain_cells(text: str) -> int:
    """Cells the record's text takes once sanitized (capped like the display)."""
    return min(cell_len(strip_ansi(text[:_RAW_CAP])), DISPLAY_CAP)


def measure_rows(
    reader: LogReader,
    start: int,
    stop: int | None,
    width: int,
    prefix: int,
    cancelled: Callable[[], bool] | None = None,
) -> array[int] | None:
    """Rows each line [start, stop) takes when wrapped at `width` cells after a
    `prefix`-cell gutter (character wrap, so exact). None if cancelled."""
    out = array("Q")
    width = max(1, width)
    prefix, avail = _wrap_geometry(width, prefix)
    k = avail - 1 + prefix - width  # rows = 1 + ceil((prefix + cells - width) / avail)
    for _, texts, plain in reader.text_chunks(start, stop):
        if cancelled is not None and cancelled():
            return None
        if plain and all(map(bytes.isascii, texts)):
            cells = list(map(len, texts))
            if cells and max(cells) > DISPLAY_CAP:
                cells = [min(c, DISPLAY_CAP) for c in cells]
        elif plain:
            cells = [min(cell_len(t.decode("utf-8", "replace")), DISPLAY_CAP) for t in texts]
        else:
            cells = [_plain_cells(decode_text(t)) for t in texts]
        out.extend([1 + max(0, (c + k) // avail) for c in cells])
    return out


def _wrap_geometry(width: int, prefix: int) -> tuple[int, int]:
    """(indent, cells per continuation row): continuation rows are indented by the
    gutter (and timestamp) width, unless the pane is too narrow for that."""
    if width - prefix < 10:
        prefix = 0
    return prefix, width - prefix


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


class _Measured(Message, bubble=False):
    """A background measure of a big log's row offsets is done (to its LogLines)."""

    def __init__(
        self,
        worker: Worker[None],
        reader: LogReader,
        key: tuple[int, bool],
        cum: array[int],
        top: int,
    ) -> None:
        super().__init__()
        self.worker = worker
        self.reader = reader
        self.key = key  # (width, timestamps) measured for
        self.cum = cum
        self.top = top


class _Found(Message, bubble=False):
    """A background search is done (to its LogView): `line` matched, or None."""

    def __init__(
        self,
        worker: Worker[None],
        reader: LogReader,
        search: tuple[re.Pattern[str], str, bool, bool],
        line: int | None,
        wrapped: bool,
        backwards: bool,
    ) -> None:
        super().__init__()
        self.worker = worker
        self.reader = reader
        self.search = search
        self.line = line
        self.wrapped = wrapped
        self.backwards = backwards


class LogLines(ScrollView, can_focus=True):
    """The scrolling part: renders rows of a LogReader, nothing else."""

    COMPONENT_CLASSES = {
        "log-lines--stderr",
        "log-lines--stderr-mark",
        "log-lines--timestamp",
        "log-lines--match",
        "log-lines--current",
    }

    DEFAULT_CSS = """
    LogLines {
        scrollbar-gutter: stable;
        height: 1fr;
        & > .log-lines--stderr { color: $text-error; }
        & > .log-lines--stderr-mark { color: $error; text-style: bold; }
        & > .log-lines--timestamp { color: $text-muted; }
        & > .log-lines--match { background: $warning 60%; color: $text; }
        & > .log-lines--current { background: $accent 35%; }
    }
    """

    class UserScrolledUp(Message):
        """The user scrolled towards the top (the view stops following)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.reader: LogReader | None = None
        self.wrap = False
        self.show_timestamps = False
        self.highlight: re.Pattern[str] | None = None
        self.current_line: int | None = None
        self._cache: LRUCache[int, Strip] = LRUCache(1024)
        self._max_width = 0
        # Wrap mode: _cum[i] is the first row of line i (len n + 1); None while
        # unwrapped or while a worker measures a big log.
        self._cum: array[int] | None = None
        self._wrap_key: tuple[int, bool] | None = None
        self._wrap_worker: Worker[None] | None = None
        self.wrapping = False  # a worker is measuring lines for wrap
        self._pending_top: int | None = None

    # ---------------------------------------------------------------- geometry
    @property
    def line_count(self) -> int:
        return len(self.reader) if self.reader is not None else 0

    @property
    def _content_width(self) -> int:
        return max(1, self.scrollable_content_region.width)

    @property
    def _prefix_width(self) -> int:
        return _GUTTER + (_TS_WIDTH if self.show_timestamps else 0)

    @property
    def wrapped(self) -> bool:
        """Rows are wrapped lines (row offsets ready; cleared when wrap goes off)."""
        return self._cum is not None

    def row_of_line(self, line: int) -> int:
        if self.wrapped:
            assert self._cum is not None
            return self._cum[min(line, len(self._cum) - 1)]
        return line

    def line_of_row(self, row: int) -> int:
        if self.wrapped:
            assert self._cum is not None
            return max(0, bisect_right(self._cum, row) - 1)
        return row

    @property
    def top_line(self) -> int:
        if self._pending_top is not None:  # a re-layout has not been scrolled to yet
            return self._pending_top
        return self.line_of_row(self.scroll_offset.y)

    @property
    def bottom_line(self) -> int:
        """Last line (at least partly) visible."""
        rows = self.scrollable_content_region.height
        return min(self.line_count - 1, self.line_of_row(self.scroll_offset.y + rows - 1))

    def _update_virtual_size(self) -> None:
        if self.wrapped:
            assert self._cum is not None
            self.virtual_size = Size(self._content_width, self._cum[-1])
        else:
            width = max(self._max_width, self._content_width) if not self.wrap else 0
            self.virtual_size = Size(width, self.line_count)

    # ---------------------------------------------------------------- source
    def set_reader(self, reader: LogReader | None) -> None:
        # The old reader is not closed: a worker may still be reading it (it
        # closes itself when collected).
        self.reader = reader
        self.current_line = None
        self._max_width = 0
        self._cum = None
        self._wrap_key = None
        self._pending_top = 0  # a new log opens at its top (or bottom when following)
        self.clear_cache()
        self.rebuild_wrap()
        self._update_virtual_size()
        self.refresh()

    def clear_cache(self) -> None:
        self._cache.clear()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()

    def lines_added(self, old_count: int) -> None:
        """The reader grew from `old_count` lines: extend the row map, repaint."""
        if self.wrap and self._cum is not None and self.reader is not None:
            new = len(self.reader) - old_count
            if new > _SYNC_WRAP_LINES:
                self.rebuild_wrap()
            else:
                self._extend_cum(self._cum, old_count, self._content_width)
        # The last line may be re-read (nothing changes in an append-only log, but
        # a rebuilt index can); cheap enough to drop it.
        if old_count:
            self._cache.discard(old_count - 1)
        self._update_virtual_size()
        self.refresh()

    # ---------------------------------------------------------------- wrap
    def rebuild_wrap(self) -> None:
        """(Re)measure row offsets for the current width/timestamps, keeping the
        top line in place."""
        if self._wrap_worker is not None:
            self._wrap_worker.cancel()
            self._wrap_worker = None
        self.wrapping = False
        top = self.top_line
        if not self.wrap or self.reader is None:
            self._cum = None
            self._wrap_key = None
            self._update_virtual_size()
            self._restore_top(top)
            return
        width = self._content_width
        key = (width, self.show_timestamps)
        if self._cum is not None and key == self._wrap_key:
            return
        self._wrap_key = key
        n = len(self.reader)
        if n <= _SYNC_WRAP_LINES:
            cum = array("Q", [0])
            self._extend_cum(cum, 0, width)
            self._cum = cum
            self._update_virtual_size()
            self._restore_top(top)
        else:
            self._cum = None  # shown unwrapped until the worker is done
            self.wrapping = True
            self._update_virtual_size()
            self._restore_top(top)
            self._wrap_worker = self._measure_worker(self.reader, width, self.show_timestamps, top)

    def _extend_cum(self, cum: array[int], start: int, width: int) -> None:
        assert self.reader is not None
        heights = measure_rows(self.reader, start, None, width, self._prefix_width)
        assert heights is not None
        running = itertools.accumulate(heights, initial=cum[-1])
        next(running)  # the initial value, already in cum
        cum.extend(running)

    @work(thread=True, exclusive=True, group="log-wrap")
    def _measure_worker(self, reader: LogReader, width: int, timestamps: bool, top: int) -> None:
        """Off the event loop (a big file is read); the offsets come back as a message."""
        worker = get_current_worker()
        prefix = _GUTTER + (_TS_WIDTH if timestamps else 0)
        heights = measure_rows(reader, 0, len(reader), width, prefix, lambda: worker.is_cancelled)
        if heights is None:
            return
        cum = array("Q", [0])
        cum.extend(itertools.accumulate(heights))
        if not worker.is_cancelled:
            self.post_message(_Measured(worker, reader, (width, timestamps), cum, top))

    @on(_Measured)
    def _apply_measured(self, message: _Measured) -> None:
        reader, key, cum = message.reader, message.key, message.cum
        # Cancelled (a new width, wrap off, another log) while its message was on the way.
        if message.worker is not self._wrap_worker or message.worker.is_cancelled:
            return
        if reader is not self.reader or key != self._wrap_key or not self.wrap:
            return
        self._wrap_worker = None
        self.wrapping = False
        measured = len(cum) - 1
        if measured < len(reader):
            self._extend_cum(cum, measured, key[0])
        self._cum = cum
        self._update_virtual_size()
        self._restore_top(message.top)
        self.post_message(self.WrapReady())

    class WrapReady(Message):
        """Row offsets for wrapping are ready (after a background measure)."""

    def _restore_top(self, line: int) -> None:
        """After the row map changed: keep `line` at the top (or the bottom when
        following)."""
        follow = isinstance(self.parent, LogView) and self.parent.follow
        if follow:
            self._pending_top = None
            self.scroll_to_bottom()
            self.call_after_refresh(self.scroll_to_bottom)
        else:
            self._pending_top = line
            self.scroll_to(y=self.row_of_line(line), animate=False)
            self.call_after_refresh(self._apply_pending_top)
        self.refresh()

    def _apply_pending_top(self) -> None:
        if self._pending_top is not None:
            line, self._pending_top = self._pending_top, None
            self.scroll_to(y=self.row_of_line(line), animate=False)

    def on_resize(self, event: events.Resize) -> None:
        if self.wrap:
            self.rebuild_wrap()
        self._update_virtual_size()
        # Following shows the last line whatever the height: a view made shorter
        # (a box shown above it, a smaller terminal) keeps the bottom, not the offset.
        if isinstance(self.parent, LogView) and self.parent.follow:
            self.scroll_to_bottom()
            self.call_after_refresh(self.scroll_to_bottom)

    # ---------------------------------------------------------------- scrolling
    def scroll_to_bottom(self) -> None:
        self.scroll_to(y=self.max_scroll_y, animate=False)

    def scroll_to_line(self, line: int, center: bool = True) -> None:
        """Bring `line` into view (centred when it is off screen)."""
        rows = self.scrollable_content_region.height
        row = self.row_of_line(line)
        top = self.scroll_offset.y
        if top <= row < top + rows:
            return
        target = row - rows // 3 if center else row
        self.scroll_to(y=max(0, target), animate=False)

    def _user_up(self) -> None:
        self.post_message(self.UserScrolledUp())

    def action_scroll_up(self) -> None:
        self._user_up()
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self._user_up()
        super().action_page_up()

    def action_scroll_home(self) -> None:
        self._user_up()
        super().action_scroll_home()

    def _on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._user_up()
        super()._on_mouse_scroll_up(event)

    # ---------------------------------------------------------------- rendering
    def _line_strip(self, index: int) -> Strip:
        strip = self._cache.get(index)
        if strip is not None:
            return strip
        assert self.reader is not None
        try:
            rec = self.reader.record(index)
        except (IndexError, OSError):
            rec = LogRecord(0, "stdout", "")
        base = self.rich_style
        err = rec.stream == "stderr"
        body = Text.from_ansi(
            sanitize(rec.text[:_RAW_CAP]),
            style=self.get_component_rich_style("log-lines--stderr") if err else "",
            no_wrap=True,
            end="",
        )
        if body.cell_len > DISPLAY_CAP:
            body.truncate(DISPLAY_CAP, overflow="ellipsis")
        line = Text(no_wrap=True, end="")
        mark_style = self.get_component_rich_style("log-lines--stderr-mark")
        line.append("▌ " if err else "  ", style=mark_style if err else None)
        if self.show_timestamps:
            ts_style = self.get_component_rich_style("log-lines--timestamp")
            line.append(_ts_label(rec.ts_ns) + " ", style=ts_style)
        offset = len(line)
        line.append_text(body)
        if index == self.current_line:
            line.stylize(self.get_component_rich_style("log-lines--current"))
        if self.highlight is not None:
            match_style = self.get_component_rich_style("log-lines--match")
            for m in self.highlight.finditer(body.plain):
                if m.end() > m.start():
                    line.stylize(match_style, offset + m.start(), offset + m.end())
        line.stylize_before(base)
        strip = Strip(line.render(self.app.console), line.cell_len)
        self._cache.set(index, strip)
        if not self.wrap and strip.cell_length > self._max_width:
            self._max_width = strip.cell_length
            self.call_later(self._update_virtual_size)
        return strip

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self._content_width
        style = self.rich_style
        if self.reader is None:
            return Strip.blank(width, style)
        row = scroll_y + y
        if self.wrapped:
            assert self._cum is not None
            if row >= self._cum[-1]:
                return Strip.blank(width, style)
            index = bisect_right(self._cum, row) - 1
            sub = row - self._cum[index]
            strip = self._line_strip(index)
            if sub == 0:
                return strip.crop_extend(0, width, style)
            indent, avail = _wrap_geometry(width, self._prefix_width)
            start = width + (sub - 1) * avail
            body = strip.crop_extend(start, start + avail, style)
            if not indent:
                return body
            # Continuation rows: the line's gutter cell (stderr mark), then blanks.
            return Strip.join(
                [strip.crop_extend(0, 1, style), Strip.blank(indent - 1, style), body]
            )
        if row >= self.line_count:
            return Strip.blank(width, style)
        strip = self._line_strip(row)
        if self.wrap:  # wrap requested, rows not measured yet: no horizontal scroll
            scroll_x = 0
        return strip.crop_extend(scroll_x, scroll_x + width, style)

    def visible_text(self) -> list[str]:
        """The rows on screen as plain text (tests, screen readers, debugging)."""
        return [self.render_line(y).text for y in range(self.scrollable_content_region.height)]


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
    class Saved(Message):
        """The log was written to `path` (`lines` lines)."""

        def __init__(self, view: LogView, path: Path, lines: int) -> None:
            super().__init__()
            self.view = view
            self.path = path
            self.log_lines = lines

        @property
        def control(self) -> LogView:
            return self.view

    class SaveFailed(Message):
        def __init__(self, view: LogView, path: Path, error: str) -> None:
            super().__init__()
            self.view = view
            self.path = path
            self.error = error

        @property
        def control(self) -> LogView:
            return self.view

    class FollowChanged(Message):
        def __init__(self, view: LogView, follow: bool) -> None:
            super().__init__()
            self.view = view
            self.follow = follow

        @property
        def control(self) -> LogView:
            return self.view

    class SearchDone(Message):
        """A search finished: `line` is the match shown, or None."""

        def __init__(self, view: LogView, pattern: str, line: int | None) -> None:
            super().__init__()
            self.view = view
            self.pattern = pattern
            self.line = line

        @property
        def control(self) -> LogView:
            return self.view

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
        self.log_lines.show_timestamps = show
        self.log_lines._max_width = 0
        self.log_lines.clear_cache()
        if self.wrap:
            self.log_lines.rebuild_wrap()
        self.log_lines._update_virtual_size()

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
            previous = self.log_lines.current_line
            self.log_lines.current_line = line
            self.log_lines._cache.discard(line)
            if previous is not None:
                self.log_lines._cache.discard(previous)
            self.log_lines.scroll_to_line(line)
            self.log_lines.refresh()
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
