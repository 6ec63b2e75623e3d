"""How a container reaches the engine's local Picsellia API, and nothing else.

The network path (docs/picsellia-api.md has the picture):

    run container ──127.0.0.1:18080──> relay container ──Unix socket──> engine
      (shares the relay's network        (no network; the socket's folder is
       namespace: loopback only)          bind-mounted; for ssh:// hosts it is
                                          forwarded over ssh by the engine)

- The engine serves the API on a Unix socket in a private folder of its machine.
  It is on no network interface: no container, no other machine can open it,
  only a container that has the folder mounted.
- Each API run gets a small relay container (python:3.11-slim, the script below):
  no network (`none`, or the default bridge when the processing asks for network),
  all capabilities dropped but DAC_OVERRIDE (to open the owner-only socket),
  read-only root, no-new-privileges. It listens on 127.0.0.1:18080 in its own
  network namespace and pipes each connection to the socket.
- The run's container joins the relay's network namespace
  (`network_mode=container:<relay>`): `host=http://127.0.0.1:18080` is the API;
  with `network = false` the namespace has loopback only, so the API is all it
  reaches. A container of another processing has neither the relay nor the
  socket.
- ssh:// hosts: the engine runs `ssh -N -R <remote socket>:<local socket>` (the
  same ssh client, config and keys as the Docker connection), so the socket
  appears in a private folder on the remote host and the relay there mounts it.
  The remote host never opens a connection to the user's machine; its sshd hands
  connections back over the ssh session the engine opened.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types

from picsellia_tui.engine.executors.base import ExecutorError, HostUnreachable

RELAY_IMAGE = "python:3.11-slim"
RELAY_PORT = 18080
RELAY_MOUNT = "/run/picsellia-api"
SOCKET_NAME = "api.sock"
LABEL_RELAY_FOR = "picsellia-tui.api_relay_for"

# Threads, not asyncio: ~50 lines the relay image runs as is; splice(2) moves the
# bytes (no copy through Python). TCP_NODELAY, or small requests wait for delayed ACKs.
RELAY_SCRIPT = r"""
import fcntl, os, socket, sys, threading
PORT, PATH = int(sys.argv[1]), sys.argv[2]
SPLICE = hasattr(os, "splice")
def pipe(src, dst):
    # splice(2) through a pipe: the bytes never enter Python (zero copy).
    try:
        if SPLICE:
            r, w = os.pipe()
            try:
                # A 1 MiB pipe (64 KiB by default): a few splices per MiB, not 16.
                try:
                    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20)
                except (OSError, AttributeError):
                    pass
                while True:
                    n = os.splice(src.fileno(), w, 1 << 20)
                    if n == 0:
                        break
                    while n:
                        n -= os.splice(r, dst.fileno(), n)
            finally:
                os.close(r); os.close(w)
        else:
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
    up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        up.connect(PATH)
    except OSError:
        client.close(); up.close(); return
    t = threading.Thread(target=pipe, args=(up, client), daemon=True)
    t.start(); pipe(client, up); t.join(); client.close(); up.close()
lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind(("127.0.0.1", PORT))
lsock.listen(128)
print("relay listening on 127.0.0.1:%d" % PORT, flush=True)
while True:
    c, _ = lsock.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


@dataclass(frozen=True)
class RelaySpec:
    name: str
    run_key: str
    socket_dir: str  # on the Docker host
    network: bool
    labels: dict[str, str]


def relay_host_url() -> str:
    return f"http://127.0.0.1:{RELAY_PORT}"


def start_relay(api: Any, spec: RelaySpec) -> str:
    """Create and start the relay; returns its id. A leftover of the same run is
    replaced (an engine that died between creating and starting it)."""
    with contextlib.suppress(docker.errors.NotFound):
        api.remove_container(spec.name, force=True)
    host_config = api.create_host_config(
        network_mode="bridge" if spec.network else "none",
        cap_drop=["ALL"],
        cap_add=["DAC_OVERRIDE"],
        security_opt=["no-new-privileges"],
        read_only=True,
        privileged=False,
        init=True,
        mem_limit=64 * 1024 * 1024,
        pids_limit=64,
        mounts=[docker.types.Mount(RELAY_MOUNT, spec.socket_dir, type="bind")],
    )
    created = api.create_container(
        image=RELAY_IMAGE,
        command=["python", "-c", RELAY_SCRIPT, str(RELAY_PORT), f"{RELAY_MOUNT}/{SOCKET_NAME}"],
        name=spec.name,
        labels={**spec.labels, LABEL_RELAY_FOR: spec.run_key},
        host_config=host_config,
        detach=True,
    )
    rid = str(created["Id"])
    try:
        api.start(rid)
        _wait_listening(api, rid)
    except BaseException:
        with contextlib.suppress(Exception):
            api.remove_container(rid, force=True)
        raise
    return rid


