"""image digest per run; optional command and entrypoint override per processing

A re-run uses the processing's current image (the user fixed the code and rebuilt
it), so the digest a run actually ran belongs to the run, not to the job: each run
records the reference it asked for (a tag, or a pinned digest) and the digest it
resolved. Existing runs that started get the digest their job recorded (every run of
a job ran it until now); the job's own column goes.

A processing's command may now be empty (the image's ENTRYPOINT/CMD runs), and an
optional `entrypoint` overrides the image's.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("image_ref", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(
            sa.Column("image_digest", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
    op.execute(
        """
        UPDATE run SET
          image_ref = (SELECT job.image_ref FROM job WHERE job.id = run.job_id),
          image_digest = CASE WHEN run.started_at IS NOT NULL OR run.ref IS NOT NULL
                              THEN (SELECT job.image_digest FROM job WHERE job.id = run.job_id)
                         END
        """
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("image_digest")
    with op.batch_alter_table("processing", schema=None) as batch_op:
        batch_op.add_column(sa.Column("entrypoint", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("processing", schema=None) as batch_op:
        batch_op.drop_column("entrypoint")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("image_digest", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
    # The job keeps the digest its latest run ran (what a re-run used to reuse).
    op.execute(
        """
        UPDATE job SET image_digest = (
          SELECT run.image_digest FROM run
          WHERE run.job_id = job.id AND run.image_digest IS NOT NULL
          ORDER BY run.attempt DESC LIMIT 1)
        """
    )
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("image_digest")
        batch_op.drop_column("image_ref")
