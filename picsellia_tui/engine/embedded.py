"""The engine in its own thread and event loop, for a UI that must never block.

    handle = EngineHandle(settings)
    handle.start()                          # opens the workspace; raises EngineError
    handle.on_event(callback)               # called in the engine thread per event
    jobs = handle.call(lambda e: e.jobs(limit=50))   # from any other thread
    handle.stop()

`call` blocks the calling thread, so a UI calls it from its worker threads. The
engine's own work (supervision, log capture, scheduling) runs on in its loop
whatever the UI is doing.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from picsellia_tui.engine.config import Settings
from picsellia_tui.engine.control import serve_control
from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.events import Event

T = TypeVar("T")


class EngineHandle:
    def __init__(self, settings: Settings, *, supervise: bool = True) -> None:
        self.settings = settings
        self.supervise = supervise
        self._portal_cm: Any = None
        self._portal: BlockingPortal | None = None
        self._engine: Engine | None = None
        self._callbacks: list[Callable[[Event], None]] = []
        self._lock = threading.Lock()
        self._serving: Future[None] | None = None
        self._stop_event: anyio.Event | None = None

    @property
    def engine(self) -> Engine:
        assert self._engine is not None, "EngineHandle.start() first"
        return self._engine

    def start(self) -> None:
        """Open the workspace in the engine thread; raises what opening raised."""
        self._portal_cm = start_blocking_portal()
        portal = self._portal_cm.__enter__()

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

        try:
            self._serving, (engine, self._stop_event) = portal.start_task(serve)
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            raise
        self._portal = portal
        self._engine = engine
        portal.start_task_soon(self._pump)

    async def _pump(self) -> None:
        stream = self.engine.subscribe()
        async with stream:
            async for event in stream:
                with self._lock:
                    callbacks = list(self._callbacks)
                for cb in callbacks:
                    try:
                        cb(event)
                    except Exception:  # a UI callback must not kill the pump
                        pass

    def on_event(self, callback: Callable[[Event], None]) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def call(self, fn: Callable[[Engine], Awaitable[T]]) -> T:
        assert self._portal is not None, "EngineHandle.start() first"

        async def run() -> T:
            return await fn(self.engine)

        return self._portal.call(run)

    def submit(self, fn: Callable[[Engine], Awaitable[T]]) -> Future[T]:
        """Start a call in the engine's loop; its future, to await from another loop
        (`asyncio.wrap_future`) without holding a thread while it runs."""
        assert self._portal is not None, "EngineHandle.start() first"

        async def run() -> T:
            return await fn(self.engine)

        return self._portal.start_task_soon(run)

    def stop(self) -> None:
        if self._portal is None:
            return
        portal, self._portal = self._portal, None
        try:
            assert self._stop_event is not None and self._serving is not None
            portal.call(self._stop_event.set)
            self._serving.result(timeout=60)
        finally:
            self._portal_cm.__exit__(None, None, None)
