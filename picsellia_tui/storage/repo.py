"""Write rules that must hold whatever process writes: run transitions, re-run
refusal, lease claims. Each function runs inside the caller's IMMEDIATE
transaction (`Database.write()`), so check-then-write is atomic across processes."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from picsellia_tui.storage.domain import RunStatus, can_transition
from picsellia_tui.storage.models import Job, Run, RunEvent, RunLease, User, utcnow


class TransitionRefused(Exception):
    def __init__(self, run_id: int, old: str, new: str) -> None:
        super().__init__(f"run {run_id} cannot go from {old} to {new}")
        self.run_id = run_id
        self.old = old
        self.new = new


class ActiveRunExists(Exception):
    def __init__(self, job_id: int, run: Run) -> None:
        super().__init__(
            f"job {job_id} already has run #{run.attempt} {run.status}; "
            "wait for it to end or cancel it before re-running"
        )
        self.job_id = job_id
        self.run = run


def ensure_user(s: Session, name: str) -> User:
    user = s.exec(select(User).where(User.name == name)).first()
    if user is None:
        user = User(name=name)
        s.add(user)
        s.flush()
    return user


def active_run(s: Session, job_id: int) -> Run | None:
    return s.exec(
        select(Run).where(
            Run.job_id == job_id,
            col(Run.status).in_([RunStatus.PENDING.value, RunStatus.RUNNING.value]),
        )
    ).first()


def add_run(
    s: Session,
    job: Job,
    *,
    launched_by_id: int,
    executor: str,
    host: str,
    log_dir: str,
    engine_id: str | None,
    image_ref: str | None = None,
) -> Run:
    """Append a pending run to the job; refused while another run is active."""
    assert job.id is not None
    current = active_run(s, job.id)
    if current is not None:
        raise ActiveRunExists(job.id, current)
    last = s.exec(select(func.max(Run.attempt)).where(Run.job_id == job.id)).one()
    attempt = int(last or 0) + 1
    run = Run(
        job_id=job.id,
        attempt=attempt,
        status=RunStatus.PENDING.value,
        executor=executor,
        host=host,
        launched_by_id=launched_by_id,
        log_path="",
        image_ref=image_ref,
    )
    s.add(run)
    s.flush()
    run.log_path = f"{log_dir}/job-{job.id}/run-{run.id}.log"
    job.attempts = attempt
    job.last_status = run.status
    job.updated_at = utcnow()
    s.add(job)
    assert run.id is not None
    s.add(RunEvent(run_id=run.id, status=run.status, engine_id=engine_id, reason="queued"))
    return run


def transition(
    s: Session,
    run_id: int,
    new: RunStatus,
    *,
    engine_id: str | None,
    reason: str | None = None,
    **fields: Any,
) -> Run:
    """Move a run to `new` if the state machine allows it, with its history row.

    Reads the row inside the IMMEDIATE transaction, so a concurrent engine that
    already finalised the run makes this raise instead of doubling the change.
    """
    run = s.get(Run, run_id)
    if run is None:
        raise KeyError(run_id)
    old = RunStatus(run.status)
    if not can_transition(old, new):
        raise TransitionRefused(run_id, old.value, new.value)
    run.status = new.value
    now = utcnow()
    if new == RunStatus.RUNNING and run.started_at is None:
        run.started_at = now
    if new.is_final:
        run.ended_at = now
    for k, v in fields.items():
        setattr(run, k, v)
    s.add(run)
    job = s.get(Job, run.job_id)
    assert job is not None
    job.last_status = new.value
    job.updated_at = now
    s.add(job)
    s.add(RunEvent(run_id=run_id, status=new.value, engine_id=engine_id, reason=reason))
    if new.is_final:
        lease = s.get(RunLease, run_id)
        if lease is not None:
            s.delete(lease)
    return run


def lease_is_live(lease: RunLease | None, timeout_s: float, now: float | None = None) -> bool:
    return lease is not None and (now or time.time()) - lease.heartbeat_at < timeout_s


def try_take_lease(s: Session, run_id: int, owner: str, timeout_s: float) -> bool:
    """Become the run's supervisor unless another live engine is."""
    now = time.time()
    lease = s.get(RunLease, run_id)
    if lease is not None:
        if lease.owner == owner:
            lease.heartbeat_at = now
            s.add(lease)
            return True
        if lease_is_live(lease, timeout_s, now):
            return False
        lease.owner = owner
        lease.heartbeat_at = now
        s.add(lease)
        return True
    s.add(RunLease(run_id=run_id, owner=owner, heartbeat_at=now))
    return True


def heartbeat(s: Session, owner: str, run_ids: list[int]) -> list[int]:
    """Refresh our leases; returns the run ids we no longer own (lost to a takeover)."""
    now = time.time()
    lost = []
    for rid in run_ids:
        lease = s.get(RunLease, rid)
        if lease is None or lease.owner != owner:
            lost.append(rid)
            continue
        lease.heartbeat_at = now
        s.add(lease)
    return lost


def release_lease(s: Session, run_id: int, owner: str) -> None:
    lease = s.get(RunLease, run_id)
    if lease is not None and lease.owner == owner:
        s.delete(lease)


def claimable_runs(s: Session, owner: str, timeout_s: float, slots: int, *, host: str) -> list[Run]:
    """Pending runs nobody supervises (oldest first), at most `slots`."""
    if slots <= 0:
        return []
    now = time.time()
    runs = s.exec(
        select(Run)
        .where(Run.status == RunStatus.PENDING.value, Run.host == host)
        .order_by(col(Run.id))
        .limit(200)
    ).all()
    out: list[Run] = []
    for run in runs:
        if len(out) >= slots:
            break
        assert run.id is not None
        lease = s.get(RunLease, run.id)
        if lease_is_live(lease, timeout_s, now) and lease is not None and lease.owner != owner:
            continue
        if try_take_lease(s, run.id, owner, timeout_s):
            out.append(run)
    return out


def busy_count(s: Session, host: str, timeout_s: float) -> int:
    """Runs occupying a slot on `host`: running ones, and pending ones an engine holds."""
    now = time.time()
    running = s.exec(
        select(func.count())
        .select_from(Run)
        .where(Run.host == host, Run.status == RunStatus.RUNNING.value)
    ).one()
    held = s.exec(
        select(func.count())
        .select_from(Run)
        .join(RunLease, col(RunLease.run_id) == col(Run.id))
        .where(
            Run.host == host,
            Run.status == RunStatus.PENDING.value,
            col(RunLease.heartbeat_at) > now - timeout_s,
        )
    ).one()
    return int(running) + int(held)


def orphaned_active_runs(s: Session, owner: str, timeout_s: float) -> list[Run]:
    """Running runs whose supervisor is gone (no lease or a stale one)."""
    now = time.time()
    runs = s.exec(select(Run).where(Run.status == RunStatus.RUNNING.value)).all()
    out: list[Run] = []
    for run in runs:
        assert run.id is not None
        lease = s.get(RunLease, run.id)
        if lease is not None and lease.owner == owner:
            continue
        if not lease_is_live(lease, timeout_s, now):
            out.append(run)
    return out
