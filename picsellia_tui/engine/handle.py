"""What the app's two handles on the engine share: an event loop in a thread of its
own (an anyio blocking portal) where calls on a target run, and the callbacks that
hear the engine's events.

`EngineHandle` (engine/embedded.py) targets an `Engine` it runs in that loop;
`RemoteHandle` (engine/remote.py) a `RemoteEngine` that asks the workspace's
background engine over its socket. Either way a UI never blocks its own loop:
`submit(fn)` gives a future to await (`asyncio.wrap_future`), `call(fn)` blocks
the calling thread (tests, scripts).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Generic, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from picsellia_tui.engine.events import Event

T = TypeVar("T")
E = TypeVar("E")


class PortalHandle(Generic[E]):
    """Calls `fn(target)` in the portal's loop; hands events to the callbacks.
    Subclasses say what the target is (`engine`), start the portal with `_start_portal`
    in their `start`, and undo what they started in `_stopping`."""

    def __init__(self) -> None:
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._callbacks: list[Callable[[Event], None]] = []
        self._lock = threading.Lock()

    @property
    def engine(self) -> E:
        raise NotImplementedError

    def _start_portal(self, setup: Callable[[BlockingPortal], T]) -> T:
        """Start the portal's thread and run `setup(portal)` (from this thread); if
        it raises, the thread ends again and the handle stays unstarted."""
        cm = start_blocking_portal()
        portal = cm.__enter__()
        try:
            result = setup(portal)
        except BaseException:
            cm.__exit__(None, None, None)
            raise
        self._portal_cm, self._portal = cm, portal
        return result

    def _stopping(self, portal: BlockingPortal) -> None:
        """Before the portal's thread ends: stop what `start` started in it."""

    def stop(self) -> None:
        if self._portal is None:
            return
        portal, self._portal = self._portal, None
        try:
            self._stopping(portal)
        finally:
            assert self._portal_cm is not None
            self._portal_cm.__exit__(None, None, None)

    # -- events ---------------------------------------------------------------------------

    def on_event(self, callback: Callable[[Event], None]) -> None:
        """`callback(event)` for each engine event, called in the portal's thread."""
        with self._lock:
            self._callbacks.append(callback)

    def _emit(self, event: Event) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for cb in callbacks:
            try:
                cb(event)
            except Exception:  # a UI callback must not kill the event pump
                pass

    # -- calls ----------------------------------------------------------------------------

    def _started(self) -> BlockingPortal:
        assert self._portal is not None, f"{type(self).__name__}.start() first"
        return self._portal

    def call(self, fn: Callable[[E], Awaitable[T]]) -> T:
        """`fn(engine)` in the portal's loop; blocks the calling thread."""
        portal = self._started()

        async def run() -> T:
            return await fn(self.engine)

        return portal.call(run)

    def submit(self, fn: Callable[[E], Awaitable[T]]) -> Future[T]:
        """Start `fn(engine)` in the portal's loop; its future, to await from another
        loop (`asyncio.wrap_future`) without holding a thread while it runs."""
        portal = self._started()

        async def run() -> T:
            return await fn(self.engine)

        return portal.start_task_soon(run)