def _wait_listening(api: Any, rid: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if b"relay listening" in api.logs(rid, stdout=True, stderr=True):
            return
        state = api.inspect_container(rid).get("State") or {}
        if not state.get("Running"):
            tail = api.logs(rid, tail=3).decode(errors="replace").strip()
            raise ExecutorError(f"the Picsellia API relay exited: {tail[-200:]}")
        time.sleep(0.05)
    raise ExecutorError("the Picsellia API relay did not start in time")


def relay_of(api: Any, run_key: str) -> list[str]:
    found = api.containers(all=True, filters={"label": f"{LABEL_RELAY_FOR}={run_key}"})
    return [str(c["Id"]) for c in found]


def stop_relays(api: Any, run_key: str, *, remove: bool) -> None:
    for rid in relay_of(api, run_key):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            if remove:
                api.remove_container(rid, force=True)
            else:
                api.kill(rid)


def ensure_relay_image(api: Any) -> None:
    try:
        api.inspect_image(RELAY_IMAGE)
    except docker.errors.NotFound:
        try:
            api.pull(RELAY_IMAGE)
        except docker.errors.APIError as exc:
            raise ExecutorError(
                f"the Picsellia API relay needs the image {RELAY_IMAGE} on the Docker host "
                f"and it cannot be pulled: {exc.explanation or exc}"
            ) from None


# ------------------------------------------------------------------ ssh forward


class SshForward:
    """`ssh -N -R <remote dir>/api.sock:<local socket>` to one host, kept up while
    API runs need it. The remote folder is made 0700 first (sshd creates the socket
    with its StreamLocalBindMask, 0177 by default: owner only)."""

    def __init__(self, ssh_argv: list[str], remote_dir: str) -> None:
        # ssh_argv: ["ssh", options..., "--", host]: the Docker connection's own.
        self._argv = ssh_argv
        self.remote_dir = remote_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self._local: str | None = None
        self._lock = threading.Lock()

    def _ssh(self, command: str, timeout: float = 30.0) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*self._argv, command],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            start_new_session=True,
            check=False,
        )

    def ensure(self, local_socket: Path) -> str:
        """Start (or restart) the forward; returns the remote folder to mount."""
        with self._lock:
            alive = self._proc is not None and self._proc.poll() is None
            if alive and self._local == str(local_socket):
                return self.remote_dir
            self._stop()
            d = self.remote_dir
            # sshd does not replace a socket left by an earlier forward (its
            # StreamLocalBindUnlink is off by default): remove it first.
            done = self._ssh(
                f"umask 077 && mkdir -p {d} && chmod 700 {d} && rm -f {d}/{SOCKET_NAME}"
            )
            if done.returncode != 0:
                why = done.stderr.decode(errors="replace").strip().splitlines() or ["ssh failed"]
                raise HostUnreachable(
                    f"cannot prepare the Picsellia API folder on the host: {why[-1]}"
                )
            host_args, host = self._argv[:-2], self._argv[-1]
            argv = [
                *host_args,
                "-N",
                "-o",
                "ExitOnForwardFailure=yes",
                "-R",
                f"{d}/{SOCKET_NAME}:{local_socket}",
                "--",
                host,
            ]
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            self._local = str(local_socket)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    err = (self._proc.stderr.read() if self._proc.stderr else b"").decode(
                        errors="replace"
                    )
                    self._proc = None
                    last = err.strip().splitlines()
                    raise HostUnreachable(
                        "the ssh forward of the Picsellia API failed: "
                        + (last[-1] if last else "ssh exited")
                    )
                if self._ssh(f"test -S {d}/{SOCKET_NAME}", timeout=15).returncode == 0:
                    return d
                time.sleep(0.2)
            self._stop()
            raise HostUnreachable("the ssh forward of the Picsellia API did not come up in 30 s")

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        """Stop forwarding. The remote folder stays: the relays of runs that go on
        without the engine find the socket there again once an engine forwards it."""
        with self._lock:
            self._stop()


def remote_dir_name(workspace_key: str) -> str:
    """The forwarded socket's folder on the host: never the engine's own folder's
    name (the host may be this very machine, reached over ssh). `mkdir -p` then
    `chmod 700` fails on a folder another user made, so nobody can plant it."""
    return f"/tmp/ptui-api-fwd-{workspace_key}-{os.getuid()}"
