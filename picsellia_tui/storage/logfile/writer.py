"""The single writer of a run's log: appends batches (data, then index), recovers
a torn log on open, and resumes a broken stream without a lost or doubled line."""

from __future__ import annotations

import bisect
import contextlib
import os
import re
from array import array
from collections import Counter
from collections.abc import Iterable
from itertools import accumulate, groupby
from operator import attrgetter
from pathlib import Path

from picsellia_tui.storage.logfile import record
from picsellia_tui.storage.logfile.record import (
    RESUME_WINDOW_NS,
    ClosedOnExit,
    LineLike,
    Stream,
    decode_record,
    encode_text,
    index_path,
    last_newline_end,
    offsets_from_bytes,
    offsets_to_bytes,
    read_all,
    record_ts,
    scan_offsets,
    stream_tag,
    write_all,
)

# When the writer reopens a log it looks back this far (ts) for lines sharing the
# greatest timestamp: stdout and stderr may be interleaved slightly out of order.
_REOPEN_WINDOW_NS = 2_000_000_000
RESUME_MAX_LINES = 200_000
_REOPEN_MAX_LINES = 10_000
_STDERR_RECORD_RX = re.compile(rb"^[0-9]+ e ", re.MULTILINE)
_API_RECORD_RX = re.compile(rb"^[0-9]+ a ", re.MULTILINE)
_TS_STREAM = attrgetter("ts_ns", "stream")
_TEXT = attrgetter("text")


