"""Runs on a Docker Swarm (issue 15), on a single-node Swarm made on the test
dockerd by a session fixture (`docker swarm init --advertise-addr 127.0.0.1` when
the daemon is not a manager yet; the swarm is left at the end, so the other
Docker tests run on a daemon in swarm mode too).

The engine serves its API on the default bridge's gateway (where a task on this
node reaches the host); the tasks get their files through it, never through a
bind mount or a shared folder (checked on the service spec).
"""

from __future__ import annotations

import contextlib
import hashlib
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
from picsellia_tui.engine.executors.swarm_executor import service_spec_mounts
from picsellia_tui.storage.logfile.reader import LogReader
from tests.core.helpers import model_file
from tests.docker.swarm_env import ROOT, as_async, copy_image, swarm
from tests.docker.swarm_env import run_containers as _containers
from tests.docker.swarm_env import services as _services
from tests.docker.swarm_env import swarm_settings_for as _settings
from tests.docker.swarm_env import wait_for as _wait_for

__all__ = ["copy_image", "swarm"]  # session fixtures of swarm_env, used here

pytestmark = [pytest.mark.anyio, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(300)]
NODE_LABEL = "ptui-test-swarm-ready"


@pytest.fixture
def swarm_settings(tmp_path: Path, docker_client: Any, swarm: str, copy_image: str) -> Any:
    return _settings(tmp_path, docker_client)


