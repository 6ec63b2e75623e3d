"""The routes of the local Picsellia API (a Starlette app).

Only what a model-version processing written with the picsellia SDK (6.x) calls:
client start, its job, its model versions and their files, object storage, logs
and status. Every /api route needs `Authorization: Bearer <run token>`; anything a
run's grant does not cover answers 403 with one JSON line, an unknown route 404.
Errors are `{"message": ...}`: the SDK shows that message.
"""

from __future__ import annotations

import asyncio
import json
import posixpath
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from picsellia_tui.engine.executors.base import LogLine
from picsellia_tui.engine.picsellia_api.grants import Grant, GrantTable
from picsellia_tui.engine.picsellia_api.ids import Ids
from picsellia_tui.engine.picsellia_api.joblog import MARK, JobLog
from picsellia_tui.engine.picsellia_api.multipart import Multipart, PartWriter
from picsellia_tui.engine.picsellia_api.objects import Signer, Staging, new_upload_name
from picsellia_tui.engine.picsellia_api.runfiles import RunFiles
from picsellia_tui.engine.picsellia_api.store import (
    SDK_VERSION,
    ApiError,
    Store,
    _safe_filename,
)

MAX_JSON = 8 * 1024 * 1024
_WRITE_CHUNK = 1024 * 1024


class Hooks(Protocol):
    """What the API asks of the engine."""

    async def log_lines(self, run_id: int, lines: list[LogLine]) -> None: ...

    async def reported(self, run_id: int, status: str) -> None: ...

    async def version_changed(self, version_id: int) -> None: ...


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


