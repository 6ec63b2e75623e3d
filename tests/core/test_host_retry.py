"""A host that cannot be reached when a run starts fails the run within the host's
connect_timeout, naming the host; a host lost once the run's container exists is
waited for during its reconnect_window (tests/reliability/test_unreachable_hosts.py
does it with real black holes; tests/reliability/test_infrastructure.py with real
ssh drops and daemon restarts). The hosts here are the process executor with
connection failures injected, so no Docker and no network are needed."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.executors.base import HostRefused, HostUnreachable
from picsellia_tui.engine.executors.process import ProcessExecutor
from picsellia_tui.engine.hostconfig import HostConfig
from picsellia_tui.engine.retry import with_host_retry
from tests.core.helpers import make_settings, model_file

pytestmark = pytest.mark.anyio


class FlakyHost(ProcessExecutor):
    """Runs like the process executor; `find` fails while `down_at_start`, and the
    first `drops` waits for the exit fail, as an unreachable host does."""

    def __init__(self, runs_root: Path, *, down_at_start: bool, drops: int = 0) -> None:
        super().__init__(runs_root)
        self.down_at_start = down_at_start
        self.drops = drops
        self.finds = 0
        self.waits = 0

    async def find(self, run_id: str) -> str | None:
        self.finds += 1
        if self.down_at_start:
            raise HostUnreachable("ssh://root@gpu-box: no answer within 1 s (connect_timeout)")
        return await super().find(run_id)

    async def wait(self, ref: str) -> int:
        self.waits += 1
        if self.waits <= self.drops:
            raise HostUnreachable("ssh://root@gpu-box: connection lost")
        return await super().wait(ref)


def _engine(tmp: Path, host: FlakyHost, **host_kw: float) -> Engine:
    local = HostConfig(name="local", url="local", **host_kw)  # type: ignore[arg-type]
    return Engine(
        make_settings(tmp, hosts=[local]), supervise=True, executor_factory=lambda k, h: host
    )


async def test_a_host_down_when_the_run_starts_fails_it_within_connect_timeout(
    tmp_path: Path,
) -> None:
    host = FlakyHost(tmp_path / "runs", down_at_start=True)
    # A long reconnect window: it must not apply to a run that never reached its host.
    async with _engine(tmp_path, host, connect_timeout=1, reconnect_window=600) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        job = await e.launch("test-copy", "m/v1", {"lines": "1"})
        with anyio.fail_after(60):  # a hang guard: it used to retry for 90 s
            run = await e.wait_run(job.runs[0].id)
    assert run.status == "failed"
    first = (run.error_summary or "").splitlines()[0]
    assert first == (
        "cannot reach host local: ssh://root@gpu-box: no answer within 1 s (connect_timeout)"
    )
    assert 1 <= host.finds <= 3, host.finds  # tried for connect_timeout, not the window


async def test_a_host_lost_mid_run_is_waited_for_during_the_reconnect_window(
    tmp_path: Path,
) -> None:
    host = FlakyHost(tmp_path / "runs", down_at_start=False, drops=2)
    async with _engine(tmp_path, host, connect_timeout=1, reconnect_window=60) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        job = await e.launch("test-copy", "m/v1", {"lines": "3"})
        with anyio.fail_after(60):
            run = await e.wait_run(job.runs[0].id)
    assert run.status == "succeeded", run.error_summary
    assert host.waits == 3  # two lost contacts waited out, then the exit


async def test_a_reconnect_window_of_zero_fails_the_run_at_the_first_loss(
    tmp_path: Path,
) -> None:
    host = FlakyHost(tmp_path / "runs", down_at_start=False, drops=1)
    async with _engine(tmp_path, host, connect_timeout=1, reconnect_window=0) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        job = await e.launch("test-copy", "m/v1", {"lines": "1", "sleep": "1"})
        with anyio.fail_after(60):
            run = await e.wait_run(job.runs[0].id)
    assert run.status == "failed"
    first = (run.error_summary or "").splitlines()[0]
    assert first == "lost the run: ssh://root@gpu-box: connection lost", first
    assert host.waits == 1


async def test_with_host_retry_stops_at_the_window_and_never_retries_a_refusal() -> None:
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise HostUnreachable("x: connection refused")

    with pytest.raises(HostUnreachable):
        await with_host_retry(down, 0)
    assert calls == 1
    calls = 0
    with pytest.raises(HostUnreachable):
        await with_host_retry(down, 1.0)  # 0.5 s apart: two or three attempts
    assert 2 <= calls <= 3, calls

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise HostRefused("x: host key unknown")

    calls = 0
    with pytest.raises(HostRefused):
        await with_host_retry(refused, 60)
    assert calls == 1


async def test_the_windows_are_settings_of_each_host(tmp_path: Path) -> None:
    from picsellia_tui.engine.retry import host_windows

    s = make_settings(
        tmp_path,
        hosts=[HostConfig(name="far", url="ssh://me@far", connect_timeout=3, reconnect_window=7)],
        default_host="far",
    )
    assert (host_windows(s, "far").start, host_windows(s, "far").lost) == (3, 7)
    assert (host_windows(s, "local").start, host_windows(s, "local").lost) == (10, 90)
    # a host dropped from the config since the launch: the defaults
    assert host_windows(s, "gone").lost == 90
