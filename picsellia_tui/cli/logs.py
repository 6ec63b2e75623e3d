"""Printing a run's log: once, or following it while the run is active."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from picsellia_tui.engine.core import Engine


async def follow_log(e: Engine, run_id: int, timestamps: bool, start: int = 0) -> None:
    """Print a run's log from line `start`, following while it is active."""
    from picsellia_tui.engine.logfollow import follow_records
    from picsellia_tui.engine.logtext import sanitize
    from picsellia_tui.storage.logfile.record import format_ts

    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    async for batch in follow_records(e, run_id, start):
        for rec in batch:
            text = sanitize(rec.text, keep_colors=color)
            print(f"{format_ts(rec.ts_ns)} {text}" if timestamps else text)
        sys.stdout.flush()


def print_once(path: str, timestamps: bool, start: int = 0, tail: int | None = None) -> None:
    """Print a stored log from line `start` (or its last `tail` lines)."""
    from picsellia_tui.engine.logtext import sanitize
    from picsellia_tui.storage.logfile.reader import LogReader
    from picsellia_tui.storage.logfile.record import format_ts

    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    reader = LogReader(Path(path))
    if tail is not None:
        start = max(0, len(reader) - tail)
    for rec in reader.iter_from(start):
        text = sanitize(rec.text, keep_colors=color)
        print(f"{format_ts(rec.ts_ns)} {text}" if timestamps else text)
    reader.close()
