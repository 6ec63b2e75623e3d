"""Capturing a run's log while it runs: lines are stored as they come (secrets
masked) while the exit is awaited beside them; after the exit a silent or hung
stream is cut, and a fresh stream replays what the live one missed."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import cast

import anyio
from sqlmodel import Session

from picsellia_tui.engine.events import LogAppended, RunChanged
from picsellia_tui.engine.executors.base import Executor, LogLine
from picsellia_tui.engine.logcapture import LogSink, one_line_batches
from picsellia_tui.engine.retry import host_windows, with_host_retry
from picsellia_tui.engine.runtime import Runtime
from picsellia_tui.storage.domain import RunStatus
from picsellia_tui.storage.logfile.record import Stream
from picsellia_tui.storage.logfile.writer import LogWriter
from picsellia_tui.storage.models import Job, Run

log = logging.getLogger("picsellia_tui.engine")

DRAIN_GRACE_S = 5.0  # after the exit, a log stream silent this long is cut
REPLAY_IDLE_S = 60.0  # and its replay gets this long without a new line
LOG_GIVE_UP_S = 30.0  # after the exit, lines that cannot be stored (full disk) are dropped


async def capture_log(
    rt: Runtime,
    run_id: int,
    job: Job,
    ex: Executor,
    ref: str,
    writer: LogWriter,
    secrets: list[str],
) -> tuple[int, str | None]:
    """Store log lines as they come while waiting for the exit beside them.
    Returns the exit code, and why the log is incomplete if it is (a full disk)."""
    job_id = job.id or 0

    async def on_stall(why: str | None) -> None:
        # The run goes on (its container is the truth); the user sees why its log
        # stopped, in the run's summary, until the lines can be stored again.
        if why:
            log.warning("run %s: %s", run_id, why)
        note = f"{why} (the run goes on; its log resumes once there is room)" if why else None
        await rt.db(rt.write(lambda s: _set_summary(s, run_id, note)))
        rt.events.publish(RunChanged(run_id, job_id, RunStatus.RUNNING.value))

    sink = LogSink(
        writer,
        secrets,
        lambda n: rt.events.publish(LogAppended(run_id, job_id, n)),
        rt.limiter,
        on_stall=on_stall,
    )
    await rt.api.attach(run_id, sink)  # lines posted to the local Picsellia API

    # An executor that follows in batches (docker) resumes by lines per stream:
    # its live follow stamps lines on receipt, which a replay cannot reproduce.
    follow_batches = getattr(ex, "follow_log_batches", None)
    by_counts = follow_batches is not None

    def stream(since: int | None, skip: dict[Stream, int] | None) -> AsyncIterator[list[LogLine]]:
        if follow_batches is not None:
            return cast(
                AsyncIterator[list[LogLine]], follow_batches(ref, since_ns=since, skip=skip)
            )
        return one_line_batches(ex.follow_logs(ref, since_ns=since))

    followed_to_end = anyio.Event()
    # The container exists: a host lost from here on is waited for.
    window = host_windows(rt.settings, job.host).lost

    async def follow() -> None:
        await with_host_retry(lambda: sink.follow(stream, by_counts=by_counts), window)
        followed_to_end.set()

    flushing = anyio.CancelScope()

    async def keep_flushing() -> None:
        with flushing:
            await sink.run()

    async with anyio.create_task_group() as tg:
        tg.start_soon(keep_flushing)
        async with anyio.create_task_group() as follow_tg:
            follow_tg.start_soon(follow)
            exit_code: int = await with_host_retry(lambda: ex.wait(ref), window)
            # A stream that hangs after the exit must not hang the run; one still
            # delivering (the backlog of a flood) is not cut while it makes progress.
            await _until_set_or_idle(followed_to_end, sink, DRAIN_GRACE_S)
            follow_tg.cancel_scope.cancel()
        if not followed_to_end.is_set() and sink.stalled is None:
            # The run has exited, so a fresh stream replays the rest and ends.
            replayed = anyio.Event()

            async def replay() -> None:
                await sink.follow(stream, by_counts=by_counts)
                replayed.set()

            async with anyio.create_task_group() as replay_tg:
                replay_tg.start_soon(replay)
                await _until_set_or_idle(replayed, sink, REPLAY_IDLE_S)
                replay_tg.cancel_scope.cancel()
        flushing.cancel()
        await rt.api.detach(run_id)  # exited: its token stops; its held progress line
        # A disk that stays full must not keep a finished run open forever.
        complete = await sink.flush(give_up_after=LOG_GIVE_UP_S)
        tg.cancel_scope.cancel()
    return exit_code, None if complete else f"log incomplete: {sink.stalled}"


async def _until_set_or_idle(done: anyio.Event, sink: LogSink, idle_s: float) -> None:
    """Wait for `done`; give up once `idle_s` pass with no line received or stored
    and no batch being written (a hung stream, not a slow drain)."""
    seen = sink.progress
    while not done.is_set():
        with anyio.move_on_after(idle_s):
            await done.wait()
        if sink.progress == seen and not sink.writing:
            return
        seen = sink.progress


def _set_summary(s: Session, run_id: int, summary: str | None) -> None:
    run = s.get(Run, run_id)
    if run is not None and not RunStatus(run.status).is_final:
        run.error_summary = summary
        s.add(run)
