"""The engine's read side: database rows as views (for the app, the command line
and the socket), and waiting for a run to reach a state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from sqlmodel import Session, select

from picsellia_tui.engine import catalog, queries
from picsellia_tui.engine.errors import NotFound
from picsellia_tui.engine.events import LogAppended
from picsellia_tui.engine.runtime import Runtime
from picsellia_tui.engine.views import EngineStats, JobView, ProcessingView, RunView, VersionView
from picsellia_tui.storage.domain import RunStatus
from picsellia_tui.storage.models import Job, Model, ModelVersion, Run


class Reads:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def stats(self) -> EngineStats:
        counts = await self.rt.db(self.rt.read(queries.run_counts))
        s = self.rt.settings
        default = s.host(None)
        # A swarm host shows as such: its url alone ("local") would hide the cluster.
        where = f"swarm {default.name} ({default.url})" if default.kind == "swarm" else default.url
        return EngineStats(
            running=counts["running"],
            pending=counts["pending"],
            organization=s.organization,
            user=s.user,
            host=where if s.executor == "docker" else "local processes",
            executor=s.executor,
        )

    async def processings(self) -> list[ProcessingView]:
        return await self.rt.db(self.rt.read(queries.list_processings))

    async def processing(self, name: str) -> ProcessingView:
        def q(s: Session) -> ProcessingView:
            return queries.processing_view(catalog.find_processing(s, name), queries.Names(s))

        return await self.rt.db(self.rt.read(q))

    async def versions(self, files: bool = False) -> list[VersionView]:
        return await self.rt.db(self.rt.read(lambda s: queries.list_versions(s, files=files)))

    async def version(self, ref: str) -> VersionView:
        def q(s: Session) -> VersionView:
            _, v = catalog.find_version(s, ref)
            return queries.version_view(s, v, queries.Names(s), files=True)

        return await self.rt.db(self.rt.read(q))

    async def jobs(self, **kw: Any) -> list[JobView]:
        return await self.rt.db(self.rt.read(lambda s: queries.list_jobs(s, **kw)))

    async def latest_runs(self, job_ids: list[int]) -> dict[int, RunView]:
        """Each job's latest run (for a list's duration column), one query."""
        return await self.rt.db(self.rt.read(lambda s: queries.latest_runs(s, job_ids)))

    async def count_jobs(self, status: str | None = None) -> int:
        return await self.rt.db(self.rt.read(lambda s: queries.count_jobs(s, status)))

    async def job(self, job_id: int) -> JobView:
        def q(s: Session) -> JobView:
            j = s.get(Job, job_id)
            if j is None:
                raise NotFound(f"no job {job_id}")
            return queries.job_view(s, j, queries.Names(s), runs=True)

        return await self.rt.db(self.rt.read(q))

    async def compatible_processings(
        self, version_id: int
    ) -> list[tuple[ProcessingView, str | None]]:
        return await self.rt.db(
            self.rt.read(lambda s: queries.compat_matrix_for_version(s, version_id))
        )

    async def compatible_versions(self, processing_id: int) -> list[tuple[VersionView, str | None]]:
        return await self.rt.db(
            self.rt.read(lambda s: queries.compat_matrix_for_processing(s, processing_id))
        )

    async def version_name_free(self, model: str, name: str) -> bool:
        def q(s: Session) -> bool:
            m = s.exec(select(Model).where(Model.name == model)).first()
            if m is None:
                return True
            return (
                s.exec(
                    select(ModelVersion).where(
                        ModelVersion.model_id == m.id, ModelVersion.name == name
                    )
                ).first()
                is None
            )

        return await self.rt.db(self.rt.read(q))

    async def suggest_version_name(
        self, version_ref: str, processing: str, base: str | None = None
    ) -> str:
        """The name a launch of `processing` on this version gives its new version
        unless told (from `base` when given): free in the model, within the limit."""

        def q(s: Session) -> str:
            model, version = catalog.find_version(s, version_ref)
            proc = catalog.find_processing(s, processing)
            wanted = base or catalog.default_version_name(version.name, proc.name)
            return catalog.unique_version_name(s, model.id or 0, wanted)

        return await self.rt.db(self.rt.read(q))

    async def run(self, run_id: int) -> RunView:
        def q(s: Session) -> RunView:
            r = s.get(Run, run_id)
            if r is None:
                raise NotFound(f"no run {run_id}")
            return queries.single_run_view(s, r, queries.Names(s))

        return await self.rt.db(self.rt.read(q))

    async def wait_run(
        self, run_id: int, until: Callable[[RunView], bool] | None = None
    ) -> RunView:
        """Until the run is final (or `until` holds). Works across processes."""
        check = until or (lambda r: RunStatus(r.status).is_final)
        stream = self.rt.events.subscribe()
        try:
            while True:
                view = await self.run(run_id)
                if check(view):
                    return view
                # Re-read on a change of state, not on each batch of log lines.
                with anyio.move_on_after(0.5):
                    while isinstance(await stream.receive(), LogAppended):
                        pass
        finally:
            stream.close()
