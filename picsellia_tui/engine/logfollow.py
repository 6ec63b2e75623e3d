"""Following a run's stored log: batches of new records until the run is final.

The command line prints them and the control socket sends them; both read the
same log file the engine writes, so a follower never slows the capture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from picsellia_tui.storage.domain import RunStatus
from picsellia_tui.storage.logfile.reader import LogReader
from picsellia_tui.storage.logfile.record import LogRecord

if TYPE_CHECKING:
    from picsellia_tui.engine.core import Engine

BATCH = 5000


async def follow_records(
    engine: Engine, run_id: int, start: int = 0
) -> AsyncIterator[list[LogRecord]]:
    """Yield the run's records from line `start` in batches, following while it is
    active; ends once the run is final and every stored line was yielded."""
    run = await engine.run(run_id)
    stream = engine.subscribe()
    reader = LogReader(Path(run.log_path))
    pos = start
    try:
        while True:
            reader.refresh()
            while pos < len(reader):
                batch = reader.records(pos, min(len(reader), pos + BATCH))
                pos += len(batch)
                yield batch
            run = await engine.run(run_id)
            if RunStatus(run.status).is_final:
                reader.refresh()
                if pos >= len(reader):
                    return
                continue
            with anyio.move_on_after(0.25):
                await stream.receive()
    finally:
        stream.close()
        reader.close()
