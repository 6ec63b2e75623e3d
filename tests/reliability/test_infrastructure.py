"""Infrastructure faults: the log directory on a full filesystem (a small tmpfs), the
SSH connection to a remote Docker host dropped mid-run, dockerd restarted mid-run.
Each run ends with its true status and its whole log; the user gets one clear line;
the app stays usable."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from picsellia_tui.engine import capture
from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.executors.docker_executor import DockerExecutor
from picsellia_tui.engine.hosts import HostConfig
from picsellia_tui.storage.logfile.reader import LogReader
from tests.dockerd import restart_dockerd
from tests.reliability.helpers import (
    Tally,
    docker_by_stream,
    docker_log_lines,
    expected_stderr_head,
    expected_stdout,
    history_problems,
    integrity,
    lines_lost,
    make_settings,
    message_problem,
    model_file,
    stored_by_stream,
)

pytestmark = pytest.mark.anyio
AREA = "crashes"


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], check=True
    )
    try:
        yield path
    finally:
        for _ in range(50):
            if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:  # still busy (a file left open): detach it rather than leave it mounted
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _grow(path: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


def _log(path: str) -> tuple[list[str], list[str]]:
    with LogReader(Path(path)) as r:
        recs = r.records(0)
    return [x.text for x in recs if x.stream == "stdout"], [
        x.text for x in recs if x.stream == "stderr"
    ]


async def test_full_log_disk_mid_run_clear_error_state_kept_log_whole_once_freed(
    tmp_path: Path, tally: Tally
) -> None:
    s = make_settings(tmp_path)
    with small_tmpfs(s.data_dir / "logs", "64k") as logs:
        async with Engine(s, supervise=True) as e:
            await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
            job = await e.launch("rel-probe", "m/v1", {"lines": 4000, "sleep": 3})
            rid = job.runs[0].id
            tally.fault(AREA)
            tally.hit(AREA)
            with anyio.fail_after(30):  # the disk fills up: one clear line, still running
                while not ((r := await e.run(rid)).error_summary or "").startswith("cannot store"):
                    await anyio.sleep(0.1)
            assert r.status == "running", r
            assert "No space left on device" in (r.error_summary or "")
            assert message_problem(r.error_summary or "") is None
            # The app is usable meanwhile: queries, another launch, a cancel.
            assert (await e.job(job.id)).status == "running"
            other = await e.launch("rel-probe", "m/v1", {"sleep": 30})
            await e.cancel(other.id)
            _grow(logs, "32m")  # room again: the log catches up, nothing lost
            with anyio.fail_after(60):
                run = await e.wait_run(rid)
            assert run.status == "succeeded" and not run.error_summary, run
            out, err = _log(run.log_path)
            want = expected_stdout(job.id, rid, 1, 4000)
            lost = lines_lost(out, want) + lines_lost(err, expected_stderr_head(4000))
            tally.lost(AREA, lost)
            assert out == want and err == expected_stderr_head(4000)
            assert (await e.wait_run((await e.job(other.id)).runs[0].id)).status == "killed"
            tally.survived(AREA)
    assert integrity(s.database_path) == "ok" and not history_problems(s.database_path)


@pytest.mark.docker
async def test_log_disk_full_until_the_end_run_true_status_container_kept(
    tmp_path: Path,
    tally: Tally,
    probe_image: str,
    docker_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    workspace_containers: list[str],
) -> None:
    monkeypatch.setattr(capture, "LOG_GIVE_UP_S", 2.0)
    s = make_settings(tmp_path, executor="docker")
    with small_tmpfs(s.data_dir / "logs", "64k") as logs:
        async with Engine(s, supervise=True) as e:
            workspace_containers.append(e.ws.workspace_id)
            await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
            job = await e.launch("rel-probe", "m/v1", {"lines": 4000})
            tally.fault(AREA)
            tally.hit(AREA)
            with anyio.fail_after(90):
                run = await e.wait_run(job.runs[0].id)
            # True status and outputs: the run itself went fine.
            assert run.status == "succeeded" and run.exit_code == 0, run
            assert run.output_version_id is not None
            summary = run.error_summary or ""
            assert summary.startswith("log incomplete: cannot store the log in"), summary
            assert "No space left on device" in summary and message_problem(summary) is None
            # Nothing lost for good: the container keeps the whole log.
            (c,) = docker_client.containers.list(
                all=True, filters={"label": f"picsellia-tui.workspace={e.ws.workspace_id}"}
            )
            assert c.id[:12] in summary
            theirs = docker_log_lines(c)
            assert [t for t in theirs if t.startswith("line ")] == [
                f"line {i}" for i in range(4000)
            ]
            # What was stored is a clean prefix of it, per stream (no torn or doubled
            # record).
            ours_by, theirs_by = stored_by_stream(run.log_path), docker_by_stream(c)
            for k in ours_by:
                assert ours_by[k] == theirs_by[k][: len(ours_by[k])]
            # Batches are written whole or not at all: when the first batch the
            # attach delivered is already larger than the free space, the prefix
            # is empty.
            stored = sum(map(len, ours_by.values()))
            assert stored < len(theirs)
            # The app stays usable; once there is room, runs log as usual.
            _grow(logs, "32m")
            again = await e.launch("rel-probe", "m/v1", {"lines": 5})
            with anyio.fail_after(60):
                r2 = await e.wait_run(again.runs[0].id)
            assert r2.status == "succeeded" and not r2.error_summary
            tally.survived(AREA)
    assert integrity(s.database_path) == "ok" and not history_problems(s.database_path)


# --------------------------------------------------------------------------- ssh drop


def _our_ssh_children() -> list[int]:
    """Pids of `ssh ... docker system dial-stdio` processes this test process started."""
    me = os.getpid()
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == me and any(b"dial-stdio" in part for part in cmd):
            out.append(int(d.name))
    return out


@pytest.mark.docker
@pytest.mark.slow
async def test_ssh_connection_dropped_mid_run_engine_reconnects_log_whole(
    tmp_path: Path,
    ssh_path: Any,
    probe_image: str,
    tally: Tally,
    docker_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    workspace_containers: list[str],
) -> None:
    kept: list[str] = []

    async def keep(self: Any, ref: str) -> None:
        kept.append(ref)

    monkeypatch.setattr(DockerExecutor, "remove", keep)
    s = make_settings(
        tmp_path,
        executor="docker",
        hosts=[HostConfig(name="gpu-box", url=ssh_path.url)],
        default_host="gpu-box",
    )
    async with Engine(s, supervise=True) as e:
        workspace_containers.append(e.ws.workspace_id)
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        job = await e.launch("rel-probe", "m/v1", {"lines": 120, "interval": 0.05})
        rid = job.runs[0].id
        run = await e.wait_run(rid, lambda r: r.status == "running")
        for threshold in (20, 70):  # twice: mid-log, each time every ssh connection
            with anyio.fail_after(60):
                while len(LogReader(Path(run.log_path))) < threshold:
                    await anyio.sleep(0.05)
            pids = _our_ssh_children()
            assert pids, "no ssh connection to drop"
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            tally.fault(AREA)
        tally.hit(AREA)
        with anyio.fail_after(120):
            run = await e.wait_run(rid)
        assert run.status == "succeeded", run.error_summary
    out, err = _log(run.log_path)
    want = expected_stdout(job.id, rid, 1, 120)
    lost = lines_lost(out, want) + lines_lost(err, expected_stderr_head(120))
    tally.lost(AREA, lost)
    assert out == want and err == expected_stderr_head(120)
    assert stored_by_stream(run.log_path) == docker_by_stream(docker_client.containers.get(kept[0]))
    tally.survived(AREA)
    assert integrity(s.database_path) == "ok" and not history_problems(s.database_path)


# ------------------------------------------------------------------------ dockerd restart


@pytest.mark.docker
@pytest.mark.slow
async def test_dockerd_restarted_mid_run_status_true_log_equals_docker_logs(
    tmp_path: Path,
    probe_image: str,
    tally: Tally,
    docker_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    workspace_containers: list[str],
) -> None:
    """One run only: restarting the daemon disturbs everything else using it."""
    if os.environ.get("RELIABILITY_NO_DOCKERD_RESTART") == "1":
        pytest.skip("RELIABILITY_NO_DOCKERD_RESTART=1")
    kept: list[str] = []

    async def keep(self: Any, ref: str) -> None:
        kept.append(ref)

    monkeypatch.setattr(DockerExecutor, "remove", keep)
    s = make_settings(tmp_path, executor="docker")
    async with Engine(s, supervise=True) as e:
        workspace_containers.append(e.ws.workspace_id)
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        job = await e.launch("rel-probe", "m/v1", {"lines": 30, "sleep": 300})
        rid = job.runs[0].id
        run = await e.wait_run(rid, lambda r: r.status == "running")
        with anyio.fail_after(30):
            while len(LogReader(Path(run.log_path))) < 30:
                await anyio.sleep(0.05)
        tally.fault(AREA)
        tally.hit(AREA)
        await anyio.to_thread.run_sync(restart_dockerd)
        with anyio.fail_after(150):
            run = await e.wait_run(rid)
        # The daemon stopped the container: the run failed, and says so in one line.
        first = (run.error_summary or "").splitlines()[0]
        assert run.status == "failed", run
        assert "exited with code" in first or "lost the run" in first, first
        assert message_problem(first) is None
        # The app is usable right after: a new run on the restarted daemon.
        again = await e.launch("rel-probe", "m/v1", {"lines": 3})
        with anyio.fail_after(60):
            assert (await e.wait_run(again.runs[0].id)).status == "succeeded"
    c = docker_client.containers.get(run.ref)
    with LogReader(Path(run.log_path)) as r:
        ours = [x.text for x in r.records(0)]
    ours_by, theirs_by = stored_by_stream(run.log_path), docker_by_stream(c)
    tally.lost(AREA, sum(lines_lost(ours_by[k], theirs_by[k]) for k in ours_by))
    assert ours_by == theirs_by
    assert [t for t in ours if t.startswith("line ")] == [f"line {i}" for i in range(30)]
    tally.survived(AREA)
    assert integrity(s.database_path) == "ok" and not history_problems(s.database_path)
