"""run records: whole words, letters and digits apart; PostgreSQL's vector carries the workspace

The stored search text is written again with the current words (`Qwen2.5-7B` is `qwen 2 5 7 b`).
On PostgreSQL the search vector carries the workspace's scope as a word of its own: a query asks
the GIN index for the workspace and the words together, so a word common in other workspaces costs
nothing here.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 16:30:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _vector(expression: str) -> None:
    op.execute("DROP INDEX IF EXISTS ix_run_records_search_vector")
    op.execute("ALTER TABLE run_records DROP COLUMN IF EXISTS search_vector")
    op.execute("ALTER TABLE run_records ADD COLUMN search_vector tsvector "
               f"GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, {expression})) STORED")
    op.execute("CREATE INDEX ix_run_records_search_vector ON run_records USING gin (search_vector)")


def upgrade() -> None:
    bind = op.get_bind()
    rewrite_search_text(bind)
    if bind.dialect.name == "postgresql":
        _vector("(scope::text || ' ' || search_text)")


def rewrite_search_text(bind: Any) -> None:
    from intern.bot.models import JSONType
    from intern.bot.runs import search_text_of

    columns = ("id", "task", "base_model", "method", "flavor", "output_repo", "outcome", "error_signature")
    records = sa.table("run_records", *(sa.column(c) for c in (*columns, "search_text")),
                       *(sa.column(c, JSONType) for c in ("datasets", "hyperparams")))
    rows = bind.execute(sa.select(*(records.c[c] for c in (*columns, "datasets", "hyperparams")))).mappings().all()
    changes = [{"rid": r["id"], "text": search_text_of(r)} for r in rows]
    if changes:
        bind.execute(records.update().where(records.c.id == sa.bindparam("rid"))
                     .values(search_text=sa.bindparam("text")), changes)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _vector("search_text")
