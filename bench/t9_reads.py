"""Target 9, read commands that answer at once (issue 12).

Each read command (`jobs list`, `jobs show N`, `jobs logs N`, `models list`,
`models show M/V`, `processings list`, `processings show P`) as a user runs it,
the console script in a fresh process, on a workspace of 100,000 jobs / 300,000
runs (20,000 / 60,000 with --quick; filled as target 4 fills it) with no engine
serving it: the light read path answers. Wall time against `python -c pass`
(medians of N). Goal: python start-up + 150 ms at most, and none of sqlalchemy,
sqlmodel, pydantic, docker, textual imported (python -X importtime).
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

from bench.common import PYTHON, Row, emit, median, tempdir, write_config
from bench.t4_history import populate

CLI = str(Path(PYTHON).with_name("picsellia-tui"))
HEAVY = ("sqlalchemy", "sqlmodel", "pydantic", "docker", "textual")


def wall(cmd: list[str], reps: int) -> tuple[float, str]:
    """Median wall time of `cmd` (after one warm-up) and its last output."""
    times = []
    out = ""
    for _ in range(reps + 1):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - t0)
        out = p.stdout
    return median(times[1:]), out


def heavy_imports(cmd: list[str]) -> list[str]:
    code = f"import sys; sys.argv = {['picsellia-tui', *cmd]!r}; "
    code += "from picsellia_tui.entry import main; main()"
    p = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    found = set()
    for line in p.stderr.splitlines():
        top = line.rsplit("|", 1)[-1].strip().split(".")[0]
        if top in HEAVY:
            found.add(top)
    return sorted(found)


def main(quick: bool) -> list[Row]:
    jobs = 20_000 if quick else 100_000
    reps = 5 if quick else 11
    with tempdir("t8-reads") as root:
        t = time.perf_counter()
        settings = populate(root, jobs)
        fill = time.perf_counter() - t
        cfg = ["--config", str(write_config(root, settings))]
        middle = jobs // 2
        commands = [
            ["jobs", "list"],
            ["jobs", "list", "--status", "failed", "--page", "3"],
            ["jobs", "show", str(middle)],
            ["jobs", "logs", "1"],
            ["models", "list"],
            ["models", "show", "bench/v1"],
            ["processings", "list"],
            ["processings", "show", "bench-lines"],
            ["jobs", "show", str(middle), "--json"],
        ]
        base, _ = wall([PYTHON, "-c", "pass"], reps)
        rows = []
        for args in commands:
            took, out = wall([CLI, *cfg, *args], reps)
            heavy = heavy_imports([*cfg, *args])
            extra = took - base
            rows.append(
                Row(
                    f"9 `{' '.join(args)}`, {jobs:,} jobs / {3 * jobs:,} runs, no engine",
                    f"python -c pass: {base * 1000:.0f} ms",
                    f"{took * 1000:.0f} ms (+{extra * 1000:.0f} ms)",
                    took / base,
                    "<= python + 150 ms, nothing heavy imported",
                    extra <= 0.15 and not heavy,
                    f"{len(out.splitlines())} lines out; imports: "
                    f"{', '.join(heavy) or 'none of ' + '/'.join(HEAVY)}; medians of {reps}"
                    + (f"; filled in {fill:.0f} s" if args == commands[0] else ""),
                )
            )
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    emit(main(ap.parse_args().quick))
