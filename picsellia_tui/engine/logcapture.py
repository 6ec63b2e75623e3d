"""From an executor's log stream to the run's log file, batched and resumable.

The follower never waits for the disk: batches of lines collect in a buffer that a
writer task flushes (one thread hop per batch, not per line). A full buffer pushes
back on the follower. Every (re)start of a follow first flushes, then resumes from
the writer's last stored line (by timestamp, or by lines per stream for a log
whose stamps the executor cannot reproduce), so no line is lost or doubled.
Secrets are masked batch by batch: one search over the batch finds none, in the
usual case, and only batches with a match are masked line by line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import anyio

from picsellia_tui.engine.executors.base import LogLine
from picsellia_tui.engine.logtext import mask_across, secret_masker, secret_pattern
from picsellia_tui.storage.logfile.record import Stream
from picsellia_tui.storage.logfile.writer import LogWriter

HIGH_WATER = 50_000
# Executors cut lines longer than 1 MiB into pieces, maybe in the middle of a secret:
# with secrets to mask, a line this long waits for the next line of its stream and the
# two are masked as one.
LONG_LINE = 256 * 1024


async def one_line_batches(lines: AsyncIterator[LogLine]) -> AsyncIterator[list[LogLine]]:
    """A line-by-line stream as batches (of one line: it cannot tell what is next)."""
    async for line in lines:
        yield [line]


class LogSink:
    def __init__(
        self,
        writer: LogWriter,
        secrets: list[str],
        on_stored: Callable[[int], None],
        limiter: anyio.CapacityLimiter | None = None,
        on_stall: Callable[[str | None], Awaitable[None]] | None = None,
    ) -> None:
        self.writer = writer
        self.on_stall = on_stall
        self.stalled: str | None = None  # why lines cannot be stored right now
        self._mask = secret_masker(secrets) if secrets else None
        self._secret_rx = secret_pattern(secrets) if secrets else None
        self.on_stored = on_stored
        self._limiter = limiter
        self._buf: list[LogLine] = []
        self._ready = anyio.Event()
        self._room = anyio.Event()
        self._lock = anyio.Lock()
        self.received = 0  # lines taken from streams
        self.writing = False  # a batch is being written

    @property
    def progress(self) -> int:
        """Grows while lines arrive or are stored: a stream that drains is not hung."""
        return self.received + self.writer.line_count

    async def follow(
        self,
        open_stream: Callable[[int | None, dict[Stream, int] | None], AsyncIterator[list[LogLine]]],
        *,
        by_counts: bool = False,
    ) -> None:
        """Flush what we hold, then follow from the last stored line: from its
        timestamp (`open_stream(since_ns, None)`), or, `by_counts`, from the lines
        stored per stream (`open_stream(None, counts)`: the executor replays the
        log from its start and leaves those out)."""
        await self.flush()
        if by_counts:
            since, skip = None, self.writer.resume_counts()
        else:
            since, skip = self.writer.resume(), None
        rx, mask = self._secret_rx, self._mask
        held: dict[str, LogLine] = {}  # per stream: a long piece, raw, awaiting the next
        try:
            async for batch in open_stream(since, skip):
                if rx is None or mask is None:
                    await self._put(batch)
                    continue
                if not held:
                    texts = [line.text for line in batch]
                    if max(map(len, texts), default=0) < LONG_LINE and not rx.search(
                        "\n".join(texts)
                    ):
                        await self._put(batch)  # nothing to mask: the common case
                        continue
                shown_lines: list[LogLine] = []
                for line in batch:
                    text = line.text
                    prev = held.pop(line.stream, None)
                    if prev is not None:
                        a, shown, carry = mask_across(prev.text, text, rx)
                        shown_lines.append(LogLine(prev.ts_ns, prev.stream, a))
                        text = text[carry:]
                    else:
                        shown = mask(text)
                    if len(line.text) >= LONG_LINE:
                        held[line.stream] = LogLine(line.ts_ns, line.stream, text)
                        continue
                    shown_lines.append(LogLine(line.ts_ns, line.stream, shown))
                await self._put(shown_lines)
        finally:
            for prev in held.values():  # the stream ended (or was cut) after a long line
                assert mask is not None
                self._buf.append(LogLine(prev.ts_ns, prev.stream, mask(prev.text)))
                self.received += 1
                self._ready.set()

    async def add(self, lines: list[LogLine]) -> None:
        """Lines from elsewhere than the executor's stream (what the run posts to the
        local Picsellia API): masked like the rest, stored in arrival order."""
        if self._mask is not None:
            mask = self._mask
            lines = [LogLine(line.ts_ns, line.stream, mask(line.text)) for line in lines]
        await self._put(lines)

    async def _put(self, lines: list[LogLine]) -> None:
        if not lines:
            return
        self._buf.extend(lines)
        self.received += len(lines)
        self._ready.set()
        if len(self._buf) >= HIGH_WATER:
            self._room = anyio.Event()
            await self._room.wait()

    async def run(self) -> None:
        """Flush whenever lines are waiting; run it in a task beside `follow`."""
        while True:
            await self._ready.wait()
            self._ready = anyio.Event()
            await self.flush()

    async def flush(self, give_up_after: float | None = None) -> bool:
        """Store what is buffered. A write that fails (a full disk) keeps its lines
        and is retried, the follower held back meanwhile, until it works; with
        `give_up_after`, only for that many seconds: then the lines are dropped and
        False is returned (`stalled` says why)."""
        async with self._lock:
            deadline = None if give_up_after is None else anyio.current_time() + give_up_after
            delay = 0.5
            while self._buf:
                batch, self._buf = self._buf, []
                if self.stalled is None:
                    self._room.set()  # the follower reads on while this batch is written
                self.writing = True
                stored = False
                try:
                    await anyio.to_thread.run_sync(self.writer.append, batch, limiter=self._limiter)
                    stored = True
                except OSError as exc:
                    reason = exc.strerror or str(exc)
                    await self._stall(
                        f"cannot store the log in {self.writer.path.parent}: {reason}"
                    )
                    if deadline is not None and anyio.current_time() >= deadline:
                        batch, self._buf = [], []
                        self._room.set()
                        return False
                    await anyio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                finally:
                    self.writing = False
                    if not stored:
                        self._buf = batch + self._buf  # kept for the next attempt
                if stored:
                    if self.stalled is not None:
                        await self._stall(None)
                    self._room.set()
                    self.on_stored(self.writer.line_count)
            return True

    async def _stall(self, why: str | None) -> None:
        if why == self.stalled:
            return
        self.stalled = why
        if self.on_stall is not None:
            await self.on_stall(why)
