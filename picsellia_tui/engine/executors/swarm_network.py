"""How a Swarm task of a processing without network (`network = false`) reaches
the engine's API, and nothing else.

    task ──the workspace's runs network──> gateway container ──bridge──> api_url
          (overlay, internal: the task's      on the manager's daemon,   (engine)
           only network; http://ptui-api)     one destination: api_url

- The workspace has one overlay network for its runs without network, `internal`
  (Docker gives it no way out: no default route, no `docker_gwbridge` leg) and
  attachable (so a standalone container can join it). It is such a task's only
  network: no bridge, no host, nothing the configured `networks` would add.
- A gateway container on the daemon the engine talks to (the manager), on that
  network under the alias `ptui-api` and on the manager's default bridge, pipes
  each connection to api_url's address, the only destination it knows. It is
  confined like the Docker executor's API relay: no capability, read-only root,
  no-new-privileges, nobody, small memory and pids limits. The engine's API still
  asks for the run's token on every request.
- Both stay between runs (a run that outlives its engine still needs them; a new
  api_url replaces the gateway), with a global service that only sleeps on the
  network (`-runs-keep`, confined the same way, no reservation) so that every node
  stays on it. Every network a node joins or leaves is a node update, and on each
  one Swarm's constraint enforcer re-counts the node's reservations, completed job
  tasks included (moby #52652), and rejects running tasks that seem not to fit
  ("assigned node no longer meets constraints"): with a network per run, or one
  that nodes join and leave with each run, runs were killed that way. Runs of one
  workspace can reach each other on it (not the outside).
"""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.parse
from typing import Any

import docker
import docker.errors
import docker.types

from picsellia_tui.engine.executors.api_relay import RELAY_IMAGE, ensure_relay_image
from picsellia_tui.engine.executors.base import ExecutorError

GATEWAY_ALIAS = "ptui-api"
GATEWAY_PORT = 18080
LABEL_NETWORK_FOR = "picsellia-tui.runs_network_of"
LABEL_GATEWAY_TO = "picsellia-tui.api_gateway_to"

# Threads, one destination. TCP_NODELAY both ways: small API requests must not wait
# for delayed ACKs.
GATEWAY_SCRIPT = r"""
import socket, sys, threading
PORT, HOST, UP = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def pipe(src, dst):
    try:
        while True:
            data = src.recv(262144)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass
def serve(client):
    try:
        up = socket.create_connection((HOST, UP), timeout=30)
    except OSError:
        client.close(); return
    up.settimeout(None)
    up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t = threading.Thread(target=pipe, args=(up, client), daemon=True)
    t.start(); pipe(client, up); t.join(); client.close(); up.close()
lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind(("0.0.0.0", PORT))
lsock.listen(128)
print("gateway listening on %d" % PORT, flush=True)
while True:
    c, _ = lsock.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def task_api_url() -> str:
    """Where a task on the runs network reaches the engine's API."""
    return f"http://{GATEWAY_ALIAS}:{GATEWAY_PORT}"


_lock = threading.Lock()  # one engine's runs starting at once share one ensure


def ensure(api: Any, workspace_key: str, api_url: str, labels: dict[str, str]) -> str:
    """The workspace's runs network, with its gateway to `api_url` running on it
    (made or replaced when needed); returns the network's id."""
    url = urllib.parse.urlparse(api_url)
    if not url.hostname or not url.port:
        raise ExecutorError(f"api_url {api_url} has no address and port")
    name = f"ptui-{workspace_key}-runs"
    mine = {**labels, LABEL_NETWORK_FOR: workspace_key}
    with _lock:
        net_id = _network(api, name, mine)
        _keeper(api, f"ptui-{workspace_key}-runs-keep", net_id, mine)
        _gateway(api, f"ptui-{workspace_key}-api", net_id, url.hostname, url.port, api_url, mine)
    return net_id


def _keeper(api: Any, name: str, net_id: str, labels: dict[str, str]) -> None:
    """A global service that only sleeps on the runs network, so that every node
    stays on it: a run joining or leaving it is then no node update (see above)."""
    if api.services(filters={"name": name}):
        return
    container = docker.types.ContainerSpec(
        image=RELAY_IMAGE,
        command=["sleep", "infinity"],
        labels=labels,
        user="nobody",
        read_only=True,
        cap_drop=["ALL"],
        init=True,
    )
    template = docker.types.TaskTemplate(
        container_spec=container,
        resources=docker.types.Resources(mem_limit=16 * 1024 * 1024),
        networks=[net_id],
    )
    try:
        api.create_service(
            template, name=name, labels=labels, mode=docker.types.ServiceMode("global")
        )
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # 409: another engine made it
            raise


def _network(api: Any, name: str, labels: dict[str, str]) -> str:
    for attempt in (1, 2):
        found = [n for n in api.networks(names=[name]) if n.get("Name") == name]
        if found:
            return str(found[0]["Id"])
        try:
            made = api.create_network(
                name,
                driver="overlay",
                internal=True,
                attachable=True,
                labels=labels,
                check_duplicate=True,
            )
            return str(made["Id"])
        except docker.errors.APIError as exc:
            if exc.status_code != 409 or attempt == 2:  # 409: another engine made it
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _gateway(
    api: Any, name: str, net_id: str, host: str, port: int, api_url: str, labels: dict[str, str]
) -> None:
    try:
        info = api.inspect_container(name)
    except docker.errors.NotFound:
        info = None
    if info is not None:
        ok = (
            (info.get("State") or {}).get("Running")
            and (info["Config"].get("Labels") or {}).get(LABEL_GATEWAY_TO) == api_url
            and net_id
            in {
                n.get("NetworkID") for n in (info["NetworkSettings"].get("Networks") or {}).values()
            }
        )
        if ok:
            return
        with contextlib.suppress(docker.errors.NotFound):
            api.remove_container(info["Id"], force=True)
    ensure_relay_image(api)
    host_config = api.create_host_config(
        network_mode="bridge",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        read_only=True,
        privileged=False,
        init=True,
        mem_limit=64 * 1024 * 1024,
        pids_limit=64,
        restart_policy={"Name": "unless-stopped"},
    )
    try:
        created = api.create_container(
            image=RELAY_IMAGE,
            command=["python", "-c", GATEWAY_SCRIPT, str(GATEWAY_PORT), host, str(port)],
            name=name,
            labels={**labels, LABEL_GATEWAY_TO: api_url},
            host_config=host_config,
            user="nobody",
            detach=True,
        )
    except docker.errors.APIError as exc:
        if exc.status_code == 409:  # another engine is making it: use theirs
            _wait_listening(api, name)
            return
        raise
    gid = str(created["Id"])
    try:
        api.connect_container_to_network(gid, net_id, aliases=[GATEWAY_ALIAS])
        api.start(gid)
        _wait_listening(api, gid)
    except BaseException:
        with contextlib.suppress(Exception):
            api.remove_container(gid, force=True)
        raise


def _wait_listening(api: Any, gid: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if b"gateway listening" in api.logs(gid, stdout=True, stderr=True):
            return
        state = api.inspect_container(gid).get("State") or {}
        if not state.get("Running") and state.get("Status") != "created":
            tail = api.logs(gid, tail=3).decode(errors="replace").strip()
            raise ExecutorError(f"the runs' API gateway exited: {tail[-200:]}")
        time.sleep(0.05)
    raise ExecutorError("the runs' API gateway did not start in time")
