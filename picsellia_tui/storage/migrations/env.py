from __future__ import annotations

import warnings

from alembic import context
from sqlmodel import SQLModel

from picsellia_tui.storage import models  # noqa: F401  (registers the tables)

target_metadata = SQLModel.metadata
# job <-> model_version reference each other (target / origin job); SQLite is fine with it.
warnings.filterwarnings("ignore", message="Cannot correctly sort tables")


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:  # `alembic` command line during development
        from sqlalchemy import create_engine

        engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
        with engine.begin() as conn:
            context.configure(
                connection=conn, target_metadata=target_metadata, render_as_batch=True
            )
            context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    context.run_migrations()


run()
