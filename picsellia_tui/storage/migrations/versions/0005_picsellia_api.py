"""version_file.name, processing.picsellia: for the local Picsellia API

processing.picsellia holds the definition's `[picsellia]` section ({"api": true}).

A processing that talks to the local Picsellia API stores a file under a name
("model-latest") that differs from its file name ("model.onnx"); `get_file(name)`
finds it by the first, `download()` writes the second. NULL: the name is the path.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("version_file", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    with op.batch_alter_table("processing", schema=None) as batch_op:
        batch_op.add_column(sa.Column("picsellia", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("processing", schema=None) as batch_op:
        batch_op.drop_column("picsellia")
    with op.batch_alter_table("version_file", schema=None) as batch_op:
        batch_op.drop_column("name")
