"""Reading a run's log from any process, following its growth."""

from __future__ import annotations

import bisect
import contextlib
import os
from array import array
from collections.abc import Iterator
from pathlib import Path

from picsellia_tui.storage.logfile import record
from picsellia_tui.storage.logfile.record import (
    ClosedOnExit,
    LogRecord,
    decode_record,
    has_controls,
    index_path,
    offsets_from_bytes,
    read_all,
    scan_offsets,
)


class LogReader(ClosedOnExit):
    """Read-only view of a run's log, from any process; follows growth on refresh().

    A missing file is an empty log (it may appear later). Holds the offset index in
    memory (8 bytes a line), never the text. Safe to use from a worker thread while
    another thread reads records (reads are positional).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.index_path = index_path(self.path)
        self._fd: int | None = None
        self._ifd: int | None = None
        self._offsets: array[int] = array("Q")
        self._scanned = False  # index missing: offsets come from scanning the data
        self._ino: tuple[int, int] | None = None
        self.refresh()

    # -- following ----------------------------------------------------------------
    def _open(self) -> bool:
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return False
        if self._ifd is None:
            try:
                self._ifd = os.open(self.index_path, os.O_RDONLY)
                self._scanned = False
            except FileNotFoundError:
                self._scanned = True
        return True

    def _reset(self) -> None:
        for fd in (self._fd, self._ifd):
            if fd is not None:
                os.close(fd)
        self._fd = self._ifd = None
        self._offsets = array("Q")

    def refresh(self) -> int:
        """Pick up records appended since the last call; returns how many."""
        before = len(self._offsets)
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._fd is not None:
                self._reset()
            return 0
        ident = (st.st_dev, st.st_ino)
        if self._ino is not None and ident != self._ino:
            self._reset()  # the log was replaced: start over
            before = 0
        self._ino = ident
        if not self._open():
            return 0
        assert self._fd is not None
        n = len(self._offsets)
        if self._scanned:
            if self._ifd is None:
                with contextlib.suppress(FileNotFoundError):
                    self._ifd = os.open(self.index_path, os.O_RDONLY)
            if self._ifd is not None:  # the index appeared: use it from now on
                self._scanned = False
                self._offsets = array("Q")
                n = 0
        if self._scanned:
            covered = self._offsets[-1] if n else 0
            size = os.fstat(self._fd).st_size
            if size < covered:
                self._offsets = array("Q")
                covered = 0
            self._offsets.extend(scan_offsets(self._fd, covered, size))
        else:
            assert self._ifd is not None
            isize = os.fstat(self._ifd).st_size
            if isize < n * 8:  # the writer rebuilt the index (crash recovery)
                self._offsets = array("Q")
                n = 0
            if isize >= (n + 1) * 8:
                new = offsets_from_bytes(read_all(self._ifd, n * 8, isize - isize % 8))
                if n:
                    self._offsets.extend(new)
                else:
                    self._offsets = new
        return max(0, len(self._offsets) - before)

    def close(self) -> None:
        self._reset()

    # -- access -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._offsets)

    def _span(self, start: int, stop: int) -> tuple[int, int]:
        offs = self._offsets
        return (offs[start - 1] if start else 0), offs[stop - 1]

    def raw(self, start: int, stop: int) -> bytes:
        """Raw bytes of records [start, stop) (indices already clamped, start < stop)."""
        assert self._fd is not None
        a, b = self._span(start, stop)
        return read_all(self._fd, a, b)

    def clamp(self, start: int, stop: int | None) -> tuple[int, int]:
        n = len(self._offsets)
        if stop is None or stop > n:
            stop = n
        if stop < 0:
            stop = max(0, n + stop)
        if start < 0:
            start = max(0, n + start)
        return min(start, stop), stop

    def record(self, i: int) -> LogRecord:
        n = len(self._offsets)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return decode_record(self.raw(i, i + 1))

    def records(self, start: int, stop: int | None = None) -> list[LogRecord]:
        start, stop = self.clamp(start, stop)
        if start >= stop:
            return []
        out: list[LogRecord] = []
        for chunk_start, chunk_stop in self.chunks(start, stop):
            data = self.raw(chunk_start, chunk_stop)
            out.extend(decode_record(line) for line in data.split(b"\n")[:-1])
        return out

    def chunks(self, start: int, stop: int) -> Iterator[tuple[int, int]]:
        """Split records [start, stop) into runs of about record.CHUNK bytes."""
        offs = self._offsets
        i = start
        while i < stop:
            base = offs[i - 1] if i else 0
            j = bisect.bisect_left(offs, base + record.CHUNK, i, stop)
            j = min(max(j, i + 1), stop)
            yield i, j
            i = j

    def chunks_back(self, start: int, stop: int) -> Iterator[tuple[int, int]]:
        offs = self._offsets
        j = stop
        while j > start:
            top = offs[j - 1]
            i = bisect.bisect_left(offs, top - record.CHUNK, start, j)
            i = max(start, min(i, j - 1))
            yield i, j
            j = i

    def iter_from(self, i: int = 0) -> Iterator[LogRecord]:
        """Records from `i` to the end visible when each chunk is read."""
        while True:
            start, stop = self.clamp(i, None)
            if start >= stop:
                return
            chunk_stop = next(self.chunks(start, stop))[1]
            yield from self.records(start, chunk_stop)
            i = chunk_stop

    def text_chunks(
        self, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[int, list[bytes], bool]]:
        """Records [start, stop) a few MB at a time, as ``(first index, texts,
        plain)``; for callers that measure or scan many lines cheaply.

        Each text is the record's stored text bytes. When `plain` is true no text in
        the chunk holds an escape or a control character, so each is exactly the
        UTF-8 of the record's text; otherwise decode each with :func:`decode_text`.
        """
        start, stop = self.clamp(start, stop)
        for a, b in self.chunks(start, stop):
            data = self.raw(a, b)
            lines = data.split(b"\n")
            lines.pop()
            plain = b"\\" not in data and not has_controls(data)
            yield a, [ln[ln.find(b" ") + 3 :] for ln in lines], plain

    def tail(self, n: int) -> list[LogRecord]:
        return self.records(max(0, len(self) - n))
