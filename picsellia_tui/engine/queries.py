"""Read side: rows to views, with paging. Synchronous; callers use threads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from picsellia_tui.engine.catalog import definition_of
from picsellia_tui.engine.compat import incompatibility
from picsellia_tui.engine.views import (
    FileView,
    JobView,
    ProcessingView,
    RunView,
    VersionView,
)
from picsellia_tui.storage.domain import Constraints, ParamSpec, RunStatus, stored_spec
from picsellia_tui.storage.models import (
    Job,
    Model,
    ModelVersion,
    Processing,
    Run,
    RunEvent,
    User,
    VersionFile,
)
from picsellia_tui.storage.params import masked


class Names:
    """Small per-query caches of user and version names."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self._users: dict[int, str] = {}
        self._versions: dict[int, str] = {}

    def user(self, uid: int | None) -> str | None:
        if uid is None:
            return None
        if uid not in self._users:
            u = self.s.get(User, uid)
            self._users[uid] = u.name if u else f"user#{uid}"
        return self._users[uid]

    def version(self, vid: int | None) -> str | None:
        if vid is None:
            return None
        if vid not in self._versions:
            v = self.s.get(ModelVersion, vid)
            m = self.s.get(Model, v.model_id) if v else None
            self._versions[vid] = f"{m.name}/{v.name}" if v and m else f"version#{vid}"
        return self._versions[vid]


def processing_view(row: Processing, names: Names) -> ProcessingView:
    assert row.id is not None
    return ProcessingView(
        id=row.id,
        name=row.name,
        version=row.version,
        description=row.description,
        task=row.task,
        target_type=row.target_type,
        image=row.image,
        command=row.command,
        entrypoint=row.entrypoint,
        output_mode=row.output_mode,
        # A secret's default (older definitions allowed one) is never shown.
        parameters=[
            ParamSpec.model_validate(stored_spec({**p, "default": None} if p.get("secret") else p))
            for p in row.parameters
        ],
        constraints=Constraints.model_validate(row.constraints),
        visibility=row.visibility,
        owner=names.user(row.owner_id),
        source_dir=row.source_dir,
        picsellia_api=bool((row.picsellia or {}).get("api")),
    )


def list_processings(s: Session) -> list[ProcessingView]:
    names = Names(s)
    rows = s.exec(
        select(Processing)
        .where(col(Processing.removed_at).is_(None))
        .order_by(col(Processing.target_type), col(Processing.name))
    )
    return [processing_view(r, names) for r in rows]


def version_view(s: Session, v: ModelVersion, names: Names, files: bool = False) -> VersionView:
    assert v.id is not None
    m = s.get(Model, v.model_id)
    assert m is not None
    file_views = []
    if files:
        file_views = [
            FileView(path=f.path, sha256=f.sha256, size=f.size)
            for f in s.exec(
                select(VersionFile)
                .where(VersionFile.version_id == v.id)
                .order_by(col(VersionFile.path))
            )
        ]
    return VersionView(
        id=v.id,
        model_id=m.id or 0,
        model=m.name,
        name=v.name,
        framework=v.framework,
        description=v.description,
        labels=v.labels,
        tags=v.tags,
        metrics=v.metrics,
        size_bytes=v.size_bytes,
        parent_id=v.parent_id,
        parent=names.version(v.parent_id),
        origin_job_id=v.origin_job_id,
        created_by=names.user(v.created_by_id),
        created_at=v.created_at,
        files=file_views,
    )


def list_versions(s: Session, files: bool = False) -> list[VersionView]:
    names = Names(s)
    rows = s.exec(
        select(ModelVersion)
        .join(Model, col(Model.id) == col(ModelVersion.model_id))
        .order_by(col(Model.name), col(ModelVersion.created_at), col(ModelVersion.id))
    )
    return [version_view(s, v, names, files=files) for v in rows]


def version_files(s: Session, version_id: int) -> list[VersionFile]:
    return list(s.exec(select(VersionFile).where(VersionFile.version_id == version_id)))


NODE_REASON = "task started on node "  # how a swarm run's start is recorded


def run_nodes(s: Session, run_ids: list[int]) -> dict[int, str]:
    """The node each (swarm) run started on, from its history."""
    if not run_ids:
        return {}
    rows = s.exec(
        select(RunEvent.run_id, RunEvent.reason).where(
            col(RunEvent.run_id).in_(run_ids), col(RunEvent.reason).startswith(NODE_REASON)
        )
    )
    return {rid: reason.removeprefix(NODE_REASON) for rid, reason in rows if reason}


def run_view(r: Run, names: Names, previous_digest: str | bool | None = False) -> RunView:
    """`previous_digest`: the digest of the job's last earlier run that recorded one
    (None: no such run); False when not looked up (image_changed is then None)."""
    assert r.id is not None
    changed: bool | None = None
    if previous_digest is not False:
        changed = bool(r.image_digest and previous_digest and r.image_digest != previous_digest)
    return RunView(
        id=r.id,
        job_id=r.job_id,
        attempt=r.attempt,
        status=r.status,
        executor=r.executor,
        host=r.host,
        ref=r.ref,
        launched_by=names.user(r.launched_by_id) or "?",
        created_at=r.created_at,
        started_at=r.started_at,
        ended_at=r.ended_at,
        exit_code=r.exit_code,
        error_summary=r.error_summary,
        log_path=r.log_path,
        output_version_id=r.output_version_id,
        cancel_requested=r.cancel_requested,
        image_ref=r.image_ref,
        image_digest=r.image_digest,
        image_changed=changed,
    )


