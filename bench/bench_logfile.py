"""Benchmark the run log: write 1,000,000 lines of 100 bytes, then open and tail.

    PYTHONPATH=. .venv/bin/python bench/bench_logfile.py [--lines N] [--batch B]

Baseline: the same record bytes written with a plain ``f.write`` loop (buffered
file, no encoding, no index). Prints a table; no asserts.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

from picsellia_tui.engine.executors.base import LogLine
from picsellia_tui.storage.logfile import search as logsearch
from picsellia_tui.storage.logfile.reader import LogReader
from picsellia_tui.storage.logfile.record import encode_record
from picsellia_tui.storage.logfile.search import error_tail
from picsellia_tui.storage.logfile.writer import LogWriter


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def make_lines(n: int) -> list[LogLine]:
    pad = "x" * 80
    t0 = 1_700_000_000_000_000_000
    # 100 bytes of text a line: "step 0000123 " + padding
    return [
        LogLine(t0 + i * 1000, "stderr" if i % 7 == 0 else "stdout", f"step {i:07d} {pad}"[:100])
        for i in range(n)
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000, help="lines per LogWriter.append")
    args = ap.parse_args()
    n, batch = args.lines, args.batch

    lines = make_lines(n)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)

        # Baseline: the record bytes, written by a plain loop.
        raw = [b"%d o %s\n" % (x.ts_ns, x.text.encode()) for x in lines]
        t = time.perf_counter()
        with open(tmp / "baseline.log", "wb") as f:
            for b in raw:
                f.write(b)
        baseline = time.perf_counter() - t
        del raw

        # Encoding only (what LogWriter pays in Python before the syscalls).
        t = time.perf_counter()
        for x in lines:
            encode_record(x.ts_ns, x.stream, x.text)
        encode_only = time.perf_counter() - t

        path = tmp / "run.log"
        t = time.perf_counter()
        with LogWriter(path) as w:
            for i in range(0, n, batch):
                w.append(lines[i : i + batch])
        write = time.perf_counter() - t

        t = time.perf_counter()
        with LogWriter(path) as w:
            reopen_lines = w.line_count
        reopen = time.perf_counter() - t

        size = path.stat().st_size
        del lines
        gc.collect()

        rss0 = rss_kb()
        t = time.perf_counter()
        reader = LogReader(path)
        last = reader.tail(50)
        open_tail = time.perf_counter() - t
        rss1 = rss_kb()

        t = time.perf_counter()
        for i in range(0, len(reader), max(1, len(reader) // 1000)):
            reader.record(i)
        random_1000 = time.perf_counter() - t

        t = time.perf_counter()
        miss = logsearch.search(reader, "no such text", 0)
        search_miss = time.perf_counter() - t
        t = time.perf_counter()
        logsearch.search(reader, "step 0000001", len(reader) - 1, backwards=True)
        search_back = time.perf_counter() - t

        t = time.perf_counter()
        error_tail(path)
        etail = time.perf_counter() - t

        t = time.perf_counter()
        logsearch.export(reader, tmp / "export.txt", timestamps=False)
        export = time.perf_counter() - t
        rss2 = rss_kb()

    print(f"{n:,} lines, {size / 1e6:.1f} MB on disk, batches of {batch}")
    print(f"{'measure':<40}{'seconds':>10}{'ratio':>10}")
    print(f"{'baseline f.write loop':<40}{baseline:>10.3f}{1:>10.2f}")
    print(f"{'encode_record only':<40}{encode_only:>10.3f}{encode_only / baseline:>10.2f}")
    print(f"{'LogWriter.append (data + index)':<40}{write:>10.3f}{write / baseline:>10.2f}")
    print(f"{'LogWriter reopen (recovery check)':<40}{reopen:>10.3f}")
    print(f"{'LogReader open + tail(50)':<40}{open_tail:>10.3f}")
    print(f"{'1000 random record() calls':<40}{random_1000:>10.3f}")
    print(f"{'search, no match, whole file':<40}{search_miss:>10.3f}")
    print(f"{'search backwards to the start':<40}{search_back:>10.3f}")
    print(f"{'error_tail':<40}{etail:>10.3f}")
    print(f"{'export (plain text)':<40}{export:>10.3f}")
    print(
        f"RSS growth: open+tail {rss1 - rss0:,} kB (index {len(reader) * 8 // 1024:,} kB), "
        f"after search/export {rss2 - rss0:,} kB; "
        f"reopen saw {reopen_lines:,} lines; last: {last[-1].text[:20]!r}; miss={miss}"
    )


if __name__ == "__main__":
    main()
