"""The workspace seen as Picsellia objects: organization, models, versions, files, jobs.

Synchronous (SQLite and the blob store): the routes call it in a worker thread.
Every payload has the fields the SDK's schemas require (picsellia 6.37
`types/schemas.py`); everything else a processing might read is filled where the
workspace knows it. Permission checks are the caller's (the routes hold the grant);
this module only answers "what is it" and "make it so".
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from picsellia_tui.engine import catalog
from picsellia_tui.engine.errors import EngineError
from picsellia_tui.engine.picsellia_api.grants import Grant
from picsellia_tui.engine.picsellia_api.ids import Ids
from picsellia_tui.engine.workspace import Workspace
from picsellia_tui.storage.models import Job, Model, ModelVersion, Run, RunEvent, VersionFile

SDK_VERSION = "6.37.0"
LARGE_FILE = 25 * 1024 * 1024  # the SDK's own threshold for "large" files
# Picsellia's Framework enum knows these; anything else is NOT_CONFIGURED there.
_FRAMEWORKS = {"onnx": "ONNX", "pytorch": "PYTORCH", "tensorflow": "TENSORFLOW"}
_STATUS = {
    "pending": "PENDING",
    "running": "RUNNING",
    "succeeded": "SUCCEEDED",
    "failed": "FAILED",
    "killed": "KILLED",
}
REPORT_REASON = "picsellia api: the processing reported "


class ApiError(Exception):
    """An answer other than 2xx: status code and one line for the SDK's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Blob:
    path: Path
    sha256: str
    size: int
    filename: str


def picsellia_framework(ours: str) -> str:
    return _FRAMEWORKS.get(ours.lower(), "NOT_CONFIGURED")


def _labels_out(labels: list[str]) -> dict[str, str]:
    return {str(i): name for i, name in enumerate(labels)}


def _labels_in(labels: object) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, dict):

        def order(k: str) -> tuple[int, int | str]:
            return (0, int(k)) if k.isdigit() else (1, k)

        return [str(labels[k]) for k in sorted(labels, key=lambda k: order(str(k)))]
    if isinstance(labels, list):
        return [str(x) for x in labels]
    raise ApiError(400, "labels: a mapping or a list")


def _safe_filename(filename: object) -> str:
    name = posixpath.basename(str(filename or "").replace("\\", "/"))
    if name in ("", ".", "..") or any(ord(c) < 32 for c in name) or len(name) > 255:
        raise ApiError(400, f"filename {str(filename)[:80]!r} is not a plain file name")
    return name


