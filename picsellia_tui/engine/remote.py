"""The app as a client of the workspace's engine, over its socket.

`RemoteHandle` offers what `EngineHandle` (engine/embedded.py) offers the app —
`start`, `stop`, `call(fn)`, `submit(fn)`, `on_event(cb)`, `settings` (the last
four from their common base, `PortalHandle` in engine/handle.py) — but the engine
is the one background engine of the workspace (started on demand when none
serves), shared by every app and command on it. `call(fn)` runs `fn(RemoteEngine)`
in the handle's own event loop thread; `RemoteEngine` has the engine's query and
service methods the app uses, each one request on the socket, answered with the
same views (rebuilt from their JSON) and the same exceptions (by type name).
Events come on one long `subscribe` connection; when it breaks (the engine was
killed), the handle starts a new engine, subscribes again and sends `Resync`
so the views reload.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio
from anyio.abc import SocketStream
from anyio.from_thread import BlockingPortal
from anyio.streams.buffered import BufferedByteReceiveStream

from picsellia_tui.engine import errors
from picsellia_tui.engine.autostart import StartFailed, ensure_engine
from picsellia_tui.engine.config import Settings
from picsellia_tui.engine.control_client import MAX_LINE, socket_path
from picsellia_tui.engine.events import (
    BuildEnded,
    ExternalChange,
    JobCreated,
    LogAppended,
    ProcessingsChanged,
    Resync,
    RunChanged,
    VersionCreated,
)
from picsellia_tui.engine.handle import PortalHandle
from picsellia_tui.engine.views import (
    BuildView,
    EngineStats,
    JobView,
    ProcessingUpdate,
    ProcessingView,
    RunView,
    VersionView,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

EVENTS: dict[str, type[Any]] = {
    c.__name__: c
    for c in (
        JobCreated,
        RunChanged,
        LogAppended,
        VersionCreated,
        ProcessingsChanged,
        BuildEnded,
        ExternalChange,
        Resync,
    )
}


class Unreachable(errors.EngineError):
    """No engine serves the workspace and none could be started."""


class RemoteError(errors.EngineError):
    """An engine failure of a type this side does not know."""


def _error(event: dict[str, Any]) -> errors.EngineError:
    message = str(event.get("message") or "the engine failed")
    cls = getattr(errors, str(event.get("type")), None)
    if cls is errors.InvalidInput:
        return errors.InvalidInput(message, event.get("field"))
    if cls is errors.DefinitionError:
        return errors.DefinitionError(
            str(event.get("file") or ""), str(event.get("key") or ""), str(event.get("reason"))
        )
    if isinstance(cls, type) and issubclass(cls, errors.EngineError):
        return cls(message)
    return RemoteError(message)


def _pair(cls: type[Any]) -> Callable[[Any], list[tuple[Any, str | None]]]:
    return lambda data: [(cls.model_validate(v), reason) for v, reason in data]


# How each method's JSON answer becomes what Engine's method returns.
DECODE: dict[str, Callable[[Any], Any]] = {
    "stats": EngineStats.model_validate,
    "processings": lambda d: [ProcessingView.model_validate(p) for p in d],
    "processing": ProcessingView.model_validate,
    "versions": lambda d: [VersionView.model_validate(v) for v in d],
    "version": VersionView.model_validate,
    "jobs": lambda d: [JobView.model_validate(j) for j in d],
    "latest_runs": lambda d: {int(k): RunView.model_validate(r) for k, r in d.items()},
    "count_jobs": int,
    "job": JobView.model_validate,
    "run": RunView.model_validate,
    "compatible_processings": _pair(ProcessingView),
    "compatible_versions": _pair(VersionView),
    "version_name_free": bool,
    "suggest_version_name": str,
    "image_presence": dict,
    "swarm_node_count": lambda v: None if v is None else int(v),
    "launch": JobView.model_validate,
    "rerun": RunView.model_validate,
    "cancel": RunView.model_validate,
    "create_processing": ProcessingView.model_validate,
    "plan_processing_update": ProcessingUpdate.model_validate,
    "update_processing": ProcessingView.model_validate,
    "remove_processing": ProcessingView.model_validate,
    "start_build": BuildView.model_validate,
    "wait_build": BuildView.model_validate,
    "cancel_build": BuildView.model_validate,
}


# Calls that change the workspace (or start work): never sent twice.
SERVICES = {
    "launch",
    "rerun",
    "cancel",
    "create_processing",
    "update_processing",
    "remove_processing",
    "start_build",
    "cancel_build",
}


class RemoteEngine:
    """The engine's methods the app calls, answered by the serving engine."""

    def __init__(self, handle: RemoteHandle) -> None:
        self._handle = handle
        self.settings = handle.settings

    async def _call(self, method: str, **args: Any) -> Any:
        answer = await self._handle.request({"op": "call", "calls": [[method, args]]})
        return DECODE[method](answer["results"][0])

    async def stats(self) -> EngineStats:
        result: EngineStats = await self._call("stats")
        return result

    async def processings(self) -> list[ProcessingView]:
        result: list[ProcessingView] = await self._call("processings")
        return result

    async def processing(self, name: str) -> ProcessingView:
        result: ProcessingView = await self._call("processing", name=name)
        return result

    async def versions(self, files: bool = False) -> list[VersionView]:
        result: list[VersionView] = await self._call("versions", files=files)
        return result

    async def version(self, ref: str) -> VersionView:
        result: VersionView = await self._call("version", ref=ref)
        return result

    async def jobs(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        status: str | None = None,
        changed_since: datetime | None = None,
        before_id: int | None = None,
    ) -> list[JobView]:
        since = changed_since.isoformat() if changed_since is not None else None
        result: list[JobView] = await self._call(
            "jobs",
            limit=limit,
            offset=offset,
            status=status,
            changed_since=since,
            before_id=before_id,
        )
        return result

    async def latest_runs(self, job_ids: list[int]) -> dict[int, RunView]:
        result: dict[int, RunView] = await self._call("latest_runs", job_ids=job_ids)
        return result

    async def count_jobs(self, status: str | None = None) -> int:
        result: int = await self._call("count_jobs", status=status)
        return result

    async def job(self, job_id: int) -> JobView:
        result: JobView = await self._call("job", job_id=job_id)
        return result

    async def run(self, run_id: int) -> RunView:
        result: RunView = await self._call("run", run_id=run_id)
        return result

    async def compatible_processings(
        self, version_id: int
    ) -> list[tuple[ProcessingView, str | None]]:
        result: list[tuple[ProcessingView, str | None]] = await self._call(
            "compatible_processings", version_id=version_id
        )
        return result

    async def compatible_versions(self, processing_id: int) -> list[tuple[VersionView, str | None]]:
        result: list[tuple[VersionView, str | None]] = await self._call(
            "compatible_versions", processing_id=processing_id
        )
        return result

    async def version_name_free(self, model: str, name: str) -> bool:
        result: bool = await self._call("version_name_free", model=model, name=name)
        return result

    async def suggest_version_name(
        self, version_ref: str, processing: str, base: str | None = None
    ) -> str:
        result: str = await self._call(
            "suggest_version_name", version_ref=version_ref, processing=processing, base=base
        )
        return result

    async def image_presence(self, host: str | None = None) -> dict[str, bool]:
        result: dict[str, bool] = await self._call("image_presence", host=host)
        return result

    async def swarm_node_count(self, host: str) -> int | None:
        result: int | None = await self._call("swarm_node_count", host=host)
        return result

    async def launch(
        self,
        processing: str,
        version: str,
        params: dict[str, Any],
        *,
        output_version_name: str | None = None,
        host: str | None = None,
    ) -> JobView:
        result: JobView = await self._call(
            "launch",
            processing=processing,
            version=version,
            params=params,
            output_version_name=output_version_name,
            host=host,
        )
        return result

    async def rerun(self, job_id: int, same_image: bool = False) -> RunView:
        result: RunView = await self._call("rerun", job_id=job_id, same_image=same_image)
        return result

    async def cancel(self, job_id: int) -> RunView:
        result: RunView = await self._call("cancel", job_id=job_id)
        return result

    # -- the Processings tab ------------------------------------------------------------

    async def create_processing(
        self,
        folder: Path | None = None,
        *,
        definition: dict[str, Any] | None = None,
        template: str | None = None,
        dest: Path | None = None,
        template_kind: str = "default",
    ) -> ProcessingView:
        result: ProcessingView = await self._call(
            "create_processing",
            # Absolute: the engine may run in another folder than the app.
            folder=None if folder is None else str(folder.absolute()),
            definition=definition,
            template=template,
            dest=None if dest is None else str(dest.absolute()),
            template_kind=template_kind,
        )
        return result

    async def plan_processing_update(self, name: str) -> ProcessingUpdate:
        result: ProcessingUpdate = await self._call("plan_processing_update", name=name)
        return result

    async def update_processing(
        self, name: str, *, expect_hash: str | None = None
    ) -> ProcessingView:
        result: ProcessingView = await self._call(
            "update_processing", name=name, expect_hash=expect_hash
        )
        return result

    async def remove_processing(self, name: str) -> ProcessingView:
        result: ProcessingView = await self._call("remove_processing", name=name)
        return result

    async def start_build(self, name: str, *, host: str | None = None) -> BuildView:
        result: BuildView = await self._call("start_build", name=name, host=host)
        return result

    async def wait_build(self, build_id: int) -> BuildView:
        result: BuildView = await self._call("wait_build", build_id=build_id)
        return result

    async def cancel_build(self, build_id: int) -> BuildView:
        result: BuildView = await self._call("cancel_build", build_id=build_id)
        return result


