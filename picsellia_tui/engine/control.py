"""The running engine's control socket: commands hand their work to it.

See control_client for the protocol. One engine per database serves the socket
(an exclusive lock decides which); the others run without one. The socket is
in a directory only this user can enter, and is itself mode 600: the requests
carry parameter values, secrets included.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import stat
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import SocketStream, TaskStatus
from anyio.streams.buffered import BufferedByteReceiveStream

from picsellia_tui.engine.config import ConfigError
from picsellia_tui.engine.control_client import runtime_dir, socket_path
from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.errors import EngineError
from picsellia_tui.engine.executors.base import ExecutorError
from picsellia_tui.engine.logfollow import follow_records
from picsellia_tui.storage.db import StorageError

log = logging.getLogger(__name__)

MAX_REQUEST = 1 * 2**20
USAGE_ERRORS = ("InvalidInput", "NotFound", "Incompatible", "DefinitionError", "ConfigError")


class ControlUnavailable(Exception):
    pass


@contextlib.contextmanager
def _owned_runtime_dir() -> Iterator[Path]:
    d = runtime_dir()
    d.mkdir(mode=0o700, exist_ok=True)
    st = d.lstat()
    # /tmp is shared: never put our socket in a directory someone else made.
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise ControlUnavailable(f"{d} is not a private directory of this user")
    yield d


async def serve_control(
    engine: Engine, *, task_status: TaskStatus[Path | None] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Serve `engine` on its database's socket until cancelled. Reports the socket
    path once listening, or None when another engine already serves it (or the
    socket cannot be made: the engine works without it)."""
    database = engine.settings.database_path
    path = socket_path(database)
    try:
        with _owned_runtime_dir():
            lock_fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except (OSError, ControlUnavailable) as exc:
        log.warning("no control socket: %s", exc)
        task_status.started(None)
        return
    try:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            task_status.started(None)  # another engine serves this database
            return
        try:
            path.unlink(missing_ok=True)  # left by an engine that died
            listener = await anyio.create_unix_listener(path, mode=0o600)
        except OSError as exc:  # e.g. a runtime dir path too long for a socket
            log.warning("no control socket at %s: %s", path, exc)
            task_status.started(None)
            return
        try:
            task_status.started(path)
            await listener.serve(lambda conn: _handle(engine, conn))
        finally:
            path.unlink(missing_ok=True)  # before any await: we are being cancelled
            with anyio.CancelScope(shield=True):
                await listener.aclose()
    finally:
        os.close(lock_fd)  # releases the lock


async def _handle(engine: Engine, conn: SocketStream) -> None:
    async def send(event: dict[str, Any]) -> None:
        await conn.send(json.dumps(event, default=str).encode() + b"\n")

    async with conn:
        try:
            line = await BufferedByteReceiveStream(conn).receive_until(b"\n", MAX_REQUEST)
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError("a request is a JSON object")
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.DelimiterNotFound, ValueError):
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send({"event": "error", "message": "malformed request", "code": 2})
            return
        mine = str(engine.settings.database_path.expanduser().absolute())
        if req.get("database") != mine or req.get("executor") != engine.settings.executor:
            await send({"event": "mismatch", "message": f"this engine serves {mine}"})
            return
        try:
            op = OPS.get(str(req.get("op")))
            if op is None:
                message = f"unknown op {req.get('op')!r}"
                await send({"event": "error", "message": message, "code": 2})
            else:
                await op(engine, req, send)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the command went away (Ctrl-C): its run goes on
        except (EngineError, ExecutorError, StorageError, ConfigError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            code = 2 if type(exc).__name__ in USAGE_ERRORS else 1
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send({"event": "error", "message": msg, "code": code})
        except Exception as exc:
            log.exception("control request failed")
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send({"event": "error", "message": f"engine: {exc}", "code": 1})


Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _launch(engine: Engine, req: dict[str, Any], send: Send) -> None:
    params = req.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError("params must be an object")
    job = await engine.launch(
        str(req["processing"]),
        str(req["version"]),
        params,
        output_version_name=req.get("name"),
        host=req.get("host"),
    )
    await send({"event": "started", "item": job.model_dump(mode="json")})
    final = await _until_done(engine, job.runs[-1].id, req, send)
    job = await engine.job(job.id)
    await send({"event": "final", "job": job.model_dump(mode="json"), "run": final})


async def _rerun(engine: Engine, req: dict[str, Any], send: Send) -> None:
    run = await engine.rerun(int(req["job_id"]), same_image=bool(req.get("same_image")))
    await send({"event": "started", "item": run.model_dump(mode="json")})
    await send({"event": "final", "run": await _until_done(engine, run.id, req, send)})


async def _cancel(engine: Engine, req: dict[str, Any], send: Send) -> None:
    run = await engine.cancel(int(req["job_id"]))
    with anyio.move_on_after(engine.settings.cancel_grace_seconds + 30):
        run = await engine.wait_run(run.id)
    await send({"event": "final", "run": run.model_dump(mode="json")})


async def _until_done(engine: Engine, run_id: int, req: dict[str, Any], send: Send) -> Any:
    """With `wait`, stream the log (if asked) until the run is final; else until it
    has started. The run as JSON data."""
    if req.get("wait"):
        if req.get("log"):
            async for batch in follow_records(engine, run_id):
                await send({"event": "log", "lines": [r.text for r in batch]})
        final = await engine.wait_run(run_id)
    else:
        final = await engine.wait_run(run_id, lambda r: r.status != "pending")
    return final.model_dump(mode="json")


OPS: dict[str, Callable[[Engine, dict[str, Any], Send], Awaitable[None]]] = {
    "launch": _launch,
    "rerun": _rerun,
    "cancel": _cancel,
}
