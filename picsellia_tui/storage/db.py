"""SQLite access: WAL, busy timeout, IMMEDIATE write transactions, migrations.

Reads use deferred transactions (WAL readers never block); every write goes
through `Database.write()`, which begins IMMEDIATE so two processes never
interleave a read-check-write (that is how "one active run per job" holds).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import QueuePool
from sqlmodel import Session

from picsellia_tui.storage.private import private_file

T = TypeVar("T")

BUSY_TIMEOUT_MS = 30_000
# The newest migration (storage/migrations/versions); a test keeps them in step.
SCHEMA_HEAD = "0006"
_IMMEDIATE = "picsellia_immediate"


class StorageError(Exception):
    """A storage failure a user must read as one line."""


def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is lazy).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _on_begin(conn: Any) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get(_IMMEDIATE) else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Create it 0600 before SQLite does (SQLite honours umask only; its -wal
        # and -shm files take the database's mode). An existing file is checked,
        # never chmod'ed: it may not be ours to change.
        private_file(path, "database")
        self.engine: Engine = create_engine(
            f"sqlite:///{path}",
            connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            poolclass=QueuePool,
            pool_size=8,
            max_overflow=8,
        )
        event.listen(self.engine, "connect", _on_connect)
        event.listen(self.engine, "begin", _on_begin)
        self._write_engine = self.engine.execution_options(**{_IMMEDIATE: True})

    def migrate(self) -> None:
        # Importing Alembic costs more than everything else a command does: only
        # when the schema is not at SCHEMA_HEAD already.
        if self.schema_version() != SCHEMA_HEAD:
            from picsellia_tui.storage.migrate import upgrade

            upgrade(self)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as s:
            yield s

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One IMMEDIATE transaction; commits on success, rolls back on error."""
        with Session(self._write_engine, expire_on_commit=False) as s, s.begin():
            yield s

    def write_retry(self, fn: Callable[[Session], T], attempts: int = 5) -> T:
        """Run fn in a write transaction, retrying when the busy timeout ran out.

        `database is locked` must never reach a user: past the 30 s busy timeout we
        back off and try again a few times before giving up with a clear line.
        """
        for i in range(attempts):
            try:
                with self.write() as s:
                    return fn(s)
            except OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                time.sleep(0.05 * (2**i))
        raise StorageError(f"the database {self.path} stayed busy; another process holds it")

    def schema_version(self) -> str | None:
        with self.engine.connect() as c:
            try:
                row = c.exec_driver_sql("SELECT version_num FROM alembic_version").first()
            except OperationalError:
                return None  # a new database
        return str(row[0]) if row else None

    def close(self) -> None:
        self.engine.dispose()