async def test_run_on_swarm_files_through_the_api_no_bind_mount(
    swarm_settings: Any, tmp_path: Path, docker_client: Any
) -> None:
    src = model_file(tmp_path, b"swarm model bytes")
    async with Engine(swarm_settings, supervise=True) as e:
        await e.import_version("m", "v1", [src], framework="onnx")
        job = await e.launch("test-copy", "m/v1", {"lines": "4", "sleep": "3"})
        run_id = job.runs[0].id
        await e.wait_run(run_id, lambda r: r.status == "running")
        (svc,) = _services(docker_client, e.ws.workspace_id)
        spec = svc.attrs["Spec"]
        # One replicated job, never restarted, no bind mount or volume anywhere.
        assert spec["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
        task = spec["TaskTemplate"]
        assert task["RestartPolicy"]["Condition"] == "none"
        mounts = service_spec_mounts(spec)
        assert mounts and all(m["Type"] == "tmpfs" for m in mounts)
        assert {m["Target"] for m in mounts} == {"/picsellia", "/tmp"}
        cs = task["ContainerSpec"]
        assert cs["ReadOnly"] is True and cs["Init"] is True
        assert cs["CapabilityDrop"] == ["ALL"]
        assert "Privileges" not in cs or not cs["Privileges"]
        assert cs["Labels"]["picsellia-tui.job_id"] == str(job.id)
        assert spec["Labels"]["picsellia-tui.engine_id"] == e.engine_id
        assert task["Resources"]["Limits"]["MemoryBytes"] > 0
        assert "host" not in str(task.get("Networks") or "")

        run = await e.wait_run(run_id)
        lines = [r.text for r in LogReader(Path(run.log_path)).records(0, 1000)]
        assert run.status == "succeeded", (run.error_summary, lines)
        assert [ln for ln in lines if ln.startswith("line ")] == [f"line {i}" for i in range(4)], (
            lines
        )
        assert "to stderr" in lines and lines[-1] == "done"
        versions = {v.ref: v for v in await e.versions(files=True)}
        made = [v for v in versions.values() if v.ref != "m/v1"]
        assert len(made) == 1 and made[0].tags == ["copied"]
        (f,) = [f for f in made[0].files if f.path == "model.onnx"]
        assert f.sha256 == hashlib.sha256(b"swarm model bytes").hexdigest()
        detail = await e.job(job.id)
        assert detail.runs[0].node == docker_client.info()["Name"]
        await _wait_for(
            "service removed", as_async(lambda: not _services(docker_client, e.ws.workspace_id))
        )


async def test_pending_reason_then_runs_once_a_node_label_is_added(
    tmp_path: Path, docker_client: Any, swarm: str, copy_image: str
) -> None:
    settings = _settings(tmp_path, docker_client, constraints=[f"node.labels.{NODE_LABEL}==yes"])
    node = docker_client.nodes.get(swarm)
    try:
        async with Engine(settings, supervise=True) as e:
            await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
            job = await e.launch("test-copy", "m/v1", {"lines": "1"})
            run_id = job.runs[0].id

            async def waiting() -> Any:
                r = await e.run(run_id)
                return r.status == "pending" and "no suitable node" in (r.error_summary or "")

            await _wait_for("pending reason", waiting)
            node.reload()  # its version: networks joined meanwhile updated the node
            spec = node.attrs["Spec"]
            spec.setdefault("Labels", {})[NODE_LABEL] = "yes"
            node.update(spec)
            run = await e.wait_run(run_id)
            assert run.status == "succeeded", run.error_summary
            assert not run.error_summary
    finally:
        node.reload()
        spec = node.attrs["Spec"]
        (spec.get("Labels") or {}).pop(NODE_LABEL, None)
        with contextlib.suppress(Exception):
            node.update(spec)


async def test_cancel_leaves_no_service_task_or_container(
    swarm_settings: Any, tmp_path: Path, docker_client: Any
) -> None:
    async with Engine(swarm_settings, supervise=True) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        job = await e.launch("test-copy", "m/v1", {"lines": "2", "sleep": "120"})
        run_id = job.runs[0].id
        run = await e.wait_run(run_id, lambda r: r.status == "running")
        with anyio.fail_after(30):
            while len(LogReader(Path(run.log_path))) < 3:
                await anyio.sleep(0.1)
        await e.cancel(job.id)
        run = await e.wait_run(run_id)
        assert run.status == "killed"
        ws = e.ws.workspace_id
        assert not _services(docker_client, ws)
        assert not _containers(docker_client, ws)
        # Swarm keeps the record of an ended job task after its service is removed
        # (moby #42789); none may still run or hold a container.
        tasks = [
            t
            for t in docker_client.api.tasks(filters={"label": f"picsellia-tui.workspace={ws}"})
            if "picsellia-tui.run_id" in (t["Spec"]["ContainerSpec"].get("Labels") or {})
        ]  # the run's (not the runs network's keeper, which stays)
        assert all(t["Status"]["State"] in ("failed", "complete", "shutdown") for t in tasks)
        assert all(t["DesiredState"] != "running" for t in tasks)


async def test_engine_sigkilled_mid_run_resumes_following_the_service(
    swarm_settings: Any, tmp_path: Path, docker_client: Any
) -> None:
    async with Engine(swarm_settings) as e:
        await e.import_version("m", "v1", [model_file(tmp_path, b"kill me")], framework="onnx")
    ready = tmp_path / "ready.json"
    api_url = swarm_settings.host("cluster").api_url
    code = textwrap.dedent(
        f"""
        import sys, json, anyio
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from tests.core.helpers import make_settings
        from picsellia_tui.engine.core import Engine
        from picsellia_tui.engine.hosts import HostConfig
        tmp = Path({str(tmp_path)!r})
        cluster = HostConfig(name="cluster", url="local", kind="swarm", api_url={api_url!r},
                             reservations=False)
        settings = make_settings(tmp, executor="docker", hosts=[cluster],
                                 default_host="cluster", concurrency=2)
        async def main():
            async with Engine(settings, supervise=True) as e:
                job = await e.launch("test-copy", "m/v1", {{"lines": "300", "sleep": "8"}})
                run = await e.wait_run(job.runs[0].id, lambda r: r.status == "running")
                Path({str(ready)!r}).write_text(json.dumps({{"run": run.id, "log": run.log_path}}))
                await anyio.sleep(3600)
        anyio.run(main)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        with anyio.fail_after(60):
            while not ready.exists():
                await anyio.sleep(0.05)
        info = json.loads(ready.read_text())
        with anyio.fail_after(30):
            while len(LogReader(Path(info["log"]))) < 100:
                await anyio.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    async with Engine(swarm_settings, supervise=True) as e:
        assert len(_services(docker_client, e.ws.workspace_id)) == 1  # outlived its engine
        with anyio.fail_after(90):
            run = await e.wait_run(info["run"])
        lines = [r.text for r in LogReader(Path(run.log_path)).records(0, 1000)]
        assert run.status == "succeeded", (run.error_summary, lines[-5:])
        assert [t for t in lines if t.startswith("line ")] == [f"line {i}" for i in range(300)]
        assert lines.count("done") == 1 and lines.count("to stderr") == 1
        made = [v for v in await e.versions(files=True) if v.ref != "m/v1"]
        assert [f.sha256 for f in made[0].files if f.path == "model.onnx"] == [
            hashlib.sha256(b"kill me").hexdigest()
        ]
