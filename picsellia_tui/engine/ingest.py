"""A finished run's outputs into the workspace: its files into the blob store, a
new ModelVersion (or the input updated) and `succeeded`, in one transaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import Session

from picsellia_tui.engine import catalog, queries
from picsellia_tui.engine.errors import InvalidInput
from picsellia_tui.engine.workspace import Workspace
from picsellia_tui.storage import repo
from picsellia_tui.storage.domain import OutputMode, RunStatus
from picsellia_tui.storage.models import Job, Model, ModelVersion, Run, VersionFile


def ingest_outputs(
    ws: Workspace,
    engine_id: str,
    run_id: int,
    job: Job,
    outputs: Path,
    mode: str,
    log_note: str | None = None,
    times: dict[str, Any] | None = None,
) -> tuple[int, str, str] | None:
    """Outputs into the blob store, the version row and `succeeded`: one
    transaction, so a crash at any point ingests them once, or not at all."""
    result = catalog.read_result(outputs)
    files = [
        (p.relative_to(outputs).as_posix(), p)
        for p in sorted(outputs.rglob("*"))
        if p.is_file() and p.relative_to(outputs).as_posix() != "result.json"
    ]
    stored = catalog.store_files(ws, files)

    def w(s: Session) -> tuple[int, str, str] | None:
        run = s.get(Run, run_id)
        assert run is not None
        if run.outputs_ingested or RunStatus(run.status).is_final:
            return None
        target = s.get(ModelVersion, job.target_version_id)
        assert target is not None and target.id is not None
        model = s.get(Model, target.model_id)
        assert model is not None and model.id is not None
        if mode == OutputMode.UPDATE_INPUT.value:
            _update_version(s, target, stored, result)
            version = target
        else:
            if not stored:
                raise InvalidInput("the run wrote no output files", "outputs")
            name = catalog.unique_version_name(
                s, model.id, job.output_version_name or f"{target.name}-job{job.id}"
            )
            version = catalog.add_version(
                s,
                ws,
                model_name=model.name,
                version_name=name,
                framework=result.get("framework") or target.framework,
                stored=stored,
                labels=result.get("labels") or target.labels,
                tags=result.get("tags"),
                metrics=result.get("metrics"),
                description=f"{job.processing_name} on {model.name}/{target.name}",
                parent_id=target.id,
                origin_job_id=job.id,
            )
        assert version.id is not None
        run.outputs_ingested = True
        s.add(run)
        repo.transition(
            s,
            run_id,
            RunStatus.SUCCEEDED,
            engine_id=engine_id,
            reason="outputs ingested",
            exit_code=0,
            output_version_id=version.id,
            error_summary=log_note,
            **(times or {}),
        )
        return version.id, model.name, version.name

    return ws.db.write_retry(w)


def _update_version(
    s: Session, v: ModelVersion, stored: list[tuple[str, str, int]], result: dict[str, Any]
) -> None:
    assert v.id is not None
    existing = {f.path: f for f in queries.version_files(s, v.id)}
    for rel, sha, size in stored:
        if rel in existing:
            existing[rel].sha256, existing[rel].size = sha, size
            s.add(existing[rel])
        else:
            s.add(VersionFile(version_id=v.id, path=rel, sha256=sha, size=size))
    s.flush()
    v.size_bytes = sum(f.size for f in queries.version_files(s, v.id))
    v.tags = sorted(set(v.tags) | set(result.get("tags") or []))
    v.metrics = {**v.metrics, **(result.get("metrics") or {})}
    s.add(v)
