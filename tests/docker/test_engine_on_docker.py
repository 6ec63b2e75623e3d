"""The engine with the Docker executor, end to end on a real dockerd: launch,
live logs, outputs, failure, cancel, an engine SIGKILLed mid-run, two engines on
one database, hostile outputs, and a remote host over SSH."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest

from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.hosts import HostConfig
from picsellia_tui.storage.logfile.reader import LogReader
from tests.core.helpers import make_settings, model_file
from tests.dockerd import restart_dockerd
from tests.reliability.helpers import docker_by_stream, stored_by_stream

pytestmark = [pytest.mark.anyio, pytest.mark.docker]
ROOT = Path(__file__).resolve().parents[2]
IMAGE = "picsellia-tui/test-copy:1.0.0"


@pytest.fixture(scope="session")
def copy_image(docker_client: Any) -> str:
    docker_client.images.build(path=str(ROOT / "tests/fixtures/proc_copy"), tag=IMAGE, rm=True)
    return IMAGE


@pytest.fixture
def docker_settings(tmp_path: Path, copy_image: str) -> Any:
    return make_settings(tmp_path, executor="docker", keep_failed_containers=True)


async def _seed(e: Engine, tmp: Path) -> None:
    await e.import_version("m", "v1", [model_file(tmp)], framework="onnx")


def _containers(client: Any, workspace: str, job_id: int) -> list[Any]:
    labels = [f"picsellia-tui.job_id={job_id}", f"picsellia-tui.workspace={workspace}"]
    # sparse: no per-container inspect, which races with the engine removing them
    return client.containers.list(all=True, sparse=True, filters={"label": labels})


def _workspace_id(settings: Any) -> str:
    import sqlite3

    con = sqlite3.connect(settings.database_path)
    try:
        return str(con.execute("select value from meta where key='workspace_id'").fetchone()[0])
    finally:
        con.close()


async def test_live_log_success_failure_and_cancel(
    docker_settings: Any, tmp_path: Path, docker_client: Any
) -> None:
    async with Engine(docker_settings, supervise=True) as e:
        await _seed(e, tmp_path)
        job = await e.launch("test-copy", "m/v1", {"lines": "5", "sleep": "2"})
        run_id = job.runs[0].id
        run = await e.wait_run(run_id, lambda r: r.status == "running")
        # The first line is stored while the container still runs.
        with anyio.fail_after(20):
            while len(LogReader(Path(run.log_path))) == 0:
                await anyio.sleep(0.05)
        assert (await e.run(run_id)).status == "running"
        (c,) = _containers(docker_client, e.ws.workspace_id, job.id)
        c.reload()
        assert c.status == "running"
        hc = c.attrs["HostConfig"]
        assert hc["Privileged"] is False and "no-new-privileges" in str(hc["SecurityOpt"])
        assert c.attrs["Config"]["NetworkDisabled"] is True
        assert not any("docker.sock" in str(m) for m in c.attrs["Mounts"])
        run = await e.wait_run(run_id)
        assert run.status == "succeeded", run.error_summary
        v = await e.version(str(run.output_version_id))
        assert [f.path for f in v.files] == ["model.onnx"] and v.origin_job_id == job.id
        with anyio.fail_after(20):  # removed once its outputs are in
            while _containers(docker_client, e.ws.workspace_id, job.id):
                await anyio.sleep(0.1)
        job_image = (await e.job(job.id)).runs[-1].image_digest
        assert job_image and job_image.startswith("sha256:")

        bad = await e.launch("test-copy", "m/v1", {"fail": "true"})
        r = await e.wait_run(bad.runs[0].id)
        assert r.status == "failed" and r.exit_code == 1
        assert "Traceback (most recent call last)" in (r.error_summary or "")
        assert "RuntimeError: asked to fail" in (r.error_summary or "")
        assert (
            len(_containers(docker_client, e.ws.workspace_id, bad.id)) == 1
        )  # kept for inspection

        slow = await e.launch("test-copy", "m/v1", {"sleep": "120"})
        await e.wait_run(slow.runs[0].id, lambda r: r.status == "running")
        await e.cancel(slow.id)
        with anyio.fail_after(30):
            r = await e.wait_run(slow.runs[0].id)
        assert r.status == "killed"


async def test_missing_image_fails_at_once_with_build_hint(
    docker_settings: Any, tmp_path: Path
) -> None:
    procs = docker_settings.processings_dir
    toml = procs / "test-copy" / "processing.toml"
    toml.write_text(toml.read_text().replace(IMAGE, "picsellia-tui/never-built:0.0.1"))
    async with Engine(docker_settings, supervise=True) as e:
        await _seed(e, tmp_path)
        job = await e.launch("test-copy", "m/v1")
        with anyio.fail_after(90):
            r = await e.wait_run(job.runs[0].id)
        assert r.status == "failed"
        assert "picsellia-tui processings build test-copy" in (r.error_summary or "")


async def test_hostile_outputs_are_refused_and_blob_store_unchanged(
    docker_settings: Any, tmp_path: Path
) -> None:
    settings = docker_settings.model_copy(update={"output_quota": "1m"})
    blobs = settings.data_dir / "blobs"
    async with Engine(settings, supervise=True) as e:
        await _seed(e, tmp_path)
        before = sorted(p for p in blobs.rglob("*") if p.is_file())
        for mode, words in (("symlink", "link"), ("big", "quota")):
            job = await e.launch("test-copy", "m/v1", {"mode": mode})
            r = await e.wait_run(job.runs[0].id)
            assert r.status == "failed", mode
            assert (r.error_summary or "").startswith("outputs refused:"), r.error_summary
            assert words in (r.error_summary or "").lower(), r.error_summary
        assert sorted(p for p in blobs.rglob("*") if p.is_file()) == before
        assert len(await e.versions()) == 1


def _engine_script(tmp: Path, body: str) -> list[str]:
    code = textwrap.dedent(
        f"""
        import sys, json, anyio
        sys.path.insert(0, {str(ROOT)!r})
        from tests.core.helpers import make_settings
        from picsellia_tui.engine.core import Engine
        from pathlib import Path
        tmp = Path({str(tmp)!r})
        settings = make_settings(tmp, executor="docker", keep_failed_containers=True)
        """
    ) + textwrap.dedent(body)
    return [sys.executable, "-c", code]


@pytest.mark.slow
async def test_engine_sigkilled_container_keeps_running_log_equals_docker_logs(
    docker_settings: Any, tmp_path: Path, docker_client: Any
) -> None:
    async with Engine(docker_settings) as e:
        await _seed(e, tmp_path)
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen(
        _engine_script(
            tmp_path,
            f"""
            async def main():
                async with Engine(settings, supervise=True) as e:
                    # fail=true at the end keeps the container so docker logs can be compared
                    job = await e.launch("test-copy", "m/v1",
                                         {{"lines": "300", "sleep": "4", "fail": "true"}})
                    run = await e.wait_run(job.runs[0].id, lambda r: r.status == "running")
                    Path({str(ready)!r}).write_text(json.dumps(
                        {{"job": job.id, "run": run.id, "log": run.log_path}}))
                    await anyio.sleep(3600)
            anyio.run(main)
            """,
        )
    )
    with anyio.fail_after(60):
        while not ready.exists():
            await anyio.sleep(0.05)
    info = json.loads(ready.read_text())
    with anyio.fail_after(30):
        while len(LogReader(Path(info["log"]))) < 100:
            await anyio.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (c,) = _containers(docker_client, _workspace_id(docker_settings), info["job"])
    c.reload()
    assert c.status == "running"  # the container outlives the engine
    async with Engine(docker_settings, supervise=True) as e:
        with anyio.fail_after(60):
            run = await e.wait_run(info["run"])
        assert run.status == "failed" and run.exit_code == 1
    c.reload()
    # Per stream: a live run is followed through attach, so stdout and stderr lines
    # written at the same moment may be stored in another order than Docker's file.
    stored = stored_by_stream(run.log_path)
    assert stored == docker_by_stream(c)
    assert [t for t in stored["stdout"] if t.startswith("line ")] == [
        f"line {i}" for i in range(300)
    ]


async def test_two_engines_one_database_supervise_once(
    docker_settings: Any, tmp_path: Path
) -> None:
    import sqlite3

    async with (
        Engine(docker_settings, supervise=True) as a,
        Engine(docker_settings, supervise=True) as b,
    ):
        await _seed(a, tmp_path)
        job = await a.launch("test-copy", "m/v1", {"lines": "100", "sleep": "1"})
        with anyio.fail_after(60):
            run = await b.wait_run(job.runs[0].id)
        assert run.status == "succeeded"
        texts = [r.text for r in LogReader(Path(run.log_path)).records(0, 1000)]
        assert [t for t in texts if t.startswith("line ")] == [f"line {i}" for i in range(100)]
    con = sqlite3.connect(docker_settings.database_path)
    history = [
        s
        for (s,) in con.execute(
            "select status from run_event where run_id=? order by id", (run.id,)
        )
    ]
    assert history == ["pending", "running", "succeeded"]
    assert len(await_versions(con)) == 2


def await_versions(con: Any) -> list[Any]:
    return con.execute("select id from model_version").fetchall()


@pytest.mark.slow
async def test_remote_host_over_ssh(
    ssh_path: Any, tmp_path: Path, copy_image: str, docker_client: Any
) -> None:
    settings = make_settings(
        tmp_path,
        executor="docker",
        hosts=[HostConfig(name="gpu-box", url=ssh_path.url)],
        default_host="gpu-box",
    )
    async with Engine(settings, supervise=True) as e:
        await _seed(e, tmp_path)
        job = await e.launch("test-copy", "m/v1", {"lines": "20", "sleep": "1"})
        assert job.host == "gpu-box"
        run = await e.wait_run(job.runs[0].id, lambda r: r.status == "running")
        with anyio.fail_after(20):
            while len(LogReader(Path(run.log_path))) == 0:
                await anyio.sleep(0.05)
        run = await e.wait_run(job.runs[0].id)
        assert run.status == "succeeded", run.error_summary
        v = await e.version(str(run.output_version_id))
        assert v.files[0].path == "model.onnx"
        bad = await e.launch("test-copy", "m/v1", {"fail": "true"})
        r = await e.wait_run(bad.runs[0].id)
        assert r.status == "failed" and "asked to fail" in (r.error_summary or "")


@pytest.mark.slow
async def test_dockerd_restarted_mid_run_ends_truthfully(
    docker_settings: Any, tmp_path: Path
) -> None:
    async with Engine(docker_settings, supervise=True) as e:
        await _seed(e, tmp_path)
        job = await e.launch("test-copy", "m/v1", {"lines": "10", "sleep": "120"})
        run = await e.wait_run(job.runs[0].id, lambda r: r.status == "running")
        with anyio.fail_after(20):
            while len(LogReader(Path(run.log_path))) < 10:
                await anyio.sleep(0.05)
        await anyio.to_thread.run_sync(restart_dockerd)
        with anyio.fail_after(150):
            run = await e.wait_run(run.id)
        assert run.status == "failed"
        assert run.error_summary
        first = run.error_summary.splitlines()[0]
        assert "exited with code" in first or "lost the run" in first or "vanished" in first
        texts = [r.text for r in LogReader(Path(run.log_path)).records(0, 100)]
        assert [t for t in texts if t.startswith("line ")] == [f"line {i}" for i in range(10)]
