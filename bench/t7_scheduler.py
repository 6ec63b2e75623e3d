"""Target 7, the scheduler: trivial jobs at concurrency 8: 300 by default (the
whole `./dev.sh bench` stays under 15 min on 2 cores), 100 with --quick, the
issue's 500 with `--jobs 500`.

Baseline: the same number of `docker run --rm` of the same image printing one
line, 8 at a time (a thread pool), wall time B. Figure: the engine (in this
process, warmed up) launches them all and waits until every run is final, wall
time F. Engine overhead per job = (F - B) / (jobs / 8): the extra time each job
takes in its slot. Goal: < 100 ms.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio

from bench.common import (
    PROCESSING,
    Row,
    bench_settings,
    build_image,
    docker_run_cmd,
    emit,
    secs,
    seed,
    tempdir,
)

CONCURRENCY = 8


def docker_baseline(n: int) -> float:
    cmd = docker_run_cmd(1)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(lambda _: subprocess.run(cmd, capture_output=True, check=True), range(n)))
    return time.perf_counter() - t0


async def engine_run(root: Path, n: int) -> tuple[float, dict[str, int]]:
    from picsellia_tui.engine.core import Engine

    settings = bench_settings(root, concurrency=CONCURRENCY)
    async with Engine(settings, supervise=True) as e:
        ref = await seed(e, root)
        warm = await e.launch(PROCESSING, ref, {"lines": 1})
        await e.wait_run(warm.runs[0].id)
        t0 = time.perf_counter()
        jobs = [await e.launch(PROCESSING, ref, {"lines": 1}) for _ in range(n)]
        statuses: dict[str, int] = {}
        for j in jobs:
            r = await e.wait_run(j.runs[0].id)
            statuses[r.status] = statuses.get(r.status, 0) + 1
        return time.perf_counter() - t0, statuses


def main(quick: bool, jobs: int | None = None) -> list[Row]:
    build_image()
    n = jobs or (100 if quick else 300)
    base = docker_baseline(n)
    with tempdir("t7") as root:
        took, statuses = anyio.run(engine_run, root, n)
    per_job = (took - base) / (n / CONCURRENCY)
    return [
        Row(
            f"7 {n} trivial jobs at concurrency {CONCURRENCY}",
            f"{n} x docker run --rm, 8 at a time: {secs(base)}",
            f"{secs(took)}; overhead {per_job * 1000:+.0f} ms/job",
            took / base,
            "< 100 ms/job",
            per_job < 0.1 and statuses.get("succeeded") == n,
            ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())),
        )
    ]


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--jobs", type=int)
    a = ap.parse_args()
    emit(main(a.quick, a.jobs))
