"""The persisted state: sessions, messages, the inbound dedupe table, the work queue, approvals and
their decisions, jobs, spend, channel policies, the audit trail, sandboxes and the HTTP cache.

Schema changes go through Alembic migrations in `intern/migrations/` (append-only).
"""

from __future__ import annotations

import functools
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from intern.agent.guardrails.redaction import Redactor

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")  # plain JSON, for migrations' table stubs
BigId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements only INTEGER PRIMARY KEY

# --- text that may quote a secret -----------------------------------------------------------------
# A job's log, an error, a tool's output or a card can quote a token. Such columns are redacted by
# their type, on the way into the database, whichever statement writes them (ORM add, Core insert,
# `update().values()`): a new write path cannot forget it. The redactor that knows the configured
# secrets is attached to the engine (`attach_redactor`); without one, the secret shapes still apply.

_REDACTOR_ATTR = "intern_redactor"


def attach_redactor(engine: Any, redactor: Redactor) -> None:
    """Make `redactor` (which knows the configured secrets) the one the engine's columns use."""
    setattr(engine.dialect, _REDACTOR_ATTR, redactor)


@functools.cache
def _shapes_only() -> Redactor:
    return Redactor()


def redactor_of(dialect: Any) -> Redactor:
    return getattr(dialect, _REDACTOR_ATTR, None) or _shapes_only()


class RedactedString(TypeDecorator[str]):
    """A string column whose values are redacted before they are stored."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return redact_stored_text(redactor_of(dialect), value) if value else value


class RedactedText(RedactedString):
    impl = Text
    cache_ok = True


class RedactedJSON(TypeDecorator[Any]):
    """A JSON column whose strings (keys and values) are redacted before they are stored."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else JSON())

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        return redactor_of(dialect).redact_obj(value) if value is not None else None


def redact_stored_text(redactor: Redactor, value: str) -> str:
    """`value` redacted. A text that holds JSON (a cached response) stays JSON: should a masked span
    reach across its quotes, the parsed document is redacted instead."""
    out = redactor.redact(value)
    if out == value or value.lstrip()[:1] not in ("{", "["):
        return out
    try:
        document = json.loads(value)
    except ValueError:
        return out
    try:
        json.loads(out)
    except ValueError:
        return json.dumps(redactor.redact_obj(document), ensure_ascii=False)
    return out


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on both backends (SQLite stores naive text; we read it back as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: RedactedJSON, list[Any]: RedactedJSON}


class Session(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    platform: Mapped[str] = mapped_column(String(16))
    workspace: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    thread: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24), default="active")  # active|waiting_approval|stopped|ended
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    started_by: Mapped[str] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(200))
    seeded_from: Mapped[str | None] = mapped_column(String(36))
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)  # every input token, cached included
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    llm_cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    status_card: Mapped[dict[str, Any] | None] = mapped_column(RedactedJSON, nullable=True)
    current_requester: Mapped[str | None] = mapped_column(String(64))
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        # one active session per thread; ended sessions stay for the record
        Index(
            "uq_sessions_active_thread", "platform", "workspace", "channel", "thread", unique=True,
            sqlite_where=text("active"), postgresql_where=text("active"),
        ),
        Index("ix_sessions_channel", "platform", "workspace", "channel"),
    )


