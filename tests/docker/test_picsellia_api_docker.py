"""The local Picsellia API with the Docker executor: an image that pip-installs the
real picsellia SDK runs unchanged on the local daemon and on an ssh:// host, and
the API is reachable from that run only."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

import anyio
import pytest

from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.executors.api_relay import remote_dir_name
from picsellia_tui.engine.hosts import HostConfig
from tests.core.helpers import make_settings
from tests.picsellia_sdk import SDK_FIXTURE, SDK_IMAGE, add_sdk_processing, run_sdk_suite

pytestmark = [pytest.mark.anyio, pytest.mark.docker]


@pytest.fixture(scope="session")
def sdk_image(docker_client: Any) -> str:
    docker_client.images.build(path=str(SDK_FIXTURE), tag=SDK_IMAGE, rm=True)
    return SDK_IMAGE


@pytest.mark.slow
async def test_sdk_image_on_local_docker(sdk_image: str, tmp_path: Path) -> None:
    s = make_settings(tmp_path, executor="docker")
    add_sdk_processing(s.processings_dir)
    async with Engine(s, supervise=True) as e:
        await run_sdk_suite(e, tmp_path, big_mb=30)


@pytest.mark.slow
async def test_sdk_image_on_ssh_host(ssh_path: Any, sdk_image: str, tmp_path: Path) -> None:
    s = make_settings(
        tmp_path,
        executor="docker",
        hosts=[HostConfig(name="gpu-box", url=ssh_path.url)],
        default_host="gpu-box",
    )
    add_sdk_processing(s.processings_dir)
    async with Engine(s, supervise=True) as e:
        await run_sdk_suite(e, tmp_path, big_mb=30)
        workspace = e.ws.workspace_id
    # The forwarded socket's folder stays on the host by design (runs that outlive
    # the engine find it again); the "host" is this machine here: tidy it.
    shutil.rmtree(remote_dir_name(workspace[:12]), ignore_errors=True)


def _host_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (docker0 among them)."""
    import fcntl
    import struct

    out = []
    for _, name in socket.if_nameindex():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))
            addr = socket.inet_ntoa(packed[20:24])
        except OSError:
            continue
        finally:
            s.close()
        if not addr.startswith("127."):
            out.append(addr)
    return out


@pytest.mark.slow
async def test_api_reachable_from_its_run_only(
    sdk_image: str, tmp_path: Path, docker_client: Any
) -> None:
    """While an API run runs: a container of a processing without the API (even with
    network) cannot reach it, nor can anything on the host's other interfaces."""
    s = make_settings(tmp_path, executor="docker")
    add_sdk_processing(s.processings_dir)
    async with Engine(s, supervise=True) as e:
        src = tmp_path / "m.onnx"
        src.write_bytes(b"x" * 100)
        await e.import_version("m", "v1", [src], framework="onnx")
        job = await e.launch("test-sdk", "m/v1", {"lines": "20000"})
        await e.wait_run(job.runs[0].id, lambda r: r.status == "running")
        service = e.api.service
        assert service is not None and service.endpoint is not None
        port = int(service.endpoint.tcp_url.rsplit(":", 1)[1])
        sock = service.endpoint.socket_dir / "api.sock"
        assert sock.is_socket()

        # The run's container shares its relay's network namespace, and the relay
        # has no network of its own.
        labels = {"label": [f"picsellia-tui.job_id={job.id}"]}
        found = docker_client.containers.list(filters=labels)
        run_c = next(c for c in found if "picsellia-tui.run_id" in c.labels)
        relay = next(c for c in found if "picsellia-tui.api_relay_for" in c.labels)
        assert run_c.attrs["HostConfig"]["NetworkMode"] == f"container:{relay.id}"
        assert relay.attrs["HostConfig"]["NetworkMode"] == "none"
        assert relay.attrs["HostConfig"]["CapDrop"] == ["ALL"]

        # From the host: only loopback answers.
        for addr in _host_addresses():
            with pytest.raises(OSError):
                socket.create_connection((addr, port), timeout=2).close()
        # From a container of another processing, on the default bridge network:
        # neither the gateway (the host) nor the socket path is there.
        probe = (
            "import socket, os, sys\n"
            "gw = open('/proc/net/route').read().split('\\n')[1].split()[2]\n"
            "ip = socket.inet_ntoa(bytes.fromhex(gw)[::-1])\n"
            "try:\n"
            f"    socket.create_connection((ip, {port}), timeout=3); print('REACHED')\n"
            "except OSError as e:\n"
            "    print('refused', e)\n"
            f"print('socket there' if os.path.exists({str(sock)!r}) else 'no socket')\n"
        )
        out = await anyio.to_thread.run_sync(
            lambda: docker_client.containers.run(
                "python:3.11-slim",
                ["python", "-c", probe],
                remove=True,
                network_mode="bridge",
                labels={"picsellia-tui.workspace": e.ws.workspace_id},
            )
        )
        text = out.decode()
        assert "REACHED" not in text and "no socket" in text, text
        await e.cancel(job.id)
        r = await e.wait_run(job.runs[0].id)
        assert r.status == "killed"


@pytest.mark.slow
async def test_engine_restart_mid_run_keeps_the_api(sdk_image: str, tmp_path: Path) -> None:
    """The engine leaves while an API run goes on (app closed, engine idle exit,
    crash): the next engine serves the same token at the same place and the run
    finishes through the API."""
    from picsellia_tui.storage.logfile.reader import LogReader
    from tests.picsellia_sdk import MARK, checks

    s = make_settings(tmp_path, executor="docker")
    add_sdk_processing(s.processings_dir)
    async with Engine(s, supervise=True) as e:
        src = tmp_path / "model.onnx"
        src.write_bytes(b"x" * 100)
        await e.import_version("m", "v1", [src], framework="onnx")
        job = await e.launch("test-sdk", "m/v1", {"lines": "3000"})
        run = await e.wait_run(job.runs[0].id, lambda r: r.status == "running")
        with anyio.move_on_after(60):
            while (
                sum(1 for r in LogReader(Path(run.log_path)).records(0) if r.stream == "api") < 50
            ):
                await anyio.sleep(0.1)
        texts = [r.text for r in LogReader(Path(run.log_path)).records(0)]
        assert sum(1 for t in texts if t.startswith(MARK)) >= 50, (await e.run(run.id), texts)
    async with Engine(s, supervise=True) as e2:
        with anyio.fail_after(180):
            run = await e2.wait_run(job.runs[0].id)
        records = LogReader(Path(run.log_path)).records(0, 10_000)
        assert run.status == "succeeded", "\n".join([r.text for r in records][-12:])
        assert checks([r.text for r in records])["status"] == ["RUNNING", "SUCCEEDED"]
        lines = [r.text.removeprefix(MARK) for r in records if r.stream == "api"]
        numbered = [int(t.split()[-1]) for t in lines if t.startswith("api line ")]
        assert numbered == list(range(3000))  # in order, none lost, none twice