class RemoteHandle(PortalHandle[Any]):
    """The app's handle on the workspace's engine, over its socket (see module doc).
    Its target is a `RemoteEngine` (typed Any: it stands for an `Engine`)."""

    def __init__(self, settings: Settings, root_args: list[str] | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.root_args = root_args if root_args is not None else settings.root_args()
        self.database = settings.database_path.expanduser().absolute()
        self.engine_id: str | None = None  # of the engine serving us now
        self._events: Future[None] | None = None
        self._remote = RemoteEngine(self)

    @property
    def engine(self) -> RemoteEngine:
        return self._remote

    def _ensure(self) -> None:
        try:
            ensure_engine(self.database, self.settings.data_dir, self.root_args)
        except StartFailed as exc:
            raise Unreachable(str(exc)) from None

    def start(self) -> None:
        """Find (or start) the engine and subscribe to its events; raises
        Unreachable when there is none and none can be started, or when the
        engine serving the socket does not share these settings."""
        self._ensure()

        def begin(portal: BlockingPortal) -> None:
            stream = portal.call(self._subscribe)
            self._events = portal.start_task_soon(self._pump, stream)

        self._start_portal(begin)

    async def _open(self, body: dict[str, Any]) -> tuple[SocketStream, BufferedByteReceiveStream]:
        body = {
            **body,
            "database": str(self.database),
            "executor": self.settings.executor,
        }
        try:
            conn = await anyio.connect_unix(socket_path(self.database))
        except OSError:
            await anyio.to_thread.run_sync(self._ensure)
            try:
                conn = await anyio.connect_unix(socket_path(self.database))
            except OSError as exc:
                raise Unreachable(f"the engine does not answer: {exc.strerror}") from None
        await conn.send(json.dumps(body).encode() + b"\n")
        return conn, BufferedByteReceiveStream(conn)

    @staticmethod
    async def _event(rx: BufferedByteReceiveStream) -> dict[str, Any] | None:
        try:
            line = await rx.receive_until(b"\n", MAX_LINE)
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
            return None
        event: dict[str, Any] = json.loads(line)
        return event

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """One request, its final answer. A read cut before any answer (an engine
        leaving as we came, or killed) is tried once more, on a new engine; a
        service call is not (it may have been done: the events will tell)."""
        methods = {c[0] for c in body.get("calls", []) if isinstance(c, list) and c}
        retry = body.get("op") == "call" and not methods & SERVICES
        for attempt in (1, 2) if retry else (2,):
            conn, rx = await self._open(body)
            async with conn:
                while True:
                    event = await self._event(rx)
                    if event is None:
                        break
                    kind = event.get("event")
                    if kind in ("mismatch", "refused"):
                        raise Unreachable(str(event.get("message")))
                    if kind == "error":
                        raise _error(event)
                    if kind == "final":
                        return event
            if attempt == 2:
                raise Unreachable("the engine closed the connection before answering")
            await anyio.to_thread.run_sync(self._ensure)
        raise AssertionError("unreachable")

    async def _subscribe(self) -> tuple[SocketStream, BufferedByteReceiveStream]:
        conn, rx = await self._open({"op": "subscribe"})
        first = await self._event(rx)
        if first is None or first.get("event") != "subscribed":
            await conn.aclose()
            kind = (first or {}).get("event")
            message = (first or {}).get("message") or "the engine closed the connection"
            if kind in ("mismatch", "refused", "error"):
                raise Unreachable(str(message))
            raise Unreachable(str(message))
        self.engine_id = str(first.get("engine_id"))
        return conn, rx

    async def _pump(self, stream: tuple[SocketStream, BufferedByteReceiveStream]) -> None:
        conn, rx = stream
        while True:
            async with conn:
                while (event := await self._event(rx)) is not None:
                    cls = EVENTS.get(str(event.get("type")))
                    if event.get("event") == "engine" and cls is not None:
                        self._emit(cls(**event.get("data", {})))
            # The engine went away while we were connected (killed, or stopped by
            # hand): start another, which adopts the runs; reload everything.
            while True:
                try:
                    await anyio.to_thread.run_sync(self._ensure)
                    conn, rx = await self._subscribe()
                    break
                except Unreachable as exc:
                    log.warning("engine lost, starting another failed: %s", exc)
                    await anyio.sleep(1)
            self._emit(Resync())

    def _stopping(self, portal: BlockingPortal) -> None:
        """Leave the engine (it goes on supervising every run)."""
        if self._events is not None:
            self._events.cancel()
