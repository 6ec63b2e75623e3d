"""The running engine's control socket: commands and the app hand their work to it.

See control_client for the protocol. One engine per database serves the socket
(an exclusive lock decides which); the others run without one. The socket is
in a directory only this user can enter, and is itself mode 600: the requests
carry parameter values, secrets included. A client of another uid (root can
pass the modes) is refused on its peer credentials, with one line in the log.

Ops: `launch`, `rerun`, `cancel` (the commands' own), `follow` (a run's log
until it ends), `wait` (jobs until their runs end), `call` (engine queries and
services by name, for the command line's reads and the app) and `subscribe`
(the engine's events, for the app, until the client leaves).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import stat
import struct
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import SocketAttribute, SocketStream, TaskStatus
from anyio.streams.buffered import BufferedByteReceiveStream

from picsellia_tui.engine.config import ConfigError
from picsellia_tui.engine.control_client import runtime_dir, socket_path
from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.errors import DefinitionError, EngineError
from picsellia_tui.engine.executors.base import ExecutorError
from picsellia_tui.engine.logfollow import follow_records
from picsellia_tui.humanize import first_line
from picsellia_tui.storage.db import StorageError
from picsellia_tui.storage.domain import RunStatus
from picsellia_tui.storage.logfile.reader import LogReader

log = logging.getLogger(__name__)

MAX_REQUEST = 1 * 2**20
USAGE_ERRORS: tuple[str, ...] = (
    "InvalidInput",
    "NotFound",
    "Incompatible",
    "DefinitionError",
    "ConfigError",
)


class ControlUnavailable(Exception):
    pass


class Presence:
    """How many clients are connected, and since when none is: the background
    engine exits once idle (engine/daemon.py)."""

    def __init__(self) -> None:
        self.clients = 0
        self.idle_since = time.monotonic()

    def enter(self) -> None:
        self.clients += 1

    def leave(self) -> None:
        self.clients -= 1
        if self.clients == 0:
            self.idle_since = time.monotonic()


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
    engine: Engine,
    presence: Presence | None = None,
    *,
    task_status: TaskStatus[Path | None] = anyio.TASK_STATUS_IGNORED,
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
            here = presence or Presence()

            async def client(conn: SocketStream) -> None:
                here.enter()
                try:
                    await _handle(engine, conn)
                finally:
                    here.leave()

            await listener.serve(client)
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
            rx = BufferedByteReceiveStream(conn)
            line = await rx.receive_until(b"\n", MAX_REQUEST)
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError("a request is a JSON object")
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.DelimiterNotFound, ValueError):
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send({"event": "error", "message": "malformed request", "code": 2})
            return
        # Checked once the request is read: a client refused before it has sent
        # it would get a broken pipe instead of this answer.
        uid, pid = _peer(conn)
        if uid is not None and uid != os.getuid():
            log.warning(
                "refused a client of uid %d (pid %s): this engine serves uid %d only",
                uid,
                pid,
                os.getuid(),
            )
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                message = "this engine belongs to another user"
                await send({"event": "refused", "message": message, "code": 1})
            return
        mine = str(engine.settings.database_path.expanduser().absolute())
        if req.get("database") != mine or req.get("executor") != engine.settings.executor:
            await send({"event": "mismatch", "message": f"this engine serves {mine}"})
            return
        key = engine.settings._source_key
        # A command's launch or re-run: its outcome depends on settings. (Reads,
        # subscriptions and the app's calls are for the daemon's own checks.)
        outcome = req.get("op") in ("launch", "rerun")
        if outcome and key is not None and req.get("settings_key") != key:
            # Another config, another PICSELLIA_TUI_* value: the command's own
            # engine applies its settings (an output quota, a memory limit...).
            await send({"event": "mismatch", "message": "this engine runs with other settings"})
            return
        try:
            op = OPS.get(str(req.get("op")))
            if op is None:
                message = f"unknown op {req.get('op')!r}"
                await send({"event": "error", "message": message, "code": 2})
            elif op in UNTIL_HANGUP:
                await _until_hangup(op(engine, req, send), rx)
            else:
                await op(engine, req, send)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the command went away (Ctrl-C): its run goes on
        except (EngineError, ExecutorError, StorageError, ConfigError) as exc:
            msg = first_line(exc)
            code = 2 if type(exc).__name__ in USAGE_ERRORS else 1
            error = {"event": "error", "message": msg, "code": code, "type": type(exc).__name__}
            if isinstance(getattr(exc, "field", None), str):
                error["field"] = getattr(exc, "field")  # noqa: B009 (InvalidInput's)
            if isinstance(exc, DefinitionError):  # the app puts it under the key's field
                error.update(file=exc.file, key=exc.key, reason=exc.reason)
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send(error)
        except Exception as exc:
            log.exception("control request failed")
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send({"event": "error", "message": f"engine: {exc}", "code": 1})


async def _until_hangup(work: Awaitable[None], rx: BufferedByteReceiveStream) -> None:
    """Run `work` until it ends or the client hangs up (it sends nothing after its
    request): a client gone from a subscription or a wait must not count as
    connected (the engine's idle exit) nor hold the engine's work."""
    failed: list[Exception] = []
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            try:
                await work
            except Exception as exc:  # raised below, as it is (not in a group)
                failed.append(exc)
            finally:
                tg.cancel_scope.cancel()

        async def hangup() -> None:
            with contextlib.suppress(
                anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError
            ):
                while True:
                    await rx.receive()
            tg.cancel_scope.cancel()

        tg.start_soon(run)
        tg.start_soon(hangup)
    if failed:
        raise failed[0]


def _peer(conn: SocketStream) -> tuple[int | None, int | None]:
    """(uid, pid) of the client from the kernel (SO_PEERCRED), or (None, None)
    where the platform has no such option."""
    raw = conn.extra(SocketAttribute.raw_socket, None)
    opt = getattr(socket, "SO_PEERCRED", None)
    if raw is None or opt is None:
        return None, None
    pid, uid, _gid = struct.unpack("3i", raw.getsockopt(socket.SOL_SOCKET, opt, 12))
    return uid, pid


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


async def _follow(engine: Engine, req: dict[str, Any], send: Send) -> None:
    """A run's stored log from line `start` (or the last `tail` lines), following
    while the run is active; then the run."""
    job = await engine.job(int(req["job_id"]))
    attempt = req.get("attempt")
    runs = [r for r in job.runs if attempt is None or r.attempt == int(attempt)]
    if not runs:
        raise InvalidRequest(f"job {job.id} has no run #{attempt}")
    run = runs[-1]
    start = int(req.get("start") or 0)
    if req.get("tail") is not None:
        reader = LogReader(Path(run.log_path))
        start = max(0, len(reader) - int(req["tail"]))
        reader.close()
    await send({"event": "started", "item": run.model_dump(mode="json")})
    async for batch in follow_records(engine, run.id, start):
        await send({"event": "records", "records": [[r.ts_ns, r.text] for r in batch]})
    final = await engine.run(run.id)
    await send({"event": "final", "run": final.model_dump(mode="json")})


async def _wait(engine: Engine, req: dict[str, Any], send: Send) -> None:
    """Until the latest run of each job is final; then the jobs, in order."""
    ids = [int(i) for i in req.get("job_ids") or []]
    jobs = [await engine.job(i) for i in ids]  # NotFound before any waiting
    for job in jobs:
        if job.runs and not RunStatus(job.runs[-1].status).is_final:
            await engine.wait_run(job.runs[-1].id)
    done = [(await engine.job(i)).model_dump(mode="json") for i in ids]
    await send({"event": "final", "jobs": done})


class InvalidRequest(EngineError):
    """A request naming what does not exist (a usage error: exit code 2)."""


USAGE_ERRORS += ("InvalidRequest",)


def _dump(value: Any) -> Any:
    """Views, lists, tuples and dicts of them as JSON data."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _dump(v) for k, v in value.items()}
    return value


def _when(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _path(value: Any) -> Path | None:
    return None if value is None else Path(str(value))


# What `call` may run: an engine method and how its JSON arguments are decoded.
# Reads, plus the services the app offers (launch, re-run, cancel).
CALLS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "stats": {},
    "processings": {},
    "processing": {"name": str},
    "versions": {"files": bool},
    "version": {"ref": str},
    "jobs": {
        "limit": int,
        "offset": int,
        "status": lambda v: None if v is None else str(v),
        "changed_since": _when,
        "before_id": lambda v: None if v is None else int(v),
    },
    "latest_runs": {"job_ids": lambda v: [int(i) for i in v]},
    "count_jobs": {"status": lambda v: None if v is None else str(v)},
    "job": {"job_id": int},
    "run": {"run_id": int},
    "compatible_processings": {"version_id": int},
    "compatible_versions": {"processing_id": int},
    "version_name_free": {"model": str, "name": str},
    "suggest_version_name": {
        "version_ref": str,
        "processing": str,
        "base": lambda v: None if v is None else str(v),
    },
    "image_presence": {"host": lambda v: None if v is None else str(v)},
    "swarm_node_count": {"host": str},
    "launch": {
        "processing": str,
        "version": str,
        "params": dict,
        "output_version_name": lambda v: None if v is None else str(v),
        "host": lambda v: None if v is None else str(v),
    },
    "rerun": {"job_id": int, "same_image": bool},
    "cancel": {"job_id": int},
    # The Processings tab: private processings and image builds.
    "create_processing": {
        "folder": _path,
        "definition": lambda v: None if v is None else dict(v),
        "template": _text,
        "dest": _path,
        "template_kind": str,
    },
    "plan_processing_update": {"name": str},
    "update_processing": {"name": str, "expect_hash": _text},
    "remove_processing": {"name": str},
    "start_build": {"name": str, "host": _text},
    "wait_build": {"build_id": int},
    "cancel_build": {"build_id": int},
}


async def _call(engine: Engine, req: dict[str, Any], send: Send) -> None:
    """Run engine methods by name, in order; their results in one answer."""
    calls = req.get("calls")
    if not isinstance(calls, list):
        raise InvalidRequest("calls must be a list of [method, arguments]")
    results = []
    for item in calls:
        method, args = [*item, {}][:2] if isinstance(item, list) else (None, None)
        spec = CALLS.get(str(method))
        if spec is None or not isinstance(args, dict) or set(args) - set(spec):
            raise InvalidRequest(f"not a call this engine answers: {str(item)[:80]}")
        try:
            kwargs = {k: spec[k](v) for k, v in args.items()}
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"{method}: {exc}") from None
        fn = getattr(engine, str(method))
        if method == "launch":
            pos = [kwargs.pop(k) for k in ("processing", "version", "params") if k in kwargs]
            results.append(_dump(await fn(*pos, **kwargs)))
        elif method == "latest_runs":
            results.append(_dump(await fn(kwargs["job_ids"])))
        else:
            results.append(_dump(await fn(**kwargs)))
    await send({"event": "final", "results": results})


async def _subscribe(engine: Engine, req: dict[str, Any], send: Send) -> None:
    """The engine's events, one line each, until the client goes (or the engine)."""
    stream = engine.subscribe()
    async with stream:
        await send({"event": "subscribed", "engine_id": engine.engine_id})
        async for event in stream:
            await send({"event": "engine", "type": type(event).__name__, "data": asdict(event)})


OPS: dict[str, Callable[[Engine, dict[str, Any], Send], Awaitable[None]]] = {
    "launch": _launch,
    "rerun": _rerun,
    "cancel": _cancel,
    "follow": _follow,
    "wait": _wait,
    "call": _call,
    "subscribe": _subscribe,
}
# Ops that end when their client hangs up (launch, re-run and cancel run to their
# answer: the run goes on either way).
UNTIL_HANGUP = {_follow, _wait, _call, _subscribe}
