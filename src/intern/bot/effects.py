"""One owner for every durable effect of an agent or job-watcher event.

A turn's agent events, the job watcher's findings and the runs the Hub spawns from a schedule come
here, and only here are they turned into rows and posts: a launched job or scheduled run (its row,
its spend reservation, its audit event, its run record), LLM usage (token counters and LLM spend), a
reservation given back, a cancellation asked for, a reply posted (and recorded as posted), a job's
stage and its end. The status card (`progress.py`) only draws; what it shows is saved through
`save_card`.

The sink is awaited by the agent loop, so each effect is stored before the loop moves on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from intern.agent import events as ev
from intern.agent.pricing import format_duration
from intern.bot import audit, runs
from intern.bot.cards import money
from intern.bot.inbox import enqueue
from intern.bot.models import Job, Session, SpendEntry
from intern.bot.ownership import record_schedule
from intern.bot.policy import month_of
from intern.bot.progress import ProgressSink
from intern.bot.runtime import Runtime
from intern.bot.sessions import conversation_of

log = logging.getLogger(__name__)


class TurnRecorder(Protocol):
    """The group-commit writer of this process (`transcripts.TranscriptWriter`)."""

    async def usage(self, session: Session, user: str, event: ev.UsageRecorded) -> None: ...

    async def post_reply(self, session_id: str, post: Callable[[], Awaitable[Any]]) -> bool: ...


class TurnEffects:
    """The event sink of one turn: each event's durable effects first, then the status card's view.

    A final reply is posted through the reply ledger (`replies.py`): its intent is stored before the
    post and its outcome after, so that a turn worked again after a crash or while the database was
    away neither loses nor repeats it. LLM usage goes through the group-commit writer with the
    transcript (a transaction per model call would cost too much)."""

    def __init__(self, rt: Runtime, session: Session, requester: str, recorder: TurnRecorder,
                 card: ProgressSink) -> None:
        self.rt, self.session, self.requester = rt, session, requester
        self.recorder, self.card = recorder, card

    async def emit(self, event: ev.AgentEvent) -> None:
        handler = getattr(self, f"on_{type(event).__name__}", None)
        if handler is not None:
            await handler(event)
        await self.card.emit(event)

    async def on_UsageRecorded(self, e: ev.UsageRecorded) -> None:
        await self.recorder.usage(self.session, self.requester, e)

    async def on_AssistantReply(self, e: ev.AssistantReply) -> None:
        await self.rt.yield_to_inbound()
        s, text = self.session, self.rt.redactor.redact(e.text)
        adapter = self.rt.adapter(s.platform)
        await self.recorder.post_reply(s.id, lambda: adapter.post_answer(conversation_of(s), text, s.id))

    async def on_Notice(self, e: ev.Notice) -> None:
        icon = {"error": "🛑 ", "warn": "⚠️ "}.get(e.level, "")
        await self.rt.adapter(self.session.platform).post(conversation_of(self.session),
                                                          icon + self.rt.redactor.redact(e.text))

    async def on_ToolFinished(self, e: ev.ToolFinished) -> None:
        s = self.session
        if "job" in e.artifacts:
            await record_launch(self.rt, s, self.requester, e.artifacts["job"])
        if "scheduled_job" in e.artifacts:
            await record_schedule(self.rt, s, self.requester, e.artifacts["scheduled_job"])
        if e.approval_id and not e.ok and "job" not in e.artifacts:
            await release_reservation(self.rt, s, e.approval_id, e.name, e.summary)
        if "cancelled_job" in e.artifacts:
            async with self.rt.db.transaction() as db:
                audit.record(db, "job_cancel_requested", actor=self.requester, platform=s.platform,
                             workspace=s.workspace, channel=s.channel, session_id=s.id,
                             job_id=e.artifacts["cancelled_job"], by="agent")


async def save_card(rt: Runtime, session_id: str, snapshot: dict[str, Any]) -> None:
    """The status card as last drawn (its message and its state), so the next turn or the job
    watcher edits the same card."""
    async with rt.db.transaction() as db:
        await db.execute(update(Session).where(Session.id == session_id).values(status_card=snapshot)
                         .execution_options(synchronize_session=False))  # nothing loaded to keep in step


def card_saver(rt: Runtime) -> Any:
    async def save(session_id: str, snapshot: dict[str, Any]) -> None:
        await save_card(rt, session_id, snapshot)

    return save


# --- jobs --------------------------------------------------------------------------------------------

async def record_launch(rt: Runtime, session: Session, requester: str, art: dict[str, Any]) -> None:
    """Store the launched job (idempotent by its Hub id and its approval) and say so in the thread."""
    try:
        async with rt.db.transaction() as db:
            created = await _store_launch(db, session, requester, art)
            if created:
                await remember(db, runs.open_record(db, art["hf_job_id"], rt.redactor.redact, art.get("labels")),
                               art["hf_job_id"])
    except IntegrityError:
        created = False  # another delivery recorded it first
    if created:
        await rt.adapter(session.platform).post(
            conversation_of(session),
            f"🚀 Job `{art['hf_job_id']}` launched on {art['flavor']} (timeout "
            f"{format_duration(art['timeout_seconds'])}, at most {money(art['estimated_cost_usd'])}). {art.get('url') or ''}")
        if rt.job_watcher is not None:
            rt.job_watcher.wake()


async def _store_launch(db: AsyncSession, session: Session, requester: str, art: dict[str, Any]) -> bool:
    """True when this call recorded the job (so it alone announces it)."""
    if (await db.execute(select(Job.id).where(Job.hf_job_id == art["hf_job_id"]))).first() is not None:
        return False
    values = dict(hf_job_id=art["hf_job_id"], namespace=art["namespace"], flavor=art["flavor"],
                  timeout_seconds=art["timeout_seconds"], hourly_usd=art["hourly_usd"],
                  estimated_cost_usd=art["estimated_cost_usd"], stage=art.get("stage") or "SCHEDULING",
                  url=art.get("url"))
    approval_id = art.get("approval_id")
    if approval_id:
        res = await db.execute(update(Job).where(Job.approval_id == approval_id, Job.hf_job_id.is_(None))
                               .values(**values))
        if res.rowcount != 1 and (await db.execute(select(Job.id).where(Job.approval_id == approval_id))).first():
            return False  # this approval's job is already recorded
        if res.rowcount == 1:
            _audit_launch(db, session, requester, art)
            return True
    db.add(Job(session_id=session.id, approval_id=approval_id, requester=requester, platform=session.platform,
               workspace=session.workspace, channel=session.channel, **values))
    if not approval_id:
        db.add(SpendEntry(platform=session.platform, workspace=session.workspace, channel=session.channel,
                          session_id=session.id, user_id=requester, kind="job", ref=art["hf_job_id"],
                          amount_usd=art["estimated_cost_usd"], month=month_of()))
    _audit_launch(db, session, requester, art)
    await db.flush()
    return True


def _audit_launch(db: AsyncSession, session: Session, requester: str, art: dict[str, Any]) -> None:
    audit.record(db, "job_launched", actor=requester, platform=session.platform, workspace=session.workspace,
                 channel=session.channel, session_id=session.id, approval_id=art.get("approval_id"),
                 job_id=art["hf_job_id"], flavor=art["flavor"], timeout_seconds=art["timeout_seconds"],
                 cost=art["estimated_cost_usd"])


async def remember(db: AsyncSession, write: Coroutine[Any, Any, Any], job: str) -> Any:
    """A run record's write, in a savepoint of the caller's transaction: a record that cannot be
    written is logged (None) and never undoes the job's own bookkeeping around it."""
    try:
        async with db.begin_nested():
            return await write
    except Exception:
        log.exception("could not write the run record of job %s", job)
        return None


