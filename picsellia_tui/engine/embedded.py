"""The engine in its own thread and event loop, for a UI that must never block.

    handle = EngineHandle(settings)
    handle.start()                          # opens the workspace; raises EngineError
    handle.on_event(callback)               # called in the engine thread per event
    jobs = handle.call(lambda e: e.jobs(limit=50))   # from any other thread
    future = handle.submit(lambda e: e.jobs())       # to await from another loop
    handle.stop()

`call` blocks the calling thread; a UI awaits `submit`'s future instead
(`PicselliaApp.engine_await`). The engine's own work (supervision, log capture,
scheduling) runs on in its loop whatever the UI is doing. The portal, the calls
and the event callbacks are `PortalHandle`'s (engine/handle.py).
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import anyio
from anyio.from_thread import BlockingPortal

from picsellia_tui.engine.config import Settings
from picsellia_tui.engine.control import serve_control
from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.handle import PortalHandle


class EngineHandle(PortalHandle[Engine]):
    """An engine running in the handle's own thread (engine/handle.py)."""

    def __init__(self, settings: Settings, *, supervise: bool = True) -> None:
        super().__init__()
        self.settings = settings
        self.supervise = supervise
        self._engine: Engine | None = None
        self._serving: Future[None] | None = None
        self._stop_event: anyio.Event | None = None

    @property
    def engine(self) -> Engine:
        assert self._engine is not None, "EngineHandle.start() first"
        return self._engine

    def start(self) -> None:
        """Open the workspace in the engine thread; raises what opening raised."""

        # The engine's task group must be entered and left by the same task: one
        # long task of the portal holds it until stop().
        async def serve(*, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
            async with (
                Engine(self.settings, supervise=self.supervise) as engine,
                anyio.create_task_group() as tg,
            ):
                if self.supervise:  # commands hand their launches to this engine
                    await tg.start(serve_control, engine)
                stop = anyio.Event()
                task_status.started((engine, stop))
                await stop.wait()
                tg.cancel_scope.cancel()

        def begin(portal: BlockingPortal) -> None:
            self._serving, (self._engine, self._stop_event) = portal.start_task(serve)
            portal.start_task_soon(self._pump)

        self._start_portal(begin)

    async def _pump(self) -> None:
        stream = self.engine.subscribe()
        async with stream:
            async for event in stream:
                self._emit(event)

    def _stopping(self, portal: BlockingPortal) -> None:
        assert self._stop_event is not None and self._serving is not None
        portal.call(self._stop_event.set)
        self._serving.result(timeout=60)