class Message(Base):
    """Append-only transcript. `payload` is the message as the model sees it (redacted)."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    author: Mapped[str | None] = mapped_column(String(64))
    source_key: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(RedactedJSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("session_id", "seq", name="uq_messages_session_seq"),)


class InboundEvent(Base):
    """Dedupe of inbound deliveries: Slack retries, the app_mention/message pair, double clicks."""

    __tablename__ = "inbound_events"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkItem(Base):
    """Durable queue. A worker claims an item with a lease; one session is worked by one worker at a time."""

    __tablename__ = "work_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))  # message|resume|job_finished|stop|seed
    payload: Mapped[dict[str, Any]] = mapped_column(RedactedJSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|done|failed
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(RedactedText)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (Index("ix_work_items_status_available", "status", "available_at"),)


class Approval(Base):
    __tablename__ = "approvals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    call_id: Mapped[str] = mapped_column(String(128))
    tool: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # spend|hub_write
    spec: Mapped[dict[str, Any]] = mapped_column(RedactedJSON)
    spec_sha256: Mapped[str] = mapped_column(String(64))
    card: Mapped[dict[str, Any]] = mapped_column(RedactedJSON)  # what the card shows (ApprovalInfo, redacted)
    estimated_cost_usd: Mapped[float | None] = mapped_column(Float)
    requester: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(16))
    workspace: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    approvers: Mapped[list[Any]] = mapped_column(RedactedJSON, default=list)  # snapshot at request time
    required_approvals: Mapped[int] = mapped_column(Integer, default=1)
    self_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    decided_by: Mapped[str | None] = mapped_column(String(255))
    decided_at: Mapped[datetime | None] = mapped_column()
    reason: Mapped[str | None] = mapped_column(RedactedText)
    auto_approved: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime] = mapped_column()
    card_ref: Mapped[dict[str, Any] | None] = mapped_column(RedactedJSON, nullable=True)
    executed_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("session_id", "call_id", name="uq_approvals_session_call"),
        Index("ix_approvals_status_expires", "status", "expires_at"),
    )


class ApprovalDecision(Base):
    __tablename__ = "approval_decisions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    approval_id: Mapped[str] = mapped_column(ForeignKey("approvals.id"), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(8))  # approve|deny
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("approval_id", "user_id", name="uq_approval_decisions_user"),)


class ApprovalFile(Base):
    """A file of the code an approval covers, as read from the sandbox when its card was prepared."""

    __tablename__ = "approval_files"

    approval_id: Mapped[str] = mapped_column(ForeignKey("approvals.id"), primary_key=True)
    path: Mapped[str] = mapped_column(RedactedString(1024), primary_key=True)  # secret-like paths are refused
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    approval_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    hf_job_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    namespace: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16), default="job")  # job|scheduled
    flavor: Mapped[str] = mapped_column(String(64))
    timeout_seconds: Mapped[int] = mapped_column(Integer)
    hourly_usd: Mapped[float] = mapped_column(Float)
    estimated_cost_usd: Mapped[float] = mapped_column(Float)
    actual_cost_usd: Mapped[float | None] = mapped_column(Float)
    stage: Mapped[str] = mapped_column(String(24), default="LAUNCHING")
    message: Mapped[str | None] = mapped_column(RedactedText)
    url: Mapped[str | None] = mapped_column(RedactedString(500))
    requester: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(16))
    workspace: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    runtime_seconds: Mapped[float | None] = mapped_column(Float)
    log_tail: Mapped[str | None] = mapped_column(RedactedText)
    watcher_owner: Mapped[str | None] = mapped_column(String(64))
    watcher_expires_at: Mapped[datetime | None] = mapped_column()
    notified_finished: Mapped[bool] = mapped_column(Boolean, default=False)
    # Supervision: what the logs and the GPU metrics said last (progress, latest metrics, GPU, times),
    # and the metric points for the chart ({name: [[step, value], ...]}, bounded).
    live: Mapped[dict[str, Any] | None] = mapped_column(RedactedJSON)
    metric_points: Mapped[dict[str, Any] | None] = mapped_column(RedactedJSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_jobs_stage", "stage"),)


class JobAlert(Base):
    """An alert raised about a running job: one per job and kind, whichever process saw it first."""

    __tablename__ = "job_alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"))
    kind: Mapped[str] = mapped_column(String(24))  # nan | stall | gpu_idle | timeout
    text: Mapped[str] = mapped_column(RedactedText)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("job_id", "kind", name="uq_job_alerts_job_kind"),)


class SpendEntry(Base):
    """Money ledger: job reservations (replaced by actual cost at the end), LLM usage, sandbox hours."""

    __tablename__ = "spend_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    workspace: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[str | None] = mapped_column(String(36), index=True)
    user_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(24))  # job|llm|sandbox
    ref: Mapped[str | None] = mapped_column(String(64), unique=True)
    amount_usd: Mapped[float] = mapped_column(Float)
    final: Mapped[bool] = mapped_column(Boolean, default=False)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM, UTC
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_spend_scope_month", "platform", "workspace", "channel", "month"),)


class ChannelPolicy(Base):
    """Per channel; the row with channel '*' holds the workspace-wide budget."""

    __tablename__ = "channel_policies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    workspace: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    approvers: Mapped[list[Any]] = mapped_column(RedactedJSON, default=list)
    admins: Mapped[list[Any]] = mapped_column(RedactedJSON, default=list)
    approvals_required: Mapped[int] = mapped_column(Integer, default=1)
    self_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    monthly_budget_usd: Mapped[float | None] = mapped_column(Float)
    max_flavor: Mapped[str | None] = mapped_column(String(64))
    max_timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    auto_approve_below_usd: Mapped[float | None] = mapped_column(Float)
    updated_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("platform", "workspace", "channel", name="uq_channel_policies_scope"),)


class AuditEvent(Base):
    """Append-only. Nothing updates or deletes these rows."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str | None] = mapped_column(String(16))
    workspace: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(64))
    session_id: Mapped[str | None] = mapped_column(String(36))
    approval_id: Mapped[str | None] = mapped_column(String(36))
    job_id: Mapped[str | None] = mapped_column(String(64))
    spec_sha256: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(RedactedJSON, default=dict)


