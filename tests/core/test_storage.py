"""Storage: migrations, SQLite settings, blob store, file modes."""

from __future__ import annotations

import hashlib
import io
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from picsellia_tui.storage.blobs import BlobCorrupted, BlobStore
from picsellia_tui.storage.db import SCHEMA_HEAD, Database
from picsellia_tui.storage.migrate import (
    alembic_config,
    current_revision,
    head_revision,
    upgrade,
)


def test_fresh_database_is_at_head_with_wal_and_0600(tmp_path: Path) -> None:
    db = Database(tmp_path / "d" / "x.db")
    db.migrate()
    assert current_revision(db) == head_revision(db) == SCHEMA_HEAD == db.schema_version()
    with db.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert stat.S_IMODE(db.path.stat().st_mode) == 0o600


def test_upgrade_from_older_revision_keeps_and_backfills_data(tmp_path: Path) -> None:
    db = Database(tmp_path / "old.db")
    upgrade(db, "0001")
    assert current_revision(db) == "0001"
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).isoformat(sep=" ")
    with db.engine.begin() as c:
        c.execute(text("INSERT INTO user (id, name, created_at) VALUES (1, 'ana', :t)"), {"t": now})
        c.execute(
            text(
                "INSERT INTO processing (id, name, version, description, task, target_type, image, "
                "command, output_mode, parameters, constraints, build, visibility, definition_hash, "
                "created_at, updated_at) VALUES (1, 'p', '1', '', 'MODEL_COMPRESSION', "
                "'model_version', 'img', '[]', 'none', '[]', '{}', '{}', 'public', 'h', :t, :t)"
            ),
            {"t": now},
        )
        c.execute(
            text("INSERT INTO model (id, name, description, created_at) VALUES (1, 'm', '', :t)"),
            {"t": now},
        )
        c.execute(
            text(
                "INSERT INTO model_version (id, model_id, name, framework, description, labels, tags, "
                "metrics, size_bytes, created_at) VALUES (1, 1, 'v1', 'onnx', '', '[]', '[]', '{}', "
                "0, :t)"
            ),
            {"t": now},
        )
        c.execute(
            text(
                "INSERT INTO job (id, processing_id, processing_name, processing_snapshot, image_ref, "
                "target_version_id, parameters, executor, host, launched_by_id, created_at) VALUES "
                "(1, 1, 'p', '{}', 'img', 1, '{}', 'process', 'local', 1, :t)"
            ),
            {"t": now},
        )
        for attempt, status in ((1, "failed"), (2, "succeeded")):
            c.execute(
                text(
                    "INSERT INTO run (job_id, attempt, status, executor, host, launched_by_id, "
                    "created_at, log_path, outputs_ingested, cancel_requested) VALUES "
                    "(1, :a, :s, 'process', 'local', 1, :t, 'x.log', 0, 0)"
                ),
                {"a": attempt, "s": status, "t": now},
            )
    db.migrate()
    assert current_revision(db) == SCHEMA_HEAD
    with db.engine.connect() as c:
        row = c.execute(text("SELECT last_status, attempts, updated_at FROM job")).one()
        assert row[0] == "succeeded" and row[1] == 2 and row[2] is not None
        plan = " ".join(
            r[3]
            for r in c.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT * FROM job WHERE last_status='failed' ORDER BY id DESC"
            )
        )
        assert "ix_job_last_status" in plan
        plan = " ".join(
            r[3]
            for r in c.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT * FROM job WHERE updated_at > '2026-01-01' "
                "ORDER BY updated_at DESC, id DESC LIMIT 100"
            )
        )
        assert "ix_job_updated_at" in plan


