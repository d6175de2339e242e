"""Scheduled jobs and the budget.

A schedule Intern created is a row of the jobs table (kind `scheduled`). Every run the Hub spawns from
it carries the schedule's labels, the approval label among them: each one is recorded like a launch
(a job row the watcher follows, a spend reservation of the run's maximum that its actual cost replaces
when it ends), so every run counts against the channel's and the workspace's budgets. When what is
left cannot cover the next run's maximum, the schedule is suspended on the Hub and the thread is told
why (resuming it takes a card, which checks the budget again).

The row's `watcher_expires_at` holds when the schedule is to be looked at next: the process whose
compare-and-set moves it on does the looking, so a cluster looks at each schedule once an interval.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from intern.bot import audit
from intern.bot import policy as policies
from intern.bot.cards import money
from intern.bot.effects import record_scheduled_run
from intern.bot.models import Job, Session
from intern.bot.ownership import SCHEDULED
from intern.bot.runtime import Runtime
from intern.bot.sessions import conversation_of

log = logging.getLogger(__name__)

SUSPENDED = "SUSPENDED"
DELETED = "DELETED"
CLAIM = 50


def now() -> datetime:
    return datetime.now(UTC)


async def check_schedules(rt: Runtime) -> None:
    """Look at the schedules due for a look (runs to record, budget to check)."""
    t = now()
    due = or_(Job.watcher_expires_at.is_(None), Job.watcher_expires_at < t)
    mine = (Job.kind == "scheduled", Job.stage.in_((SCHEDULED, SUSPENDED)), Job.hf_job_id.is_not(None), due)
    async with rt.db.transaction() as db:
        ids = list((await db.execute(select(Job.id).where(*mine).limit(CLAIM))).scalars().all())
        if not ids:
            return
        res = await db.execute(update(Job).where(Job.id.in_(ids), due).values(
            watcher_expires_at=t + timedelta(seconds=rt.settings.job_poll_seconds)).returning(Job.id))
        claimed = list(res.scalars().all())
    for jid in claimed:
        try:
            await check_schedule(rt, jid)
        except Exception as exc:
            log.warning("could not check scheduled job row %s: %s: %s", jid, type(exc).__name__, str(exc)[:200])


async def check_schedule(rt: Runtime, jid: str) -> None:
    async with rt.db.session() as db:
        row = await db.get(Job, jid)
        session = await db.get(Session, row.session_id) if row is not None else None
    if row is None or session is None or row.hf_job_id is None:
        return
    try:
        sj = await rt.hub.read(rt.hub.api.inspect_scheduled_job, scheduled_job_id=row.hf_job_id,
                               namespace=row.namespace)
    except Exception as exc:
        if getattr(getattr(exc, "response", None), "status_code", None) == 404:
            await set_stage(rt, row, DELETED)
            return
        raise
    for run in await new_runs(rt, row, sj):
        await record_scheduled_run(rt, session, row, run)
    await set_stage(rt, row, SUSPENDED if sj.suspend else SCHEDULED)
    if not sj.suspend:
        await suspend_if_over_budget(rt, session, row, sj)


async def new_runs(rt: Runtime, row: Job, sj: Any) -> list[Any]:
    """The runs of this schedule the jobs table does not hold yet: those carrying its approval label
    (a run takes the schedule's labels), and the last job its status names."""
    from intern.agent.tools.jobs_hub import launched_with_label

    runs = await launched_with_label(rt.hub, row.approval_id, row.namespace) if row.approval_id else []
    last = getattr(sj.status, "last_job", None)
    if last is not None and not any(r.id == last.id for r in runs):
        runs.append(await rt.hub.read(rt.hub.api.inspect_job, job_id=last.id, namespace=row.namespace))
    if not runs:
        return []
    async with rt.db.session() as db:
        known = set((await db.execute(select(Job.hf_job_id).where(
            Job.hf_job_id.in_([str(r.id) for r in runs])))).scalars().all())
    return [r for r in runs if str(r.id) not in known]


async def set_stage(rt: Runtime, row: Job, stage: str) -> None:
    if row.stage == stage:
        return
    async with rt.db.transaction() as db:
        await db.execute(update(Job).where(Job.id == row.id).values(stage=stage))
    row.stage = stage


async def suspend_if_over_budget(rt: Runtime, session: Session, row: Job, sj: Any) -> None:
    next_max = row.estimated_cost_usd
    async with rt.db.session() as db:
        pol = await policies.effective(db, row.platform, row.workspace, row.channel, rt.settings.approvers)
        view = await policies.budget_view(db, pol, row.platform, row.workspace, row.channel)
    if view.allows(next_max):
        return
    await rt.hub.call(rt.hub.api.suspend_scheduled_job, scheduled_job_id=row.hf_job_id, namespace=row.namespace)
    left = max(view.left or 0.0, 0.0)
    async with rt.db.transaction() as db:
        res = await db.execute(update(Job).where(Job.id == row.id, Job.stage == SCHEDULED).values(stage=SUSPENDED))
        if res.rowcount != 1:
            return  # another process suspended it and said so
        audit.record(db, "schedule_suspended", platform=row.platform, workspace=row.workspace, channel=row.channel,
                     session_id=row.session_id, approval_id=row.approval_id, job_id=row.hf_job_id,
                     reason="budget", left=round(left, 4), next_run_max=next_max)
    row.stage = SUSPENDED
    await rt.adapter(row.platform).post(conversation_of(session), (
        f"⏸️ Suspended the scheduled job `{row.hf_job_id}` ({sj.schedule}): the budget left this month "
        f"({money(left)}) cannot cover its next run (at most {money(next_max)}). Once an administrator raises "
        "the budget (`@intern policy budget …`), ask me to resume it."))
