"""Read-only queries with the standard `sqlite3` module, for read commands that
must answer at once when no engine serves the workspace.

SQLAlchemy, SQLModel and pydantic cost about half a second to import; a `jobs
list` needs a few rows. This module reads the same schema as storage/models.py
and returns what the engine's views dump to (`view.model_dump(mode="json")`:
same keys, same order, same values), so a command prints the same whichever
path answered. A test compares both on one workspace, and the schema revision
these queries are written for is checked against the migrations' head: on any
other revision (or no database yet) `Unsupported` sends the caller through the
engine, which migrates.

It imports nothing outside the standard library but `storage.params.MASK` (a
light module): the command line's read path must stay light (checked with
`python -X importtime` in tests/core/test_lightread.py).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from picsellia_tui.storage.params import MASK

# The migration these queries are written for; a test keeps it equal to
# storage.db.SCHEMA_HEAD, so a schema change cannot leave them behind unnoticed.
SCHEMA = "0006"
# Meta key: when the engine last synced the bundled processings (time.time()).
CATALOG_SYNCED_AT = "catalog_synced_at"
BUSY_TIMEOUT_S = 30.0
NODE_REASON = "task started on node "  # engine.queries.NODE_REASON (no engine import here)

Row = dict[str, Any]


class Unsupported(Exception):
    """This path cannot answer (no database yet, another schema revision, a
    public processing changed on disk): go through the engine."""


class LightError(Exception):
    """A lookup that failed the way the engine's would: same message, same exit
    code (2 for a name or id that does not exist)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _dt(value: str | None) -> str | None:
    """A stored datetime (naive UTC text, '2024-01-01 10:00:00.123400') as the
    views dump it: SQLModel reads it back as aware UTC, pydantic writes that as
    '2024-01-01T10:00:00.123400Z' ('...T10:00:00Z' on a whole second)."""
    if value is None:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=None).isoformat() + "Z"


def _json(value: str | None, default: Any) -> Any:
    if value is None:
        return default
    return json.loads(value)


def _num(value: Any) -> float | None:
    """A stored number; a non-finite one (stored before validation refused it)
    is None, as the engine's views read it (domain.stored_spec)."""
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def param_spec(p: dict[str, Any]) -> Row:
    """A stored parameter spec as ParamSpec dumps it (field order, defaults)."""
    return {
        "name": p.get("name"),
        "type": p.get("type"),
        # A secret's default (older definitions allowed one) is never shown.
        "default": None if p.get("secret") else p.get("default"),
        "required": bool(p.get("required", False)),
        "min": _num(p.get("min")),
        "max": _num(p.get("max")),
        "choices": p.get("choices"),
        "help": p.get("help", ""),
        "secret": bool(p.get("secret", False)),
    }


def constraints(c: dict[str, Any]) -> Row:
    return {
        "frameworks": [str(f).lower() for f in c.get("frameworks", [])],
        "required_files": list(c.get("required_files", [])),
        "cpu": _num(c.get("cpu")),
        "memory": c.get("memory"),
        "gpu": bool(c.get("gpu", False)),
        "network": bool(c.get("network", False)),
        "writable_rootfs": bool(c.get("writable_rootfs", False)),
        "capabilities": list(c.get("capabilities", [])),
        "secrets_in_env": bool(c.get("secrets_in_env", False)),
    }


def duration_s(started_at: str | None, ended_at: str | None) -> float | None:
    """As RunView.duration_s: to the end, or to now while the run is active."""
    if started_at is None:
        return None
    start = datetime.fromisoformat(started_at)
    end = datetime.fromisoformat(ended_at) if ended_at else _now_like(start)
    return max(0.0, (end - start).total_seconds())


def short_digest(ref: str | None) -> str | None:
    """As engine.views.short_digest: 'repo@sha256:aa5e…' -> 'aa5e01234567'."""
    if not ref:
        return None
    return ref.rpartition("@")[2].removeprefix("sha256:")[:12]


