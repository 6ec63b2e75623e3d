"""The append-only log of one run: a data file plus a fixed-width offset index.

File format
-----------
``<name>.log`` (data), one record per line, UTF-8::

    <ts_ns> <o|e|a> <escaped text>\\n

``ts_ns`` is the decimal timestamp in nanoseconds since the epoch (UTC), ``o`` is
stdout, ``e`` stderr and ``a`` a line the run posted through the local Picsellia
API (not the container's output: counted apart, so resuming a stream by lines per
stream never skips container lines for them). The text is stored as is except
for three escapes, so a record never spans two physical lines and any Python
string round-trips exactly:

- ``\\`` -> ``\\\\``
- newline -> ``\\n``
- a lone surrogate (U+D800..U+DFFF, not encodable in UTF-8) -> ``\\uXXXX``

``\\r``, NUL, escape sequences and every other character are stored raw.

``<name>.log.idx`` (index): one little-endian uint64 per complete record, the byte
offset in the data file just *after* that record's ``\\n``. Record ``i`` spans
``idx[i-1] .. idx[i]`` (``0`` for the first). The writer writes the data and then
the index, so whatever the index lists is complete in the data file; readers in
other processes only ever trust the index. Memory is O(index): 8 bytes a line.

Crash safety: opening a :class:`LogWriter` on an existing log drops a torn last
record, trims index entries that point past the data or are not on a record
boundary, and rebuilds the missing tail of the index from the data file.

This module imports nothing from ``engine`` or ``tui``. Functions that produce text
for people (:meth:`LogReader.export`, :func:`error_tail`, :meth:`LogReader.search`)
take a ``clean`` callable; pass ``picsellia_tui.engine.logtext.strip_ansi``. The
default, :func:`basic_clean`, is a conservative fallback that removes every escape
sequence and control character.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import re
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate, groupby
from operator import attrgetter
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol, Self

Stream = Literal["stdout", "stderr", "api"]
_TAGS = {"stderr": b"e", "api": b"a"}
_STREAMS: dict[bytes, Stream] = {b"o": "stdout", b"e": "stderr", b"a": "api"}

INDEX_SUFFIX = ".idx"
_CHUNK = 4 * 1024 * 1024  # bytes read at a time when scanning
_BIG_ENDIAN = sys.byteorder == "big"
# When the writer reopens a log it looks back this far (ts) for lines sharing the
# greatest timestamp: stdout and stderr may be interleaved slightly out of order.
_REOPEN_WINDOW_NS = 2_000_000_000
# Replay window on resume: wider than Docker's stdout/stderr timestamp disorder.
RESUME_WINDOW_NS = 5_000_000_000
RESUME_MAX_LINES = 200_000
_REOPEN_MAX_LINES = 10_000
_STDERR_RECORD_RX = re.compile(rb"^[0-9]+ e ", re.MULTILINE)
_API_RECORD_RX = re.compile(rb"^[0-9]+ a ", re.MULTILINE)
_TS_STREAM = attrgetter("ts_ns", "stream")
_TEXT = attrgetter("text")


class _LineLike(Protocol):
    """Anything shaped like ``engine.executors.base.LogLine``."""

    @property
    def ts_ns(self) -> int: ...
    @property
    def stream(self) -> str: ...
    @property
    def text(self) -> str: ...


@dataclass(frozen=True, slots=True)
class LogRecord:
    ts_ns: int
    stream: Stream
    text: str


Cleaner = Callable[[str], str]


# --------------------------------------------------------------------------- codec

_ESCAPE_RX = re.compile("[\\\\\n\ud800-\udfff]")
_UNESCAPE_RX = re.compile(rb"\\(\\|n|u[0-9a-f]{4})")


def _escape_one(m: re.Match[str]) -> str:
    c = m.group()
    if c == "\\":
        return "\\\\"
    if c == "\n":
        return "\\n"
    return f"\\u{ord(c):04x}"


def _encode_text(text: str) -> bytes:
    if "\\" not in text and "\n" not in text:
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            pass
    return _ESCAPE_RX.sub(_escape_one, text).encode("utf-8")


def encode_record(ts_ns: int, stream: str, text: str) -> bytes:
    """One data-file record, ``\\n`` included."""
    tag = _TAGS.get(stream, b"o")
    return b"%d %b %b\n" % (int(ts_ns), tag, _encode_text(text))


def _unescape_one(m: re.Match[bytes]) -> bytes:
    return b"\\" if m.group(1) == b"\\" else b"\n"


def _decode_text(raw: bytes) -> str:
    if b"\\" not in raw:
        return raw.decode("utf-8", "replace")
    if b"\\u" not in raw:
        return _UNESCAPE_RX.sub(_unescape_one, raw).decode("utf-8", "replace")
    # Surrogates were escaped: decode piecewise so they come back as code points.
    out: list[str] = []
    pos = 0
    for m in _UNESCAPE_RX.finditer(raw):
        out.append(raw[pos : m.start()].decode("utf-8", "replace"))
        g = m.group(1)
        out.append("\\" if g == b"\\" else "\n" if g == b"n" else chr(int(g[1:], 16)))
        pos = m.end()
    out.append(raw[pos:].decode("utf-8", "replace"))
    return "".join(out)


def decode_text(raw: bytes) -> str:
    """The text of a record from its stored (escaped) bytes. Never raises."""
    return _decode_text(raw)


def decode_record(line: bytes) -> LogRecord:
    """Parse one record (with or without its ``\\n``). Never raises."""
    if line.endswith(b"\n"):
        line = line[:-1]
    parts = line.split(b" ", 2)
    try:
        ts = int(parts[0])
        tag = parts[1]
        stream = _STREAMS[tag]
        text = _decode_text(parts[2]) if len(parts) > 2 else ""
    except (ValueError, IndexError, KeyError):
        return LogRecord(0, "stdout", line.decode("utf-8", "replace"))
    return LogRecord(ts, stream, text)


def _record_ts(line: bytes) -> int:
    try:
        return int(line[: line.index(b" ")])
    except ValueError:
        return 0


def format_ts(ts_ns: int) -> str:
    """``2024-05-01T12:00:00.123456789Z`` (UTC)."""
    sec, ns = divmod(ts_ns, 1_000_000_000)
    try:
        base = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    except (OverflowError, OSError, ValueError):
        base = "????-??-??T??:??:??"
    return f"{base}.{ns:09d}Z"


# A conservative cleaner for callers without the engine's logtext at hand: keeps
# the last carriage-return state, drops escape sequences and control characters.
_BASIC_SEQ_RX = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b[\]PX^_].*?(?:\x07|\x1b\\|$)"  # OSC / DCS / SOS / PM / APC strings
    r"|\x1b[ -/]*[0-~]"  # other escapes
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
    r"|[\x00-\x08\x0a-\x1f\x7f-\x9f]",  # remaining C0 (not tab) and C1
    re.DOTALL,
)


def basic_clean(text: str) -> str:
    if "\r" in text:
        text = text.rstrip("\r").rsplit("\r", 1)[-1]
    return _BASIC_SEQ_RX.sub("", text)


# --------------------------------------------------------------------------- index io


def index_path(path: Path) -> Path:
    return path.with_name(path.name + INDEX_SUFFIX)


def _offsets_to_bytes(offsets: array[int]) -> bytes:
    if _BIG_ENDIAN:
        offsets = array("Q", offsets)
        offsets.byteswap()
    return offsets.tobytes()


def _offsets_from_bytes(data: bytes) -> array[int]:
    arr = array("Q")
    arr.frombytes(data[: len(data) - len(data) % 8])
    if _BIG_ENDIAN:
        arr.byteswap()
    return arr


def _read_all(fd: int, start: int, stop: int) -> bytes:
    """pread [start, stop) fully (short reads happen on some filesystems)."""
    parts: list[bytes] = []
    pos = start
    while pos < stop:
        chunk = os.pread(fd, min(stop - pos, 64 * 1024 * 1024), pos)
        if not chunk:
            break
        parts.append(chunk)
        pos += len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _scan_offsets(fd: int, start: int, stop: int) -> array[int]:
    """End offsets of every complete record in data[start:stop]."""
    out = array("Q")
    pos = start
    while pos < stop:
        chunk = os.pread(fd, min(_CHUNK, stop - pos), pos)
        if not chunk:
            break
        i = chunk.find(b"\n")
        while i >= 0:
            out.append(pos + i + 1)
            i = chunk.find(b"\n", i + 1)
        pos += len(chunk)
    return out


def _last_newline_end(fd: int, size: int) -> int:
    """Offset just after the last ``\\n`` in the first `size` bytes (0 if none)."""
    pos = size
    while pos > 0:
        start = max(0, pos - _CHUNK)
        chunk = os.pread(fd, pos - start, start)
        i = chunk.rfind(b"\n")
        if i >= 0:
            return start + i + 1
        pos = start
    return 0


# --------------------------------------------------------------------------- writer


class LogWriter:
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
        good = _last_newline_end(fd, size)
        if good < size:  # torn last record
            os.ftruncate(fd, good)
            size = good
        isize = os.fstat(ifd).st_size
        offsets = _offsets_from_bytes(_read_all(ifd, 0, isize))
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
        tail = _scan_offsets(fd, covered, size)
        if n * 8 != isize or tail:
            os.ftruncate(ifd, n * 8)
            if tail:
                _write_all(ifd, _offsets_to_bytes(tail))
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
            lines = _read_all(self._fd, start, top).split(b"\n")[:-1]
            for line in reversed(lines):
                ts = _record_ts(line)
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
            data = _read_all(self._fd, start, end) + carry
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
                stop = min(self._size, start + _CHUNK)
                data = carry + _read_all(self._fd, start, stop)
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

    def append(self, lines: Iterable[_LineLike]) -> int:
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
                body = _encode_text(text)
            rec = b"%d %b %b\n" % (ts, _TAGS.get(line.stream, b"o"), body)
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

    def _append_plain(self, lines: list[_LineLike]) -> int:
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
            prefix = b"%d %b " % (ts, _TAGS.get(stream, b"o"))
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
                encoded = [_encode_text(t) for t in texts]
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
            _write_all(self._fd, data)
            if self._fsync:
                os.fsync(self._fd)
            _write_all(self._ifd, _offsets_to_bytes(offsets))
            if self._fsync:
                os.fsync(self._ifd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            with contextlib.suppress(OSError):
                os.ftruncate(self._ifd, self._count * 8)
            raise

    def sync(self) -> None:
        """fsync both files (append only flushes to the OS)."""
        os.fsync(self._fd)
        os.fsync(self._ifd)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self._fd)
            os.close(self._ifd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


# --------------------------------------------------------------------------- reader


class LogReader:
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
            self._offsets.extend(_scan_offsets(self._fd, covered, size))
        else:
            assert self._ifd is not None
            isize = os.fstat(self._ifd).st_size
            if isize < n * 8:  # the writer rebuilt the index (crash recovery)
                self._offsets = array("Q")
                n = 0
            if isize >= (n + 1) * 8:
                new = _offsets_from_bytes(_read_all(self._ifd, n * 8, isize - isize % 8))
                if n:
                    self._offsets.extend(new)
                else:
                    self._offsets = new
        return max(0, len(self._offsets) - before)

    def close(self) -> None:
        self._reset()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # -- access -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._offsets)

    @property
    def data_size(self) -> int:
        """Bytes of complete records visible."""
        return self._offsets[-1] if self._offsets else 0

    def _span(self, start: int, stop: int) -> tuple[int, int]:
        offs = self._offsets
        return (offs[start - 1] if start else 0), offs[stop - 1]

    def _raw(self, start: int, stop: int) -> bytes:
        """Raw bytes of records [start, stop) (indices already clamped, start < stop)."""
        assert self._fd is not None
        a, b = self._span(start, stop)
        return _read_all(self._fd, a, b)

    def _clamp(self, start: int, stop: int | None) -> tuple[int, int]:
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
        return decode_record(self._raw(i, i + 1))

    def records(self, start: int, stop: int | None = None) -> list[LogRecord]:
        start, stop = self._clamp(start, stop)
        if start >= stop:
            return []
        out: list[LogRecord] = []
        for chunk_start, chunk_stop in self._chunks(start, stop):
            data = self._raw(chunk_start, chunk_stop)
            out.extend(decode_record(line) for line in data.split(b"\n")[:-1])
        return out

    def _chunks(self, start: int, stop: int) -> Iterator[tuple[int, int]]:
        """Split records [start, stop) into runs of about _CHUNK bytes."""
        offs = self._offsets
        i = start
        while i < stop:
            base = offs[i - 1] if i else 0
            j = bisect.bisect_left(offs, base + _CHUNK, i, stop)
            j = min(max(j, i + 1), stop)
            yield i, j
            i = j

    def _chunks_back(self, start: int, stop: int) -> Iterator[tuple[int, int]]:
        offs = self._offsets
        j = stop
        while j > start:
            top = offs[j - 1]
            i = bisect.bisect_left(offs, top - _CHUNK, start, j)
            i = max(start, min(i, j - 1))
            yield i, j
            j = i

    def iter_from(self, i: int = 0) -> Iterator[LogRecord]:
        """Records from `i` to the end visible when each chunk is read."""
        while True:
            start, stop = self._clamp(i, None)
            if start >= stop:
                return
            chunk_stop = next(self._chunks(start, stop))[1]
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
        start, stop = self._clamp(start, stop)
        for a, b in self._chunks(start, stop):
            data = self._raw(a, b)
            lines = data.split(b"\n")
            lines.pop()
            plain = b"\\" not in data and not _has_controls(data)
            yield a, [ln[ln.find(b" ") + 3 :] for ln in lines], plain

    def tail(self, n: int) -> list[LogRecord]:
        return self.records(max(0, len(self) - n))

    # -- search -------------------------------------------------------------------
    def search(
        self,
        pattern: str,
        start: int = 0,
        backwards: bool = False,
        regex: bool = False,
        case_sensitive: bool = False,
        *,
        clean: Cleaner | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> int | None:
        """Index of the first record at or after `start` (at or before, backwards)
        whose cleaned text matches, or None. Reads the file in chunks of a few MB;
        `cancelled` is checked between chunks.

        `clean` (default :func:`basic_clean`) must leave text holding no control
        character unchanged: chunks without any are pre-filtered on their raw bytes.
        Raises ``re.error`` for an invalid regex.
        """
        n = len(self._offsets)
        if not pattern or n == 0:
            return None
        clean = clean or basic_clean
        rx = re.compile(pattern if regex else re.escape(pattern), 0 if case_sensitive else re.I)
        prefilter = None if regex else _literal_prefilter(pattern, case_sensitive)
        if backwards:
            start = min(start, n - 1)
            if start < 0:
                return None
            chunks: Iterator[tuple[int, int]] = self._chunks_back(0, start + 1)
        else:
            start = max(0, start)
            if start >= n:
                return None
            chunks = self._chunks(start, n)
        for a, b in chunks:
            if cancelled is not None and cancelled():
                return None
            data = self._raw(a, b)
            if (
                prefilter is not None
                and b"\\n" not in data  # an escaped newline: clean() may join around it
                and not _has_controls(data)
                and not prefilter(data)
            ):
                continue
            lines = data.split(b"\n")[:-1]
            order = range(len(lines) - 1, -1, -1) if backwards else range(len(lines))
            for k in order:
                if rx.search(clean(decode_record(lines[k]).text)):
                    return a + k
        return None

    # -- export -------------------------------------------------------------------
    def export(
        self,
        dest: Path | str,
        timestamps: bool = False,
        *,
        clean: Cleaner | None = None,
        start: int = 0,
        stop: int | None = None,
    ) -> int:
        """Write records as plain UTF-8 text, one a line; returns how many.

        With `timestamps`, each line is ``<ISO-8601 UTC ts> <O|E> <text>``. `clean`
        (default :func:`basic_clean`) must leave text holding no control character
        unchanged. Written to a temporary file beside `dest`, then renamed into place.
        """
        dest = Path(dest)
        clean = clean or basic_clean
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        count = 0
        start, stop = self._clamp(start, stop)
        sec_cache: dict[int, bytes] = {}

        def stamp(ts: int) -> bytes:
            sec, ns = divmod(ts, 1_000_000_000)
            base = sec_cache.get(sec)
            if base is None:
                if len(sec_cache) > 4096:
                    sec_cache.clear()
                base = sec_cache[sec] = format_ts(sec * 1_000_000_000)[:-11].encode()
            return b"%b.%09dZ " % (base, ns)

        try:
            with open(tmp, "wb") as f:
                for a, b in self._chunks(start, stop):
                    data = self._raw(a, b)
                    lines = data.split(b"\n")
                    lines.pop()
                    count += len(lines)
                    if not _has_controls(data) and b"\\" not in data:
                        # Plain chunk: the text is the bytes after "<ts> <tag> ".
                        if timestamps:
                            out = [
                                b"%b%b %b\n"
                                % (
                                    stamp(_record_ts(ln)),
                                    b"E" if _tag(ln) == b"e" else b"O",
                                    _body(ln),
                                )
                                for ln in lines
                            ]
                        else:
                            out = [_body(ln) + b"\n" for ln in lines]
                    else:
                        out = []
                        for ln in lines:
                            rec = decode_record(ln)
                            text = clean(rec.text).encode("utf-8", "replace")
                            if timestamps:
                                tag = b"E" if rec.stream == "stderr" else b"O"
                                out.append(b"%b%b %b\n" % (stamp(rec.ts_ns), tag, text))
                            else:
                                out.append(text + b"\n")
                    f.write(b"".join(out))
            os.replace(tmp, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return count


def _tag(line: bytes) -> bytes:
    i = line.find(b" ")
    return line[i + 1 : i + 2]


def _body(line: bytes) -> bytes:
    return line[line.find(b" ") + 3 :]


_UNSAFE_LITERAL_RX = re.compile("[\\\\\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_C0_DELETE = bytes(range(0, 10)) + bytes(range(11, 32)) + b"\x7f"
_C1_RX = re.compile(rb"\xc2[\x80-\x9f]")


def _has_controls(data: bytes) -> bool:
    """Whether raw record bytes hold a control character other than the newlines."""
    if len(data.translate(None, _C0_DELETE)) != len(data):
        return True
    return b"\xc2" in data and _C1_RX.search(data) is not None


def _literal_prefilter(pattern: str, case_sensitive: bool) -> Callable[[bytes], bool] | None:
    """A cheap test on a control-free chunk's raw bytes that a literal can match in it."""
    if _UNSAFE_LITERAL_RX.search(pattern):
        return None
    if case_sensitive:
        needle = pattern.encode("utf-8")
        return lambda data: needle in data
    if pattern.isascii():
        low = pattern.lower().encode("ascii")
        rx = re.compile(re.escape(pattern), re.I)

        def test(data: bytes) -> bool:
            if data.isascii():
                return low in data.lower()
            return rx.search(data.decode("utf-8", "replace")) is not None

        return test
    rx_u = re.compile(re.escape(pattern), re.I)
    return lambda data: rx_u.search(data.decode("utf-8", "replace")) is not None


