"""Target 3, the log pane at scale (the real app, headless Pilot, frames timed).

a) A finished run with 1,000,000 lines (written with the engine's LogWriter):
   from the key press that selects its job to the first frame showing its last
   line. Goal: < 1 s, and < 100 MB more resident memory. Baseline: the same for a
   1-line run.
b) While a run (a Docker container, captured by the app's own engine) writes
   20,000 lines/s and the pane follows it: `t` (timestamps on/off) pressed every
   ~150 ms; from the press to the first frame that shows the change. Goal: p95 <
   100 ms. Baseline: the same presses with nothing running.
"""

from __future__ import annotations

import argparse
import gc
import random
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import (
    PROCESSING,
    Row,
    bench_settings,
    build_image,
    emit,
    median,
    pct,
    rss_kb,
    secs,
    seed,
    tempdir,
)

SIZE = (120, 36)


def _handle(root: Path, **kw: Any) -> Any:
    from picsellia_tui.tui.app import AppEngineHandle

    return AppEngineHandle(bench_settings(root, **kw), supervise=True)


def _write_big_log(path: Path, n: int) -> None:
    from picsellia_tui.engine.executors.base import LogLine
    from picsellia_tui.storage.logfile.record import index_path
    from picsellia_tui.storage.logfile.writer import LogWriter

    path.unlink(missing_ok=True)
    index_path(path).unlink(missing_ok=True)
    pad = "x" * 86
    t0 = 1_700_000_000_000_000_000
    with LogWriter(path) as w:
        for start in range(0, n, 50_000):
            w.append(
                LogLine(t0 + i * 10_000, "stdout", f"line {i:07d} {pad}")
                for i in range(start, min(n, start + 50_000))
            )


async def open_big(root: Path, n: int) -> tuple[float, float, int]:
    """(seconds to the small run's last line, to the big run's, RSS growth kB)."""
    import anyio

    from bench.tui_common import TimedApp, settle, wait_list
    from picsellia_tui.tui.widgets.jobs import JobsPane
    from picsellia_tui.tui.widgets.log_view import LogView

    handle = _handle(root, executor="process")
    await anyio.to_thread.run_sync(handle.start)
    try:
        ref = await anyio.to_thread.run_sync(lambda: handle.call(lambda e: seed(e, root)))
        runs = []
        for _ in range(3):
            job = handle.call(lambda e: e.launch(PROCESSING, ref, {"lines": 1}))
            runs.append(handle.call(lambda e, j=job: e.wait_run(j.runs[0].id)))
        big = runs[0]
        _write_big_log(Path(big.log_path), n)
        app = TimedApp(handle, frozen_time=True)
        async with app.run_test(size=SIZE) as pilot:
            pane = app.query_one(JobsPane)
            log = app.query_one(LogView)
            await pilot.press("3")

            def showing(run: Any, last: str) -> bool:
                r = log.reader
                return (
                    pane.detail.current_run_id == run.id
                    and r is not None
                    and len(r) > 0
                    and any(last in row for row in log.log_lines.visible_text())
                )

            await settle(pilot, lambda: showing(runs[2], "line 0000000"), 30)
            await pilot.pause(0.5)
            # Baseline: the next job down, a 1-line run.
            out = app.when(lambda: showing(runs[1], "line 0000000"))
            t0 = time.perf_counter()
            await pilot.press("down")
            small = await wait_list(pilot, out, 30) - t0
            await pilot.pause(0.5)
            gc.collect()
            before = rss_kb()
            out = app.when(lambda: showing(big, f"line {n - 1:07d}"))
            t0 = time.perf_counter()
            await pilot.press("down")
            took = await wait_list(pilot, out, 60) - t0
            await pilot.pause(1.0)
            gc.collect()
            grew = rss_kb() - before
        return small, took, grew
    finally:
        await anyio.to_thread.run_sync(handle.stop)


