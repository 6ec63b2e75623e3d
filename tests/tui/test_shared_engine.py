"""The app as a client of the workspace's one engine (issue 12): two apps share
it and see each other's launches live; quitting an app leaves its runs
supervised; every app hears of every run's end."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from textual.pilot import Pilot

from picsellia_tui.engine.config import load_settings
from picsellia_tui.engine.control_client import socket_path
from picsellia_tui.engine.remote import RemoteHandle
from picsellia_tui.tui.app import PicselliaApp, terminal_notification
from picsellia_tui.tui.widgets.jobs import JobsTable
from tests.tui.helpers import FIXTURES, model_file, screen_text, until

pytestmark = pytest.mark.anyio
SIZE = (120, 36)
EXE = Path(sys.executable).with_name("picsellia-tui")


class Shared:
    """A workspace configured by the environment only (as a user's shell would):
    the app's settings can then be loaded by the background engine too."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.run_dir = Path(tempfile.mkdtemp(prefix="pt-run-"))  # short socket paths
        (root / "procs").mkdir()
        shutil.copytree(FIXTURES / "proc_copy", root / "procs" / "test-copy")
        self.env = {
            "PICSELLIA_TUI_DATA_DIR": str(root / "data"),
            "PICSELLIA_TUI_EXECUTOR": "process",
            "PICSELLIA_TUI_PROCESSINGS_DIR": str(root / "procs"),
            "PICSELLIA_TUI_ORGANIZATION": "acme",
            "PICSELLIA_TUI_ENGINE_IDLE_SECONDS": "30",
            "XDG_RUNTIME_DIR": str(self.run_dir),
        }

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(EXE), *args], capture_output=True, text=True, env=dict(os.environ), timeout=120
        )

    def engines(self) -> list[int]:
        log = self.root / "data" / "engine.log"
        if not log.exists():
            return []
        pids = [int(p) for p in re.findall(r"engine [^:\s]+:(\d+):\w+ serving", log.read_text())]
        return [p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)]

    def close(self) -> None:
        for pid in self.engines():
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while self.engines() and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(self.run_dir, ignore_errors=True)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shared]:
    for k in list(os.environ):
        if k.startswith("PICSELLIA_TUI_"):
            monkeypatch.delenv(k)
    w = Shared(tmp_path)
    for k, v in w.env.items():
        monkeypatch.setenv(k, v)
    r = w.cli("models", "import", "m/v1", str(model_file(tmp_path)), "--framework", "onnx")
    assert r.returncode == 0, r.stderr
    yield w
    w.close()


def job_rows(app: PicselliaApp) -> list[str]:
    table = app.screen_stack[0].query_one(JobsTable)
    return [str(r.key.value) for r in table.ordered_rows]


@contextlib.asynccontextmanager
async def two_apps() -> AsyncIterator[tuple[PicselliaApp, Pilot[None], PicselliaApp, Pilot[None]]]:
    """Two apps on the shared workspace (configured by the environment), each
    with its engine ready; both leave the engine at the end."""
    first = PicselliaApp(settings=load_settings, frozen_time=True)
    second = PicselliaApp(settings=load_settings, frozen_time=True)
    try:
        async with first.run_test(size=SIZE) as p1, second.run_test(size=SIZE) as p2:
            await until(p1, lambda: first.engine_ready)
            await until(p2, lambda: second.engine_ready)
            yield first, p1, second, p2
    finally:
        first.stop_engine()
        second.stop_engine()


async def test_two_apps_share_one_engine_and_see_each_others_launches(shared: Shared) -> None:
    async with two_apps() as (first, p1, second, p2):
        # Both are clients of the one background engine; neither runs its own.
        assert isinstance(first.handle, RemoteHandle)
        assert isinstance(second.handle, RemoteHandle)
        assert first.handle.engine_id == second.handle.engine_id
        # The engine logs "serving" after its socket answers: wait for the line.
        await until(p1, lambda: len(shared.engines()) == 1)
        await p1.press("3")
        await p2.press("3")

        async def launch(app: PicselliaApp, **params: Any) -> Any:
            return await app.engine_await(lambda e: e.launch("test-copy", "m/v1", params))

        job = await launch(first, lines=2, sleep=1)
        # The other app shows it, and its end, without anyone refreshing it.
        await until(p2, lambda: str(job.id) in job_rows(second))
        await until(
            p2,
            lambda: any(f"Job {job.id} succeeded" in n.title for n in second._notifications),
        )
        other = await launch(second, fail=True)
        await until(p1, lambda: str(other.id) in job_rows(first))
        await until(
            p1,
            lambda: any(f"Job {other.id} failed" in n.title for n in first._notifications),
        )
        assert "succeeded" in screen_text(first) or "failed" in screen_text(first)
    assert len(shared.engines()) == 1  # the apps left; the engine serves on until idle


async def test_quitting_the_app_mid_run_leaves_the_run_supervised(shared: Shared) -> None:
    app = PicselliaApp(settings=load_settings, frozen_time=True)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.engine_ready)
            job = await app.engine_await(
                lambda e: e.launch("test-copy", "m/v1", {"lines": 3, "sleep": 3})
            )
            await until(pilot, lambda: str(job.id) in job_rows(app))
            await pilot.press("q")
    finally:
        app.stop_engine()
    # No app is open: the background engine ends the run truthfully.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        data = json.loads(shared.cli("jobs", "show", str(job.id), "--json").stdout)
        if data["status"] != "running" and data["status"] != "pending":
            break
        await anyio.sleep(0.2)
    assert data["status"] == "succeeded"
    assert data["runs"][0]["output_version_id"] is not None
    log = shared.cli("jobs", "logs", str(job.id)).stdout.splitlines()
    assert log[-1] == "done" and "line 2" in log


async def test_the_app_survives_its_engine_being_killed(shared: Shared) -> None:
    app = PicselliaApp(settings=load_settings, frozen_time=True)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.engine_ready)
            assert isinstance(app.handle, RemoteHandle)
            # The engine logs "serving" after its socket answers: wait for the line.
            await until(pilot, lambda: len(shared.engines()) == 1)
            (pid,) = shared.engines()
            os.kill(pid, signal.SIGKILL)
            # The app starts another and goes on (its calls, its events).
            await until(pilot, lambda: shared.engines() and shared.engines() != [pid], 60)
            job = await app.engine_await(lambda e: e.launch("test-copy", "m/v1", {"lines": 1}))
            await until(
                pilot,
                lambda: any(f"Job {job.id} succeeded" in n.title for n in app._notifications),
                60,
            )
    finally:
        app.stop_engine()
    assert len(shared.engines()) == 1
    assert socket_path(Path(shared.env["PICSELLIA_TUI_DATA_DIR"]) / "picsellia.db").exists()


def test_terminal_notifications(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TMUX", raising=False)
    assert terminal_notification("off", "t", "b") == ""
    assert terminal_notification("bell", "t", "b") == "\a"
    assert terminal_notification("osc9", "Job 1", "done; ok") == "\x1b]9;Job 1: done, ok\x07"
    assert (
        terminal_notification("osc777", "Job 1", "x\x1b[31m\x07y") == "\x1b]777;notify;Job 1;xy\x07"
    )
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    assert terminal_notification("osc9", "J", "b") == "\x1bPtmux;\x1b\x1b]9;J: b\x07\x1b\\"
