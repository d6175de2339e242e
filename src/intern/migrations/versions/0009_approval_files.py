"""approval files: the code from a sandbox that an approval covers

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 15:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "approval_files",
        sa.Column("approval_id", sa.String(length=36), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["approval_id"], ["approvals.id"],
                                name=op.f("fk_approval_files_approval_id_approvals")),
        sa.PrimaryKeyConstraint("approval_id", "path", name=op.f("pk_approval_files")),
    )


def downgrade() -> None:
    op.drop_table("approval_files")
