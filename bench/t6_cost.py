"""Target 6, idle and busy cost of the app with its engine (one real process in
a pseudo-terminal; CPU = utime + stime of all its threads, from /proc).

a) Nothing running, Jobs tab shown: CPU over 30 s (10 s with --quick) after a
   3 s settle. Goal: < 1% of a core. Baseline: the minimal Textual app.
b) 4 containers printing 10,000 lines/s each, captured by the app's engine, the
   Jobs tab following the newest: CPU over 20 s (10 s). Goal: < 1 core.
   Baseline: Docker's own client following the same 4 logs (`docker logs -f`).
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import anyio

from bench.common import (
    BENCH,
    PROCESSING,
    PYTHON,
    Row,
    bench_settings,
    build_image,
    cpu_s,
    emit,
    seed,
    tempdir,
    write_config,
)
from bench.tui_common import PtyProcess

CLI = str(Path(PYTHON).with_name("picsellia-tui"))


def stored(logs: list[str]) -> int:
    from picsellia_tui.storage.logfile.reader import LogReader

    total = 0
    for path in logs:
        with LogReader(Path(path)) as r:
            total += len(r)
    return total


def cpu_over(p: PtyProcess, seconds: float) -> float:
    c0 = cpu_s(p.pid)
    p.read_for(seconds)
    return (cpu_s(p.pid) - c0) / seconds


def main(quick: bool) -> list[Row]:
    build_image()
    idle_s = 10.0 if quick else 30.0
    busy_s = 10.0 if quick else 20.0
    rate = 10_000
    rows = []
    m = PtyProcess([PYTHON, str(BENCH / "minimal_app.py")])
    try:
        m.wait_for(b"hello bench", 60)
        m.read_for(3)
        base_idle = cpu_over(m, idle_s)
    finally:
        m.close()
    with tempdir("t6") as root:
        settings = bench_settings(root, concurrency=4)
        cfg = write_config(root, settings)

        async def prepare() -> str:
            from picsellia_tui.engine.core import Engine

            async with Engine(settings) as e:
                return await seed(e, root)

        ref = anyio.run(prepare)
        label = ""
        app = PtyProcess([CLI, "--config", str(cfg)])
        try:
            app.wait_for(b"Processings", 60)
            app.send(b"3")
            app.read_for(3)
            idle = cpu_over(app, idle_s)
            rows.append(
                Row(
                    f"6a idle app + engine, {idle_s:.0f} s",
                    f"minimal Textual app: {base_idle * 100:.2f}% of a core",
                    f"{idle * 100:.2f}% of a core",
                    idle / base_idle if base_idle else None,
                    "< 1% of a core",
                    idle < 0.01,
                )
            )
            lines = int(rate * (busy_s * 2 + 30))

            async def launch() -> tuple[list[int], list[str], str]:
                from picsellia_tui.engine.core import Engine

                # A non-supervising engine only writes the jobs; the app's runs them.
                async with Engine(settings) as e:
                    jobs = [
                        await e.launch(PROCESSING, ref, {"lines": lines, "rate": rate})
                        for _ in range(4)
                    ]
                    deadline = time.monotonic() + 60
                    while True:
                        runs = [await e.run(j.runs[0].id) for j in jobs]
                        if all(r.status == "running" for r in runs):
                            return (
                                [j.id for j in jobs],
                                [r.log_path for r in runs],
                                e.ws.workspace_id,
                            )
                        if time.monotonic() > deadline:
                            raise TimeoutError([r.status for r in runs])
                        app.read_for(0.2)

            job_ids, logs, ws_id = anyio.run(launch)
            label = f"label=picsellia-tui.workspace={ws_id}"
            app.read_for(3)
            n0 = stored(logs)
            busy = cpu_over(app, busy_s)
            per_s = (stored(logs) - n0) / busy_s
            refs = subprocess.run(
                ["docker", "ps", "-q", "--filter", label],
                capture_output=True,
                text=True,
            ).stdout.split()
            followers = [
                subprocess.Popen(
                    ["docker", "logs", "-f", "--since", "1s", "-t", c],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for c in refs[:4]
            ]
            time.sleep(2)
            c0 = sum(cpu_s(f.pid) for f in followers)
            app.read_for(busy_s)
            base_busy = (sum(cpu_s(f.pid) for f in followers) - c0) / busy_s
            for f in followers:
                f.terminate()
                f.wait()

            async def cancel() -> None:
                from picsellia_tui.engine.core import Engine

                async with Engine(settings) as e:
                    for j in job_ids:
                        await e.cancel(j)

            anyio.run(cancel)
            app.read_for(3)
        finally:
            app.close()
            if label:  # only this workspace's containers
                subprocess.run(
                    f"docker ps -aq --filter {label} | xargs -r docker rm -f",
                    shell=True,
                    capture_output=True,
                )
    rows.append(
        Row(
            f"6b 4 containers x {rate:,} lines/s, {busy_s:.0f} s",
            f"4 x `docker logs -f`: {base_busy:.2f} core",
            f"{busy:.2f} core",
            busy / base_busy if base_busy else None,
            "< 1 core",
            busy < 1.0,
            f"{len(refs)} containers; the engine stored {per_s:,.0f} lines/s of the "
            f"{4 * rate:,} written",
        )
    )
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    emit(main(ap.parse_args().quick))
