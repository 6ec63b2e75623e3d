"""A real workspace for the interface tests: temp data dir, the process executor
(processings run as local subprocesses: fast, no Docker), the test processing."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from picsellia_tui.engine.config import Settings
from picsellia_tui.tui.app import AppEngineHandle, PicselliaApp

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def make_settings(root: Path, **kw: Any) -> Settings:
    procs = root / "processings"
    if not procs.exists():
        procs.mkdir(parents=True)
        shutil.copytree(FIXTURES / "proc_copy", procs / "test-copy")
    values: dict[str, Any] = dict(
        data_dir=root / "data",
        executor="process",
        processings_dir=procs,
        organization="acme",
        user="tester",
        cancel_grace_seconds=2.0,
        heartbeat_seconds=0.5,
        lease_timeout_seconds=3.0,
        reconcile_seconds=1.0,
        concurrency=4,
        export_dir=root / "exports",
    )
    values.update(kw)
    return Settings(**values)


def model_file(root: Path, name: str = "model.onnx", content: bytes = b"fake onnx") -> Path:
    p = root / "src" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content)
    return p


@contextmanager
def workspace(root: Path, seed: bool = True, **kw: Any) -> Iterator[AppEngineHandle]:
    handle = AppEngineHandle(make_settings(root, **kw), supervise=True)
    handle.start()
    try:
        if seed:
            f = model_file(root)
            handle.call(
                lambda e: e.import_version(
                    "m", "v1", [f], framework="onnx", tags=["base"], metrics={"accuracy": 0.91}
                )
            )
        yield handle
    finally:
        handle.stop()


def make_app(handle: AppEngineHandle, frozen: bool = True) -> PicselliaApp:
    return PicselliaApp(handle, frozen_time=frozen)


def wait_for(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting")


def screen_text(app: Any) -> str:
    """The screen as plain text (what a terminal would show), for assertions."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


async def until(pilot: Any, check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Let the app run until `check()` is true (engine work happens meanwhile)."""
    from textual.css.query import NoMatches

    for _ in range(int(timeout / 0.05)):
        try:
            value = check()
        except NoMatches:  # the screen is still composing
            value = None
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError(f"timed out; screen was:\n{screen_text(pilot.app)}")


async def ready(pilot: Any) -> None:
    """The main screen is up, its lazily mounted views too, and has loaded the
    processings."""
    from picsellia_tui.tui.screens.main import MainScreen
    from picsellia_tui.tui.widgets.jobs import JobsPane
    from picsellia_tui.tui.widgets.versions import VersionsPane

    def loaded() -> bool:
        screen = pilot.app.screen_stack[0] if pilot.app.screen_stack else None
        return (
            isinstance(screen, MainScreen)
            and screen.query_one("#proc-table").row_count >= 4
            and bool(screen.query(JobsPane))
            and bool(screen.query(VersionsPane))
        )

    await until(pilot, loaded)
