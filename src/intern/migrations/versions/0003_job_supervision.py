"""job supervision: live progress and metric points on jobs; alerts raised once per job and kind

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 15:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("live", JSON, nullable=True))
        batch_op.add_column(sa.Column("metric_points", JSON, nullable=True))
    op.create_table(
        "job_alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_job_alerts_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_alerts")),
        sa.UniqueConstraint("job_id", "kind", name="uq_job_alerts_job_kind"),
    )


def downgrade() -> None:
    op.drop_table("job_alerts")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("metric_points")
        batch_op.drop_column("live")
