"""Benchmark processing: prints N lines of W bytes (newline included), as fast as it
can or at a given rate, then exits 0.

Parameters come from the run context (/picsellia/context.json, when run by the
engine) or from argv (`python main.py LINES [WIDTH [RATE]]`, for `docker run`).
Both ways print exactly the same bytes.
"""

import json
import os
import sys
import time


def params() -> tuple[int, int, float]:
    ctx = os.environ.get("PICSELLIA_CONTEXT")
    if ctx and os.path.exists(ctx):
        with open(ctx) as f:
            p = json.load(f)["parameters"]
        return int(p.get("lines", 1)), int(p.get("width", 100)), float(p.get("rate", 0))
    args = [*sys.argv[1:], None, None, None]
    return int(args[0] or 1), int(args[1] or 100), float(args[2] or 0)


def main() -> None:
    lines, width, rate = params()
    out = sys.stdout.buffer
    pad = b"x" * max(0, width - 14)

    def line(i: int) -> bytes:
        return b"line %07d %s\n" % (i, pad)

    if rate <= 0:
        block = 2000
        for start in range(0, lines, block):
            out.write(b"".join(line(i) for i in range(start, min(lines, start + block))))
        out.flush()
        return
    # Paced: a batch every 10 ms, so the rate holds within a second.
    t0 = time.monotonic()
    i = 0
    tick = 0.01
    while i < lines:
        due = min(lines, int((time.monotonic() - t0) * rate) + 1)
        if due > i:
            out.write(b"".join(line(k) for k in range(i, due)))
            out.flush()
            i = due
        else:
            time.sleep(tick)


if __name__ == "__main__":
    main()
