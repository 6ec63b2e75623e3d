"""Read models handed to the UI and the command line (never ORM rows).

Secrets are masked before a view is built; `--json` dumps these as they are.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, computed_field

from picsellia_tui.storage.domain import Constraints, ParamSpec


class ProcessingView(BaseModel):
    id: int
    name: str
    version: str
    description: str
    task: str
    target_type: str
    image: str
    command: list[str]
    entrypoint: list[str] | None = None
    output_mode: str
    parameters: list[ParamSpec]
    constraints: Constraints
    visibility: str
    owner: str | None
    source_dir: str | None
    picsellia_api: bool = False  # [picsellia] api: runs get the local Picsellia API


class ProcessingChange(BaseModel):
    """One difference between a processing as saved and its folder's processing.toml:
    `what` is a key ("version", "parameters.lines", "constraints.frameworks")."""

    what: str
    before: str  # "-" when added
    after: str  # "-" when removed


class ProcessingUpdate(BaseModel):
    """What `update` would save: the changes, and the definition they come from
    (`definition_hash`: saving checks the file still says what was shown)."""

    name: str
    folder: str
    changes: list[ProcessingChange]
    definition_hash: str


class BuildView(BaseModel):
    """An image build the engine runs; its log is a file in the runs' log format."""

    id: int
    processing: str
    image: str
    host: str
    log_path: str
    status: str  # running | succeeded | failed | cancelled
    error: str | None = None  # why it failed, one line
    image_id: str | None = None
    started_at: datetime
    ended_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status == "running"


class FileView(BaseModel):
    path: str
    sha256: str
    size: int


class VersionView(BaseModel):
    id: int
    model_id: int
    model: str
    name: str
    framework: str
    description: str
    labels: list[str]
    tags: list[str]
    metrics: dict[str, Any]
    size_bytes: int
    parent_id: int | None
    parent: str | None  # "model/version"
    origin_job_id: int | None
    created_by: str | None
    created_at: datetime
    files: list[FileView] = []

    @property
    def ref(self) -> str:
        return f"{self.model}/{self.name}"


class RunView(BaseModel):
    id: int
    job_id: int
    attempt: int
    status: str
    executor: str
    host: str
    ref: str | None
    launched_by: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    exit_code: int | None
    error_summary: str | None
    log_path: str
    output_version_id: int | None
    cancel_requested: bool
    image_ref: str | None = None  # what it asked for: a tag, or a pinned digest
    image_digest: str | None = None  # what it ran (None until it starts)
    # Its digest differs from the one the job's previous run with a digest ran
    # (None where the history was not looked at: a job list's latest runs).
    image_changed: bool | None = None
    node: str | None = None  # the cluster node it ran on (swarm), from its history

    @computed_field  # type: ignore[prop-decorator]  # mypy rejects decorated properties
    @property
    def short_digest(self) -> str | None:
        return short_digest(self.image_digest)

    @computed_field  # type: ignore[prop-decorator]  # mypy rejects decorated properties
    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.ended_at or datetime.now(self.started_at.tzinfo)
        return max(0.0, (end - self.started_at).total_seconds())


class JobView(BaseModel):
    id: int
    processing: str
    processing_id: int
    task: str
    target_version_id: int
    target: str  # "model/version"
    parameters: dict[str, Any]  # secrets masked
    output_version_name: str | None
    output_mode: str = "new_model_version"
    picsellia_api: bool = False  # its processing stores its versions through the API
    image_ref: str
    executor: str
    host: str
    launched_by: str
    created_at: datetime
    updated_at: datetime
    status: str  # the latest run's
    attempts: int
    runs: list[RunView] = []

    @property
    def active(self) -> bool:
        return self.status in ("pending", "running")

    @property
    def output_label(self) -> str:
        """What the job writes: its new version's name, or what it does instead."""
        if self.output_mode == "update_input":
            return "(updates the input)"
        if self.output_mode == "none" and self.picsellia_api:
            return "(versions it makes via the Picsellia API)"
        if self.output_mode == "none":
            return "(no output version)"
        return self.output_version_name or "(a new version)"


def short_digest(ref: str | None) -> str | None:
    """'repo@sha256:aa5e0123…' or 'sha256:aa5e0123…' -> 'aa5e01234567' (12 hex digits,
    as `docker images` shows ids)."""
    if not ref:
        return None
    digest = ref.rpartition("@")[2]
    return digest.removeprefix("sha256:")[:12]


class EngineStats(BaseModel):
    running: int
    pending: int
    organization: str
    user: str
    host: str
    executor: str