async def job_stage_changed(rt: Runtime, job: Job, stage: str, message: str | None,
                            started_at: datetime | None) -> None:
    """The job's stage as the Hub reports it; the moment it started running, once."""
    async with rt.db.transaction() as db:
        values: dict[str, Any] = {"stage": stage, "message": message}
        if started_at is not None:
            values["started_at"] = started_at
        await db.execute(update(Job).where(Job.id == job.id).values(**values))


@dataclass(frozen=True)
class LiveRow:
    """A running job's latest progress, metrics and GPU (`live`), and its metric points when due."""

    job_id: str
    live: dict[str, Any]
    points: dict[str, Any] | None = None


async def jobs_live(rt: Runtime, rows: list[LiveRow]) -> None:
    """Followed jobs' live states in one transaction: one statement for those with points, one for
    those without, each run for all its rows. A job whose end is recorded keeps what its end wrote."""
    jobs = Job.__table__
    which = and_(jobs.c.id == bindparam("row_id"), jobs.c.notified_finished.is_(False))
    live = bindparam("row_live", type_=jobs.c.live.type)
    plain = [{"row_id": r.job_id, "row_live": r.live} for r in rows if r.points is None]
    full = [{"row_id": r.job_id, "row_live": r.live, "row_points": r.points} for r in rows if r.points is not None]
    async with rt.db.transaction() as db:
        if plain:
            await db.execute(update(jobs).where(which).values(live=live), plain)
        if full:
            await db.execute(update(jobs).where(which).values(
                live=live, metric_points=bindparam("row_points", type_=jobs.c.metric_points.type)), full)