async def key_latency(root: Path, presses: int, rate: int) -> tuple[list[float], list[float], int]:
    """Latencies (s) of `t` presses idle, then while a run writes `rate` lines/s."""
    import anyio

    from bench.tui_common import TimedApp, wait_list
    from picsellia_tui.tui.widgets.jobs import JobsPane
    from picsellia_tui.tui.widgets.log_view import LogView

    handle = _handle(root, executor="docker")
    await anyio.to_thread.run_sync(handle.start)
    ws_id = handle.engine.ws.workspace_id
    try:
        ref = await anyio.to_thread.run_sync(lambda: handle.call(lambda e: seed(e, root)))
        app = TimedApp(handle, frozen_time=True)
        async with app.run_test(size=SIZE) as pilot:
            pane = app.query_one(JobsPane)
            log = app.query_one(LogView)
            await pilot.press("3")
            rnd = random.Random(1)

            async def measure(count: int) -> list[float]:
                out_l: list[float] = []
                for _ in range(count):
                    want = not log.show_timestamps

                    def toggled(w: bool = want) -> bool:
                        return bool(log.show_timestamps == w)

                    out = app.when(toggled)
                    t0 = time.perf_counter()
                    await pilot.press("t")
                    out_l.append(await wait_list(pilot, out, 10) - t0)
                    await pilot.pause(rnd.uniform(0.1, 0.2))
                return out_l

            idle = await measure(max(5, presses // 2))
            seconds = presses * 0.35 + 15
            job = handle.call(
                lambda e: e.launch(PROCESSING, ref, {"lines": int(rate * seconds), "rate": rate})
            )
            run_id = job.runs[0].id
            # Wait until the pane follows the run and lines flow.
            deadline = time.perf_counter() + 60
            while not (
                pane.detail.current_run_id == run_id
                and log.reader is not None
                and len(log.reader) > rate
            ):
                if time.perf_counter() > deadline:
                    raise TimeoutError("the run's log did not show up")
                await pilot.pause(0.05)
            n0 = len(log.reader)
            t_start = time.perf_counter()
            busy = await measure(presses)
            elapsed = time.perf_counter() - t_start
            log.refresh_source()
            shown_rate = int((len(log.reader) - n0) / elapsed)
            from picsellia_tui.engine.errors import EngineError

            try:
                handle.call(lambda e: e.cancel(job.id))
            except EngineError:
                pass  # it has already ended
            await pilot.pause(0.5)
        return idle, busy, shown_rate
    finally:
        await anyio.to_thread.run_sync(handle.stop)
        subprocess.run(  # this workspace's containers only
            f"docker ps -aq --filter label=picsellia-tui.workspace={ws_id} | xargs -r docker rm -f",
            shell=True,
            capture_output=True,
        )


def main(quick: bool) -> list[Row]:
    import anyio

    n = 1_000_000
    with tempdir("t3a") as root:
        small, took, grew = anyio.run(open_big, root, n)
    rows = [
        Row(
            f"3a open a finished {n:,}-line run: last screen",
            f"1-line run: {secs(small)}",
            secs(took),
            took / small,
            "< 1 s",
            took < 1.0,
        ),
        Row(
            "3a ... memory added",
            "-",
            f"+{grew / 1024:.0f} MB",
            None,
            "< 100 MB",
            grew < 100 * 1024,
            f"index alone: {n * 8 / 2**20:.0f} MB",
        ),
    ]
    build_image()
    presses = 15 if quick else 40
    with tempdir("t3b") as root:
        idle, busy, rate = anyio.run(key_latency, root, presses, 20_000)
    p95, base = pct(busy, 95), pct(idle, 95)
    rows.append(
        Row(
            "3b key -> next frame, run writing 20k lines/s (p95)",
            f"idle p95: {secs(base)}",
            f"{secs(p95)} (median {secs(median(busy))})",
            p95 / base,
            "p95 < 100 ms",
            p95 < 0.1,
            f"{len(busy)} presses; the pane took in {rate:,} lines/s",
        )
    )
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    emit(main(ap.parse_args().quick))
