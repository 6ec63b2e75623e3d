"""What the engine's parts share: settings, identity, the open workspace, the event
stream, the executors, and the way to the database (worker threads, so a busy
SQLite never stalls the loop)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import anyio
from sqlmodel import Session

from picsellia_tui.engine.config import Settings
from picsellia_tui.engine.events import Broadcaster
from picsellia_tui.engine.executors.base import Executor
from picsellia_tui.engine.workspace import Workspace

if TYPE_CHECKING:
    from picsellia_tui.engine.picsellia_api.runs import ApiRuns

T = TypeVar("T")


class Runtime:
    def __init__(
        self,
        settings: Settings,
        engine_id: str,
        executor_factory: Callable[[str, str], Executor] | None = None,
    ) -> None:
        self.settings = settings
        self.engine_id = engine_id
        self.events = Broadcaster()
        self.limiter = anyio.CapacityLimiter(8)
        self.ws: Workspace  # set by the engine when it opens
        self.api: ApiRuns  # the local Picsellia API's runs, set by the engine
        self._executor_factory = executor_factory
        self._executors: dict[tuple[str, str], Executor] = {}
        self._wake = anyio.Event()

    # -- database ----------------------------------------------------------------

    async def db(self, fn: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(fn, limiter=self.limiter)

    def read(self, fn: Callable[[Session], T]) -> Callable[[], T]:
        def go() -> T:
            with self.ws.db.read() as s:
                return fn(s)

        return go

    def write(self, fn: Callable[[Session], T]) -> Callable[[], T]:
        return lambda: self.ws.db.write_retry(fn)

    # -- the scheduler's wake-up call ----------------------------------------------

    def wake(self) -> None:
        """Something changed that the scheduler should look at now (a new run, a
        freed slot, another process's write)."""
        self._wake.set()

    async def wait_wake(self, timeout: float) -> None:
        with anyio.move_on_after(timeout):
            await self._wake.wait()
        self._wake = anyio.Event()

    # -- executors -------------------------------------------------------------------

    def executor(self, kind: str, host: str) -> Executor:
        key = (kind, host)
        if key not in self._executors:
            if self._executor_factory is not None:
                self._executors[key] = self._executor_factory(kind, host)
            elif kind == "process":
                from picsellia_tui.engine.executors.process import ProcessExecutor

                self._executors[key] = ProcessExecutor(self.ws.runs_dir, host="local")
            elif self.settings.host(host).kind == "swarm":
                from picsellia_tui.engine.executors.swarm_executor import SwarmExecutor

                s = self.settings
                self._executors[key] = SwarmExecutor(
                    s.host(host),
                    self.engine_id,
                    default_memory=s.default_memory,
                    default_cpu=s.default_cpu,
                    pids_limit=s.pids_limit,
                    stop_grace_s=s.cancel_grace_seconds,
                )
            else:
                from picsellia_tui.engine.executors.docker_executor import DockerExecutor

                s = self.settings
                self._executors[key] = DockerExecutor(
                    s.host(host),
                    self.engine_id,
                    default_memory=s.default_memory,
                    default_cpu=s.default_cpu,
                    pids_limit=s.pids_limit,
                    keep_failed=s.keep_failed_containers,
                )
        return self._executors[key]

    async def close_executors(self) -> None:
        for ex in self._executors.values():
            with anyio.CancelScope(shield=True):
                await ex.aclose()
