"""Shared helpers of the benchmarks: workspaces, the bench image, process figures.

Only public tools: Python timers, /proc, the docker CLI and the project itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PYTHON = sys.executable
IMAGE = "picsellia-tui/bench-lines:1.0.0"
PROCESSING = "bench-lines"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------- results


@dataclass
class Row:
    """One line of the table. `ratio` is figure / baseline unless given."""

    target: str
    baseline: str
    figure: str
    ratio: float | None
    goal: str
    met: bool | None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def emit(rows: list[Row]) -> None:
    """The rows as the last stdout line (the runner parses it)."""
    print("BENCH-ROWS " + json.dumps([r.to_json() for r in rows]), flush=True)


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def secs(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


# ------------------------------------------------------------------------- /proc


def rss_kb(pid: int | None = None) -> int:
    path = f"/proc/{pid or 'self'}/status"
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def cpu_s(pid: int | None = None) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid or 'self'}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class PeakRss:
    """Samples a process's RSS in a thread; `peak` in kB."""

    def __init__(self, pid: int | None = None, every: float = 0.05) -> None:
        import threading

        self.pid = pid
        self.start = rss_kb(pid)
        self.peak = self.start
        self._stop = threading.Event()
        self._every = every
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.peak = max(self.peak, rss_kb(self.pid))

    def __enter__(self) -> PeakRss:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_kb(self.pid))


# ------------------------------------------------------------------------- docker


def docker_ok() -> bool:
    try:
        return (
            subprocess.run(
                ["docker", "version", "--format", "{{.Server.Version}}"],
                capture_output=True,
                timeout=20,
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def build_image() -> None:
    subprocess.run(
        ["docker", "build", "-q", "-t", IMAGE, str(BENCH / "proc_lines")],
        check=True,
        capture_output=True,
    )


def docker_run_cmd(*args: object) -> list[str]:
    return ["docker", "run", "--rm", IMAGE, "python", "main.py", *map(str, args)]


def time_first_line(cmd: list[str]) -> tuple[float, float]:
    """(seconds to the first stdout line, seconds to the exit) of a command."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert p.stdout is not None
    p.stdout.readline()
    first = time.perf_counter() - t0
    p.stdout.read()
    p.wait()
    return first, time.perf_counter() - t0


def time_cmd(cmd: list[str], **kw: Any) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, **kw)
    return time.perf_counter() - t0


# ------------------------------------------------------------------------- workspace


def bench_settings(root: Path, **kw: Any) -> Any:
    """Settings of a fresh workspace in `root` with the bench processing."""
    from picsellia_tui.engine.config import Settings

    procs = root / "processings"
    if not procs.exists():
        procs.mkdir(parents=True)
        shutil.copytree(BENCH / "proc_lines", procs / PROCESSING)
    values: dict[str, Any] = dict(
        data_dir=root / "data",
        executor="docker",
        processings_dir=procs,
        organization="bench",
        user="bench",
        export_dir=root / "exports",
    )
    values.update(kw)
    return Settings(**values)


def write_config(root: Path, settings: Any) -> Path:
    """A config file for the command line pointing at the same workspace."""
    path = root / "config.toml"
    lines = [
        f'data_dir = "{settings.data_dir}"',
        f'executor = "{settings.executor}"',
        f'processings_dir = "{settings.processings_dir}"',
        f'organization = "{settings.organization}"',
        f'user = "{settings.user}"',
        f"concurrency = {settings.concurrency}",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


async def seed(engine: Any, root: Path) -> str:
    """One model version to run on; returns its ref."""
    f = root / "src" / "model.onnx"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(b"bench model bytes")
    await engine.import_version("bench", "v1", [f], framework="onnx")
    return "bench/v1"


@contextmanager
def tempdir(prefix: str) -> Iterator[Path]:
    import tempfile

    d = Path(tempfile.mkdtemp(prefix=f"ptui-bench-{prefix}-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def wait_until(check: Callable[[], Any], timeout: float, interval: float = 0.005) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = check()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        time.sleep(interval)
