"""run records: PostgreSQL searches a stored tsvector (a generated column) instead of an expression

A row the search meets is then tested without computing its vector again, so the planner may walk
the workspace's newest runs and stop at the limit when a word is common, and use the GIN index when
it is rare.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_run_records_search")
    op.execute("ALTER TABLE run_records ADD COLUMN search_vector tsvector "
               "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, search_text)) STORED")
    op.execute("CREATE INDEX ix_run_records_search_vector ON run_records USING gin (search_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_run_records_search_vector")
    op.execute("ALTER TABLE run_records DROP COLUMN IF EXISTS search_vector")
    op.execute("CREATE INDEX ix_run_records_search ON run_records "
               "USING gin (to_tsvector('simple'::regconfig, search_text))")
