"""processing.removed_at: removed private processings

A removed processing leaves the list and cannot be launched, but its row stays:
its jobs point at it and keep their history (what ran, with which definition).

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("processing", schema=None) as batch_op:
        batch_op.add_column(sa.Column("removed_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("processing", schema=None) as batch_op:
        batch_op.drop_column("removed_at")
