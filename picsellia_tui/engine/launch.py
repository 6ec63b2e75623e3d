"""Launch, re-run and cancel: each checks everything first, then writes in one
transaction (nothing is written when anything is wrong), then wakes the
scheduler."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from picsellia_tui.engine import catalog, queries, reruns
from picsellia_tui.engine.errors import (
    EngineError,
    Incompatible,
    InvalidInput,
    NotFound,
    RerunRefused,
)
from picsellia_tui.engine.events import JobCreated, RunChanged
from picsellia_tui.engine.reads import Reads
from picsellia_tui.engine.runtime import Runtime
from picsellia_tui.engine.views import JobView, RunView
from picsellia_tui.storage import repo
from picsellia_tui.storage.domain import OutputMode, RunStatus
from picsellia_tui.storage.models import Job, Run
from picsellia_tui.storage.params import ParameterError, resolve_parameters, split_secrets


class Launcher:
    def __init__(self, rt: Runtime, reads: Reads) -> None:
        self.rt = rt
        self.reads = reads

    async def launch(
        self,
        processing: str,
        version_ref: str,
        params: Mapping[str, Any] | None = None,
        *,
        output_version_name: str | None = None,
        host: str | None = None,
    ) -> JobView:
        """Validate everything, then create the job and its first pending run in one
        transaction. Nothing is written when anything is wrong."""
        settings = self.rt.settings
        host_name = settings.host(host).name if settings.executor == "docker" else "local"

        def w(s: Session) -> Job:
            proc = catalog.find_processing(s, processing)
            model, version = catalog.find_version(s, version_ref)
            reason = queries.compatible(s, proc, version)
            if reason:
                raise Incompatible(
                    f"{proc.name} cannot run on {model.name}/{version.name}: {reason}"
                )
            defn = catalog.definition_of(proc)
            no_command = reruns.needs_command(defn, settings.executor)
            if no_command:
                raise InvalidInput(no_command, "command")
            try:
                values = resolve_parameters(defn.parameters, params or {})
            except ParameterError as exc:
                raise InvalidInput(str(exc), exc.field) from None
            plain, secrets = split_secrets(defn.parameters, values)
            out_name = output_version_name
            if defn.output_mode == OutputMode.NEW_MODEL_VERSION:
                if out_name:
                    catalog.check_version_name(out_name)
                    if out_name != catalog.unique_version_name(s, model.id or 0, out_name):
                        raise InvalidInput(
                            f"model {model.name!r} already has a version {out_name!r}",
                            "version_name",
                        )
                else:
                    out_name = catalog.unique_version_name(
                        s, model.id or 0, catalog.default_version_name(version.name, proc.name)
                    )
            else:
                out_name = None
            job = Job(
                processing_id=proc.id or 0,
                processing_name=proc.name,
                processing_snapshot={**defn.model_dump(mode="json"), "source_dir": proc.source_dir},
                image_ref=defn.image,
                target_version_id=version.id or 0,
                parameters=plain,
                secrets_enc=self.rt.ws.encrypt(secrets),
                output_version_name=out_name,
                executor=settings.executor,
                host=host_name,
                launched_by_id=self.rt.ws.user_id,
            )
            s.add(job)
            s.flush()
            repo.add_run(
                s,
                job,
                launched_by_id=self.rt.ws.user_id,
                executor=job.executor,
                host=job.host,
                log_dir=str(self.rt.ws.logs_dir),
                engine_id=self.rt.engine_id,
                image_ref=defn.image,
            )
            return job

        job = await self.rt.db(self.rt.write(w))
        assert job.id is not None
        self.rt.events.publish(JobCreated(job.id))
        self.rt.wake()
        return await self.reads.job(job.id)

    async def rerun(self, job_id: int, *, same_image: bool = False) -> RunView:
        """A new attempt of the job with the processing's current definition and image
        (`same_image`: the digest the previous run ran). Refused while a run is pending
        or running, inside the same IMMEDIATE transaction that adds the run."""

        def w(s: Session) -> Run:
            job = s.get(Job, job_id)
            if job is None:
                raise NotFound(f"no job {job_id}")
            current = repo.active_run(s, job_id)
            if current is not None:
                raise RerunRefused(str(repo.ActiveRunExists(job_id, current)))
            image_ref = reruns.prepare_rerun(s, self.rt.ws, job, same_image=same_image)
            try:
                return repo.add_run(
                    s,
                    job,
                    launched_by_id=self.rt.ws.user_id,
                    executor=job.executor,
                    host=job.host,
                    log_dir=str(self.rt.ws.logs_dir),
                    engine_id=self.rt.engine_id,
                    image_ref=image_ref,
                )
            except repo.ActiveRunExists as exc:
                raise RerunRefused(str(exc)) from None

        run = await self.rt.db(self.rt.write(w))
        assert run.id is not None
        self.rt.events.publish(RunChanged(run.id, run.job_id, run.status))
        self.rt.wake()
        return await self.reads.run(run.id)

    async def cancel(self, job_id: int) -> RunView:
        """Cancel the job's active run: a pending one ends `killed` at once; a running
        one is stopped (SIGTERM, grace, SIGKILL) and its supervisor records `killed`."""

        def w(s: Session) -> tuple[Run, bool]:
            job = s.get(Job, job_id)
            if job is None:
                raise NotFound(f"no job {job_id}")
            run = repo.active_run(s, job_id)
            if run is None:
                raise EngineError(f"job {job_id} has no pending or running run to cancel")
            run.cancel_requested = True
            s.add(run)
            if run.status == RunStatus.PENDING.value and run.ref is None:
                assert run.id is not None
                repo.transition(
                    s,
                    run.id,
                    RunStatus.KILLED,
                    engine_id=self.rt.engine_id,
                    reason="cancelled before it started",
                )
                return run, True
            return run, False

        run, done = await self.rt.db(self.rt.write(w))
        assert run.id is not None
        if done:
            self.rt.events.publish(RunChanged(run.id, run.job_id, RunStatus.KILLED.value))
        elif run.ref:
            ex = self.rt.executor(run.executor, run.host)
            await ex.kill(run.ref, self.rt.settings.cancel_grace_seconds)
        return await self.reads.run(run.id)
