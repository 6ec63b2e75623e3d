"""Target 2, log throughput (Docker).

A container printing N lines of 100 bytes (1,000,000; 200,000 with --quick):
the run reaches `succeeded` with every line stored, against `docker run --rm` of
the same image with its output sent to /dev/null (goal: within 1.2x); the
engine's resident memory (this process: the engine runs here, already warmed up)
grows by less than 50 MB meanwhile (peak RSS sampled every 50 ms).

Also printed, to show what bounds the figure: `docker logs -t` of the finished
container (Docker's own client reading the same log through the same API).
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import anyio

from bench.common import (
    IMAGE,
    PROCESSING,
    PeakRss,
    Row,
    bench_settings,
    build_image,
    cpu_s,
    docker_run_cmd,
    emit,
    rss_kb,
    secs,
    seed,
    tempdir,
    time_cmd,
)


async def engine_run(root: Path, n: int) -> tuple[float, int, int, int, float, str]:
    from picsellia_tui.engine.core import Engine
    from picsellia_tui.storage.logfile.reader import LogReader

    settings = bench_settings(root)
    async with Engine(settings, supervise=True) as e:
        ref = await seed(e, root)
        warm = await e.launch(PROCESSING, ref, {"lines": 1000})  # warm-up
        await e.wait_run(warm.runs[0].id)
        before = rss_kb()
        c0 = cpu_s()
        with PeakRss() as peak:
            t0 = time.perf_counter()
            job = await e.launch(PROCESSING, ref, {"lines": n})
            run = await e.wait_run(job.runs[0].id)
            took = time.perf_counter() - t0
        cpu = cpu_s() - c0
        with LogReader(Path(run.log_path)) as reader:
            stored = len(reader)
        return took, stored, before, peak.peak - before, cpu, run.status


def docker_logs_time(n: int) -> float:
    cid = subprocess.check_output(
        ["docker", "run", "-d", "--log-opt", "max-size=1g", IMAGE, "python", "main.py", str(n)],
        text=True,
    ).strip()
    try:
        subprocess.run(["docker", "wait", cid], check=True, capture_output=True)
        return time_cmd(
            ["docker", "logs", "-t", cid], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


def main(quick: bool) -> list[Row]:
    build_image()
    n = 200_000 if quick else 1_000_000
    base = time_cmd(docker_run_cmd(n), stdout=subprocess.DEVNULL)
    with tempdir("t2") as root:
        took, stored, before, grew_kb, cpu, status = anyio.run(engine_run, root, n)
    base2 = time_cmd(docker_run_cmd(n), stdout=subprocess.DEVNULL)
    base = min(base, base2)
    logs = docker_logs_time(n)
    ok = status == "succeeded" and stored == n
    return [
        Row(
            f"2a {n:,} lines stored, run succeeded",
            f"docker run >/dev/null: {secs(base)}",
            f"{secs(took)} ({stored:,} lines, {status})",
            took / base,
            "<= 1.2x, all lines",
            ok and took / base <= 1.2,
            f"engine CPU {cpu:.1f} s; `docker logs -t` of the same log alone: {secs(logs)} "
            f"({logs / base:.1f}x)",
        ),
        Row(
            "2b engine RSS growth during 2a",
            f"RSS of the warm engine: {before / 1024:.0f} MB",
            f"+{grew_kb / 1024:.0f} MB",
            None,
            "< 50 MB",
            grew_kb < 50 * 1024,
        ),
    ]


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    emit(main(ap.parse_args().quick))