class PicselliaApi:
    def __init__(
        self, store: Store, ids: Ids, grants: GrantTable, hooks: Hooks, quota_bytes: int
    ) -> None:
        self.store = store
        self.quota_bytes = quota_bytes  # a run uploads at most this much (as its outputs)
        self.ids = ids
        self.grants = grants
        self.hooks = hooks
        self.signer = Signer()
        self.joblogs: dict[int, JobLog] = {}
        self.multipart = Multipart()
        # A tar holds a little more than its files: headers and padding.
        self.runfiles = RunFiles(store.ws.scratch_dir, quota_bytes + quota_bytes // 8 + (1 << 20))
        self.app = Starlette(routes=self._routes(), exception_handlers={HTTPException: _http})

    # ------------------------------------------------------------------ plumbing

    def staging(self, grant: Grant) -> Staging:
        return Staging(grant.staging)

    def joblog(self, run_id: int) -> JobLog:
        return self.joblogs.setdefault(run_id, JobLog())

    def _grant(self, request: Request) -> Grant:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        grant = self.grants.by_token(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None:
            raise ApiError(403, "this token is not valid for any active run")
        return grant

    def _org(self, request: Request) -> None:
        if request.path_params.get("org") != self.store.org_id:
            raise ApiError(404, "no such organization")

    def _id(self, kind: Any, text: object) -> int:
        row = self.ids.decode(kind, text)
        if row is None:
            raise ApiError(404, f"no such {kind}")
        return row

    def _readable(self, grant: Grant, version_id: int) -> None:
        if not grant.readable(version_id):
            raise ApiError(403, "this run may not read that model version")

    def _writable(self, grant: Grant, version_id: int) -> None:
        if not grant.writable(version_id):
            raise ApiError(403, "this run may not change that model version")

    def _job(self, grant: Grant, text: object) -> None:
        if self.ids.decode("job", text) != grant.job_id:
            raise ApiError(403, "this run may only see its own job")

    async def _body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > MAX_JSON:
            raise ApiError(413, "request too large")
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise ApiError(400, "the body is not JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "the body must be a JSON object")
        return data

    def _route(
        self, path: str, fn: Callable[[Request, Grant], Awaitable[Any]], method: str
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                grant = self._grant(request)
                if "org" in request.path_params:
                    self._org(request)
                result = await fn(request, grant)
            except ApiError as exc:
                return _error(exc.status, exc.message)
            if isinstance(result, Response):
                return result
            return JSONResponse(result)

        return Route(path, endpoint, methods=[method])

    async def _sync(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(lambda: fn(*args))

    # -------------------------------------------------------------------- routes

    def _routes(self) -> list[Route]:
        r = self._route
        org = "/api/organization/{org}"
        c = "/api/object-storage/{connector}"
        return [
            r("/api/home/ping", self.ping, "GET"),
            r("/api/organizations/find", self.org_find, "GET"),
            r(f"{org}", self.org_get, "GET"),
            r(f"{org}/jobv2s/find", self.job_find, "GET"),
            r("/api/v2/job/{job}", self.job_get, "GET"),
            r("/api/v2/job/{job}/running", self.status_route("RUNNING"), "POST"),
            r("/api/v2/job/{job}/succeed", self.status_route("SUCCEEDED"), "POST"),
            r("/api/v2/job/{job}/fail", self.status_route("FAILED"), "POST"),
            r("/api/v2/job/{job}/logging", self.logging, "POST"),
            r("/api/v2/job/{job}/logging/save", self.logging_save, "POST"),
            r(f"{org}/models/find", self.model_find, "GET"),
            r("/api/model/{model}", self.model_get, "GET"),
            r("/api/model/{model}/versions", self.version_create, "POST"),
            r(f"{org}/modelversions/find", self.version_find, "GET"),
            r("/api/model/version/{version}", self.version_get, "GET"),
            r("/api/model/version/{version}", self.version_patch, "PATCH"),
            r("/api/model/version/{version}/modelfiles", self.files_list, "GET"),
            r("/api/model/version/{version}/modelfiles", self.file_add, "POST"),
            r("/api/model/version/{version}/modelfiles/find", self.file_find, "GET"),
            r("/api/model/file/{file}", self.file_get, "GET"),
            r("/api/model/file/{file}", self.file_delete, "DELETE"),
            r(f"{org}/connector/{{connector}}/generate_object_name", self.object_name, "POST"),
            r(f"{c}/retrieve_presigned_url", self.presign_get, "POST"),
            r(f"{c}/generate_presigned_url", self.presign_post, "POST"),
            r(f"{c}/init_multipart_upload", self.multipart_init, "POST"),
            r(f"{c}/generate_part_presigned_url", self.presign_part, "POST"),
            r(f"{c}/complete_part_upload", self.multipart_complete, "POST"),
            # A run's own files (runs without a shared disk: see runfiles.py).
            r("/ptui/run/files.tar", self.runfiles.files_tar, "GET"),
            r("/ptui/run/outputs.tar", self.runfiles.outputs_tar, "PUT"),
            Route("/_storage/{obj:path}", self.storage_get, methods=["GET"]),
            Route("/_storage/{obj:path}", self.storage_post, methods=["POST"]),
            Route("/_storage/{obj:path}", self.storage_put, methods=["PUT"]),
        ]

    # --------------------------------------------------------- organization, job

    async def ping(self, request: Request, grant: Grant) -> Any:
        return {
            "sdk_version": SDK_VERSION,
            "default_organization": self.store.org_id,
            "username": self.store.username(),
        }

    async def org_find(self, request: Request, grant: Grant) -> Any:
        if request.query_params.get("name") != self.store.org_name:
            raise ApiError(404, "no organization with that name")
        return self.store.organization()

    async def org_get(self, request: Request, grant: Grant) -> Any:
        return self.store.organization()

    async def job_find(self, request: Request, grant: Grant) -> Any:
        self._job(grant, request.query_params.get("id"))
        return await self._sync(self.store.job, grant)

    async def job_get(self, request: Request, grant: Grant) -> Any:
        self._job(grant, request.path_params["job"])
        return await self._sync(self.store.job, grant)

    def status_route(self, status: str) -> Callable[[Request, Grant], Awaitable[Any]]:
        async def post(request: Request, grant: Grant) -> Any:
            self._job(grant, request.path_params["job"])
            grant.reported = status
            await self._sync(self.store.record_report, grant, status)
            await self.hooks.reported(grant.run_id, status)
            return await self._sync(self.store.job, grant, status)

        return post

    async def logging(self, request: Request, grant: Grant) -> Any:
        self._job(grant, request.path_params["job"])
        body = await self._body(request)
        lines = self.joblog(grant.run_id).feed(body)
        if lines:
            await self.hooks.log_lines(grant.run_id, lines)
        return {}

    async def logging_save(self, request: Request, grant: Grant) -> Any:
        self._job(grant, request.path_params["job"])
        body = await self._body(request)
        obj = str(body.get("logging_object_name", ""))
        staging = self.staging(grant)
        held = staging.blob(obj)
        size = held[1] if held else 0
        staging.object_path(obj).unlink(missing_ok=True)
        # The run's own log already holds every line: the file is not kept twice.
        note = f"{MARK}logging file {posixpath.basename(obj)!r} received ({size} bytes), not kept"
        await self.hooks.log_lines(grant.run_id, [LogLine(_now(), "api", note)])
        return {"logging_object_name": obj}

    # ------------------------------------------------------------ models, versions

    async def model_find(self, request: Request, grant: Grant) -> Any:
        return await self._model(grant, request.query_params.get("id"))

    async def model_get(self, request: Request, grant: Grant) -> Any:
        return await self._model(grant, request.path_params["model"])

    async def _model(self, grant: Grant, text: object) -> Any:
        model_id = self._id("model", text)
        if model_id != grant.model_id:
            raise ApiError(403, "this run may only see the model of its target version")
        return await self._sync(self.store.model, model_id)

    async def version_create(self, request: Request, grant: Grant) -> Any:
        model_id = self._id("model", request.path_params["model"])
        if model_id != grant.model_id:
            raise ApiError(403, "this run may only create versions of its target's model")
        body = await self._body(request)
        payload = await self._sync(self.store.create_version, grant, model_id, body)
        await self.hooks.version_changed(self._id("version", payload["id"]))
        return payload

    async def version_find(self, request: Request, grant: Grant) -> Any:
        return await self._version(grant, request.query_params.get("id"))

    async def version_get(self, request: Request, grant: Grant) -> Any:
        return await self._version(grant, request.path_params["version"])

    async def _version(self, grant: Grant, text: object) -> Any:
        version_id = self._id("version", text)
        self._readable(grant, version_id)
        return await self._sync(self.store.version, version_id)

    async def version_patch(self, request: Request, grant: Grant) -> Any:
        version_id = self._id("version", request.path_params["version"])
        self._writable(grant, version_id)
        await self._body(request)
        # Docker image, flags, thumbnails... mean nothing here: accepted, not kept.
        return await self._sync(self.store.version, version_id)

    # ----------------------------------------------------------------------- files

    async def files_list(self, request: Request, grant: Grant) -> Any:
        version_id = self._id("version", request.path_params["version"])
        self._readable(grant, version_id)
        items = await self._sync(self.store.files, version_id)
        return {"items": items, "count": len(items)}

    async def file_find(self, request: Request, grant: Grant) -> Any:
        version_id = self._id("version", request.path_params["version"])
        self._readable(grant, version_id)
        name = request.query_params.get("name", "")
        return await self._sync(self.store.find_file, version_id, name)

    async def file_get(self, request: Request, grant: Grant) -> Any:
        file_id = self._id("file", request.path_params["file"])
        version_id, payload = await self._sync(self.store.file, file_id)
        self._readable(grant, version_id)
        return payload

    async def file_delete(self, request: Request, grant: Grant) -> Any:
        file_id = self._id("file", request.path_params["file"])
        version_id, _ = await self._sync(self.store.file, file_id)
        self._writable(grant, version_id)
        await self._sync(self.store.delete_file, file_id)
        await self.hooks.version_changed(version_id)
        return {}

    async def file_add(self, request: Request, grant: Grant) -> Any:
        version_id = self._id("version", request.path_params["version"])
        self._writable(grant, version_id)
        body = await self._body(request)
        obj = str(body.get("object_name", ""))
        name = body.get("name")
        filename = body.get("filename") or posixpath.basename(obj)
        staged = None
        if obj.startswith("files/"):
            blob = await self._file_blob(grant, obj)
        else:
            staged = self.staging(grant).blob(obj)
            if staged is None:
                raise ApiError(400, f"nothing was uploaded as {obj[:120]!r}")
            blob = staged
        payload = await self._sync(self.store.add_file, version_id, name, filename, blob)
        if staged is not None:
            self.staging(grant).object_path(obj).unlink(missing_ok=True)
        await self.hooks.version_changed(version_id)
        return payload

    async def _file_source(self, grant: Grant, obj: str) -> Path:
        parts = obj.split("/")
        file_id = self._id("file", parts[1] if len(parts) > 1 else "")
        version_id, blob = await self._sync(self.store.file_blob, file_id)
        self._readable(grant, version_id)
        path: Path = blob.path
        return path

    async def _file_blob(self, grant: Grant, obj: str) -> tuple[str, int]:
        parts = obj.split("/")
        file_id = self._id("file", parts[1] if len(parts) > 1 else "")
        version_id, blob = await self._sync(self.store.file_blob, file_id)
        self._readable(grant, version_id)
        return blob.sha256, blob.size

    # -------------------------------------------------------------- object storage

    def _connector(self, request: Request) -> None:
        if request.path_params.get("connector") != self.store.connector_id:
            raise ApiError(404, "no such connector")

    async def object_name(self, request: Request, grant: Grant) -> Any:
        self._connector(request)
        body = await self._body(request)
        return {"object_name": new_upload_name(_safe_filename(body.get("filename")))}

    async def presign_get(self, request: Request, grant: Grant) -> Any:
        self._connector(request)
        obj = str((await self._body(request)).get("object_name", ""))
        if obj.startswith("files/"):
            await self._file_source(grant, obj)
        elif self.staging(grant).blob(obj) is None:
            raise ApiError(404, "no such object")
        return {"presigned_url": self.signer.url(_base(request), "GET", grant.gid, obj)}

    async def presign_post(self, request: Request, grant: Grant) -> Any:
        self._connector(request)
        obj = str((await self._body(request)).get("object_name", ""))
        self.staging(grant).object_path(obj)  # only upload names
        url = self.signer.url(_base(request), "POST", grant.gid, obj)
        return {"client_type": "MINIO", "presigned_url_data": {"url": url, "fields": {"key": obj}}}

    async def multipart_init(self, request: Request, grant: Grant) -> Any:
        self._connector(request)
        obj = str((await self._body(request)).get("object_name", ""))
        staging = self.staging(grant)
        staging.object_path(obj)
        upload_id = await self._sync(self.multipart.begin, staging, grant.run_id)
        return {"client_type": "MINIO", "upload_id": upload_id}

    async def presign_part(self, request: Request, grant: Grant) -> Any:
        self._connector(request)
        body = await self._body(request)
        obj, upload_id, part = (
            str(body.get("object_name", "")),
            str(body.get("upload_id", "")),
            body.get("part_no"),
        )
        staging = self.staging(grant)
        if not isinstance(part, int) or not staging.has_multipart(upload_id):
            raise ApiError(400, "bad upload_id or part_no")
        staging.part_path(upload_id, part)
        url = self.signer.url(_base(request), "PUT", grant.gid, obj, f"{upload_id}.{part}")
        return {"url": url}

    async def multipart_complete(self, request: Request, grant: Grant) -> Any:
        self._connector(request)
        body = await self._body(request)
        obj, upload_id = str(body.get("object_name", "")), str(body.get("upload_id", ""))
        parts = body.get("parts")
        if not isinstance(parts, list) or not parts:
            raise ApiError(400, "parts: a non-empty list")
        numbers = []
        for p in parts:
            n = p.get("PartNumber") if isinstance(p, dict) else None
            if not isinstance(n, int):
                raise ApiError(400, "each part needs a PartNumber")
            numbers.append(n)
        blobs = self.store.ws.blobs
        staging = self.staging(grant)
        await self._sync(self.multipart.complete, staging, obj, upload_id, numbers, blobs)
        return {"object_name": obj}

    # --------------------------------------------- presigned URLs (no auth header)

    def _count(self, grant: Grant, size: int) -> None:
        grant.uploaded += size
        if grant.uploaded > self.quota_bytes:
            raise ApiError(413, f"this run may upload at most {self.quota_bytes} bytes")

    def _signed(self, request: Request, method: str) -> tuple[Grant, str]:
        obj = request.path_params["obj"]
        gid = self.signer.check(method, obj, dict(request.query_params))
        grant = self.grants.by_gid(gid)
        if grant is None:
            raise ApiError(403, "the run this URL was made for is over")
        return grant, obj

    async def storage_get(self, request: Request) -> Response:
        try:
            grant, obj = self._signed(request, "GET")
            if obj.startswith("files/"):
                path = await self._file_source(grant, obj)
            else:
                held = self.staging(grant).blob(obj)
                if held is None:
                    raise ApiError(404, "no such object")
                path = self.store.ws.blobs.path_for(held[0])
            if not path.is_file():
                raise ApiError(404, "no such object")
        except ApiError as exc:
            return _error(exc.status, exc.message)
        # Streamed in chunks with its Content-Length (the SDK refuses a download
        # without one).
        return _BlobResponse(path, media_type="application/octet-stream")

    async def storage_post(self, request: Request) -> Response:
        """S3's presigned POST: a multipart form with the fields and `file`."""
        try:
            grant, obj = self._signed(request, "POST")
            staging = self.staging(grant)
            staging.object_path(obj)  # only upload names
            blobs = self.store.ws.blobs
            async with request.form(max_files=1, max_fields=100, max_part_size=1024 * 1024) as form:
                upload = form.get("file")
                if upload is None or isinstance(upload, str):
                    raise ApiError(400, "the form has no file")
                self._count(grant, upload.size or 0)
                await self._sync(staging.put, obj, upload.file, blobs)
        except ApiError as exc:
            return _error(exc.status, exc.message)
        return Response(status_code=204)

    async def storage_put(self, request: Request) -> Response:
        """One part of a multipart upload; answers its ETag (the SDK needs it)."""
        try:
            grant, _ = self._signed(request, "PUT")
            upload_id, _, part = request.query_params.get("x", "").partition(".")
            if not part.isdigit():
                raise ApiError(400, "bad part")
            # On the loop: which part is appended is decided by one thread only.
            writer = self.multipart.part_writer(self.staging(grant), upload_id, int(part))
            await self._receive_part(request, grant, writer)
        except ApiError as exc:
            return _error(exc.status, exc.message)
        # An ETag is opaque to the SDK (it hands it back to complete_part_upload):
        # a random one spares hashing every part twice.
        return Response(status_code=200, headers={"ETag": f'"{secrets.token_hex(16)}"'})

    async def _receive_part(self, request: Request, grant: Grant, writer: PartWriter) -> None:
        """The body into the part's writer, 1 MiB at a time in a worker thread while
        the loop receives the next MiB (one write in flight: they stay in order);
        undone on any failure."""
        loop = asyncio.get_running_loop()
        pending: asyncio.Future[None] | None = None
        try:
            chunks: list[bytes] = []
            held = 0
            async for chunk in request.stream():
                self._count(grant, len(chunk))
                chunks.append(chunk)
                held += len(chunk)
                if held >= _WRITE_CHUNK:
                    if pending is not None:
                        await pending
                    pending = loop.run_in_executor(None, writer.write, b"".join(chunks))
                    chunks, held = [], 0
            if pending is not None:
                await pending
            if chunks:
                await self._sync(writer.write, b"".join(chunks))
            await self._sync(writer.finish)
        except BaseException:
            with anyio.CancelScope(shield=True):
                if pending is not None:
                    await asyncio.wait([pending])  # the writer's file stays open until then
                    if not pending.cancelled():
                        pending.exception()  # retrieved: no "never retrieved" warning
                await self._sync(writer.abort)
            raise


class _BlobResponse(FileResponse):
    chunk_size = 1024 * 1024  # 64 KiB by default: a thread hop per chunk


def _base(request: Request) -> str:
    return str(request.base_url)


def _now() -> int:
    import time

    return time.time_ns()


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return _error(
            404, f"not served by the local Picsellia API: {request.method} {request.url.path}"
        )
    if exc.status_code == 405:
        return _error(405, f"method not served: {request.method} {request.url.path}")
    return _error(exc.status_code, str(exc.detail))
