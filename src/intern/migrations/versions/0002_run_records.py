"""run records with full-text search, backfilled from the jobs already recorded

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 15:40:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

FTS_SQLITE = (
    "CREATE VIRTUAL TABLE run_records_fts USING fts5(scope, outcome, search_text, content='run_records', "
    "content_rowid='id')",
    "CREATE TRIGGER run_records_fts_insert AFTER INSERT ON run_records BEGIN "
    "INSERT INTO run_records_fts(rowid, scope, outcome, search_text) "
    "VALUES (new.id, new.scope, new.outcome, new.search_text); END",
    "CREATE TRIGGER run_records_fts_delete AFTER DELETE ON run_records BEGIN "
    "INSERT INTO run_records_fts(run_records_fts, rowid, scope, outcome, search_text) "
    "VALUES ('delete', old.id, old.scope, old.outcome, old.search_text); END",
    "CREATE TRIGGER run_records_fts_update AFTER UPDATE OF scope, outcome, search_text ON run_records BEGIN "
    "INSERT INTO run_records_fts(run_records_fts, rowid, scope, outcome, search_text) "
    "VALUES ('delete', old.id, old.scope, old.outcome, old.search_text); "
    "INSERT INTO run_records_fts(rowid, scope, outcome, search_text) "
    "VALUES (new.id, new.scope, new.outcome, new.search_text); END",
)
FTS_POSTGRES = ("CREATE INDEX ix_run_records_search ON run_records "
                "USING gin (to_tsvector('simple'::regconfig, search_text))",)


def upgrade() -> None:
    op.create_table(
        "run_records",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("workspace", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("thread", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("requester", sa.String(length=64), nullable=False),
        sa.Column("task", sa.Text(), nullable=False),
        sa.Column("base_model", sa.String(length=200), nullable=True),
        sa.Column("dataset", sa.String(length=200), nullable=True),
        sa.Column("datasets", JSON, nullable=False),
        sa.Column("method", sa.String(length=40), nullable=True),
        sa.Column("hyperparams", JSON, nullable=False),
        sa.Column("flavor", sa.String(length=64), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("estimated_cost_usd", sa.Float(), nullable=False),
        sa.Column("runtime_seconds", sa.Float(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error_signature", sa.String(length=120), nullable=True),
        sa.Column("error_line", sa.Text(), nullable=True),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("output_repo", sa.String(length=200), nullable=True),
        sa.Column("code_pin", sa.String(length=300), nullable=True),
        sa.Column("hf_job_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("launched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_run_records_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_records")),
        sa.UniqueConstraint("job_id", name=op.f("uq_run_records_job_id")),
    )
    with op.batch_alter_table("run_records", schema=None) as batch_op:
        batch_op.create_index("ix_run_records_scope_id", ["scope", "id"], unique=False)
        batch_op.create_index("ix_run_records_scope_outcome_id", ["scope", "outcome", "id"], unique=False)
        batch_op.create_index("ix_run_records_scope_model_dataset", ["scope", "base_model", "dataset"], unique=False)
        batch_op.create_index("ix_run_records_scope_launched", ["scope", "launched_at"], unique=False)
    bind = op.get_bind()
    for statement in FTS_SQLITE if bind.dialect.name == "sqlite" else FTS_POSTGRES:
        op.execute(statement)
    backfill(bind)


def backfill(bind: Any) -> None:
    """A record for every job already launched, in launch order (the newest gets the highest id)."""
    from intern.bot.models import JSONType, UTCDateTime
    from intern.bot.runs import LaunchSource, finish_values, launch_values

    jobs = sa.table("jobs", *(sa.column(c) for c in (
        "id", "session_id", "approval_id", "hf_job_id", "flavor", "timeout_seconds", "estimated_cost_usd",
        "actual_cost_usd", "stage", "message", "url", "requester", "platform", "workspace", "channel",
        "runtime_seconds", "log_tail", "notified_finished")), sa.column("created_at", UTCDateTime()),
        sa.column("finished_at", UTCDateTime()))
    sessions = sa.table("sessions", sa.column("id"), sa.column("thread"))
    approvals = sa.table("approvals", sa.column("id"), sa.column("spec", JSONType))
    messages = sa.table("messages", sa.column("session_id"), sa.column("seq"), sa.column("role"),
                        sa.column("payload", JSONType))
    records = sa.table("run_records", *(sa.column(c) for c in (
        "job_id", "scope", "platform", "workspace", "channel", "thread", "session_id", "requester", "task",
        "base_model", "dataset", "method", "flavor", "timeout_seconds", "estimated_cost_usd", "runtime_seconds",
        "cost_usd", "outcome", "error_signature", "error_line", "output_repo", "code_pin", "hf_job_id", "url",
        "search_text")), *(sa.column(c, JSONType) for c in ("datasets", "hyperparams", "metrics")),
        *(sa.column(c, UTCDateTime()) for c in ("launched_at", "finished_at")))
    first = (sa.select(messages.c.payload).where(messages.c.session_id == jobs.c.session_id, messages.c.role == "user")
             .order_by(messages.c.seq).limit(1).correlate(jobs).scalar_subquery())
    query = (sa.select(jobs, sessions.c.thread, approvals.c.spec, first.label("first"))
             .join(sessions, sessions.c.id == jobs.c.session_id)
             .outerjoin(approvals, approvals.c.id == jobs.c.approval_id)
             .where(jobs.c.hf_job_id.is_not(None)).order_by(jobs.c.created_at, jobs.c.id))
    rows = []
    for r in bind.execute(query).mappings():
        payload = r["first"] if isinstance(r["first"], dict) else {}
        content = payload.get("content")
        values = launch_values(LaunchSource(
            r["id"], r["hf_job_id"], r["platform"], r["workspace"], r["channel"], r["thread"], r["session_id"],
            r["requester"], r["flavor"], int(r["timeout_seconds"] or 0), float(r["estimated_cost_usd"] or 0.0),
            r["url"], r["created_at"], r["spec"] if isinstance(r["spec"], dict) else None,
            content if isinstance(content, str) else None))
        if r["notified_finished"]:
            values.update(finish_values(values, stage=str(r["stage"]), message=r["message"],
                                        runtime=r["runtime_seconds"], cost=r["actual_cost_usd"],
                                        lines=(r["log_tail"] or "").splitlines(), labels=None,
                                        finished_at=r["finished_at"] or r["created_at"]))
        rows.append(values)
    if rows:
        bind.execute(records.insert(), rows)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("run_records_fts_insert", "run_records_fts_delete", "run_records_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS run_records_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_run_records_search")
    op.drop_table("run_records")
