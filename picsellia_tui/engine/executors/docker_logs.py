"""Following a container's logs: timestamped lines, stdout and stderr kept apart.

docker-py's high-level `logs()` drops the stream identity, so this reads the raw
multiplexed stream (`GET /containers/{id}/logs?follow=1&timestamps=1`): frames of
`[stream(1) 0 0 0 size(4)] payload`, each payload starting with the RFC 3339 nano
timestamp the daemon stamped when it read the bytes.

Docker guarantees no whole lines: a line longer than 16 KiB arrives as several frames
(the json-file driver marks the pieces partial) and a line written in several
`write()`s may too. `LineAssembler` rejoins the pieces per stream, keeps the
timestamp of the first piece and decodes UTF-8 with errors replaced.

`follow_container_logs` runs the blocking reader in its own thread and hands lines to
async code in batches (one wake-up of the event loop per batch, never per line: while
the consumer is busy, lines pile up and the next batch takes them all). A second
thread watches the container: once it has exited, the stream gets `exit_grace_s` to
drain and is then cut, so a log stream that hangs after exit cannot hang the run. A
last non-follow read then fetches anything the daemon wrote after the follow stream
ended (Docker may close a follow stream before the final partial line is written).
"""

from __future__ import annotations

import calendar
import contextlib
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import docker.errors

from picsellia_tui.engine.executors.base import ExecutorError, LogLine, Stream
from picsellia_tui.engine.hosts import describe_error

__all__ = [
    "ChunkedDecoder",
    "ContainerMissing",
    "FrameDecoder",
    "LineAssembler",
    "LogReader",
    "abort_response",
    "follow_container_log_batches",
    "follow_container_logs",
    "format_since",
    "parse_docker_ts",
]

DEFAULT_MAX_LINE_BYTES = 1024 * 1024  # a "line" longer than this is cut into pieces
_READ_SIZE = 64 * 1024
_MAX_PENDING_LINES = 200_000  # reader waits when the consumer is this far behind
RESUME_WINDOW_NS = 5_000_000_000  # > any skew between stdout and stderr stamps


class ContainerMissing(ExecutorError):
    """The container is gone (removed, or never existed on this host)."""


# ------------------------------------------------------------------------- timestamps

_sec_cache: dict[bytes, int] = {}


def _seconds(prefix: bytes) -> int:
    """Epoch seconds for b"YYYY-MM-DDTHH:MM:SS" (UTC), cached."""
    sec = _sec_cache.get(prefix)
    if sec is None:
        sec = calendar.timegm(
            (
                int(prefix[0:4]),
                int(prefix[5:7]),
                int(prefix[8:10]),
                int(prefix[11:13]),
                int(prefix[14:16]),
                int(prefix[17:19]),
                0,
                0,
                0,
            )
        )
        if len(_sec_cache) > 4096:
            _sec_cache.clear()
        _sec_cache[prefix] = sec
    return sec


def parse_docker_ts(raw: bytes) -> int | None:
    """Nanoseconds since the epoch for an RFC 3339 (nano) timestamp, or None."""
    if len(raw) < 20 or raw[4:5] != b"-" or raw[10:11] not in (b"T", b"t"):
        return None
    try:
        if len(raw) == 30 and raw[19:20] == b"." and raw[29:30] == b"Z":  # the usual form
            return _seconds(raw[:19]) * 1_000_000_000 + int(raw[20:29])
        sec = _seconds(raw[:19])
        rest = raw[19:]
        frac = 0
        if rest[:1] == b".":
            i = 1
            while i < len(rest) and 48 <= rest[i] <= 57:
                i += 1
            frac = int(rest[1:i].ljust(9, b"0")[:9])
            rest = rest[i:]
        if rest in (b"Z", b"z"):
            offset = 0
        elif len(rest) == 6 and rest[:1] in (b"+", b"-") and rest[3:4] == b":":
            offset = int(rest[1:3]) * 3600 + int(rest[4:6]) * 60
            if rest[:1] == b"-":
                offset = -offset
        else:
            return None
        return (sec - offset) * 1_000_000_000 + frac
    except ValueError:
        return None


def format_since(since_ns: int) -> str:
    """Docker API `since`, exact to the nanosecond ("seconds.nanoseconds")."""
    sec, ns = divmod(since_ns, 1_000_000_000)
    return f"{sec}.{ns:09d}"


# ----------------------------------------------------------------------- frame parsing


