"""The engine in its own thread, as the TUI uses it."""

from __future__ import annotations

import threading
from pathlib import Path

from picsellia_tui.engine.embedded import EngineHandle
from picsellia_tui.engine.events import RunChanged
from tests.core.helpers import make_settings, model_file


def test_engine_handle_runs_jobs_and_delivers_events(tmp_path: Path) -> None:
    handle = EngineHandle(make_settings(tmp_path))
    handle.start()
    done = threading.Event()
    statuses: list[str] = []

    def on_event(ev: object) -> None:
        if isinstance(ev, RunChanged):
            statuses.append(ev.status)
            if ev.status in ("succeeded", "failed", "killed"):
                done.set()

    handle.on_event(on_event)
    try:
        handle.call(lambda e: e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx"))
        job = handle.call(lambda e: e.launch("test-copy", "m/v1", {"lines": "2"}))
        assert done.wait(30), statuses
        assert statuses[-1] == "succeeded"
        assert handle.call(lambda e: e.job(job.id)).status == "succeeded"
    finally:
        handle.stop()
    handle.stop()  # idempotent
