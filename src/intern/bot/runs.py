"""Run records: every job Intern launches, remembered for its workspace.

A record is opened when the launch is recorded (who asked, where, the task, the recipe read from
the approved code, hardware, timeout) and completed when the job watcher handles the job's end
(outcome, runtime, cost, final metrics, error signature, code pin). Both writes run inside the
caller's transaction, so a record never disagrees with its job row.

Search: `search_text` holds the words a record is found by, normalised the same way for both
databases and for queries: lower case, letters and digits apart (`Qwen2.5-7B` is `qwen 2 5 7 b`,
so "qwen 7b" finds it), everything else a space. A query finds the records that have all its words.
Whole words, not prefixes: on both databases a prefix makes the index gather every row the prefix
could mean before it can skip, which is what makes a search slow. The full-text indexes are made by
the migrations.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, literal_column, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from intern.agent.recipe import Recipe, recipe_of_spec
from intern.agent.tools.jobs_hub import APPROVAL_LABEL
from intern.bot.models import Approval, Job, Message, RunRecord, Session, utcnow
from intern.bot.run_logs import error_signature, final_metrics, has_nan_loss, kept_metrics, search_words

OUTCOMES = ("running", "completed", "failed", "cancelled", "timed_out")
STATUS_WORDS = {"completed": "completed", "succeeded": "completed", "success": "completed", "ok": "completed",
                "failed": "failed", "failure": "failed", "error": "failed", "cancelled": "cancelled",
                "canceled": "cancelled", "timed_out": "timed_out", "timed out": "timed_out", "timeout": "timed_out",
                "running": "running"}
CODE_LABEL = "intern-code"
TASK_CHARS = 200
MAX_TERMS = 12
_WORD = re.compile(r"\d+|[^\W\d_]+", re.UNICODE)
_SPEAKER = re.compile(r"^\[[^\]\s]+\]\s*")  # the speaker tag a stored message begins with


def scope_of(platform: str, workspace: str) -> str:
    """One value naming a workspace (platform and id), for indexes and the SQLite search table."""
    return "w" + hashlib.sha256(f"{platform}\0{workspace}".encode()).hexdigest()[:32]


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def normalise(text: str) -> str:
    return " ".join(words(text))


def task_line(text: str | None, redact: Callable[[str], str] = lambda s: s) -> str:
    """The task in one line: the session's first message without its speaker tag, squeezed, cut."""
    if not text:
        return ""
    line = " ".join(redact(_SPEAKER.sub("", text.strip())).split())
    return line if len(line) <= TASK_CHARS else line[: TASK_CHARS - 1].rstrip() + "…"


def outcome_of(stage: str, message: str | None, runtime: float | None, timeout_seconds: int) -> str:
    if stage == "COMPLETED":
        return "completed"
    if stage in ("CANCELED", "DELETED"):
        return "cancelled"
    found = error_signature([], message) if message else None
    ran_out = bool(timeout_seconds) and runtime is not None and runtime >= timeout_seconds * 0.98
    return "timed_out" if ran_out or (found is not None and found.signature == "timeout") else "failed"


def code_pin(labels: Mapping[str, str] | None) -> str | None:
    from intern.agent.tools.jobs_code import pin_text

    value = (labels or {}).get(CODE_LABEL)
    return pin_text(value) if value else None


def search_text_of(r: Mapping[str, Any]) -> str:
    parts = [r.get("task"), r.get("base_model"), r.get("method"), r.get("flavor"), r.get("output_repo"),
             str(r.get("outcome") or "").replace("_", " "), r.get("error_signature"),
             search_words(r.get("error_signature"))]
    for d in r.get("datasets") or []:
        parts += [d.get("id"), d.get("config"), d.get("split")]
    if (r.get("hyperparams") or {}).get("lora_rank") is not None:
        parts.append("lora")
    return normalise(" ".join(str(p) for p in parts if p))


# --- building a record (pure: used at launch, at the end and by the backfill migration) -------------

@dataclass(frozen=True)
class LaunchSource:
    job_id: str
    hf_job_id: str
    platform: str
    workspace: str
    channel: str
    thread: str
    session_id: str
    requester: str
    flavor: str
    timeout_seconds: int
    estimated_cost_usd: float
    url: str | None
    launched_at: datetime
    spec: dict[str, Any] | None
    first_message: str | None
    code_pin: str | None = None


