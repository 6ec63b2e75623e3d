"""The log's formats: a record (``<ts_ns> <o|e> <escaped text>\\n``), its
encoding and decoding, the offset index, and the low-level reads and writes the
writer and the readers share (and their closing: `ClosedOnExit`). See the package
docstring for the format."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol, Self

# "api": a line the run posted through the local Picsellia API (not its output).
Stream = Literal["stdout", "stderr", "api"]
_TAGS = {"stderr": b"e", "api": b"a"}
_STREAMS: dict[bytes, Stream] = {b"o": "stdout", b"e": "stderr", b"a": "api"}

INDEX_SUFFIX = ".idx"
CHUNK = 4 * 1024 * 1024  # bytes read at a time when scanning
_BIG_ENDIAN = sys.byteorder == "big"
# Replay window on resume: wider than Docker's stdout/stderr timestamp disorder.
RESUME_WINDOW_NS = 5_000_000_000


class LineLike(Protocol):
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


def encode_text(text: str) -> bytes:
    if "\\" not in text and "\n" not in text:
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            pass
    return _ESCAPE_RX.sub(_escape_one, text).encode("utf-8")


def stream_tag(stream: str) -> bytes:
    """The one-letter tag a record stores for its stream."""
    return _TAGS.get(stream, b"o")


def encode_record(ts_ns: int, stream: str, text: str) -> bytes:
    """One data-file record, ``\\n`` included."""
    tag = stream_tag(stream)
    return b"%d %b %b\n" % (int(ts_ns), tag, encode_text(text))


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


def record_ts(line: bytes) -> int:
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


def offsets_to_bytes(offsets: array[int]) -> bytes:
    if _BIG_ENDIAN:
        offsets = array("Q", offsets)
        offsets.byteswap()
    return offsets.tobytes()


def offsets_from_bytes(data: bytes) -> array[int]:
    arr = array("Q")
    arr.frombytes(data[: len(data) - len(data) % 8])
    if _BIG_ENDIAN:
        arr.byteswap()
    return arr


def read_all(fd: int, start: int, stop: int) -> bytes:
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


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def scan_offsets(fd: int, start: int, stop: int) -> array[int]:
    """End offsets of every complete record in data[start:stop]."""
    out = array("Q")
    pos = start
    while pos < stop:
        chunk = os.pread(fd, min(CHUNK, stop - pos), pos)
        if not chunk:
            break
        i = chunk.find(b"\n")
        while i >= 0:
            out.append(pos + i + 1)
            i = chunk.find(b"\n", i + 1)
        pos += len(chunk)
    return out


def last_newline_end(fd: int, size: int) -> int:
    """Offset just after the last ``\\n`` in the first `size` bytes (0 if none)."""
    pos = size
    while pos > 0:
        start = max(0, pos - CHUNK)
        chunk = os.pread(fd, pos - start, start)
        i = chunk.rfind(b"\n")
        if i >= 0:
            return start + i + 1
        pos = start
    return 0


_C0_DELETE = bytes(range(0, 10)) + bytes(range(11, 32)) + b"\x7f"
_C1_RX = re.compile(rb"\xc2[\x80-\x9f]")


def has_controls(data: bytes) -> bool:
    """Whether raw record bytes hold a control character other than the newlines."""
    if len(data.translate(None, _C0_DELETE)) != len(data):
        return True
    return b"\xc2" in data and _C1_RX.search(data) is not None


class ClosedOnExit:
    """A holder of file descriptors that `with` closes, and so does the garbage
    collector (a reader dropped by a cancelled worker leaks nothing). Subclasses
    define `close()`, safe to call twice."""

    def close(self) -> None:
        raise NotImplementedError

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