class FrameDecoder:
    """Incremental decoder of Docker's multiplexed stream: (stream id, payload)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self._buf
        buf += data
        frames: list[tuple[int, bytes]] = []
        pos = 0
        n = len(buf)
        while n - pos >= 8:
            size = int.from_bytes(buf[pos + 4 : pos + 8], "big")
            end = pos + 8 + size
            if end > n:
                break
            frames.append((buf[pos], bytes(buf[pos + 8 : end])))
            pos = end
        if pos:
            del buf[:pos]
        return frames

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)


_STREAMS: dict[int, Stream] = {0: "stdout", 1: "stdout", 2: "stderr", 3: "stderr"}


class LineAssembler:
    """Rejoins pieces into lines, per stream; a line keeps its first piece's timestamp."""

    def __init__(
        self, since_ns: int | None = None, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    ) -> None:
        self._since = since_ns
        self._max = max_line_bytes
        self._parts: dict[Stream, list[bytes]] = {"stdout": [], "stderr": []}
        self._size: dict[Stream, int] = {"stdout": 0, "stderr": 0}
        self._ts: dict[Stream, int] = {"stdout": 0, "stderr": 0}

    def _emit(self, out: list[LogLine], ts: int, stream: Stream, raw: bytes) -> None:
        if self._since is not None and ts < self._since:
            return
        text = raw.decode("utf-8", "replace")
        if text.endswith("\r"):
            text = text[:-1]
        out.append(LogLine(ts, stream, text))

    def feed(self, stream: Stream, ts: int, data: bytes, out: list[LogLine]) -> None:
        parts = self._parts[stream]
        nl = data.find(b"\n")
        if nl == -1:
            if not parts:
                self._ts[stream] = ts
            parts.append(data)
            self._size[stream] += len(data)
            if self._size[stream] >= self._max:
                self._emit(out, self._ts[stream], stream, b"".join(parts))
                parts.clear()
                self._size[stream] = 0
            return
        if nl == len(data) - 1 and not parts:  # the common case: one whole line
            self._emit(out, ts, stream, data[:-1])
            return
        pieces = data.split(b"\n")
        first = pieces[0]
        if parts:
            parts.append(first)
            self._emit(out, self._ts[stream], stream, b"".join(parts))
            parts.clear()
            self._size[stream] = 0
        else:
            self._emit(out, ts, stream, first)
        for mid in pieces[1:-1]:
            self._emit(out, ts, stream, mid)
        last = pieces[-1]
        if last:
            parts.append(last)
            self._ts[stream] = ts
            self._size[stream] = len(last)

    def flush(self, out: list[LogLine]) -> None:
        """Emit unterminated lines (the stream ended)."""
        streams: tuple[Stream, Stream] = ("stdout", "stderr")
        pending = [(self._ts[s], s) for s in streams if self._parts[s]]
        for ts, stream in sorted(pending):
            self._emit(out, ts, stream, b"".join(self._parts[stream]))
            self._parts[stream].clear()
            self._size[stream] = 0


# ------------------------------------------------------------------------ blocking read


def _response_socket(res: Any) -> Any:
    raw = getattr(res, "raw", None)
    conn = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    return getattr(conn, "sock", None)


def abort_response(res: Any) -> None:
    """Unblock a thread reading `res` (unix, tcp, tls or our ssh transport)."""
    sock = _response_socket(res)
    if sock is not None:
        with contextlib.suppress(Exception):
            sock.shutdown(socket.SHUT_RDWR)
        return
    with contextlib.suppress(Exception):
        res.raw.shutdown()


