"""Search, export and the error tail of a run's log: what reads a whole log for
people, chunk by chunk, with a `clean` callable for the text (the engine passes
`picsellia_tui.engine.logtext.strip_ansi`; the default is `record.basic_clean`)."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from picsellia_tui.storage.logfile.reader import LogReader
from picsellia_tui.storage.logfile.record import (
    Cleaner,
    LogRecord,
    basic_clean,
    decode_record,
    format_ts,
    has_controls,
    record_ts,
)


def search(
    reader: LogReader,
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
    n = len(reader)
    if not pattern or n == 0:
        return None
    clean = clean or basic_clean
    rx = re.compile(pattern if regex else re.escape(pattern), 0 if case_sensitive else re.I)
    prefilter = None if regex else _literal_prefilter(pattern, case_sensitive)
    if backwards:
        start = min(start, n - 1)
        if start < 0:
            return None
        chunks: Iterator[tuple[int, int]] = reader.chunks_back(0, start + 1)
    else:
        start = max(0, start)
        if start >= n:
            return None
        chunks = reader.chunks(start, n)
    for a, b in chunks:
        if cancelled is not None and cancelled():
            return None
        data = reader.raw(a, b)
        if (
            prefilter is not None
            and b"\\n" not in data  # an escaped newline: clean() may join around it
            and not has_controls(data)
            and not prefilter(data)
        ):
            continue
        lines = data.split(b"\n")[:-1]
        order = range(len(lines) - 1, -1, -1) if backwards else range(len(lines))
        for k in order:
            if rx.search(clean(decode_record(lines[k]).text)):
                return a + k
    return None


def export(
    reader: LogReader,
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
    start, stop = reader.clamp(start, stop)
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
            for a, b in reader.chunks(start, stop):
                data = reader.raw(a, b)
                lines = data.split(b"\n")
                lines.pop()
                count += len(lines)
                if not has_controls(data) and b"\\" not in data:
                    # Plain chunk: the text is the bytes after "<ts> <tag> ".
                    if timestamps:
                        out = [
                            b"%b%b %b\n"
                            % (
                                stamp(record_ts(ln)),
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