class Sandbox(Base):
    __tablename__ = "sandboxes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    space_id: Mapped[str] = mapped_column(String(200), unique=True)
    hardware: Mapped[str] = mapped_column(String(64))
    hourly_usd: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(16), default="creating")  # creating|running|deleting|deleted|failed
    url: Mapped[str | None] = mapped_column(RedactedString(500))
    token_ciphertext: Mapped[str | None] = mapped_column(Text)
    delete_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(RedactedText)
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column()


class CacheEntry(Base):
    __tablename__ = "cache_entries"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(RedactedText)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Lease(Base):
    """A named piece of background work that one process at a time may do (e.g. refreshing the
    documentation index): held by `owner` until `expires_at`, renewed while the work goes on."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column()


class Feedback(Base):
    """A person's thumbs up or down on one answer: one row per (answer, person); a later click on the
    other thumb changes it."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    workspace: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    vote: Mapped[str] = mapped_column(String(8))  # up|down
    reason: Mapped[str | None] = mapped_column(RedactedText)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("platform", "workspace", "channel", "message", "user_id",
                                       name="uq_feedback_answer_user"),)


class RunRecord(Base):
    """One job Intern launched, remembered for its workspace: the recipe (written at launch) and
    the outcome (written when the job ends). `scope` names the workspace in one indexed value.

    Full-text search over `search_text` is created by the migrations, not here: an FTS5 table kept
    by triggers on SQLite (`run_records_fts`); on PostgreSQL a generated `tsvector` column
    (`search_vector`) with a GIN index (`ix_run_records_search_vector`)."""

    __tablename__ = "run_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)  # newest = highest
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), unique=True)
    scope: Mapped[str] = mapped_column(String(40))
    platform: Mapped[str] = mapped_column(String(16))
    workspace: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    thread: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[str] = mapped_column(String(36))
    requester: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(RedactedText, default="")
    base_model: Mapped[str | None] = mapped_column(String(200))
    dataset: Mapped[str | None] = mapped_column(String(200))  # the first one, for "the same dataset"
    datasets: Mapped[list[Any]] = mapped_column(RedactedJSON, default=list)
    method: Mapped[str | None] = mapped_column(String(40))
    hyperparams: Mapped[dict[str, Any]] = mapped_column(RedactedJSON, default=dict)
    flavor: Mapped[str] = mapped_column(String(64))
    timeout_seconds: Mapped[int] = mapped_column(Integer)
    estimated_cost_usd: Mapped[float] = mapped_column(Float)
    runtime_seconds: Mapped[float | None] = mapped_column(Float)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(16), default="running")  # running|completed|failed|cancelled|timed_out
    error_signature: Mapped[str | None] = mapped_column(RedactedString(120))
    error_line: Mapped[str | None] = mapped_column(RedactedText)
    metrics: Mapped[dict[str, Any]] = mapped_column(RedactedJSON, default=dict)
    output_repo: Mapped[str | None] = mapped_column(String(200))
    code_pin: Mapped[str | None] = mapped_column(RedactedString(300))
    hf_job_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str | None] = mapped_column(RedactedString(500))
    search_text: Mapped[str] = mapped_column(RedactedText, default="")
    launched_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        Index("ix_run_records_scope_id", "scope", "id"),
        Index("ix_run_records_scope_outcome_id", "scope", "outcome", "id"),
        Index("ix_run_records_scope_model_dataset", "scope", "base_model", "dataset"),
        Index("ix_run_records_scope_launched", "scope", "launched_at"),
    )
