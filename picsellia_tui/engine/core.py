"""The engine, as its callers see it: one object that opens the workspace, starts
the background tasks and answers queries and services. The work is done by its
parts, each in its own module:

- `reads.Reads`            rows as views; waiting for a run's state
- `registry.Registry`      import versions; create and build processings
- `launch.Launcher`        launch, re-run, cancel
- `scheduler.Scheduler`    claim pending runs, leases, adopt orphans (`reconcile`)
- `supervisor.RunSupervisor`  one run from start to final status (`runspec`,
                           `capture`, `ingest`)
- `runtime.Runtime`        what they share: settings, workspace, events, executors

Usage:
    async with Engine(settings) as engine:           # queries and services
    async with Engine(settings, supervise=True) ...  # + scheduler, reconcile, leases
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream

from picsellia_tui.engine import catalog, enginelog
from picsellia_tui.engine.config import Settings
from picsellia_tui.engine.events import Broadcaster, Event
from picsellia_tui.engine.executors.base import Executor
from picsellia_tui.engine.launch import Launcher
from picsellia_tui.engine.picsellia_api.runs import ApiRuns
from picsellia_tui.engine.reads import Reads
from picsellia_tui.engine.registry import Registry
from picsellia_tui.engine.runtime import Runtime
from picsellia_tui.engine.scheduler import Scheduler
from picsellia_tui.engine.supervisor import RunSupervisor
from picsellia_tui.engine.views import (
    BuildView,
    EngineStats,
    JobView,
    ProcessingUpdate,
    ProcessingView,
    RunView,
    VersionView,
)
from picsellia_tui.engine.workspace import Workspace
from picsellia_tui.storage import repo

log = logging.getLogger("picsellia_tui.engine")


class Engine:
    def __init__(
        self,
        settings: Settings,
        *,
        supervise: bool = False,
        engine_id: str | None = None,
        executor_factory: Callable[[str, str], Executor] | None = None,
    ) -> None:
        self.settings = settings
        self.supervise = supervise
        self.engine_id = engine_id or f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.rt = Runtime(settings, self.engine_id, executor_factory)
        self.events: Broadcaster = self.rt.events
        self.reads = Reads(self.rt)
        self.registry = Registry(self.rt, self.reads)
        self.launcher = Launcher(self.rt, self.reads)
        self.supervisor = RunSupervisor(self.rt)
        # Looked up at each run, so a patched RunSupervisor.supervise is seen.
        self.scheduler = Scheduler(self.rt, lambda run_id: self.supervisor.supervise(run_id))
        self._stack: AsyncExitStack | None = None
        self._tg: TaskGroup | None = None
        self.ws: Workspace
        self.sync_errors: list[str] = []
        self.api = self.rt.api = ApiRuns(self.rt, settings.organization, self._task_group)

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> Self:
        self.ws = self.rt.ws = await anyio.to_thread.run_sync(Workspace, self.settings)
        enginelog.attach(self.settings.data_dir)  # not the terminal of whoever runs us
        _, self.sync_errors = await self.rt.db(lambda: catalog.sync_public(self.ws))
        for err in self.sync_errors:
            log.warning("processing definition skipped: %s", err)
        self._stack = AsyncExitStack()
        self._tg = await self._stack.enter_async_context(anyio.create_task_group())
        self.scheduler.start(self._tg, supervise=self.supervise)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._tg is not None and self._stack is not None
        supervised = list(self.scheduler.supervised)  # cancelling empties it
        # The local Picsellia API first, while its task still runs: runs going on
        # without us see refused connections (retried), never a half-alive server.
        with anyio.CancelScope(shield=True):
            await self.api.aclose()
        self._tg.cancel_scope.cancel()
        # The caller's own exception propagates as it is (not wrapped in a group).
        await self._stack.__aexit__(None, None, None)
        # Leases are released so another engine takes over at once, not after a timeout.
        if supervised:
            with anyio.CancelScope(shield=True):
                await self.rt.db(lambda: self._release(supervised))
        await self.rt.close_executors()
        self.events.close()
        self.ws.close()
        enginelog.detach(self.settings.data_dir)

    def _task_group(self) -> TaskGroup:
        assert self._tg is not None
        return self._tg

    def _release(self, ids: list[int]) -> None:
        with self.ws.db.write() as s:
            for rid in ids:
                repo.release_lease(s, rid, self.engine_id)

    def executor(self, kind: str, host: str) -> Executor:
        return self.rt.executor(kind, host)

    def subscribe(self) -> MemoryObjectReceiveStream[Event]:
        return self.events.subscribe()

    # -- queries (reads.Reads) ------------------------------------------------------

    async def stats(self) -> EngineStats:
        return await self.reads.stats()

    async def processings(self) -> list[ProcessingView]:
        return await self.reads.processings()

    async def processing(self, name: str) -> ProcessingView:
        return await self.reads.processing(name)

    async def versions(self, files: bool = False) -> list[VersionView]:
        return await self.reads.versions(files)

    async def version(self, ref: str) -> VersionView:
        return await self.reads.version(ref)

    async def jobs(self, **kw: Any) -> list[JobView]:
        return await self.reads.jobs(**kw)

    async def latest_runs(self, job_ids: list[int]) -> dict[int, RunView]:
        return await self.reads.latest_runs(job_ids)

    async def count_jobs(self, status: str | None = None) -> int:
        return await self.reads.count_jobs(status)

    async def job(self, job_id: int) -> JobView:
        return await self.reads.job(job_id)

    async def run(self, run_id: int) -> RunView:
        return await self.reads.run(run_id)

    async def wait_run(
        self, run_id: int, until: Callable[[RunView], bool] | None = None
    ) -> RunView:
        return await self.reads.wait_run(run_id, until)

    async def compatible_processings(
        self, version_id: int
    ) -> list[tuple[ProcessingView, str | None]]:
        return await self.reads.compatible_processings(version_id)

    async def compatible_versions(self, processing_id: int) -> list[tuple[VersionView, str | None]]:
        return await self.reads.compatible_versions(processing_id)

    async def version_name_free(self, model: str, name: str) -> bool:
        return await self.reads.version_name_free(model, name)

    async def suggest_version_name(
        self, version_ref: str, processing: str, base: str | None = None
    ) -> str:
        return await self.reads.suggest_version_name(version_ref, processing, base)

    # -- registry services (registry.Registry) ----------------------------------------

    async def import_version(
        self,
        model: str,
        version: str,
        paths: list[Path],
        *,
        framework: str,
        labels: list[str] | None = None,
        tags: list[str] | None = None,
        metrics: dict[str, Any] | None = None,
        description: str = "",
    ) -> VersionView:
        return await self.registry.import_version(
            model,
            version,
            paths,
            framework=framework,
            labels=labels,
            tags=tags,
            metrics=metrics,
            description=description,
        )

    async def create_processing(
        self,
        folder: Path | None = None,
        *,
        definition: dict[str, Any] | None = None,
        template: str | None = None,
        dest: Path | None = None,
        template_kind: str = "default",
    ) -> ProcessingView:
        return await self.registry.create_processing(
            folder, definition=definition, template=template, dest=dest, template_kind=template_kind
        )

    async def plan_processing_update(self, name: str) -> ProcessingUpdate:
        return await self.registry.plan_update(name)

    async def update_processing(
        self, name: str, *, expect_hash: str | None = None
    ) -> ProcessingView:
        return await self.registry.update_processing(name, expect_hash=expect_hash)

    async def remove_processing(self, name: str) -> ProcessingView:
        return await self.registry.remove_processing(name)

    async def start_build(
        self, name: str, *, host: str | None = None, on_line: Callable[[str], None] | None = None
    ) -> BuildView:
        assert self._tg is not None
        return await self.registry.start_build(self._tg, name, host=host, on_line=on_line)

    async def build(self, build_id: int) -> BuildView:
        return self.registry.builds.view(build_id)

    async def wait_build(self, build_id: int) -> BuildView:
        return await self.registry.builds.wait(build_id)

    async def cancel_build(self, build_id: int) -> BuildView:
        """Stop a build under way (the daemon stops it); returns once it has ended."""
        return await self.registry.builds.cancel(build_id)

    async def build_processing(
        self, name: str, *, host: str | None = None, on_line: Callable[[str], None] | None = None
    ) -> tuple[str, str]:
        assert self._tg is not None
        return await self.registry.build_processing(self._tg, name, host=host, on_line=on_line)

    async def image_presence(self, host: str | None = None) -> dict[str, bool]:
        return await self.registry.image_presence(host)

    async def swarm_node_count(self, host: str) -> int | None:
        return await self.registry.swarm_node_count(host)

    # -- launch, re-run, cancel (launch.Launcher) ---------------------------------------

    async def launch(
        self,
        processing: str,
        version_ref: str,
        params: Mapping[str, Any] | None = None,
        *,
        output_version_name: str | None = None,
        host: str | None = None,
    ) -> JobView:
        return await self.launcher.launch(
            processing, version_ref, params, output_version_name=output_version_name, host=host
        )

    async def rerun(self, job_id: int, *, same_image: bool = False) -> RunView:
        return await self.launcher.rerun(job_id, same_image=same_image)

    async def cancel(self, job_id: int) -> RunView:
        return await self.launcher.cancel(job_id)

    # -- reconciliation (scheduler.Scheduler, reconcile) -----------------------------------

    async def reconcile(self) -> list[int]:
        return await self.scheduler.reconcile()

    def prune_logs(self) -> int:
        return self.scheduler.prune_logs()
