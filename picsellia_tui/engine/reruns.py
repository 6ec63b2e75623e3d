"""What a re-run runs. The user fixed the code and rebuilt the image: that is why
they re-run, so a re-run takes the processing's *current* definition and image with
the job's parameters; `same_image` pins the digest the previous run ran instead, for
an exact reproduction. Synchronous: runs inside the re-run's write transaction."""

from __future__ import annotations

from sqlmodel import Session, col, select

from picsellia_tui.engine import catalog, queries
from picsellia_tui.engine.errors import RerunRefused
from picsellia_tui.engine.workspace import Workspace
from picsellia_tui.storage.domain import OutputMode, ProcessingDefinition
from picsellia_tui.storage.models import Job, ModelVersion, Processing, Run
from picsellia_tui.storage.params import ParameterError, resolve_parameters, split_secrets

EDIT_HINT = "edit its parameters and re-run it with R in the Jobs tab"


def previous_digest(s: Session, job_id: int) -> str | None:
    """The digest the job's latest run that started on Docker ran."""
    return s.exec(
        select(Run.image_digest)
        .where(Run.job_id == job_id, col(Run.image_digest).is_not(None))
        .order_by(col(Run.attempt).desc())
        .limit(1)
    ).first()


def needs_command(defn: ProcessingDefinition, executor: str) -> str | None:
    """Why the process executor cannot run `defn` (it has no image to take a
    command from), or None."""
    if executor == "process" and not defn.command:
        return (
            f"{defn.name} has no command: the process executor runs the processing's "
            "`command` (processing.toml); add one, or use the docker executor, which runs "
            "the image's own entrypoint"
        )
    return None


def prepare_rerun(s: Session, ws: Workspace, job: Job, *, same_image: bool) -> str:
    """Bring `job` to what its next run will run and return the image reference that
    run asks for. Raises RerunRefused (one line) when it cannot run."""
    proc = s.get(Processing, job.processing_id)
    if proc is not None and proc.removed_at is not None:
        raise RerunRefused(
            f"processing {proc.name} was removed: job {job.id} stays readable but cannot be re-run"
        )
    if same_image:
        digest = previous_digest(s, job.id or 0)
        if digest is None:
            raise RerunRefused(
                f"job {job.id} has no earlier run that recorded an image digest to reuse "
                "(none started on Docker); re-run it without --same-image"
            )
        return digest  # with the definition that ran it, kept on the job
    if proc is None:
        raise RerunRefused(
            f"processing {job.processing_name} no longer exists: job {job.id} stays readable "
            "but cannot be re-run"
        )
    defn = catalog.definition_of(proc)
    why = needs_command(defn, job.executor)
    if why:
        raise RerunRefused(why)
    target = s.get(ModelVersion, job.target_version_id)
    if target is None:
        raise RerunRefused(f"job {job.id}: its target version no longer exists")
    reason = queries.compatible(s, proc, target)
    if reason:
        raise RerunRefused(
            f"{proc.name} {defn.version} can no longer run on this job's target: {reason}"
        )
    secrets = ws.decrypt(job.secrets_enc)
    try:
        values = resolve_parameters(defn.parameters, {**job.parameters, **secrets})
    except ParameterError as exc:
        raise RerunRefused(
            f"job {job.id} cannot re-run under {proc.name} {defn.version}: {exc}; {EDIT_HINT}"
        ) from None
    plain, new_secrets = split_secrets(defn.parameters, values)
    job.parameters = plain
    if new_secrets != secrets:
        job.secrets_enc = ws.encrypt(new_secrets)
    job.processing_snapshot = {**defn.model_dump(mode="json"), "source_dir": proc.source_dir}
    job.image_ref = defn.image
    if defn.output_mode == OutputMode.NEW_MODEL_VERSION and not job.output_version_name:
        # It used to update its input; it now makes a version: name one as launch would.
        job.output_version_name = f"{target.name}-job{job.id}"
    s.add(job)
    return defn.image
