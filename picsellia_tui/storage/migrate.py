"""Alembic, driven from code: no alembic.ini needed at run time."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

if TYPE_CHECKING:
    from picsellia_tui.storage.db import Database

MIGRATIONS = Path(__file__).with_name("migrations")
# Alembic's `context` is module-global state: two workspaces opened at once in one
# process (two engines, an engine in a thread beside the CLI) must take turns.
_ALEMBIC = threading.Lock()


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", f"sqlite:///{db.path}")
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    cfg = alembic_config(db)
    with _ALEMBIC, db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        # SQLite rebuilds tables to alter them; foreign keys must be off meanwhile
        # (the pragma is ignored inside a transaction, hence the raw connection).
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left broken references: {broken[:3]}")
        finally:
            raw.execute("PRAGMA foreign_keys=ON")


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(db: Database) -> str | None:
    return ScriptDirectory.from_config(alembic_config(db)).get_current_head()