def test_upgrade_moves_the_image_digest_from_job_to_its_runs(tmp_path: Path) -> None:
    db = Database(tmp_path / "old.db")
    upgrade(db, "0003")
    t = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).isoformat(sep=" ")
    digest = "sha256:" + "c" * 64
    with db.engine.begin() as c:
        c.execute(text("INSERT INTO user (id, name, created_at) VALUES (1, 'ana', :t)"), {"t": t})
        c.execute(
            text(
                "INSERT INTO processing (id, name, version, description, task, target_type, image, "
                "command, output_mode, parameters, constraints, build, visibility, definition_hash, "
                "created_at, updated_at) VALUES (1, 'p', '1', '', 'MODEL_COMPRESSION', "
                "'model_version', 'img:1', '[\"python\", \"main.py\"]', 'none', '[]', '{}', "
                "'{}', 'public', 'h', :t, :t)"
            ),
            {"t": t},
        )
        c.execute(text("INSERT INTO model VALUES (1, 'm', '', NULL, :t)"), {"t": t})
        c.execute(
            text(
                "INSERT INTO model_version (id, model_id, name, framework, description, labels, "
                "tags, metrics, size_bytes, created_at) VALUES (1, 1, 'v1', 'onnx', '', '[]', "
                "'[]', '{}', 0, :t)"
            ),
            {"t": t},
        )
        c.execute(
            text(
                "INSERT INTO job (id, processing_id, processing_name, processing_snapshot, "
                "image_ref, image_digest, target_version_id, parameters, executor, host, "
                "launched_by_id, created_at, last_status, attempts, updated_at) VALUES "
                "(1, 1, 'p', '{}', 'img:1', :d, 1, '{}', 'docker', 'local', 1, :t, 'failed', 2, :t)"
            ),
            {"t": t, "d": digest},
        )
        # run 1 ran the job's digest; run 2 failed before it started (image missing)
        for attempt, started in ((1, t), (2, None)):
            c.execute(
                text(
                    "INSERT INTO run (job_id, attempt, status, executor, host, launched_by_id, "
                    "created_at, started_at, log_path, outputs_ingested, cancel_requested) "
                    "VALUES (1, :a, 'failed', 'docker', 'local', 1, :t, :s, 'x.log', 0, 0)"
                ),
                {"a": attempt, "t": t, "s": started},
            )
    db.migrate()
    with db.engine.connect() as c:
        rows = c.execute(text("SELECT attempt, image_ref, image_digest FROM run ORDER BY attempt"))
        assert [tuple(r) for r in rows] == [(1, "img:1", digest), (2, "img:1", None)]
        job_columns = {r[1] for r in c.exec_driver_sql("PRAGMA table_info(job)")}
        assert "image_digest" not in job_columns and "image_ref" in job_columns
        assert c.execute(text("SELECT entrypoint FROM processing")).scalar() is None
    # and back: the job gets its latest recorded digest again
    cfg = alembic_config(db)
    with db.engine.connect() as c:
        raw = c.connection.driver_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys=OFF")  # as upgrade() does: SQLite rebuilds tables
        with c.begin():
            cfg.attributes["connection"] = c
            command.downgrade(cfg, "0003")
    with db.engine.connect() as c:
        assert c.execute(text("SELECT image_digest FROM job")).scalar() == digest


def test_write_transactions_are_immediate(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db")
    db.migrate()
    with db.write() as s:
        s.connection()  # the session begins on first use
        # Inside an IMMEDIATE transaction another connection cannot take the write lock.
        import sqlite3

        other = sqlite3.connect(db.path, timeout=0.05)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()


def test_blob_store_dedups_verifies_and_writes_atomically(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = b"hello model" * 1000
    (tmp_path / "a").write_bytes(data)
    (tmp_path / "b").write_bytes(data)
    [(sha, size)] = store.put_files([tmp_path / "a"])
    assert sha == hashlib.sha256(data).hexdigest() and size == len(data)
    assert store.put_files([tmp_path / "b"]) == [(sha, size)]
    assert len([p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]) == 1
    assert not any((tmp_path / "blobs" / "tmp").iterdir())
    assert store.verify(sha).read_bytes() == data
    p = store.path_for(sha)
    p.chmod(0o600)
    p.write_bytes(b"tampered")
    with pytest.raises(BlobCorrupted, match="corrupted"):
        store.verify(sha)
    with pytest.raises(ValueError):
        store.path_for("../../etc/passwd")


def test_put_stream_failure_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")

    class Boom(io.RawIOBase):
        n = 0

        def read(self, size: int = -1) -> bytes:
            self.n += 1
            if self.n > 2:
                raise OSError("disk gone")
            return b"x" * 10

    with pytest.raises(OSError):
        store._stage_stream(Boom())  # type: ignore[arg-type]
    assert not any((tmp_path / "blobs" / "tmp").iterdir())