def launch_values(src: LaunchSource, redact: Callable[[str], str] = lambda s: s) -> dict[str, Any]:
    recipe = recipe_of_spec(src.spec) if src.spec else Recipe()
    values: dict[str, Any] = {
        "job_id": src.job_id, "scope": scope_of(src.platform, src.workspace), "platform": src.platform,
        "workspace": src.workspace, "channel": src.channel, "thread": src.thread, "session_id": src.session_id,
        "requester": src.requester, "task": task_line(src.first_message, redact),
        "base_model": _cut(recipe.base_model, 200), "dataset": _cut(recipe.dataset, 200),
        "datasets": recipe.datasets[:5], "method": _cut(recipe.method, 40), "hyperparams": recipe.hyperparams,
        "flavor": src.flavor, "timeout_seconds": src.timeout_seconds, "estimated_cost_usd": src.estimated_cost_usd,
        "runtime_seconds": None, "cost_usd": None, "outcome": "running", "error_signature": None,
        "error_line": None, "metrics": {}, "output_repo": _cut(recipe.output_repo, 200),
        "code_pin": _cut(src.code_pin, 300), "hf_job_id": src.hf_job_id, "url": src.url,
        "launched_at": src.launched_at, "finished_at": None,
    }
    values["search_text"] = search_text_of(values)
    return values


def finish_values(record: Mapping[str, Any], *, stage: str, message: str | None, runtime: float | None,
                  cost: float | None, lines: Sequence[str], labels: Mapping[str, str] | None,
                  finished_at: datetime, redact: Callable[[str], str] = lambda s: s,
                  metrics: Mapping[str, float | str] | None = None) -> dict[str, Any]:
    """`metrics`: the latest values the watcher read from the whole log, when it followed the job;
    otherwise they are read from `lines`."""
    outcome = outcome_of(stage, message, runtime, int(record.get("timeout_seconds") or 0))
    metrics = kept_metrics(metrics) if metrics else final_metrics(lines)
    signature, line = None, None
    if outcome == "timed_out":
        signature = "timeout"
    elif outcome == "failed":
        found = error_signature(lines, message)
        if found is not None:
            signature, line = found.signature, redact(found.line)
    elif has_nan_loss(metrics):
        signature = "NaN loss"
    values: dict[str, Any] = {"outcome": outcome, "runtime_seconds": runtime, "cost_usd": cost,
                              "metrics": metrics, "error_signature": signature, "error_line": line,
                              "finished_at": finished_at}
    pin = code_pin(labels)
    if pin:
        values["code_pin"] = _cut(pin, 300)
    values["search_text"] = search_text_of({**record, **values})
    return values


def _cut(value: str | None, n: int) -> str | None:
    return value[:n] if value else None


# --- writing ------------------------------------------------------------------------------------

async def open_record(db: AsyncSession, hf_job_id: str, redact: Callable[[str], str],
                      labels: Mapping[str, str] | None = None) -> bool:
    """Open the run record of a job just recorded as launched (in the caller's transaction).
    False when it already has one."""
    row = (await db.execute(select(Job, Session).join(Session, Session.id == Job.session_id)
                            .where(Job.hf_job_id == hf_job_id))).first()
    if row is None:
        return False
    job, session = row
    if (await db.execute(select(RunRecord.id).where(RunRecord.job_id == job.id))).first() is not None:
        return False
    await db.execute(RunRecord.__table__.insert().values(**launch_values(await launch_source(db, job, session, labels),
                                                                        redact)))
    return True


async def launch_source(db: AsyncSession, job: Job, session: Session,
                        labels: Mapping[str, str] | None = None) -> LaunchSource:
    spec = None
    # A run the Hub spawned from a schedule has no approval of its own: it carries the schedule's label.
    approval_id = job.approval_id or (labels or {}).get(APPROVAL_LABEL)
    if approval_id:
        spec = (await db.execute(select(Approval.spec).where(Approval.id == approval_id,
                                                             Approval.session_id == job.session_id))).scalar()
    first = (await db.execute(select(Message.payload).where(Message.session_id == session.id,
                                                            Message.role == "user").order_by(Message.seq).limit(1)))
    payload = first.scalar()
    content = payload.get("content") if isinstance(payload, dict) else None
    return LaunchSource(job.id, job.hf_job_id or "", job.platform, job.workspace, job.channel, session.thread,
                        session.id, job.requester, job.flavor, job.timeout_seconds, job.estimated_cost_usd, job.url,
                        job.created_at, spec if isinstance(spec, dict) else None,
                        content if isinstance(content, str) else None, code_pin(labels))


