"""SQLModel tables. The schema itself is owned by Alembic migrations
(storage/migrations); these classes must match the latest revision."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _json(default: Any = None) -> Any:
    factory = (lambda: list(default)) if isinstance(default, list) else dict
    return Field(default_factory=factory, sa_column=Column(JSON, nullable=False))


class Meta(SQLModel, table=True):
    __tablename__ = "meta"
    key: str = Field(primary_key=True)
    value: str


class Organization(SQLModel, table=True):
    __tablename__ = "organization"
    id: str = Field(primary_key=True)  # uuid hex
    name: str = Field(unique=True)
    created_at: datetime = Field(default_factory=utcnow)


class User(SQLModel, table=True):
    __tablename__ = "user"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)  # the OS login name
    created_at: datetime = Field(default_factory=utcnow)


class Processing(SQLModel, table=True):
    __tablename__ = "processing"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    version: str
    description: str = ""
    task: str
    target_type: str
    image: str
    command: list[str] = _json([])  # empty: the image's own ENTRYPOINT/CMD runs
    entrypoint: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    output_mode: str
    parameters: list[dict[str, Any]] = _json([])
    constraints: dict[str, Any] = _json()
    build: dict[str, Any] = _json()
    picsellia: dict[str, Any] = _json()  # the [picsellia] section ({"api": true})
    visibility: str  # public | private
    owner_id: int | None = Field(default=None, foreign_key="user.id")
    source_dir: str | None = None
    definition_hash: str
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # A removed private processing: out of the list, not launchable; its jobs keep it.
    removed_at: datetime | None = None


class Model(SQLModel, table=True):
    __tablename__ = "model"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    description: str = ""
    owner_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class ModelVersion(SQLModel, table=True):
    __tablename__ = "model_version"
    __table_args__ = (
        UniqueConstraint("model_id", "name"),
        Index("ix_model_version_created_at", "created_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model.id", index=True)
    name: str
    framework: str
    description: str = ""
    labels: list[str] = _json([])
    tags: list[str] = _json([])
    metrics: dict[str, Any] = _json()
    size_bytes: int = 0
    parent_id: int | None = Field(default=None, foreign_key="model_version.id")
    origin_job_id: int | None = Field(default=None, foreign_key="job.id", index=True)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class VersionFile(SQLModel, table=True):
    __tablename__ = "version_file"
    __table_args__ = (UniqueConstraint("version_id", "path"),)
    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="model_version.id", index=True)
    path: str
    sha256: str
    size: int
    # The name a Picsellia SDK processing stored it under, when it is not `path`.
    name: str | None = None


class Job(SQLModel, table=True):
    __tablename__ = "job"
    __table_args__ = (
        Index("ix_job_created_at", "created_at"),
        Index("ix_job_updated_at", "updated_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    processing_id: int = Field(foreign_key="processing.id", index=True)
    processing_name: str
    # The definition its latest run ran: set at launch, replaced by the processing's
    # current one on a re-run (unless that re-run pins the previous image).
    processing_snapshot: dict[str, Any] = _json()
    image_ref: str  # the image reference of that definition (a tag, usually)
    target_version_id: int = Field(foreign_key="model_version.id", index=True)
    parameters: dict[str, Any] = _json()  # without secrets
    secrets_enc: str | None = None  # Fernet token of a JSON object
    output_version_name: str | None = None
    executor: str  # docker | process
    host: str  # host name from config ("local", "gpu-box", ...)
    launched_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    # Denormalised from the latest run so job lists need no join or subquery.
    last_status: str = Field(default="pending", index=True)
    attempts: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class Run(SQLModel, table=True):
    __tablename__ = "run"
    __table_args__ = (
        UniqueConstraint("job_id", "attempt"),
        Index("ix_run_status", "status"),
        Index("ix_run_job_attempt", "job_id", "attempt"),
    )
    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    attempt: int
    status: str = "pending"
    executor: str
    host: str
    ref: str | None = None  # container id or process run folder
    # What the run asked for (the processing's image reference, or a digest pinned
    # for an exact reproduction) and the digest it actually ran, set when it starts.
    image_ref: str | None = None
    image_digest: str | None = None
    launched_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    error_summary: str | None = None
    log_path: str
    output_version_id: int | None = Field(default=None, foreign_key="model_version.id")
    outputs_ingested: bool = False
    cancel_requested: bool = False


class RunEvent(SQLModel, table=True):
    """Status history of a run: one row per transition, written with it."""

    __tablename__ = "run_event"
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", index=True)
    status: str
    at: datetime = Field(default_factory=utcnow)
    engine_id: str | None = None
    reason: str | None = None


class RunLease(SQLModel, table=True):
    """Which engine supervises a run. Exactly one live owner; a stale heartbeat
    lets another engine take over."""

    __tablename__ = "run_lease"
    run_id: int = Field(foreign_key="run.id", primary_key=True)
    owner: str
    heartbeat_at: float  # time.time() of the owner's last beat
