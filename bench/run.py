"""Run the benchmarks and print one table.

    ./dev.sh bench                 # every target (about 15 min on 2 cores)
    ./dev.sh bench --quick         # smaller sizes, fewer repetitions (about 5 min)
    ./dev.sh bench launch logs     # some targets, by name or number

Each target runs in a fresh Python process (its imports, memory and CPU are its
own). Targets needing Docker are skipped when no daemon answers. `--md` prints
the table as Markdown (for docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

from bench.common import PYTHON, ROOT, Row, docker_ok

TARGETS = {
    "launch": ("1", "bench.t1_launch", True),
    "logs": ("2", "bench.t2_logs", True),
    "logpane": ("3", "bench.t3_logpane", True),
    "history": ("4", "bench.t4_history", False),
    "startup": ("5", "bench.t5_startup", False),
    "cost": ("6", "bench.t6_cost", True),
    "scheduler": ("7", "bench.t7_scheduler", True),
    "picsellia-api": ("8", "bench.t8_picsellia_api", True),
    "reads": ("9", "bench.t9_reads", False),
    "swarm": ("10", "bench.t10_swarm", True),
}


def machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) / 2**20
    except OSError:
        mem = 0
    try:
        dv = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        dv = "none"
    load = os.getloadavg()[0]
    return (
        f"nproc {os.cpu_count()}, {cpu}, {mem:.0f} GiB, docker {dv or 'none'}, "
        f"Python {platform.python_version()}, load average {load:.1f} at start"
    )


def run_target(module: str, quick: bool) -> tuple[list[Row], str]:
    cmd = [PYTHON, "-m", module] + (["--quick"] if quick else [])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    rows: list[Row] = []
    extra = []
    for line in p.stdout.splitlines():
        if line.startswith("BENCH-ROWS "):
            rows = [Row(**r) for r in json.loads(line[len("BENCH-ROWS ") :])]
        else:
            extra.append(line)
    if p.returncode != 0 or not rows:
        tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
        rows = [Row(module, "-", "error", None, "-", False, tail[:200])]
    return rows, "\n".join(extra)


def fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def fmt_met(m: bool | None) -> str:
    return "-" if m is None else ("yes" if m else "NO")


def table(rows: list[Row], md: bool) -> str:
    head = ["target", "baseline", "figure", "ratio", "goal", "met?"]
    data = [
        [r.target, r.baseline, r.figure, fmt_ratio(r.ratio), r.goal, fmt_met(r.met)] for r in rows
    ]
    if md:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in data]
        notes = [f"- {r.target}: {r.note}" for r in rows if r.note]
        return "\n".join(out + (["", *notes] if notes else []))
    widths = [max(len(h), *(len(row[i]) for row in data)) for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False))

    out = [line(head), line(["-" * w for w in widths])] + [line(row) for row in data]
    notes = [f"  {r.target}: {r.note}" for r in rows if r.note]
    return "\n".join(out + (["", "notes:", *notes] if notes else []))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("targets", nargs="*", help=f"names or numbers: {', '.join(TARGETS)}")
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions")
    ap.add_argument("--md", action="store_true", help="print the table as Markdown")
    args = ap.parse_args()
    chosen = []
    for want in args.targets or list(TARGETS):
        match = [k for k, (num, _, _) in TARGETS.items() if want in (k, num)]
        if not match:
            ap.error(f"unknown target {want!r}; choose from {', '.join(TARGETS)} or 1-10")
        chosen += match
    has_docker = docker_ok()
    print(machine(), flush=True)
    rows: list[Row] = []
    t_all = time.perf_counter()
    for name in chosen:
        num, module, needs_docker = TARGETS[name]
        if needs_docker and not has_docker:
            rows.append(
                Row(f"{num} {name}", "-", "skipped", None, "-", None, "no Docker daemon answers")
            )
            continue
        t0 = time.perf_counter()
        print(f"[{num} {name}] running...", file=sys.stderr, flush=True)
        got, extra = run_target(module, args.quick)
        if extra.strip():
            print(extra, flush=True)
        print(f"[{num} {name}] {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        rows += got
    print()
    print(table(rows, args.md))
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s{' (--quick)' if args.quick else ''}")


if __name__ == "__main__":
    main()