# --------------------------------------------------------------------------- helpers

_TRACEBACK_RX = re.compile(r"^\s*Traceback \(most recent call last\):")


def error_tail(
    path: Path | str, n: int = 40, *, clean: Cleaner | None = None, window: int = 2000
) -> str:
    """The error summary of a failed run: the last `n` lines, sanitized.

    When the stderr of the last `window` lines holds a Python traceback, the
    summary is the stderr lines from the last traceback on (its last `n` lines).
    """
    clean = clean or basic_clean
    if n <= 0:
        return ""
    with LogReader(path) as reader:
        recs = reader.tail(window)
    chosen: list[LogRecord] = []
    err = [r for r in recs if r.stream == "stderr"]
    for i in range(len(err) - 1, -1, -1):
        if _TRACEBACK_RX.match(clean(err[i].text)):
            chosen = err[i:]
            break
    if not chosen:
        chosen = recs
    texts = [clean(r.text).rstrip() for r in chosen]
    while texts and not texts[-1]:
        texts.pop()
    return "\n".join(texts[-n:])


def wait_for_lines(reader: LogReader, timeout: float, interval: float = 0.2) -> int:
    """Poll `reader.refresh()` until new lines or `timeout`; for ``jobs logs -f``."""
    deadline = time.monotonic() + timeout
    while True:
        new = reader.refresh()
        if new or time.monotonic() >= deadline:
            return new
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
