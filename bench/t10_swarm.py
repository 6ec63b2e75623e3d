"""Target 10, a small run on Docker Swarm (issue 15) against the same run on the
local Docker executor, in one engine, alternating.

One workspace, two hosts: `local` (the Docker executor: a container on this
daemon) and `cluster` (`kind = "swarm"` on the same daemon, which must be a Swarm
manager: each run is a `replicated-job` service, its files fetched from the
engine's API by the task's staging step). The same bench-lines run (N lines)
goes to each host in turn; for each:

a) `launch()` to the run's first log line stored;
b) `launch()` to the run's final status (`succeeded`, the service removed after).

The issue sets no goal: the row says what placing a run through Swarm costs
(service creation, the scheduler, the task's staging step fetching its files
over HTTP, the service log API) over a container started directly.

Medians of N repetitions, the order of the two hosts swapped every repetition.
Skipped (one row saying why) when this daemon is not a Swarm manager: the bench
never runs `docker swarm init` itself.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from bench.common import PROCESSING, Row, bench_settings, build_image, emit, median, secs, seed
from bench.common import tempdir as make_tempdir

if TYPE_CHECKING:
    from picsellia_tui.engine.core import Engine

LINES = 20


def swarm_manager() -> str | None:
    """None when this daemon can place runs on a swarm, else why not."""
    p = subprocess.run(
        ["docker", "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if p.stdout.strip() != "active true":
        return f"this daemon is not a swarm manager ({p.stdout.strip() or p.stderr.strip()})"
    return None


def bridge_gateway() -> str:
    """Where a task on this node reaches the host (the engine's API listens there)."""
    p = subprocess.run(
        [
            "docker",
            "network",
            "inspect",
            "bridge",
            "--format",
            "{{(index .IPAM.Config 0).Gateway}}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return p.stdout.strip() or "172.17.0.1"


def free_port(addr: str) -> int:
    with socket.socket() as s:
        s.bind((addr, 0))
        return int(s.getsockname()[1])


async def one_run(engine: Engine, ref: str, host: str) -> tuple[float, float, float]:
    """(launch -> first log line stored, launch -> final status, the run's own end ->
    final status) of one run on `host`. The run's end is its container's (Docker) or
    task's (Swarm's timestamp) as recorded on the run."""
    from picsellia_tui.engine.events import LogAppended

    stream = engine.subscribe()
    t0 = time.perf_counter()
    job = await engine.launch(PROCESSING, ref, {"lines": LINES}, host=host)
    run_id = job.runs[0].id
    try:
        with anyio.fail_after(120):
            while True:
                ev = await stream.receive()
                if isinstance(ev, LogAppended) and ev.run_id == run_id and ev.lines >= 1:
                    break
    except TimeoutError:
        run = await engine.run(run_id)  # pending on a busy swarm says why
        raise RuntimeError(
            f"run {run_id} on {host}: no log line in 120 s ({run.status}: {run.error_summary})"
        ) from None
    finally:
        stream.close()
    first = time.perf_counter() - t0
    final = await engine.wait_run(run_id)
    total = time.perf_counter() - t0
    seen = time.time()
    if final.status != "succeeded" or final.ended_at is None:
        raise RuntimeError(f"run {run_id} on {host} ended {final.status}: {final.error_summary}")
    return first, total, seen - final.ended_at.timestamp()


async def measure(root: Path, reps: int) -> dict[str, list[tuple[float, float, float]]]:
    from picsellia_tui.engine.core import Engine
    from picsellia_tui.engine.hostconfig import HostConfig

    gw = bridge_gateway()
    hosts = [
        HostConfig(name="local", url="local"),
        HostConfig(
            name="cluster", url="local", kind="swarm", api_url=f"http://{gw}:{free_port(gw)}"
        ),
    ]
    # Small reservations (and the same limits on both hosts): a node update re-counts
    # a swarm's reservations and rejects a running task that no longer fits (moby
    # #52652), which a shared test swarm sees.
    settings = bench_settings(
        root,
        concurrency=2,
        hosts=hosts,
        default_host="local",
        default_cpu=0.5,
        default_memory="256m",
    )
    got: dict[str, list[tuple[float, float, float]]] = {h.name: [] for h in hosts}
    async with Engine(settings, supervise=True) as e:
        ref = await seed(e, root)
        for i in range(reps + 1):  # the first round is a warm-up
            order = ("local", "cluster") if i % 2 else ("cluster", "local")
            for host in order:
                figures = await one_run(e, ref, host)
                if i:
                    got[host].append(figures)
    return got


def main(quick: bool) -> list[Row]:
    why = swarm_manager()
    if why is not None:
        return [Row("10 swarm", "-", "skipped", None, "-", None, why)]
    build_image()
    reps = 3 if quick else 7
    with make_tempdir("t10") as root:
        got = anyio.run(measure, root, reps)
    lf, lt, le = (median([r[k] for r in got["local"]]) for k in range(3))
    sf, st, se = (median([r[k] for r in got["cluster"]]) for k in range(3))
    note = (
        f"medians of {reps}, {LINES}-line bench-lines runs alternating between the two hosts "
        "of one engine; single-node swarm on the same dockerd"
    )
    end_note = (
        f"from the run's own end (container / task end time) to its final status: "
        f"{secs(se)} on Swarm, {secs(le)} on Docker"
    )
    return [
        Row(
            "10a small run on Swarm: launch -> first log line",
            f"Docker executor (local): {secs(lf)}",
            secs(sf),
            sf / lf,
            "-",
            None,
            note,
        ),
        Row(
            "10b small run on Swarm: launch -> succeeded",
            f"Docker executor (local): {secs(lt)}",
            secs(st),
            st / lt,
            "-",
            None,
            end_note,
        ),
    ]


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    emit(main(ap.parse_args().quick))
