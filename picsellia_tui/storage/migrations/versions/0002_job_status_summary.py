"""job status summary: last_status, attempts, updated_at on job

Job lists are the hottest query (100k jobs must paint fast): keep the latest
run's status and the attempt count on the job row instead of joining runs.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_status", sqlmodel.sql.sqltypes.AutoString(), nullable=False,
                      server_default="pending")
        )
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_job_last_status"), ["last_status"], unique=False)
    op.execute(
        """
        UPDATE job SET
          attempts = (SELECT COUNT(*) FROM run WHERE run.job_id = job.id),
          last_status = COALESCE((SELECT status FROM run WHERE run.job_id = job.id
                                  ORDER BY attempt DESC LIMIT 1), 'pending'),
          updated_at = COALESCE((SELECT MAX(COALESCE(ended_at, started_at, created_at))
                                 FROM run WHERE run.job_id = job.id), created_at)
        """
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.alter_column("updated_at", nullable=False)
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.create_index("ix_run_job_attempt", ["job_id", "attempt"], unique=False)
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.create_index("ix_model_version_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.drop_index("ix_model_version_created_at")
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_index("ix_run_job_attempt")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_last_status"))
        batch_op.drop_column("updated_at")
        batch_op.drop_column("attempts")
        batch_op.drop_column("last_status")
