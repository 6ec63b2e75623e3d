"""A single-node Swarm on the test dockerd, and what Swarm tests share.

`swarm` (session): `docker swarm init --advertise-addr 127.0.0.1` when the daemon is
not a manager yet; the swarm is left at the end, so the other Docker tests run on a
daemon in swarm mode too. The engine serves its API on the default bridge's gateway,
where a task on this node (or a gateway container of the manager) reaches the host.
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess
from pathlib import Path
from typing import Any

import anyio
import pytest

from picsellia_tui.engine.hosts import HostConfig
from tests.core.helpers import make_settings

ROOT = Path(__file__).resolve().parents[2]
COPY_IMAGE = "picsellia-tui/test-copy:1.0.0"


@pytest.fixture(scope="session")
def swarm(docker_client: Any) -> str:
    """This daemon as a Swarm manager; returns its node id. Left in swarm mode."""
    info = docker_client.info()
    if (info.get("Swarm") or {}).get("LocalNodeState") != "active":
        subprocess.run(
            ["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"],
            check=True,
            capture_output=True,
        )
        info = docker_client.info()
    swarm = info.get("Swarm") or {}
    if not swarm.get("ControlAvailable"):
        pytest.skip("the test dockerd is in a swarm but not a manager")
    return str(swarm["NodeID"])


@pytest.fixture(scope="session")
def copy_image(docker_client: Any) -> str:
    docker_client.images.build(path=str(ROOT / "tests/fixtures/proc_copy"), tag=COPY_IMAGE, rm=True)
    return COPY_IMAGE


def bridge_gateway(client: Any) -> str:
    """Where a task on this node reaches the host: the default bridge's gateway."""
    ipam = client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    if ipam.get("Gateway"):
        return str(ipam["Gateway"])
    return str(ipaddress.ip_network(ipam["Subnet"], strict=False).network_address + 1)


def free_port(addr: str) -> int:
    with socket.socket() as s:
        s.bind((addr, 0))
        return int(s.getsockname()[1])


def cluster_host(client: Any, url: str = "local", **host: Any) -> HostConfig:
    """A swarm host named "cluster" whose tasks reach the engine on the bridge."""
    gw = bridge_gateway(client)
    host.setdefault("reservations", False)
    return HostConfig(
        name="cluster", url=url, kind="swarm", api_url=f"http://{gw}:{free_port(gw)}", **host
    )


def swarm_settings_for(tmp_path: Path, client: Any, **host: Any) -> Any:
    """Tasks of runs under limits but no reservations (unless a test asks): on each
    node update Swarm's constraint enforcer counts the reservations of completed
    job tasks too, rejected orphans of removed services included (moby #52652,
    #42789; the shared test daemon holds dozens), and rejects a running task with
    any reservation, a failure of Swarm's own (docs/cluster.md)."""
    return make_settings(
        tmp_path,
        executor="docker",
        hosts=[cluster_host(client, **host)],
        default_host="cluster",
        concurrency=2,
    )


def services(client: Any, workspace: str) -> list[Any]:
    """The workspace's run services (not its runs network's keeper, which stays)."""
    from picsellia_tui.engine.executors.swarm_network import LABEL_NETWORK_FOR

    found = client.services.list(filters={"label": f"picsellia-tui.workspace={workspace}"})
    return [s for s in found if LABEL_NETWORK_FOR not in (s.attrs["Spec"].get("Labels") or {})]


def containers(client: Any, workspace: str) -> list[Any]:
    return client.containers.list(
        all=True, sparse=True, filters={"label": f"picsellia-tui.workspace={workspace}"}
    )


def run_containers(client: Any, workspace: str) -> list[Any]:
    """The workspace's containers but its runs network's (gateway, keeper)."""
    from picsellia_tui.engine.executors.swarm_network import LABEL_NETWORK_FOR

    return [
        c
        for c in containers(client, workspace)
        if LABEL_NETWORK_FOR not in (c.attrs.get("Labels") or {})
    ]


def networks(client: Any, workspace: str) -> list[Any]:
    return client.networks.list(filters={"label": f"picsellia-tui.workspace={workspace}"})


async def wait_for(what: str, check: Any, timeout: float = 60) -> Any:
    """Await `check()` until it is truthy (it is then returned), `timeout` at most."""
    with anyio.fail_after(timeout):
        while True:
            value = await check()
            if value:
                return value
            await anyio.sleep(0.2)
    raise AssertionError(what)  # pragma: no cover


def as_async(fn: Any) -> Any:
    async def call() -> Any:
        return fn()

    return call
