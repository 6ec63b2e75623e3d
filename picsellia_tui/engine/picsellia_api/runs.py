"""The engine's side of the local Picsellia API: grants, environment, log lines.

The supervisor calls `prepare` before it starts (or re-adopts) a run whose
processing has `[picsellia] api = true`, `attach`/`detach` around capturing its
log (the token stops working at `detach`: the run has exited), `disagreement`
before writing its final status, and `revoke` when it stops supervising it. The HTTP server itself
(starlette, uvicorn) is imported and started only when the first such run starts:
nothing of it loads for other runs or on the command line's light paths.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from sqlmodel import col, select

from picsellia_tui.engine.events import Broadcaster, RunChanged, VersionCreated
from picsellia_tui.engine.executors.base import ApiAccess, LogLine
from picsellia_tui.engine.picsellia_api.runfolder import files_dir
from picsellia_tui.storage.models import Job, ModelVersion, Run, RunEvent

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from picsellia_tui.engine.logcapture import LogSink
    from picsellia_tui.engine.picsellia_api.server import ApiService
    from picsellia_tui.engine.workspace import Workspace

log = logging.getLogger(__name__)


def uses_api(job: Job) -> bool:
    section = job.processing_snapshot.get("picsellia") or {}
    return bool(section.get("api"))


class _Owner(Protocol):
    ws: Workspace
    events: Broadcaster

    async def db(self, fn: Callable[[], Any]) -> Any: ...


class ApiRuns:
    def __init__(
        self, owner: _Owner, organization: str, task_group: Callable[[], TaskGroup]
    ) -> None:
        self._owner = owner
        self._organization = organization
        self._task_group = task_group
        self._service: ApiService | None = None
        self._sinks: dict[int, LogSink] = {}
        self._pending: dict[int, list[LogLine]] = {}

    @property
    def service(self) -> ApiService | None:
        return self._service

    def _made(self) -> ApiService:
        if self._service is None:
            from picsellia_tui.engine.picsellia_api.server import ApiService

            ws = self._owner.ws
            self._service = ApiService(
                ws,
                self._organization,
                self,
                key=ws.derive_key("picsellia-api-tokens"),
                quota_bytes=ws.settings.output_quota_bytes,
            )
        return self._service

    async def created_version(self, run: Run, job: Job) -> int | None:
        """The last version the run created through the API (its output), if any."""

        def q() -> int | None:
            with self._owner.ws.db.read() as s:
                made = s.exec(
                    select(ModelVersion.id)
                    .where(
                        ModelVersion.origin_job_id == job.id,
                        ModelVersion.id != job.target_version_id,
                        col(ModelVersion.created_at) >= run.created_at,
                    )
                    .order_by(col(ModelVersion.id).desc())
                ).first()
                return made

        found: int | None = await self._owner.db(q)
        return found

    async def prepare(
        self, run: Run, job: Job, listen: tuple[str, int] | None = None
    ) -> tuple[ApiAccess, dict[str, str]]:
        """The run's grant (made again after an engine restart: same token), where
        the API is, and the environment Picsellia's SDK and templates read.
        `listen`: also serve on that TCP address (a cluster's tasks reach it there)."""
        assert run.id is not None and job.id is not None
        service = self._made()
        run_id, job_id, target = run.id, job.id, job.target_version_id

        def q() -> tuple[int, set[int]]:
            with self._owner.ws.db.read() as s:
                version = s.get(ModelVersion, target)
                assert version is not None
                made = s.exec(
                    select(ModelVersion.id).where(
                        ModelVersion.origin_job_id == job_id,
                        col(ModelVersion.created_at) >= run.created_at,
                    )
                )
                return version.model_id, {v for v in made if v is not None and v != target}

        model_id, created = await self._owner.db(q)
        token = service.grant(
            run_id=run_id,
            job_id=job_id,
            target_version_id=target,
            model_id=model_id,
            created_at=run.created_at.isoformat(),
            created_versions=created,
        )
        env = {
            "api_token": token,
            "organization_id": service.store.org_id,
            "organization_name": service.store.org_name,
            "job_id": service.ids.encode("job", job_id),
        }
        # Served only once the grant exists: a run re-adopted by a new engine must
        # never get a 403 for a token that is about to be valid again.
        endpoint = await service.start(self._task_group())
        if listen is not None:
            await service.listen(listen)
        access = ApiAccess(
            endpoint.socket_dir,
            endpoint.tcp_url,
            token=token,
            files_dir=files_dir(self._owner.ws.scratch_dir, run_id),
        )
        return access, env

    # ------------------------------------------------------------------ log lines

    async def attach(self, run_id: int, sink: LogSink) -> None:
        self._sinks[run_id] = sink
        pending = self._pending.pop(run_id, [])
        if pending:
            await sink.add(pending)

    async def detach(self, run_id: int) -> None:
        """The run has exited: its token stops working now (before its final status
        is written), and the progress line still held joins its log."""
        sink = self._sinks.pop(run_id, None)
        if self._service is not None:
            joblog = self._service.api.joblogs.get(run_id)
            held = joblog.flush() if joblog is not None else []
            self.revoke(run_id)
            if held and sink is not None:
                await sink.add(held)

    # ------------------------------------------------------ hooks (from the API)

    async def log_lines(self, run_id: int, lines: list[LogLine]) -> None:
        sink = self._sinks.get(run_id)
        if sink is None:  # posted before the engine follows the run: kept until then
            self._pending.setdefault(run_id, []).extend(lines)
            return
        await sink.add(lines)

    async def reported(self, run_id: int, status: str) -> None:
        def q() -> Run | None:
            with self._owner.ws.db.read() as s:
                return s.get(Run, run_id)

        run = await self._owner.db(q)
        if run is not None:
            self._owner.events.publish(RunChanged(run_id, run.job_id, run.status))

    async def version_changed(self, version_id: int) -> None:
        service = self._service
        if service is None:
            return
        model, name = await self._owner.db(lambda: service.store.version_names(version_id))
        self._owner.events.publish(VersionCreated(version_id, model, name))

    # ------------------------------------------------------------------ the end

    async def disagreement(self, run_id: int, exit_code: int) -> str | None:
        """What to add to the run's summary when the last final status the
        processing reported (succeed/fail) disagrees with its exit code, which
        decides. Read from the run's history, so it holds across engine restarts."""
        from picsellia_tui.engine.picsellia_api.store import REPORT_REASON

        def q() -> list[str]:
            with self._owner.ws.db.read() as s:
                rows = s.exec(
                    select(RunEvent.reason)
                    .where(RunEvent.run_id == run_id)
                    .where(col(RunEvent.reason).startswith(REPORT_REASON))
                    .order_by(col(RunEvent.id))
                ).all()
                return [r.removeprefix(REPORT_REASON) for r in rows if r]

        finals = [r for r in await self._owner.db(q) if r != "RUNNING"]
        if not finals:
            return None
        said = finals[-1]
        if (said == "SUCCEEDED") == (exit_code == 0):
            return None
        return (
            f"the processing reported {said} through the Picsellia API, but exited "
            f"{exit_code}; the exit code decides"
        )

    def revoke(self, run_id: int) -> None:
        self._sinks.pop(run_id, None)
        self._pending.pop(run_id, None)
        if self._service is not None:
            self._service.revoke(run_id)

    async def aclose(self) -> None:
        if self._service is None:
            return

        def active() -> bool:
            with self._owner.ws.db.read() as s:
                found = s.exec(
                    select(Run.id).where(col(Run.status).in_(("pending", "running")))
                ).first()
                return found is not None

        with contextlib.suppress(Exception):
            # Runs that outlive this engine keep the socket's folder (their relays
            # mount it); otherwise nothing of the API stays behind.
            await self._service.stop(keep_dir=await self._owner.db(active))
