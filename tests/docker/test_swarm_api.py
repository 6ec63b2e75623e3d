"""Swarm runs of a processing written for the Picsellia API (the real picsellia SDK,
tests/fixtures/proc_sdk), and Swarm runs through an `ssh://` manager (the loopback
sshd of tests/docker/conftest.py: this very dockerd, reached over ssh)."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path
from typing import Any

import pytest

from picsellia_tui.engine.core import Engine
from picsellia_tui.storage.logfile.reader import LogReader
from tests.core.helpers import make_settings, model_file
from tests.docker.swarm_env import (
    as_async,
    cluster_host,
    copy_image,
    run_containers,
    services,
    swarm,
    swarm_settings_for,
    wait_for,
)
from tests.picsellia_sdk import SDK_FIXTURE, SDK_IMAGE, add_sdk_processing, run_sdk_suite

__all__ = ["copy_image", "swarm"]  # session fixtures, used here
pytestmark = [pytest.mark.anyio, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="session")
def sdk_image(docker_client: Any) -> str:
    docker_client.images.build(path=str(SDK_FIXTURE), tag=SDK_IMAGE, rm=True)
    return SDK_IMAGE


async def test_picsellia_sdk_processing_on_swarm(
    tmp_path: Path, docker_client: Any, swarm: str, sdk_image: str
) -> None:
    """Its whole suite (files, logs, multipart store, status, a token confined to
    its run, the failing variants), through the run's own network's gateway: the
    processing has no network."""
    s = swarm_settings_for(tmp_path, docker_client)
    add_sdk_processing(s.processings_dir)
    async with Engine(s, supervise=True) as e:
        await run_sdk_suite(e, tmp_path, big_mb=30)
        ws = e.ws.workspace_id
        jobs = await e.jobs()
        assert jobs and all(j.host == "cluster" for j in jobs)
        await wait_for("services gone", as_async(lambda: not services(docker_client, ws)))
        await wait_for("containers gone", as_async(lambda: not run_containers(docker_client, ws)))


async def test_swarm_run_through_an_ssh_manager(
    tmp_path: Path, docker_client: Any, swarm: str, copy_image: str, ssh_path: Any
) -> None:
    s = make_settings(
        tmp_path,
        executor="docker",
        hosts=[cluster_host(docker_client, url=ssh_path.url)],
        default_host="cluster",
    )
    src = model_file(tmp_path, b"over ssh to the manager")
    async with Engine(s, supervise=True) as e:
        await e.import_version("m", "v1", [src], framework="onnx")
        job = await e.launch("test-copy", "m/v1", {"lines": "3", "sleep": "2"})
        run = await e.wait_run(job.runs[0].id, lambda r: r.status == "running")
        ws = e.ws.workspace_id
        (svc,) = services(docker_client, ws)  # made through the ssh connection
        assert svc.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["CapabilityDrop"] == ["ALL"]
        run = await e.wait_run(run.id)
        lines = [r.text for r in LogReader(Path(run.log_path)).records(0, 1000)]
        assert run.status == "succeeded", (run.error_summary, lines)
        assert [t for t in lines if t.startswith("line ")] == ["line 0", "line 1", "line 2"]
        detail = await e.job(job.id)
        assert detail.host == "cluster" and detail.runs[0].node == docker_client.info()["Name"]
        (made,) = [v for v in await e.versions(files=True) if v.ref != "m/v1"]
        assert [f.sha256 for f in made.files if f.path == "model.onnx"] == [
            hashlib.sha256(b"over ssh to the manager").hexdigest()
        ]
        await wait_for("services gone", as_async(lambda: not services(docker_client, ws)))
        await wait_for("containers gone", as_async(lambda: not run_containers(docker_client, ws)))


async def test_api_address_taken_fails_the_run_in_one_line(
    tmp_path: Path,
    docker_client: Any,
    swarm: str,
    copy_image: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What a second engine of the workspace met (a command with other settings
    than the background engine's, which held the address): the run said "engine
    error: RuntimeError: ..." and the engine's log got a traceback."""
    s = swarm_settings_for(tmp_path, docker_client)
    host, port = s.host("cluster").listen_address
    with socket.socket() as held:
        held.bind((host, port))
        held.listen(1)
        async with Engine(s, supervise=True) as e:
            await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
            job = await e.launch("test-copy", "m/v1", {"lines": "1"})
            run = await e.wait_run(job.runs[0].id)
    assert run.status == "failed"
    assert (run.error_summary or "").startswith(
        f"cannot listen on {host}:{port} for the cluster's tasks: Address already in use"
    ), run.error_summary
    assert "\n" not in (run.error_summary or "")
    assert not [r.getMessage() for r in caplog.records if r.exc_info]  # no traceback logged