class Store:
    def __init__(self, ws: Workspace, ids: Ids, organization: str) -> None:
        self.ws = ws
        self.ids = ids
        self.org_name = organization
        self.org_id = str(_uuid(ws.organization_id))
        self.connector_id = ids.encode("connector", 1)

    # ------------------------------------------------------------------ organization

    def organization(self) -> dict[str, Any]:
        return {
            "id": self.org_id,
            "name": self.org_name,
            "default_connector_id": self.connector_id,
        }

    def username(self) -> str:
        return self.ws.settings.user

    # ------------------------------------------------------------------------- jobs

    def job(self, grant: Grant, reported: str | None = None) -> dict[str, Any]:
        with self.ws.db.read() as s:
            job = s.get(Job, grant.job_id)
            run = s.get(Run, grant.run_id)
            assert job is not None and run is not None
            params: dict[str, Any] = dict(job.parameters)
            params.update(self.ws.decrypt(job.secrets_enc))
            status = _STATUS.get(run.status, "PENDING")
            if run.status in ("pending", "running") and (reported or grant.reported):
                status = reported or grant.reported or status
            target = self.ids.encode("version", job.target_version_id)
            return {
                "id": self.ids.encode("job", grant.job_id),
                "name": f"{job.processing_name}-{job.id}",
                "status": status,
                "type": "MODEL_VERSION_PROCESSING",
                "created_at": job.created_at.isoformat(),
                "parameters": params,
                "processing_job": {
                    "target_id": target,
                    "parameters": params,
                    "inputs": {"input_model_version_id": target},
                    "payload_presigned_url": None,
                },
                "model_version_processing_job": {
                    "input_model_version_id": target,
                    "parameters": params,
                },
            }

    def record_report(self, grant: Grant, status: str) -> None:
        """A status the processing posted: a line of the run's history (not a
        transition: the exit code decides the run's final status)."""

        def w(s: Session) -> None:
            run = s.get(Run, grant.run_id)
            assert run is not None
            s.add(RunEvent(run_id=grant.run_id, status=run.status, reason=REPORT_REASON + status))

        self.ws.db.write_retry(w)

    # ----------------------------------------------------------------------- models

    def model(self, model_id: int) -> dict[str, Any]:
        with self.ws.db.read() as s:
            model = s.get(Model, model_id)
            if model is None:
                raise ApiError(404, "no such model")
            return self._model(model)

    def _model(self, model: Model) -> dict[str, Any]:
        assert model.id is not None
        return {
            "id": self.ids.encode("model", model.id),
            "name": model.name,
            "private": True,
            "description": model.description,
        }

    def version(self, version_id: int) -> dict[str, Any]:
        with self.ws.db.read() as s:
            return self._version(s, version_id)

    def _version(self, s: Session, version_id: int) -> dict[str, Any]:
        v = s.get(ModelVersion, version_id)
        if v is None:
            raise ApiError(404, "no such model version")
        model = s.get(Model, v.model_id)
        assert model is not None and v.id is not None
        ids = list(
            s.exec(
                select(ModelVersion.id)
                .where(ModelVersion.model_id == v.model_id)
                .order_by(col(ModelVersion.id))
            )
        )
        return {
            "id": self.ids.encode("version", v.id),
            "origin": self._model(model),
            "name": v.name,
            "version": ids.index(v.id),
            "labels": _labels_out(v.labels),
            "type": "NOT_CONFIGURED",
            "framework": picsellia_framework(v.framework),
            "description": v.description,
            "created_at": v.created_at.isoformat(),
        }

    def create_version(self, grant: Grant, model_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """A new version of the target's model, made by the job (its origin)."""
        labels = _labels_in(body.get("labels"))
        framework = body.get("framework")
        if framework is not None and not isinstance(framework, str):
            raise ApiError(400, "framework: a string")
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            raise ApiError(400, "name: a string")
        description = body.get("description")

        def w(s: Session) -> int:
            job = s.get(Job, grant.job_id)
            target = s.get(ModelVersion, grant.target_version_id)
            model = s.get(Model, model_id)
            assert job is not None and target is not None and model is not None
            assert model.id is not None
            base = name or job.output_version_name or f"{target.name}-job{job.id}"
            if name is not None:
                taken = s.exec(
                    select(ModelVersion).where(
                        ModelVersion.model_id == model.id, ModelVersion.name == name
                    )
                ).first()
                if taken is not None:
                    raise ApiError(409, f"model {model.name!r} already has a version {name!r}")
            fw = (
                framework.lower()
                if framework and framework.upper() != "NOT_CONFIGURED"
                else target.framework
            )
            try:
                version = catalog.add_version(
                    s,
                    self.ws,
                    model_name=model.name,
                    version_name=catalog.unique_version_name(s, model.id, base),
                    framework=fw,
                    stored=[],
                    labels=labels if labels is not None else target.labels,
                    description=str(description or f"{job.processing_name} on {target.name}"),
                    parent_id=target.id,
                    origin_job_id=job.id,
                )
            except EngineError as exc:
                raise ApiError(400, str(exc)) from None
            assert version.id is not None
            return version.id

        version_id = self.ws.db.write_retry(w)
        grant.created_versions.add(version_id)
        return self.version(version_id)

    # ------------------------------------------------------------------------ files

    def _file(self, f: VersionFile) -> dict[str, Any]:
        assert f.id is not None
        fid = self.ids.encode("file", f.id)
        filename = posixpath.basename(f.path)
        return {
            "id": fid,
            "name": f.name or f.path,
            "filename": filename,
            "object_name": f"files/{fid}/{filename}",
            "large": f.size > LARGE_FILE,
            "size": f.size,
        }

    def files(self, version_id: int) -> list[dict[str, Any]]:
        with self.ws.db.read() as s:
            rows = s.exec(
                select(VersionFile)
                .where(VersionFile.version_id == version_id)
                .order_by(col(VersionFile.id))
            )
            return [self._file(f) for f in rows]

    def find_file(self, version_id: int, name: str) -> dict[str, Any]:
        with self.ws.db.read() as s:
            f = self._by_name(s, version_id, name)
            if f is None:
                raise ApiError(404, f"no file named {name[:80]!r} in this version")
            return self._file(f)

    def _by_name(self, s: Session, version_id: int, name: str) -> VersionFile | None:
        rows = list(s.exec(select(VersionFile).where(VersionFile.version_id == version_id)))
        for f in rows:
            if (f.name or f.path) == name:
                return f
        return None

    def file(self, file_id: int) -> tuple[int, dict[str, Any]]:
        """(its version, the payload)."""
        with self.ws.db.read() as s:
            f = s.get(VersionFile, file_id)
            if f is None:
                raise ApiError(404, "no such model file")
            return f.version_id, self._file(f)

    def file_blob(self, file_id: int) -> tuple[int, Blob]:
        with self.ws.db.read() as s:
            f = s.get(VersionFile, file_id)
            if f is None:
                raise ApiError(404, "no such object")
            return f.version_id, Blob(
                self.ws.blobs.path_for(f.sha256), f.sha256, f.size, posixpath.basename(f.path)
            )

    def add_file(
        self, version_id: int, name: str, filename: str, blob: tuple[str, int]
    ) -> dict[str, Any]:
        """The blob (already in the store) as the file `name` of the version,
        replacing a file of that name: on the target version this updates it, as
        `update_input` does."""
        if not isinstance(name, str) or not name or len(name) > 255:
            raise ApiError(400, "name: a non-empty string")
        filename = _safe_filename(filename)
        sha, size = blob

        def w(s: Session) -> int:
            v = s.get(ModelVersion, version_id)
            if v is None:
                raise ApiError(404, "no such model version")
            existing = self._by_name(s, version_id, name)
            if existing is not None:
                s.delete(existing)
                s.flush()
            paths = set(
                s.exec(select(VersionFile.path).where(VersionFile.version_id == version_id))
            )
            path = filename if filename not in paths else f"{name}/{filename}"
            if path in paths:
                raise ApiError(409, f"a file {path!r} already exists in this version")
            row = VersionFile(
                version_id=version_id,
                path=path,
                sha256=sha,
                size=size,
                name=None if name == path else name,
            )
            s.add(row)
            s.flush()
            v.size_bytes = sum(
                s.exec(select(VersionFile.size).where(VersionFile.version_id == version_id))
            )
            s.add(v)
            assert row.id is not None
            return row.id

        file_id = self.ws.db.write_retry(w)
        return self.file(file_id)[1]

    def delete_file(self, file_id: int) -> None:
        def w(s: Session) -> None:
            f = s.get(VersionFile, file_id)
            if f is None:
                raise ApiError(404, "no such model file")
            v = s.get(ModelVersion, f.version_id)
            assert v is not None
            s.delete(f)
            s.flush()
            v.size_bytes = sum(
                s.exec(select(VersionFile.size).where(VersionFile.version_id == f.version_id))
            )
            s.add(v)

        self.ws.db.write_retry(w)

    def version_names(self, version_id: int) -> tuple[str, str]:
        with self.ws.db.read() as s:
            v = s.get(ModelVersion, version_id)
            assert v is not None
            model = s.get(Model, v.model_id)
            assert model is not None
            return model.name, v.name


def _uuid(hexid: str) -> str:
    import uuid

    return str(uuid.UUID(hexid))
