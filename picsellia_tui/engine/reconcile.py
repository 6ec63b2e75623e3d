"""Reconciliation rules: which active runs an engine adopts (nobody holds their
lease: their engine was killed, the app closed), and which log files have been
kept long enough. What an adopted run's container turns out to be (finished while
nobody watched, vanished) is settled by `supervisor.RunSupervisor`."""

from __future__ import annotations

from collections.abc import Container
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from picsellia_tui.engine.workspace import Workspace
from picsellia_tui.storage import repo
from picsellia_tui.storage.logfile.record import index_path
from picsellia_tui.storage.models import Run


def take_orphans(s: Session, *, engine_id: str, timeout: float, skip: Container[int]) -> list[int]:
    """Take the lease of each active run nobody supervises (not those in `skip`,
    the live set of runs supervised here); their ids."""
    out = []
    for run in repo.orphaned_active_runs(s, engine_id, timeout):
        assert run.id is not None
        if run.id not in skip and repo.try_take_lease(s, run.id, engine_id, timeout):
            out.append(run.id)
    return out


def prune_logs(ws: Workspace, retention_days: int) -> int:
    """Delete the log files of runs that ended more than `retention_days` ago (the
    run rows and their error summaries stay). Returns how many went."""
    if retention_days <= 0:
        return 0
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    with ws.db.read() as s:
        paths = s.exec(
            select(Run.log_path).where(col(Run.ended_at).is_not(None), col(Run.ended_at) < cutoff)
        ).all()
    removed = 0
    for p in paths:
        log_file = Path(p)
        if log_file.exists():
            log_file.unlink()
            removed += 1
        index_path(log_file).unlink(missing_ok=True)
    return removed
