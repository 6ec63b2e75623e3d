"""The scrolling part of the log pane (tui/widgets/log_view.py): a ``ScrollView``
that renders only the visible rows of a run's log, reading records on demand from a
:class:`~picsellia_tui.storage.logfile.reader.LogReader` and keeping an LRU cache of
rendered lines and, when wrapping, one row offset a line (measured in a thread
worker for a big log, the offsets coming back as a message)."""

from __future__ import annotations

import itertools
import re
from array import array
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from rich.cells import cell_len
from rich.text import Text
from textual import events, on, work
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import Worker, get_current_worker

from picsellia_tui.engine.logtext import sanitize, strip_ansi
from picsellia_tui.storage.logfile.reader import LogReader
from picsellia_tui.storage.logfile.record import LogRecord, decode_text

DISPLAY_CAP = 10_000  # cells shown of one line (the rest is "…"); export keeps all
_RAW_CAP = 4 * DISPLAY_CAP  # characters of a record looked at to render it
_TS_WIDTH = 13  # "HH:MM:SS.mmm "
_GUTTER = 2  # stderr marker + space
_SYNC_WRAP_LINES = 20_000  # up to this many lines, wrap heights are measured inline


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


@dataclass
class _Measured(Message, bubble=False):
    """A background measure of a big log's row offsets is done (to its LogLines)."""

    worker: Worker[None]
    reader: LogReader
    key: tuple[int, bool]  # (width, timestamps) measured for
    cum: array[int]
    top: int


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
        # Set by the LogView around it: following keeps the last line in view.
        self.follow = False
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

    def set_timestamps(self, show: bool) -> None:
        self.show_timestamps = show
        self._max_width = 0
        self.clear_cache()
        if self.wrap:
            self.rebuild_wrap()
        self._update_virtual_size()

    def show_current(self, line: int) -> None:
        """Mark `line` as the current match and bring it into view."""
        previous, self.current_line = self.current_line, line
        self._cache.discard(line)
        if previous is not None:
            self._cache.discard(previous)
        self.scroll_to_line(line)
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
        if self.follow:
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
        if self.follow:
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


__all__ = ["DISPLAY_CAP", "LogLines", "measure_rows"]
