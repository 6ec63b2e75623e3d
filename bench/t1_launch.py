"""Target 1, launch overhead (Docker).

a) Engine already running (in this process, warmed up by one run): `launch()` to
   the run's first log line stored, against `docker run --rm` of the same image
   printing the same line (time to its first stdout line). Goal: within 1.3x.
b) `picsellia-tui launch bench-lines bench/v1 -p lines=1 --wait` end to end (a
   new process: imports, run, outputs, exit) against `docker run --rm` of the
   same image to its exit, with `picsellia-tui engine serve` running on the
   workspace (the command hands its launch to it). Goal: within 2x.
c) The same command with no engine serving the workspace: it starts the
   background engine (engine/autostart.py), which is stopped after each
   repetition so that every one pays its start. Goal: within 4x.

Medians of N alternating repetitions.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import anyio

from bench.common import (
    PROCESSING,
    PYTHON,
    Row,
    bench_settings,
    build_image,
    docker_run_cmd,
    emit,
    median,
    secs,
    seed,
    tempdir,
    time_first_line,
    write_config,
)


async def engine_first_lines(root: Path, reps: int) -> tuple[list[float], list[float]]:
    """(launch -> first line stored, docker run -> first line) pairs, alternating."""
    from picsellia_tui.engine.core import Engine
    from picsellia_tui.engine.events import LogAppended

    ours: list[float] = []
    theirs: list[float] = []
    settings = bench_settings(root, concurrency=4)
    async with Engine(settings, supervise=True) as e:
        ref = await seed(e, root)
        for i in range(reps + 1):  # the first is a warm-up
            stream = e.subscribe()
            t0 = time.perf_counter()
            job = await e.launch(PROCESSING, ref, {"lines": 1})
            run_id = job.runs[0].id
            with anyio.fail_after(60):
                while True:
                    ev = await stream.receive()
                    if isinstance(ev, LogAppended) and ev.run_id == run_id and ev.lines >= 1:
                        break
            first = time.perf_counter() - t0
            stream.close()
            final = await e.wait_run(run_id)
            assert final.status == "succeeded", final.error_summary
            b, _ = await anyio.to_thread.run_sync(time_first_line, docker_run_cmd(1))
            if i:
                ours.append(first)
                theirs.append(b)
    return ours, theirs


def stop_background_engines(root: Path) -> None:
    """SIGTERM the workspace's background engines and wait until they are gone."""
    import os
    import re
    import signal

    log = root / "data" / "engine.log"
    if not log.exists():
        return
    pids = {int(p) for p in re.findall(r"engine [^:\s]+:(\d+):\w+ serving", log.read_text())}
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        for _ in range(600):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break
            except OSError:
                break
            time.sleep(0.05)


def cli_wait(root: Path, reps: int, serve: bool) -> tuple[list[float], list[float]]:
    settings = bench_settings(root)
    cfg = write_config(root, settings)
    cli = [str(Path(PYTHON).parent / "picsellia-tui"), "--config", str(cfg)]
    server = None
    if serve:
        server = subprocess.Popen(
            [*cli, "engine", "serve"], stderr=subprocess.PIPE, text=True, bufsize=1
        )
        assert server.stderr is not None
        line = server.stderr.readline()
        if "commands hand it their launches" not in line:
            server.kill()
            raise RuntimeError(f"engine serve did not start its socket: {line.strip()}")
    ours: list[float] = []
    theirs: list[float] = []
    try:
        for i in range(reps + 1):
            t0 = time.perf_counter()
            p = subprocess.run(
                [*cli, "launch", PROCESSING, "bench/v1", "-p", "lines=1", "--wait"],
                capture_output=True,
                text=True,
            )
            ours_t = time.perf_counter() - t0
            if p.returncode != 0:
                raise RuntimeError(f"launch --wait exited {p.returncode}: {p.stderr.strip()}")
            if not serve:
                stop_background_engines(root)  # the next one starts its own again
            _, theirs_t = time_first_line(docker_run_cmd(1))
            if i:
                ours.append(ours_t)
                theirs.append(theirs_t)
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
    return ours, theirs


def main(quick: bool) -> list[Row]:
    build_image()
    reps = 3 if quick else 7
    with tempdir("t1") as root:
        ours, theirs = anyio.run(engine_first_lines, root, reps)
        a, b = median(ours), median(theirs)
        rows = [
            Row(
                "1a launch -> first log line (engine running)",
                f"docker run --rm: {secs(b)}",
                secs(a),
                a / b,
                "<= 1.3x",
                a / b <= 1.3,
                f"medians of {reps}",
            )
        ]
        alone, theirs_alone = cli_wait(root, reps, serve=False)
        c = median(alone) / median(theirs_alone)
        stop_background_engines(root)
        ours, theirs = cli_wait(root, reps, serve=True)
        a, b = median(ours), median(theirs)
        rows.append(
            Row(
                "1b `launch --wait` end to end (engine serve running)",
                f"docker run --rm: {secs(b)}",
                secs(a),
                a / b,
                "<= 2x",
                a / b <= 2.0,
                f"medians of {reps}",
            )
        )
        rows.append(
            Row(
                "1c `launch --wait`, no engine serving (background engine start included)",
                f"docker run --rm: {secs(median(theirs_alone))}",
                secs(median(alone)),
                c,
                "<= 4x",
                c <= 4.0,
                f"medians of {reps}; the engine is stopped after each run",
            )
        )
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    emit(main(ap.parse_args().quick))