async def job_finished(rt: Runtime, job: Job, info: Any, *, runtime: float, cost: float, finished_at: datetime,
                       tail: list[str], lines: list[str], live: dict[str, Any], points: Any) -> bool:
    """The end of a job, recorded once (compare-and-set): its row, its actual spend, the audit event,
    its run record and the work item that wakes the agent. False when another process recorded it."""
    stage = info.status.stage
    async with rt.db.transaction() as db:
        res = await db.execute(update(Job).where(Job.id == job.id, Job.notified_finished.is_(False)).values(
            notified_finished=True, stage=stage, message=info.status.message, finished_at=finished_at,
            runtime_seconds=runtime, actual_cost_usd=cost, log_tail="\n".join(tail), live=live,
            metric_points=points))
        if res.rowcount != 1:
            return False
        ref = job.approval_id or job.hf_job_id
        await db.execute(update(SpendEntry).where(SpendEntry.ref == ref).values(amount_usd=cost, final=True))
        audit.record(db, "job_cancelled" if stage == "CANCELED" else "job_finished", platform=job.platform,
                     workspace=job.workspace, channel=job.channel, session_id=job.session_id,
                     approval_id=job.approval_id, job_id=job.hf_job_id, stage=stage,
                     runtime_seconds=runtime, cost=cost)
        record = await remember(db, runs.close_record(
            db, job, stage=stage, message=info.status.message, runtime=runtime, cost=cost,
            lines=lines, labels=getattr(info, "labels", None), redact=rt.redactor.redact,
            metrics=live["metrics"]),
            job.hf_job_id or job.id) or {}
        enqueue(db, job.session_id, "job_finished", {
            "job_id": job.hf_job_id, "stage": stage, "message": info.status.message,
            "runtime_seconds": runtime, "cost_usd": cost, "log_tail": tail, "requester": job.requester,
            "metrics": live["metrics"], "error_signature": record.get("error_signature")})
    return True


async def record_scheduled_run(rt: Runtime, session: Session, schedule: Job, run: Any) -> None:
    """A run the Hub spawned from a schedule is a launch of its own: it reserves its maximum, and the
    schedule's approval stops holding the reservation it made for the first run."""
    if schedule.approval_id:
        async with rt.db.transaction() as db:
            await _give_back(db, schedule.approval_id)
    await record_launch(rt, session, schedule.requester, {
        "hf_job_id": str(run.id), "namespace": schedule.namespace, "flavor": schedule.flavor or str(run.flavor),
        "timeout_seconds": schedule.timeout_seconds, "hourly_usd": schedule.hourly_usd,
        "estimated_cost_usd": schedule.estimated_cost_usd, "url": getattr(run, "url", None), "approval_id": None,
        "stage": run.status.stage, "labels": getattr(run, "labels", None)})


# --- spend -------------------------------------------------------------------------------------------

async def _give_back(db: AsyncSession, approval_id: str) -> int:
    """The approval's reservation, if it still holds one, settles at nothing. How many rows it freed."""
    res = await db.execute(update(SpendEntry).where(SpendEntry.ref == approval_id, SpendEntry.final.is_(False))
                           .values(amount_usd=0.0, final=True))
    return int(res.rowcount or 0)


async def release_reservation(rt: Runtime, s: Session, approval_id: str, tool: str, why: str) -> None:
    """An approved spend that did not happen (the Hub refused it) gives its reservation back."""
    async with rt.db.transaction() as db:
        if await _give_back(db, approval_id):
            audit.record(db, "launch_failed", platform=s.platform, workspace=s.workspace, channel=s.channel,
                         session_id=s.id, approval_id=approval_id, tool=tool, reason=why[:500])


async def add_llm_spend(db: Any, s: Session, user: str, amount: float) -> None:
    """LLM spend counts toward the channel budget: one running entry per session and month."""
    ref = f"llm:{s.id}:{month_of()}"
    row = (await db.execute(select(SpendEntry).where(SpendEntry.ref == ref))).scalar_one_or_none()
    if row is None:
        db.add(SpendEntry(platform=s.platform, workspace=s.workspace, channel=s.channel, session_id=s.id,
                          user_id=user, kind="llm", ref=ref, amount_usd=amount, final=True, month=month_of()))
    else:
        await db.execute(update(SpendEntry).where(SpendEntry.ref == ref).values(
            amount_usd=SpendEntry.amount_usd + amount))


SESSIONS = Session.__table__
ADD_USAGE = update(SESSIONS).where(SESSIONS.c.id == bindparam("b_id")).values(
    prompt_tokens=SESSIONS.c.prompt_tokens + bindparam("b_prompt"),
    completion_tokens=SESSIONS.c.completion_tokens + bindparam("b_completion"),
    cache_read_tokens=SESSIONS.c.cache_read_tokens + bindparam("b_read"),
    cache_write_tokens=SESSIONS.c.cache_write_tokens + bindparam("b_write"),
    llm_cost_usd=SESSIONS.c.llm_cost_usd + bindparam("b_cost"))


async def record_usages(db: Any, usage: list[tuple[Session, str, ev.UsageRecorded]]) -> None:
    """Token and cost counters of many sessions in one statement; LLM spend toward the budget."""
    rows = sorted(({"b_id": s.id, "b_prompt": e.prompt_tokens, "b_completion": e.completion_tokens,
                    "b_read": e.cache_read_tokens, "b_write": e.cache_write_tokens,
                    "b_cost": e.cost_usd} for s, _, e in usage), key=lambda r: str(r["b_id"]))
    await db.execute(ADD_USAGE, rows)  # in id order, like the lease keeper: no deadlock between them
    for s, user, e in usage:
        if e.cost_usd > 0:
            await add_llm_spend(db, s, user, e.cost_usd)