def run_history(s: Session, job_id: int, names: Names) -> list[RunView]:
    """A job's runs, oldest first, each marked when its image changed."""
    out = []
    previous: str | None = None
    for r in s.exec(select(Run).where(Run.job_id == job_id).order_by(col(Run.attempt))):
        out.append(run_view(r, names, previous))
        previous = r.image_digest or previous
    nodes = run_nodes(s, [r.id for r in out])
    for view in out:
        view.node = nodes.get(view.id)
    return out


def single_run_view(s: Session, r: Run, names: Names) -> RunView:
    """One run, with image_changed against the job's earlier runs."""
    previous = s.exec(
        select(Run.image_digest)
        .where(
            Run.job_id == r.job_id,
            col(Run.attempt) < r.attempt,
            col(Run.image_digest).is_not(None),
        )
        .order_by(col(Run.attempt).desc())
        .limit(1)
    ).first()
    view = run_view(r, names, previous)
    view.node = run_nodes(s, [view.id]).get(view.id)
    return view


def job_view(s: Session, j: Job, names: Names, runs: bool = False) -> JobView:
    assert j.id is not None
    specs = [
        ParamSpec.model_validate(stored_spec(p))
        for p in j.processing_snapshot.get("parameters", [])
    ]
    run_views = []
    if runs:
        run_views = run_history(s, j.id, names)
    return JobView(
        id=j.id,
        processing=j.processing_name,
        processing_id=j.processing_id,
        task=str(j.processing_snapshot.get("task", "")),
        target_version_id=j.target_version_id,
        target=names.version(j.target_version_id) or "?",
        parameters=masked(specs, j.parameters),
        output_version_name=j.output_version_name,
        output_mode=str(j.processing_snapshot.get("output_mode", "new_model_version")),
        picsellia_api=bool((j.processing_snapshot.get("picsellia") or {}).get("api")),
        image_ref=j.image_ref,
        executor=j.executor,
        host=j.host,
        launched_by=names.user(j.launched_by_id) or "?",
        created_at=j.created_at,
        updated_at=j.updated_at,
        status=j.last_status,
        attempts=j.attempts,
        runs=run_views,
    )


def list_jobs(
    s: Session,
    *,
    limit: int = 100,
    offset: int = 0,
    status: str | None = None,
    changed_since: datetime | None = None,
    before_id: int | None = None,
) -> list[JobView]:
    """Newest first, one page. Uses ix_job_created_at / ix_job_last_status."""
    q = select(Job)
    if status:
        q = q.where(Job.last_status == status)
    if changed_since is not None:
        q = q.where(col(Job.updated_at) > changed_since)
    if before_id is not None:
        q = q.where(col(Job.id) < before_id)
    if changed_since is not None:
        # Walk ix_job_updated_at from the newest change, not the whole table.
        q = q.order_by(col(Job.updated_at).desc(), col(Job.id).desc())
    else:
        q = q.order_by(col(Job.id).desc())
    q = q.offset(offset).limit(limit)
    names = Names(s)
    return [job_view(s, j, names) for j in s.exec(q)]


def latest_runs(s: Session, job_ids: list[int]) -> dict[int, RunView]:
    """The latest run of each job, in one query (ix_run_job_attempt)."""
    if not job_ids:
        return {}
    names = Names(s)
    out: dict[int, RunView] = {}
    rows = s.exec(
        select(Run).where(col(Run.job_id).in_(job_ids)).order_by(col(Run.job_id), col(Run.attempt))
    )
    for r in rows:
        out[r.job_id] = run_view(r, names)  # the highest attempt wins
    return out


def count_jobs(s: Session, status: str | None = None) -> int:
    q = select(func.count()).select_from(Job)
    if status:
        q = q.where(Job.last_status == status)
    return int(s.exec(q).one())


def run_counts(s: Session) -> dict[str, int]:
    rows = s.exec(
        select(Run.status, func.count())
        .where(col(Run.status).in_([RunStatus.PENDING.value, RunStatus.RUNNING.value]))
        .group_by(col(Run.status))
    ).all()
    out = {"pending": 0, "running": 0}
    out.update({status: int(n) for status, n in rows})
    return out


def compatible(s: Session, processing: Processing, version: ModelVersion) -> str | None:
    assert version.id is not None
    defn = definition_of(processing)
    paths = [f.path for f in version_files(s, version.id)]
    return incompatibility(defn.target_type.value, defn.constraints, version.framework, paths)


def compat_matrix_for_version(
    s: Session, version_id: int
) -> list[tuple[ProcessingView, str | None]]:
    v = s.get(ModelVersion, version_id)
    if v is None:
        return []
    names = Names(s)
    rows = s.exec(
        select(Processing)
        .where(col(Processing.removed_at).is_(None))
        .order_by(col(Processing.name))
    ).all()
    return [(processing_view(p, names), compatible(s, p, v)) for p in rows]


def compat_matrix_for_processing(
    s: Session, processing_id: int
) -> list[tuple[VersionView, str | None]]:
    p = s.get(Processing, processing_id)
    if p is None:
        return []
    names = Names(s)
    out: list[tuple[VersionView, str | None]] = []
    for v in s.exec(select(ModelVersion).order_by(col(ModelVersion.id))):
        out.append((version_view(s, v, names), compatible(s, p, v)))
    return out