class ChunkedDecoder:
    """Incremental HTTP/1.1 chunked transfer decoding (RFC 9112 7.1)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._left = 0
        self._crlf = False
        self.done = False

    def feed(self, data: bytes) -> bytes:
        buf = self._buf
        buf += data
        out = bytearray()
        pos = 0
        n = len(buf)
        while not self.done:
            if self._left:
                take = min(self._left, n - pos)
                if not take:
                    break
                out += buf[pos : pos + take]
                pos += take
                self._left -= take
                if not self._left:
                    self._crlf = True
                continue
            if self._crlf:
                if n - pos < 2:
                    break
                pos += 2
                self._crlf = False
                continue
            eol = buf.find(b"\r\n", pos)
            if eol == -1:
                break
            size = int(bytes(buf[pos:eol]).split(b";", 1)[0].strip() or b"0", 16)
            pos = eol + 2
            if size == 0:
                self.done = True
                break
            self._left = size
        del buf[:pos]
        return bytes(out)


def _body_reader(res: Any) -> Iterator[bytes] | None:
    """The response body in large reads, bypassing per-chunk decoding in http.client.

    Docker flushes every log frame as its own HTTP chunk; decoding them one by one
    through urllib3 and http.client costs more than everything else together. When
    the response is untouched, read its buffered socket file directly (up to 64 KiB
    at a time, many frames) and undo the chunked encoding here. None when the
    internals are not what we expect: the caller falls back to urllib3.
    """
    httplib = getattr(getattr(res, "raw", None), "_fp", None)
    fp = getattr(httplib, "fp", None)
    read1 = getattr(fp, "read1", None)
    if httplib is None or read1 is None:
        return None
    chunked = getattr(httplib, "chunked", None)
    if chunked is True and getattr(httplib, "chunk_left", 0) is None:

        def chunks() -> Iterator[bytes]:
            decoder = ChunkedDecoder()
            while not decoder.done:
                data = read1(_READ_SIZE)
                if not data:
                    return
                body = decoder.feed(data)
                if body:
                    yield body

        return chunks()
    if chunked is False:
        length = getattr(httplib, "length", None)

        def plain() -> Iterator[bytes]:
            left = length
            while left is None or left > 0:
                data = read1(_READ_SIZE if left is None else min(_READ_SIZE, left))
                if not data:
                    return
                if left is not None:
                    left -= len(data)
                yield data

        return plain()
    return None


class LogReader:
    """Blocking reader of one container's logs; `run` emits batches of LogLine."""

    def __init__(
        self,
        api: Any,
        container_id: str,
        since_ns: int | None = None,
        *,
        host: str = "docker",
        exit_grace_s: float = 2.0,
        poll_s: float = 1.0,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        self._api = api
        self._cid = container_id
        self._since = since_ns
        self._host = host
        self._grace = exit_grace_s
        self._poll = poll_s
        self._assembler = LineAssembler(since_ns, max_line_bytes)
        self._lock = threading.Lock()
        self._res: Any = None  # the response being read
        self._res_follows = False
        self._closed = False
        self._stop = threading.Event()
        self._watch_error: BaseException | None = None
        # Frames delivered recently, to resume a stream without losing or doubling
        # any: key (ts, stream, hash(payload)) -> how many times delivered.
        self._max_ts: int | None = None
        self._seen: dict[int, int] = {}
        self._seen_order: deque[tuple[int, int]] = deque()  # (ts, key), oldest first
        self._replay: dict[int, int] | None = None  # counts in a resumed stream
        self._replay_until = 0
        self._last_data = time.monotonic()

    # -- control, from any thread

    def close(self) -> None:
        """Stop reading (consumer gone). Safe from any thread, idempotent."""
        with self._lock:
            self._closed = True
            res = self._res
        self._stop.set()
        if res is not None:
            abort_response(res)

    # -- helpers

    def _open(self, follow: bool, since_ns: int | None) -> Any:
        params: dict[str, Any] = {
            "stdout": 1,
            "stderr": 1,
            "timestamps": 1,
            "follow": 1 if follow else 0,
            "tail": "all",
        }
        if since_ns is not None and since_ns > 0:
            params["since"] = format_since(since_ns)
        url = self._api._url("/containers/{0}/logs", self._cid)
        res = self._api._get(url, params=params, stream=True)
        try:
            self._api._raise_for_status(res)
        except Exception:
            res.close()
            raise
        if follow:  # quiet for hours is normal; the watcher handles dead hosts
            sock = _response_socket(res)
            if sock is not None:
                with contextlib.suppress(Exception):
                    sock.settimeout(None)
        return res

    def _chunks(self, res: Any) -> Iterator[bytes]:
        fast = _body_reader(res)
        if fast is not None:
            yield from fast
            return
        raw = res.raw
        read1 = getattr(raw, "read1", None)
        while True:
            if read1 is not None:
                data = read1(_READ_SIZE)
            else:  # urllib3 1.x: frame by frame
                data = raw.read(8)
                if len(data) == 8:
                    data += raw.read(int.from_bytes(data[4:8], "big"))
            if not data:
                return
            yield data

    def _running(self) -> bool | None:
        """True while running, False once exited, None when the container is gone."""
        try:
            state = self._api.inspect_container(self._cid)["State"]
        except docker.errors.NotFound:
            return None
        return bool(state.get("Running")) or bool(state.get("Restarting"))

    def _on_frame(self, stream_id: int, payload: bytes, out: list[LogLine]) -> None:
        sp = payload.find(b" ", 0, 40)
        ts = parse_docker_ts(payload[:sp]) if sp > 0 else None
        if ts is None:
            ts = time.time_ns()
            data = payload
        else:
            data = payload[sp + 1 :]
        # One int per frame, not a tuple: at 50k lines/s the window holds 250k keys.
        key = hash((ts, stream_id, data))
        seen = self._seen
        if self._replay is not None:
            if ts > self._replay_until:
                self._replay = None  # past everything delivered before: plain again
            else:
                n = self._replay.get(key, 0) + 1
                self._replay[key] = n
                if n <= seen.get(key, 0):
                    return  # delivered before the stream was reopened
        count = seen.get(key, 0)
        seen[key] = count + 1
        if not count:
            self._seen_order.append((ts, key))
        if self._max_ts is None or ts > self._max_ts:
            self._max_ts = ts
            horizon = ts - RESUME_WINDOW_NS
            order = self._seen_order
            while order and order[0][0] < horizon:
                seen.pop(order.popleft()[1], None)
        self._assembler.feed(_STREAMS.get(stream_id, "stdout"), ts, data, out)

    def _read_stream(self, res: Any, emit: Callable[[list[LogLine]], None]) -> None:
        decoder = FrameDecoder()
        try:
            for chunk in self._chunks(res):
                self._last_data = time.monotonic()
                out: list[LogLine] = []
                for stream_id, payload in decoder.feed(chunk):
                    self._on_frame(stream_id, payload, out)
                if out:
                    emit(out)
                if self._closed:
                    return
        except Exception:
            # A cut or lost stream: the caller decides (catch-up, reconnect or error).
            if self._closed:
                return
        finally:
            with contextlib.suppress(Exception):
                res.close()

    def _resume_from_last(self) -> int | None:
        """`since` for a new request; frames already delivered will be skipped.

        Docker stamps stdout and stderr in two goroutines, so the log file is not
        strictly in timestamp order across streams: resume a window earlier than
        the newest frame and skip by identity, rather than trusting `since` alone.
        """
        self._replay = {}
        # Frames stamped a window past the newest delivered one cannot have been
        # delivered: replay bookkeeping stops there, so it stays bounded.
        self._replay_until = (self._max_ts or 0) + RESUME_WINDOW_NS
        if self._max_ts is None:
            return self._since
        return max(self._since or 0, self._max_ts - RESUME_WINDOW_NS) or None

    def _watch(self) -> None:
        failures = 0
        while not self._stop.wait(self._poll):
            try:
                running = self._running()
                failures = 0
            except Exception as exc:
                failures += 1
                if failures < 3:
                    continue
                self._watch_error = exc
                running = None
                self._grace = 0.0
            if running:
                continue
            # Exited. A stream still delivering is draining, not hung: cut it only
            # after `grace` seconds without data.
            while True:
                idle = time.monotonic() - self._last_data
                if idle >= self._grace:
                    break
                if self._stop.wait(self._grace - idle):
                    return
            with self._lock:
                res = self._res if self._res_follows else None
            if res is not None:
                abort_response(res)
            # Keep watching: a follow stream opened after this (a race with the
            # exit) is cut at once, since no data came for `grace` seconds.

    # -- main loop

    def run(self, emit: Callable[[list[LogLine]], None]) -> None:
        """Read until the container has exited and every line was emitted."""
        watcher = threading.Thread(
            target=self._watch, name=f"ptui-logwatch-{self._cid[:12]}", daemon=True
        )
        try:
            since = self._since
            follow = True
            reopen_delay = 0.0
            opened = False
            while not self._closed:
                try:
                    res = self._open(follow, since)
                except docker.errors.NotFound:
                    if not opened:
                        raise ContainerMissing(
                            f"container {self._cid[:12]} is gone from {self._host}"
                        ) from None
                    break  # removed while we were reading: what we have is all
                opened = True
                with self._lock:
                    self._res, self._res_follows = res, follow
                if follow and watcher.ident is None:
                    self._last_data = time.monotonic()
                    watcher.start()
                if self._closed:  # close() raced with open: do not block
                    abort_response(res)
                self._read_stream(res, emit)
                with self._lock:
                    self._res, self._res_follows = None, False
                if self._closed or not follow:
                    break
                if self._watch_error is not None:
                    raise self._watch_error
                running = self._running()
                if running is None:
                    break
                since = self._resume_from_last()
                if running:
                    # The stream broke while the container runs: reconnect.
                    time.sleep(reopen_delay)
                    reopen_delay = min(2.0, reopen_delay * 2 or 0.05)
                    continue
                follow = False  # exited: one last non-follow read catches up
            if not self._closed:
                out: list[LogLine] = []
                self._assembler.flush(out)
                if out:
                    emit(out)
        except ExecutorError:
            raise
        except Exception as exc:
            if self._closed:
                return
            raise describe_error(exc, self._host, f"logs of {self._cid[:12]}") from None
        finally:
            self._stop.set()


# ---------------------------------------------------------------------------- async side


class _Mailbox:
    """Thread -> event loop hand-over of line batches, woken once per batch."""

    def __init__(self, token: anyio.lowlevel.EventLoopToken) -> None:
        self._token = token
        self._cond = threading.Condition()
        self._lines: list[LogLine] = []
        self._done = False
        self._error: BaseException | None = None
        self._event: anyio.Event | None = None
        self._closed = False

    def _wake(self, event: anyio.Event | None) -> None:
        if event is None:
            return
        with contextlib.suppress(Exception):
            anyio.from_thread.run_sync(event.set, token=self._token)

    def put(self, lines: list[LogLine]) -> None:
        with self._cond:
            while len(self._lines) >= _MAX_PENDING_LINES and not self._closed:
                self._cond.wait(0.5)
            if self._closed:
                return
            if self._lines:
                self._lines.extend(lines)
            else:
                self._lines = lines
            event, self._event = self._event, None
        self._wake(event)

    def finish(self, error: BaseException | None = None) -> None:
        with self._cond:
            self._done = True
            self._error = error
            event, self._event = self._event, None
        self._wake(event)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    async def get(self) -> list[LogLine] | None:
        while True:
            with self._cond:
                if self._lines:
                    batch, self._lines = self._lines, []
                    self._cond.notify_all()
                    return batch
                if self._done:
                    if self._error is not None:
                        raise self._error
                    return None
                event = self._event = anyio.Event()
            await event.wait()


async def follow_container_log_batches(
    api: Any,
    container_id: str,
    since_ns: int | None = None,
    *,
    host: str = "docker",
    exit_grace_s: float = 2.0,
    poll_s: float = 1.0,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> AsyncGenerator[list[LogLine], None]:
    """Like `follow_container_logs`, in batches (whatever arrived since the last one)."""
    mailbox = _Mailbox(anyio.lowlevel.current_token())
    reader = LogReader(
        api,
        container_id,
        since_ns,
        host=host,
        exit_grace_s=exit_grace_s,
        poll_s=poll_s,
        max_line_bytes=max_line_bytes,
    )

    def work() -> None:
        try:
            reader.run(mailbox.put)
        except BaseException as exc:
            mailbox.finish(exc)
        else:
            mailbox.finish()

    thread = threading.Thread(target=work, name=f"ptui-logs-{container_id[:12]}", daemon=True)
    thread.start()
    try:
        while True:
            batch = await mailbox.get()
            if batch is None:
                return
            yield batch
    finally:
        mailbox.close()
        reader.close()


async def follow_container_logs(
    api: Any,
    container_id: str,
    since_ns: int | None = None,
    *,
    host: str = "docker",
    exit_grace_s: float = 2.0,
    poll_s: float = 1.0,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> AsyncGenerator[LogLine, None]:
    """Lines with timestamp >= since_ns, in order, until the container has exited.

    Ends by itself after the exit (at most `poll_s + exit_grace_s` after the last byte
    if the daemon's stream hangs). Breaking out of the loop (with `aclosing`) or
    cancelling stops the reader thread. Raises ContainerMissing, HostUnreachable or
    ExecutorError.
    """
    batches = follow_container_log_batches(
        api,
        container_id,
        since_ns,
        host=host,
        exit_grace_s=exit_grace_s,
        poll_s=poll_s,
        max_line_bytes=max_line_bytes,
    )
    async with contextlib.aclosing(batches):
        async for batch in batches:
            for line in batch:
                yield line
