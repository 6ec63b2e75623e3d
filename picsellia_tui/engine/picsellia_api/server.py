"""The local Picsellia API server of one engine (uvicorn inside the engine's loop).

It listens on two sockets and nothing else:
- a Unix socket in a private folder (0700) of the engine's machine: the Docker
  executor mounts that folder into a run's relay container (or forwards it to an
  ssh:// host over ssh first), so containers reach it without any network;
- 127.0.0.1 on a free port, for the process executor's runs (plain subprocesses).
It is started by the first run that needs it and stopped when the engine leaves;
the grants decide who may do what.

uvicorn runs on the engine's event loop (anyio on asyncio): its own signal
handlers are left out (the engine owns SIGINT/SIGTERM) and so is its logging
setup (request lines would hold signed URLs; they are not logged at all).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import anyio
import uvicorn
from anyio.abc import TaskGroup

from picsellia_tui.engine.errors import EngineError
from picsellia_tui.engine.picsellia_api.app import Hooks, PicselliaApi
from picsellia_tui.engine.picsellia_api.grants import Grant, GrantTable, derive_token
from picsellia_tui.engine.picsellia_api.ids import Ids
from picsellia_tui.engine.picsellia_api.store import Store
from picsellia_tui.engine.workspace import Workspace

SOCKET_NAME = "api.sock"
PORT_FILE = "port"  # the loopback port, reused by the next engine when it is free


@dataclass(frozen=True)
class ApiEndpoint:
    """Where a run reaches the API: what the executors need."""

    socket_dir: Path  # holds SOCKET_NAME; mount or forward this folder
    tcp_url: str  # http://127.0.0.1:PORT, for the process executor


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the engine handles signals; uvicorn must not replace its handlers


class ApiService:
    def __init__(
        self, ws: Workspace, organization: str, hooks: Hooks, key: bytes, quota_bytes: int
    ) -> None:
        self.ws = ws
        self.ids = Ids(ws.workspace_id)
        self.store = Store(ws, self.ids, organization)
        self.grants = GrantTable()
        self.api = PicselliaApi(self.store, self.ids, self.grants, hooks, quota_bytes)
        self._key = key
        self._server: _Server | None = None
        self._served = anyio.Event()  # set once the server has stopped
        self._lock = anyio.Lock()
        self.endpoint: ApiEndpoint | None = None
        self._dir: Path | None = None
        self._tg: TaskGroup | None = None
        self._extra: dict[tuple[str, int], _Server] = {}

    # ----------------------------------------------------------------- lifecycle

    async def start(self, tg: TaskGroup) -> ApiEndpoint:
        async with self._lock:
            if self.endpoint is not None:
                return self.endpoint
            # /tmp, not the data dir: a Unix socket path must stay under ~100 bytes.
            # The same folder for every engine of this workspace: relays of runs
            # that outlived an engine find the socket again once another serves it.
            self._dir = private_dir(
                Path(tempfile.gettempdir()) / f"ptui-api-{self.ws.workspace_id[:12]}-{os.getuid()}"
            )
            path = self._dir / SOCKET_NAME
            path.unlink(missing_ok=True)
            unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            unix.bind(str(path))
            # Owner only; the relay container reaches it with CAP_DAC_OVERRIDE alone.
            os.chmod(path, 0o600)
            unix.listen(128)
            # proto=IPPROTO_TCP, or asyncio leaves Nagle on for accepted connections
            # (it checks sock.proto) and every answer waits ~40 ms for a delayed ACK.
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            _bind_loopback(tcp, self._dir / PORT_FILE)
            tcp.listen(128)
            port = tcp.getsockname()[1]
            (self._dir / PORT_FILE).write_text(str(port))
            config = uvicorn.Config(
                self.api.app,
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=2,
                timeout_keep_alive=30,
                h11_max_incomplete_event_size=64 * 1024,
            )
            server = _Server(config)
            self._server = server
            self._tg = tg
            tg.start_soon(self._serve, server, [unix, tcp])
            while not server.started:
                await anyio.sleep(0.01)
            self.endpoint = ApiEndpoint(self._dir, f"http://127.0.0.1:{port}")
            return self.endpoint

    async def listen(self, address: tuple[str, int]) -> None:
        """Also serve on `address` (TCP), once: where the tasks of a cluster reach the
        engine (a swarm host's `api_listen`). Tokens still decide everything."""
        async with self._lock:
            if address in self._extra or self._tg is None:
                return
            host, port = address
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                sock.close()
                # Typically a second engine on this workspace: a command whose
                # settings differ from the background engine's runs its own.
                raise EngineError(
                    f"cannot listen on {host}:{port} for the cluster's tasks: {exc.strerror} "
                    "(another program has it, or another engine of this workspace: one "
                    "started with other settings frees it when it leaves)"
                ) from None
            sock.listen(128)
            config = uvicorn.Config(
                self.api.app,
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=2,
                timeout_keep_alive=30,
            )
            server = _Server(config)
            self._extra[address] = server
            self._tg.start_soon(self._serve_extra, server, sock)
            while not server.started:
                await anyio.sleep(0.01)

    async def _serve_extra(self, server: _Server, sock: socket.socket) -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            sock.close()

    async def _serve(self, server: _Server, sockets: list[socket.socket]) -> None:
        try:
            await server.serve(sockets=sockets)
        finally:
            for s in sockets:
                s.close()
            self._served.set()

    async def stop(self, keep_dir: bool = True) -> None:
        """Stop serving. `keep_dir=False` when no run of the workspace is active:
        then no relay has the folder mounted and it goes too."""
        if self._server is not None:
            # A graceful shutdown closes the kept-alive connections too (cancelling
            # the task would leave them answering on a loop that goes on).
            self._server.should_exit = True
            with anyio.move_on_after(5):
                await self._served.wait()
            self._server = None
        for extra in self._extra.values():
            extra.should_exit = True
        self._extra.clear()
        if self._dir is not None:
            (self._dir / SOCKET_NAME).unlink(missing_ok=True)
            if not keep_dir:
                (self._dir / PORT_FILE).unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    self._dir.rmdir()

    # -------------------------------------------------------------------- grants

    def token_for(self, run_id: int, created_at: str) -> str:
        return derive_token(self._key, self.ws.workspace_id, run_id, created_at)

    def grant(
        self,
        *,
        run_id: int,
        job_id: int,
        target_version_id: int,
        model_id: int,
        created_at: str,
        created_versions: set[int] | None = None,
    ) -> str:
        """Make the run's grant (again, after an engine restart); returns its token."""
        token = self.token_for(run_id, created_at)
        existing = self.grants.by_run(run_id)
        grant = Grant(
            run_id=run_id,
            job_id=job_id,
            target_version_id=target_version_id,
            model_id=model_id,
            staging=self.ws.scratch_dir / f"api-run-{run_id}",
            created_versions=set(created_versions or ()),
        )
        if existing is not None:
            grant.created_versions |= existing.created_versions
            grant.reported = existing.reported
            grant.uploaded = existing.uploaded
        self.grants.add(grant, token)
        return token

    def revoke(self, run_id: int) -> Grant | None:
        grant = self.grants.remove(run_id)
        self.api.joblogs.pop(run_id, None)
        self.api.multipart.forget_run(run_id)
        if grant is not None:
            shutil.rmtree(grant.staging, ignore_errors=True)
        return grant


def _bind_loopback(sock: socket.socket, port_file: Path) -> None:
    """The port the last engine of this workspace used, when free: process runs
    that outlived it have it in their `host`; else any free port."""
    with contextlib.suppress(OSError, ValueError):
        sock.bind(("127.0.0.1", int(port_file.read_text())))
        return
    sock.bind(("127.0.0.1", 0))


def private_dir(path: Path) -> Path:
    """`path` as a folder only we can enter; refuses one somebody else made (a
    shared /tmp: another user could have planted it, or a link in its place)."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    import stat

    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise RuntimeError(f"{path} exists and is not a folder of ours: remove it")
    os.chmod(path, 0o700)
    return path