async def close_record(db: AsyncSession, job: Job, *, stage: str, message: str | None, runtime: float | None,
                       cost: float | None, lines: Sequence[str], labels: Mapping[str, str] | None,
                       redact: Callable[[str], str], metrics: Mapping[str, float | str] | None = None
                       ) -> dict[str, Any] | None:
    """Complete the run record of a job that ended (in the caller's transaction), opening it first
    when the launch was recorded before records existed. Returns what was written (outcome, error
    signature, metrics, …), None when the job has no record."""
    record = (await db.execute(select(RunRecord).where(RunRecord.job_id == job.id))).scalar_one_or_none()
    if record is None:
        if not job.hf_job_id or not await open_record(db, job.hf_job_id, redact, labels):
            return None
        record = (await db.execute(select(RunRecord).where(RunRecord.job_id == job.id))).scalar_one()
    current = {c.key: getattr(record, c.key) for c in RunRecord.__table__.columns}
    values = finish_values(current, stage=stage, message=message, runtime=runtime, cost=cost, lines=lines,
                           labels=labels, finished_at=utcnow(), redact=redact, metrics=metrics)
    await db.execute(update(RunRecord).where(RunRecord.id == record.id).values(**values))
    return values


# --- reading --------------------------------------------------------------------------------------

def status_value(status: str | None) -> str | None:
    """The outcome a `status` argument names; ValueError for anything else."""
    if status is None or not status.strip() or status.strip().lower() in ("any", "all"):
        return None
    key = " ".join(status.strip().lower().replace("-", " ").split())
    if key not in STATUS_WORDS:
        raise ValueError(f"status {status!r} is not one of: completed, failed, cancelled, timed out, running")
    return STATUS_WORDS[key]


def query_terms(query: str | None) -> list[str]:
    return list(dict.fromkeys(words(query or "")))[:MAX_TERMS]


async def search(db: AsyncSession, platform: str, workspace: str, query: str | None = None,
                 status: str | None = None, limit: int = 10) -> list[RunRecord]:
    """The workspace's runs having every word of `query`, with outcome `status`, newest first."""
    scope = scope_of(platform, workspace)
    terms = query_terms(query)
    limit = max(1, min(int(limit), 100))
    q = select(RunRecord).where(RunRecord.scope == scope)
    if status:
        q = q.where(RunRecord.outcome == status)
    if terms:
        q = q.where(_matches(db, scope, status, terms, limit))
    return list((await db.execute(q.order_by(RunRecord.id.desc()).limit(limit))).scalars().all())


def _matches(db: AsyncSession, scope: str, status: str | None, terms: list[str], limit: int) -> Any:
    if db.bind.dialect.name == "postgresql":
        # `search_vector`: the stored tsvector of the scope and `search_text` (a generated column the
        # migrations add), so the GIN index answers for this workspace's runs only.
        tsquery = " & ".join([scope, *terms])
        return literal_column("run_records.search_vector").op("@@")(func.to_tsquery(text("'simple'"), tsquery))
    # FTS5: the workspace and the outcome are columns of the search table, so the index alone
    # answers the query newest first and stops at the limit.
    match = f'scope:"{scope}"' + (f' AND outcome:"{status}"' if status else "") + "".join(
        f' AND "{t}"' for t in terms)
    hits = text("SELECT rowid FROM run_records_fts WHERE run_records_fts MATCH :m ORDER BY rowid DESC LIMIT :n") \
        .bindparams(m=match, n=limit).columns(rowid=RunRecord.id.type)
    return RunRecord.id.in_(select(hits.subquery().c.rowid))


@dataclass(frozen=True)
class Similar:
    failed: RunRecord | None
    succeeded: RunRecord | None


async def similar(db: AsyncSession, platform: str, workspace: str, base_model: str, dataset: str) -> Similar:
    """The latest failed and the latest completed run of the workspace on the same model and data."""
    same = select(RunRecord).where(RunRecord.scope == scope_of(platform, workspace),
                                   RunRecord.base_model == base_model, RunRecord.dataset == dataset)
    failed = (await db.execute(same.where(RunRecord.outcome.in_(("failed", "timed_out")))
                               .order_by(RunRecord.id.desc()).limit(1))).scalar_one_or_none()
    done = (await db.execute(same.where(RunRecord.outcome == "completed").order_by(RunRecord.id.desc())
                             .limit(1))).scalar_one_or_none()
    return Similar(failed, done)


async def spend_by_outcome(db: AsyncSession, platform: str, workspace: str, since: datetime) -> dict[str, float]:
    """This period's job spend of the workspace by outcome (running jobs at their reserved maximum)."""
    cost = func.coalesce(RunRecord.cost_usd, RunRecord.estimated_cost_usd)
    rows = (await db.execute(select(RunRecord.outcome, func.sum(cost)).where(
        RunRecord.scope == scope_of(platform, workspace), RunRecord.launched_at >= since)
        .group_by(RunRecord.outcome))).all()
    return {str(o): float(v or 0.0) for o, v in rows}
