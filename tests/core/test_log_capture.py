"""The log file's batch path and per-stream counts (what capture resumes from)."""

from __future__ import annotations

import random
from pathlib import Path

from picsellia_tui.engine.executors.base import LogLine
from picsellia_tui.storage.logfile.reader import LogReader
from picsellia_tui.storage.logfile.record import encode_record
from picsellia_tui.storage.logfile.writer import LogWriter


def test_batches_sharing_stamps_store_the_same_bytes_as_records(tmp_path: Path) -> None:
    rnd = random.Random(7)
    alphabet = ["a", "é", "\\", "\n", "\ud800", "x", "\r", "€", "\x1b", " e "]
    for trial in range(200):
        lines = [
            LogLine(
                rnd.choice([5, 5, 6]) + (i // 5) * 10,
                rnd.choice(["stdout", "stderr", "api"]),
                "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 6))),
            )
            for i in range(rnd.randint(0, 40))
        ]
        path = tmp_path / f"{trial}.log"
        with LogWriter(path) as w:
            half = len(lines) // 2
            w.append(lines[:half])
            w.append(lines[half:])
            counts = w.stream_counts()
        assert path.read_bytes() == b"".join(encode_record(*ln) for ln in lines)
        with LogReader(path) as r:
            assert [(x.ts_ns, x.stream, x.text) for x in r.records(0)] == [
                tuple(ln) for ln in lines
            ]
        want = {s: sum(ln.stream == s for ln in lines) for s in ("stdout", "stderr", "api")}
        assert counts == want
        with LogWriter(path) as again:  # counted from the file when reopened
            assert again.stream_counts() == want


def test_resume_counts_disarms_timestamp_dedup(tmp_path: Path) -> None:
    path = tmp_path / "r.log"
    with LogWriter(path) as w:
        w.append(
            [LogLine(100, "stdout", "a"), LogLine(150, "api", "p"), LogLine(200, "stderr", "b")]
        )
    with LogWriter(path) as w:
        # Lines posted to the local Picsellia API are counted apart: a replay of the
        # container's streams skips only the container's own lines.
        assert w.resume_counts() == {"stdout": 1, "stderr": 1, "api": 1}
        # a replay stamped differently (older, even): stored as given
        assert w.append([LogLine(50, "stdout", "c"), LogLine(200, "stderr", "b")]) == 2
        assert w.stream_counts() == {"stdout": 2, "stderr": 2, "api": 1}
