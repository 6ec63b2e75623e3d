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
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from picsellia_tui.engine.config import Settings
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

    @property
    def engine(self) -> Engine:
        assert self._engine is not None, "EngineHandle.start() first"
        return self._engine

    def start(self) -> None:
        self._portal_cm = start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        engine = Engine(self.settings, supervise=self.supervise)
        try:
            self._portal.call(engine.__aenter__)
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            self._portal = None
            raise
        self._engine = engine
        self._portal.start_task_soon(self._pump)

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

    def stop(self) -> None:
        if self._portal is None:
            return
        portal, self._portal = self._portal, None
        try:
            if self._engine is not None:
                portal.call(self._engine.__aexit__, None, None, None)
        finally:
            self._portal_cm.__exit__(None, None, None)
