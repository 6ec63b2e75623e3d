"""Target 5, start-up.

a) `picsellia-tui --version` and `--help`: which of textual, docker and
   sqlalchemy they import (python -X importtime), and their wall time against
   `python -c pass` (medians of N). Goal: none imported, within +150 ms.
b) The app's first frame on the demo workspace (a real process in a pseudo-
   terminal of 120x36, from spawn to the first frame's tab labels) against a
   minimal Textual app's first frame (bench/minimal_app.py). Goal: within 1.5x.
   The demo workspace is prepared once (`picsellia-tui demo --no-open`) under
   ~/.cache/picsellia-tui-bench/demo and reused.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

from bench.common import BENCH, PYTHON, Row, emit, median, secs
from bench.tui_common import PtyProcess

CLI = str(Path(PYTHON).with_name("picsellia-tui"))
HEAVY = ("textual", "docker", "sqlalchemy")
DEMO = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "picsellia-tui-bench" / "demo"
)


def wall(cmd: list[str], reps: int) -> float:
    times = []
    for _ in range(reps + 1):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return median(times[1:])


def heavy_imports(arg: str) -> list[str]:
    p = subprocess.run(
        [PYTHON, "-X", "importtime", CLI, arg], capture_output=True, text=True, check=True
    )
    found = set()
    for line in p.stderr.splitlines():
        name = line.rsplit("|", 1)[-1].strip()
        top = name.split(".")[0]
        if top in HEAVY:
            found.add(top)
    return sorted(found)


def prepare_demo() -> Path:
    cfg = DEMO / "config.toml"
    if not cfg.exists():
        DEMO.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [CLI, "--data-dir", str(DEMO), "demo", "--no-open"],
            check=True,
            capture_output=True,
        )
    return cfg


def first_frame(argv: list[str], marker: bytes) -> float:
    p = PtyProcess(argv)
    try:
        return p.wait_for(marker, 60)
    finally:
        p.close()


def main(quick: bool) -> list[Row]:
    reps = 5 if quick else 15
    base = wall([PYTHON, "-c", "pass"], reps)
    rows = []
    for arg in ("--version", "--help"):
        t = wall([CLI, arg], reps)
        heavy = heavy_imports(arg)
        rows.append(
            Row(
                f"5a `picsellia-tui {arg}`",
                f"python -c pass: {secs(base)}",
                f"{secs(t)} (+{(t - base) * 1000:.0f} ms)",
                t / base,
                "+150 ms, no textual/docker/sqlalchemy",
                (t - base) <= 0.15 and not heavy,
                f"imports: {', '.join(heavy) or 'none of them'}",
            )
        )
    cfg = prepare_demo()
    n = 3 if quick else 7
    ours, theirs = [], []
    for _ in range(n + 1):
        theirs.append(first_frame([PYTHON, str(BENCH / "minimal_app.py")], b"hello bench"))
        ours.append(first_frame([CLI, "--config", str(cfg)], b"Processings"))
    a, b = median(ours[1:]), median(theirs[1:])
    rows.append(
        Row(
            "5b app first frame, demo workspace",
            f"minimal Textual app: {secs(b)}",
            secs(a),
            a / b,
            "<= 1.5x",
            a / b <= 1.5,
            f"medians of {n}, process spawn to first frame",
        )
    )
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    emit(main(ap.parse_args().quick))