def _now_like(dt: datetime) -> datetime:
    # Stored datetimes are naive UTC.
    now = datetime.now(UTC)
    return now if dt.tzinfo is not None else now.replace(tzinfo=None)


class LightReader:
    """One read-only connection to a workspace database; use as a context manager."""

    def __init__(self, database: Path) -> None:
        if not database.is_file():
            raise Unsupported(f"no database at {database} yet")
        # The -wal/-shm files SQLite may create for this reader hold the same data
        # as the database: private like it (the engine makes them 0600 too).
        old = os.umask(0o077)
        try:
            # mode=rw: never create a database here (the engine creates and migrates).
            self.con = sqlite3.connect(f"file:{database}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_S)
            self.con.row_factory = sqlite3.Row
            revision = self.con.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.Error as exc:
            raise Unsupported(f"{database}: {exc}") from None
        finally:
            os.umask(old)
        if revision is None or revision[0] != SCHEMA:
            self.con.close()
            raise Unsupported(f"schema revision {revision and revision[0]}, not {SCHEMA}")
        self._users: dict[int, str] = {}
        self._versions: dict[int, str] = {}

    def __enter__(self) -> LightReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: a list and its count see the same state."""
        self.con.execute("BEGIN")
        try:
            yield self.con
        finally:
            self.con.execute("COMMIT")

    def _rows(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return self.con.execute(sql, args).fetchall()

    def _row(self, sql: str, *args: Any) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.con.execute(sql, args).fetchone()
        return row

    # -- names ----------------------------------------------------------------------------

    def user(self, uid: int | None) -> str | None:
        if uid is None:
            return None
        if uid not in self._users:
            row = self._row('SELECT name FROM "user" WHERE id = ?', uid)
            self._users[uid] = row["name"] if row else f"user#{uid}"
        return self._users[uid]

    def version_name(self, vid: int | None) -> str | None:
        if vid is None:
            return None
        if vid not in self._versions:
            row = self._row(
                "SELECT m.name AS model, v.name AS version FROM model_version v "
                "JOIN model m ON m.id = v.model_id WHERE v.id = ?",
                vid,
            )
            self._versions[vid] = f"{row['model']}/{row['version']}" if row else f"version#{vid}"
        return self._versions[vid]

    # -- processings ----------------------------------------------------------------------

    def _processing(self, r: sqlite3.Row) -> Row:
        return {
            "id": r["id"],
            "name": r["name"],
            "version": r["version"],
            "description": r["description"],
            "task": r["task"],
            "target_type": r["target_type"],
            "image": r["image"],
            "command": _json(r["command"], []),
            "entrypoint": _json(r["entrypoint"], None),
            "output_mode": r["output_mode"],
            "parameters": [param_spec(p) for p in _json(r["parameters"], [])],
            "constraints": constraints(_json(r["constraints"], {})),
            "visibility": r["visibility"],
            "owner": self.user(r["owner_id"]),
            "source_dir": r["source_dir"],
            "picsellia_api": bool((_json(r["picsellia"], None) or {}).get("api")),
        }

    def check_catalog(self, processings_dir: Path) -> None:
        """Unsupported when the bundled processings on disk may differ from the
        database (a folder not synced yet, a processing.toml edited since the last
        sync): the engine syncs them as it opens the workspace."""
        mark = self._row("SELECT value FROM meta WHERE key = ?", CATALOG_SYNCED_AT)
        if mark is None:
            raise Unsupported("the bundled processings were never synced")
        synced_at = float(mark["value"])
        synced = {
            r["source_dir"]
            for r in self._rows("SELECT source_dir FROM processing WHERE visibility = 'public'")
        }
        if not processings_dir.is_dir():
            return
        for p in processings_dir.iterdir():
            if p.name.startswith((".", "_")):
                continue
            try:
                mtime = (p / "processing.toml").stat().st_mtime
            except (FileNotFoundError, NotADirectoryError):
                continue
            if str(p) not in synced or mtime >= synced_at:
                raise Unsupported(f"{p} changed since the last sync")

    def processings(self) -> list[Row]:
        rows = self._rows(
            "SELECT * FROM processing WHERE removed_at IS NULL ORDER BY target_type, name"
        )
        return [self._processing(r) for r in rows]

    def processing(self, name: str) -> Row:
        row = self._row("SELECT * FROM processing WHERE name = ?", name)
        if row is None and name.isdigit():
            row = self._row("SELECT * FROM processing WHERE id = ?", int(name))
        if row is None:
            raise LightError(f"no processing named {name!r} (see: picsellia-tui processings list)")
        if row["removed_at"] is not None:
            removed = datetime.fromisoformat(row["removed_at"])
            raise LightError(
                f"processing {row['name']!r} was removed on {removed:%Y-%m-%d %H:%M} "
                "(its jobs stay in the history)"
            )
        return self._processing(row)

    # -- model versions -------------------------------------------------------------------

    def _version(self, v: sqlite3.Row, files: bool) -> Row:
        file_rows = []
        if files:
            file_rows = [
                {"path": f["path"], "sha256": f["sha256"], "size": f["size"]}
                for f in self._rows(
                    "SELECT path, sha256, size FROM version_file WHERE version_id = ? "
                    "ORDER BY path",
                    v["id"],
                )
            ]
        return {
            "id": v["id"],
            "model_id": v["model_id"],
            "model": v["model"],
            "name": v["name"],
            "framework": v["framework"],
            "description": v["description"],
            "labels": _json(v["labels"], []),
            "tags": _json(v["tags"], []),
            "metrics": _json(v["metrics"], {}),
            "size_bytes": v["size_bytes"],
            "parent_id": v["parent_id"],
            "parent": self.version_name(v["parent_id"]),
            "origin_job_id": v["origin_job_id"],
            "created_by": self.user(v["created_by_id"]),
            "created_at": _dt(v["created_at"]),
            "files": file_rows,
        }

    _VERSIONS = "SELECT v.*, m.name AS model FROM model_version v JOIN model m ON m.id = v.model_id"

    def versions(self) -> list[Row]:
        rows = self._rows(self._VERSIONS + " ORDER BY m.name, v.created_at, v.id")
        return [self._version(v, files=False) for v in rows]

    def version(self, ref: str) -> Row:
        """'model/version' or a numeric version id, with its files."""
        if ref.isdigit():
            row = self._row(self._VERSIONS + " WHERE v.id = ?", int(ref))
            if row is None:
                raise LightError(f"no model version with id {ref}")
            return self._version(row, files=True)
        model, sep, name = ref.partition("/")
        if not sep:
            raise LightError(f"{ref!r}: name a version as MODEL/VERSION (or its id)")
        if self._row("SELECT id FROM model WHERE name = ?", model) is None:
            raise LightError(f"no model named {model!r}")
        row = self._row(self._VERSIONS + " WHERE m.name = ? AND v.name = ?", model, name)
        if row is None:
            raise LightError(f"model {model!r} has no version {name!r}")
        return self._version(row, files=True)

    # -- jobs and runs ----------------------------------------------------------------------

    def _run(self, r: sqlite3.Row, previous_digest: str | bool | None = False) -> Row:
        """As engine.queries.run_view: `previous_digest` is the digest of the job's
        last earlier run that recorded one (None: none did), False when the
        history was not looked at (image_changed is then None)."""
        changed: bool | None = None
        if previous_digest is not False:
            changed = bool(
                r["image_digest"] and previous_digest and r["image_digest"] != previous_digest
            )
        return {
            "id": r["id"],
            "job_id": r["job_id"],
            "attempt": r["attempt"],
            "status": r["status"],
            "executor": r["executor"],
            "host": r["host"],
            "ref": r["ref"],
            "launched_by": self.user(r["launched_by_id"]) or "?",
            "created_at": _dt(r["created_at"]),
            "started_at": _dt(r["started_at"]),
            "ended_at": _dt(r["ended_at"]),
            "exit_code": r["exit_code"],
            "error_summary": r["error_summary"],
            "log_path": r["log_path"],
            "output_version_id": r["output_version_id"],
            "cancel_requested": bool(r["cancel_requested"]),
            "image_ref": r["image_ref"],
            "image_digest": r["image_digest"],
            "image_changed": changed,
            "node": None,  # filled by _job from the run's history (swarm)
            "short_digest": short_digest(r["image_digest"]),
            "duration_s": duration_s(r["started_at"], r["ended_at"]),
        }

    def _job(self, j: sqlite3.Row, runs: bool) -> Row:
        snapshot = _json(j["processing_snapshot"], {})
        secret = {p.get("name") for p in snapshot.get("parameters", []) if p.get("secret")}
        params = _json(j["parameters"], {})
        run_rows = []
        if runs:  # as engine.queries.run_history: each marked where its image changed
            previous: str | None = None
            for r in self._rows("SELECT * FROM run WHERE job_id = ? ORDER BY attempt", j["id"]):
                run_rows.append(self._run(r, previous))
                previous = r["image_digest"] or previous
            # As engine.queries.run_nodes: the node a swarm run started on.
            for ev in self._rows(
                "SELECT e.run_id, e.reason FROM run_event e JOIN run r ON r.id = e.run_id"
                " WHERE r.job_id = ? AND e.reason LIKE ?",
                j["id"],
                NODE_REASON + "%",
            ):
                for row in run_rows:
                    if row["id"] == ev["run_id"]:
                        row["node"] = str(ev["reason"]).removeprefix(NODE_REASON)
        return {
            "id": j["id"],
            "processing": j["processing_name"],
            "processing_id": j["processing_id"],
            "task": str(snapshot.get("task", "")),
            "target_version_id": j["target_version_id"],
            "target": self.version_name(j["target_version_id"]) or "?",
            "parameters": {k: (MASK if k in secret else v) for k, v in params.items()},
            "output_version_name": j["output_version_name"],
            "output_mode": str(snapshot.get("output_mode", "new_model_version")),
            "picsellia_api": bool((snapshot.get("picsellia") or {}).get("api")),
            "image_ref": j["image_ref"],
            "executor": j["executor"],
            "host": j["host"],
            "launched_by": self.user(j["launched_by_id"]) or "?",
            "created_at": _dt(j["created_at"]),
            "updated_at": _dt(j["updated_at"]),
            "status": j["last_status"],
            "attempts": j["attempts"],
            "runs": run_rows,
        }

    def jobs(self, *, limit: int = 100, offset: int = 0, status: str | None = None) -> list[Row]:
        """Newest first, one page (as engine.queries.list_jobs)."""
        where, args = ("WHERE last_status = ?", [status]) if status else ("", [])
        rows = self._rows(
            f"SELECT * FROM job {where} ORDER BY id DESC LIMIT ? OFFSET ?", *args, limit, offset
        )
        return [self._job(j, runs=False) for j in rows]

    def count_jobs(self, status: str | None = None) -> int:
        if status:
            row = self._row("SELECT count(*) FROM job WHERE last_status = ?", status)
        else:
            row = self._row("SELECT count(*) FROM job")
        assert row is not None
        return int(row[0])

    def jobs_page(
        self, *, limit: int, offset: int, status: str | None = None
    ) -> tuple[list[Row], int]:
        """One page and the total, from one snapshot."""
        with self._snapshot():
            return self.jobs(limit=limit, offset=offset, status=status), self.count_jobs(status)

    def job(self, job_id: int) -> Row:
        with self._snapshot():
            row = self._row("SELECT * FROM job WHERE id = ?", job_id)
            if row is None:
                raise LightError(f"no job {job_id}")
            return self._job(row, runs=True)
