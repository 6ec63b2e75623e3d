"""How views call the engine (`PicselliaApp.engine_await`, tui/widgets/base.py): a
worker cancelled while it waits (its dialog closed, a newer reload) stops waiting
but never cuts the engine's call short, as the thread workers that made the same
calls before never could."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

from picsellia_tui.tui.app import AppEngineHandle, PicselliaApp
from tests.tui.helpers import ready, until

pytestmark = pytest.mark.anyio
SIZE = (120, 36)


async def test_a_cancelled_worker_leaves_its_engine_call_to_finish(ws: AppEngineHandle) -> None:
    release = threading.Event()
    finished = threading.Event()

    async def slow_service(engine: Any) -> str:
        # Not cancellable while it runs (like a write transaction in its thread); a
        # cancellation would be delivered when it returns, before `finished`.
        await anyio.to_thread.run_sync(release.wait)
        await anyio.sleep(0)
        finished.set()
        return "done"

    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        worker = app.run_worker(app.engine_await(slow_service), exit_on_error=False)
        await pilot.pause(0.2)
        worker.cancel()
        await until(pilot, lambda: worker.is_finished)
        release.set()
        assert await anyio.to_thread.run_sync(lambda: finished.wait(10))
        # The engine still answers calls afterwards.
        assert (await app.engine_await(lambda e: e.processing("test-copy"))).name == "test-copy"