class LogWriter(ClosedOnExit):
    """The single writer of one run's log (the engine supervising the run).

    ``append`` writes and flushes each batch (data, then index) so readers in other
    processes see lines live; give it batches rather than single lines when you can.

    Resume: after a restart, or after a broken log stream, call :meth:`resume` (a
    newly opened writer on a non-empty log is already in resume mode) and ask the
    executor for lines ``since_ns=writer.last_ts_ns``. Until a line newer than the
    resume point is stored, ``append`` drops lines older than ``last_ts_ns`` and, of
    the lines stamped exactly ``last_ts_ns``, as many as are already stored.
    """

    def __init__(self, path: Path | str, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.index_path = index_path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self._ifd = os.open(self.index_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError:
            os.close(self._fd)
            raise
        self._closed = False
        self._count = 0
        self._size = 0
        self._last_ts: int | None = None
        self._same_ts = 0  # stored lines stamped exactly _last_ts
        self._resume_floor = 0
        self._resume_seen: Counter[tuple[int, str, str]] | None = None
        self._stream_counts: list[int] | None = None  # [stdout, stderr, api], when known
        self._recover()
        self.resume()

    # -- recovery -----------------------------------------------------------------
    def _recover(self) -> None:
        fd, ifd = self._fd, self._ifd
        size = os.fstat(fd).st_size
        good = last_newline_end(fd, size)
        if good < size:  # torn last record
            os.ftruncate(fd, good)
            size = good
        isize = os.fstat(ifd).st_size
        offsets = offsets_from_bytes(read_all(ifd, 0, isize))
        # Drop entries that are past the data, not increasing, or not on a boundary.
        n = len(offsets)
        while n:
            off = offsets[n - 1]
            prev = offsets[n - 2] if n > 1 else 0
            if off <= prev or off > size or os.pread(fd, 1, off - 1) != b"\n":
                n -= 1
                continue
            break
        del offsets[n:]
        covered = offsets[-1] if n else 0
        tail = scan_offsets(fd, covered, size)
        if n * 8 != isize or tail:
            os.ftruncate(ifd, n * 8)
            if tail:
                write_all(ifd, offsets_to_bytes(tail))
            offsets.extend(tail)
        self._count = len(offsets)
        self._size = size
        if not offsets:
            self._stream_counts = [0, 0, 0]
        self._init_last_ts(offsets)

    def _init_last_ts(self, offsets: array[int]) -> None:
        """Greatest timestamp stored, and how many stored lines carry it.

        Looks back a little (time and lines), since stdout and stderr lines may be
        stored slightly out of timestamp order.
        """
        n = len(offsets)
        best: int | None = None
        same = 0
        hi = n
        while hi > 0 and n - hi < _REOPEN_MAX_LINES:
            top = offsets[hi - 1]
            lo = max(0, bisect.bisect_left(offsets, top - 1024 * 1024, 0, hi))
            lo = min(lo, hi - 1)
            start = offsets[lo - 1] if lo else 0
            lines = read_all(self._fd, start, top).split(b"\n")[:-1]
            for line in reversed(lines):
                ts = record_ts(line)
                if best is None or ts > best:
                    best, same = ts, 1
                elif ts == best:
                    same += 1
                elif ts < best - _REOPEN_WINDOW_NS:
                    hi = 0
                    break
            else:
                hi = lo
        self._last_ts = best
        self._same_ts = same

    # -- public -------------------------------------------------------------------
    @property
    def last_ts_ns(self) -> int | None:
        """The greatest timestamp stored (the ``since_ns`` to resume from)."""
        return self._last_ts

    @property
    def line_count(self) -> int:
        return self._count

    def resume(self) -> int | None:
        """Arm replay de-duplication; returns the ``since_ns`` to ask the executor for.

        Docker stamps stdout and stderr in separate threads, so across the two
        streams a log is not in timestamp order: resuming exactly at the last stored
        timestamp could lose a line of the other stream, or store one twice. So the
        replay starts a window earlier, and each replayed line that is already
        stored (same timestamp, stream and text) is skipped once.
        """
        if self._last_ts is None:
            return None
        floor = max(0, self._last_ts - RESUME_WINDOW_NS)
        seen: Counter[tuple[int, str, str]] = Counter()
        n = 0
        end, chunk, carry = self._size, 1 << 20, b""
        done = False
        while end > 0 and not done:
            start = max(0, end - chunk)
            data = read_all(self._fd, start, end) + carry
            lines = data.split(b"\n")
            carry = lines.pop(0) if start > 0 else b""
            for raw in reversed(lines):
                if not raw:
                    continue
                rec = decode_record(raw)
                if rec.ts_ns < floor - RESUME_WINDOW_NS or n >= RESUME_MAX_LINES:
                    done = True  # well past any out-of-order neighbour
                    break
                if rec.ts_ns >= floor:
                    seen[(rec.ts_ns, rec.stream, rec.text)] += 1
                    n += 1
            end = start
            chunk = min(chunk * 2, 64 << 20)
        if n >= RESUME_MAX_LINES and seen:
            floor = min(ts for ts, _, _ in seen)  # a narrower window, still exact
        self._resume_floor = floor
        self._resume_seen = seen
        return floor

    def stream_counts(self) -> dict[Stream, int]:
        """How many stored lines each stream has (the first call on a reopened log
        reads the data file once)."""
        if self._stream_counts is None:
            err = api = 0
            start, carry = 0, b""
            while start < self._size:
                stop = min(self._size, start + record.CHUNK)
                data = carry + read_all(self._fd, start, stop)
                cut = data.rfind(b"\n") + 1
                err += len(_STDERR_RECORD_RX.findall(data, 0, cut))
                api += len(_API_RECORD_RX.findall(data, 0, cut))
                carry = data[cut:]
                start = stop
            self._stream_counts = [self._count - err - api, err, api]
        c = self._stream_counts
        return {"stdout": c[0], "stderr": c[1], "api": c[2]}

    def resume_counts(self) -> dict[Stream, int]:
        """Resume by line counts, for an executor that replays a log from its start
        (stamps of the replay may differ from those stored): disarms the timestamp
        de-duplication of :meth:`resume`; returns the lines stored per stream."""
        self._resume_seen = None
        self._resume_floor = 0
        return self.stream_counts()

    def append(self, lines: Iterable[LineLike]) -> int:
        """Store `lines` (after resume de-duplication); returns how many were stored."""
        if self._closed:
            raise ValueError("LogWriter is closed")
        if self._resume_seen is None:
            return self._append_plain(lines if isinstance(lines, list) else list(lines))
        parts: list[bytes] = []
        offsets = array("Q")
        pos = self._size
        last, same = self._last_ts, self._same_ts
        # Replay de-duplication works on a copy, kept only if the batch is stored: a
        # batch that fails (a full disk) can be appended again as it was.
        seen: Counter[tuple[int, str, str]] | None = Counter(self._resume_seen)
        for line in lines:
            ts = line.ts_ns
            if seen is not None:
                if ts < self._resume_floor:
                    continue
                key = (ts, line.stream, line.text)
                count = seen.get(key, 0)
                if count:
                    if count == 1:
                        del seen[key]
                    else:
                        seen[key] = count - 1
                    if not seen:
                        seen = None
                    continue
                if last is not None and ts > last + RESUME_WINDOW_NS:
                    seen = None  # well past the replay: plain appends again
            text = line.text
            body = None
            if "\\" not in text and "\n" not in text:
                try:
                    body = text.encode("utf-8")
                except UnicodeEncodeError:
                    pass
            if body is None:
                body = encode_text(text)
            rec = b"%d %b %b\n" % (ts, stream_tag(line.stream), body)
            parts.append(rec)
            pos += len(rec)
            offsets.append(pos)
            if last is None or ts > last:
                last, same = ts, 1
            elif ts == last:
                same += 1
        if not parts:
            self._resume_seen = seen
            return 0
        self._write_batch(b"".join(parts), offsets)
        self._resume_seen = seen
        self._size = pos
        self._count += len(parts)
        self._last_ts, self._same_ts = last, same
        if self._stream_counts is not None:
            tags = [rec[rec.index(b" ") + 1 : rec.index(b" ") + 2] for rec in parts]
            err, api = tags.count(b"e"), tags.count(b"a")
            self._stream_counts[0] += len(parts) - err - api
            self._stream_counts[1] += err
            self._stream_counts[2] += api
        return len(parts)

    def _append_plain(self, lines: list[LineLike]) -> int:
        """`append` without replay de-duplication: lines sharing a stamp and a
        stream (a chunk read at once) are encoded together."""
        if not lines:
            return 0
        chunks: list[bytes] = []
        offsets = array("Q")
        pos = self._size
        last, same = self._last_ts, self._same_ts
        err = api = 0
        for (ts, stream), group in groupby(lines, _TS_STREAM):
            texts = list(map(_TEXT, group))
            n = len(texts)
            if stream == "stderr":
                err += n
            elif stream == "api":
                api += n
            prefix = b"%d %b " % (ts, stream_tag(stream))
            plen = len(prefix) + 1
            joined = "\n".join(texts)
            body: bytes | None = None
            if "\\" not in joined and joined.count("\n") == n - 1:
                try:
                    body = joined.encode("utf-8")
                except UnicodeEncodeError:
                    pass
            if body is not None:
                chunks.append(prefix + body.replace(b"\n", b"\n" + prefix) + b"\n")
                sizes = map(len, texts) if len(body) == len(joined) else map(len, body.split(b"\n"))
            else:
                encoded = [encode_text(t) for t in texts]
                chunks.append(prefix + (b"\n" + prefix).join(encoded) + b"\n")
                sizes = map(len, encoded)
            # each record also holds its prefix and newline
            ends = accumulate(map(plen.__add__, sizes), initial=pos)
            next(ends)
            offsets.extend(ends)
            pos = offsets[-1]
            if last is None or ts > last:
                last, same = ts, n
            elif ts == last:
                same += n
        self._write_batch(b"".join(chunks), offsets)
        self._size = pos
        self._count += len(offsets)
        self._last_ts, self._same_ts = last, same
        if self._stream_counts is not None:
            self._stream_counts[0] += len(offsets) - err - api
            self._stream_counts[1] += err
            self._stream_counts[2] += api
        return len(offsets)

    def _write_batch(self, data: bytes, offsets: array[int]) -> None:
        """Append records and their index entries. Nothing of a failed batch stays
        behind (ENOSPC after half a record): both files end on a record boundary,
        ready for the same batch again."""
        try:
            write_all(self._fd, data)
            if self._fsync:
                os.fsync(self._fd)
            write_all(self._ifd, offsets_to_bytes(offsets))
            if self._fsync:
                os.fsync(self._ifd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            with contextlib.suppress(OSError):
                os.ftruncate(self._ifd, self._count * 8)
            raise

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self._fd)
            os.close(self._ifd)
