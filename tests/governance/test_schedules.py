"""A schedule's runs count against the budget: each run the Hub spawns from it is recorded as a job
with its own reservation, replaced by its actual cost when it ends; when what is left cannot cover the
next run's maximum, the schedule is suspended on the Hub and the thread says why."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from intern.bot.models import Job, SpendEntry
from intern.standins.hub_jobs import jobs_state
from tests.e2e.harness import Harness, wait_until
from tests.governance.conftest import StartBot
from tests.governance.helpers import (
    ADMIN,
    APPROVER_1,
    approval_id_in,
    audit_events,
    click,
    command,
    first_card,
    launch_args,
    rt,
    start_task,
    tool_rule,
)


async def spend(h: Harness, ref: str) -> SpendEntry | None:
    async with rt(h).db.session() as db:
        return (await db.execute(select(SpendEntry).where(SpendEntry.ref == ref))).scalar_one_or_none()


async def run_for(h: Harness, job_id: str, minutes: int) -> None:
    jobs = jobs_state(h.hub)
    jobs.set_stage(job_id, "RUNNING")
    jobs.job(job_id).started_at -= timedelta(minutes=minutes)
    jobs.set_stage(job_id, "COMPLETED")

    async def settled() -> bool:
        entry = await spend(h, job_id)
        return entry is not None and entry.final

    await wait_until(settled, timeout=20)


async def test_every_run_of_a_schedule_is_counted_and_the_schedule_is_suspended_when_the_budget_runs_short(
        start_bot: StartBot) -> None:
    nightly = launch_args(flavor="a10g-large", timeout="1h", operation="scheduled run", schedule="@daily")
    bot = await start_bot(rule=tool_rule([("hf_jobs", nightly)]))  # at most $1.50 a run
    for words in (f"approvers add <@{APPROVER_1}>", "budget 4"):
        assert (await command(bot, f"policy {words}", ADMIN)).public
    thread = await start_task(bot, "evaluate the model every night")
    aid = approval_id_in(await first_card(bot, thread))
    assert aid is not None
    await click(bot, "intern_approve", aid, APPROVER_1, thread)
    jobs = jobs_state(bot.hub)
    await wait_until(lambda: len(jobs.created_schedules) == 1, timeout=20)
    sid = jobs.created_schedules[0].job_id

    first = jobs.fire_schedule(sid)  # the Hub's scheduler starts a run

    async def recorded(job_id: str) -> bool:
        return await spend(bot, job_id) is not None

    await wait_until(lambda: recorded(first.id), timeout=20)
    reserved = await spend(bot, first.id)
    assert reserved is not None and reserved.amount_usd == 1.5 and not reserved.final
    approval_hold = await spend(bot, aid)
    assert approval_hold is not None and approval_hold.final and approval_hold.amount_usd == 0.0
    await run_for(bot, first.id, 30)
    assert (await spend(bot, first.id)).amount_usd == 0.75  # type: ignore[union-attr]

    second = jobs.fire_schedule(sid)
    await wait_until(lambda: recorded(second.id), timeout=20)
    await run_for(bot, second.id, 60)  # $0.75 + $1.50 spent, $1.75 left: the next run still fits
    assert not jobs.scheduled[sid].suspend

    third = jobs.fire_schedule(sid)  # reserves $1.50: $0.25 left, less than a run
    await wait_until(lambda: recorded(third.id), timeout=20)
    await wait_until(lambda: jobs.scheduled[sid].suspend, timeout=20)
    await wait_until(lambda: any("Suspended the scheduled job" in t for t in bot.slack.texts(thread_ts=thread)),
                     timeout=20)
    said = next(t for t in bot.slack.texts(thread_ts=thread) if "Suspended the scheduled job" in t)
    assert sid in said and "$0.25" in said and "$1.50" in said
    async with rt(bot).db.session() as db:
        rows = (await db.execute(select(Job).where(Job.hf_job_id.in_([first.id, second.id, third.id])))).scalars().all()
        schedule = (await db.execute(select(Job).where(Job.hf_job_id == sid))).scalar_one()
    assert {r.kind for r in rows} == {"job"} and len(rows) == 3
    assert {r.requester for r in rows} == {schedule.requester} and schedule.stage == "SUSPENDED"
    suspended = await audit_events(bot, "schedule_suspended")
    assert [(e.job_id, e.detail["next_run_max"]) for e in suspended] == [(sid, 1.5)]
    assert {e.job_id for e in await audit_events(bot, "job_launched")} >= {first.id, second.id, third.id}
