"""input tokens read from and written to the provider's prompt cache, per session

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("cache_read_tokens", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("cache_write_tokens", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("cache_write_tokens")
        batch.drop_column("cache_read_tokens")
