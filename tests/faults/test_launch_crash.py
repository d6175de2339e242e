"""A launch is idempotent across a crash: the process dies after the Hub accepted the job but before
the database heard of it, or the Hub's answer to the launch is lost. Either way exactly one job
exists, it is found by its approval label, recorded and followed, and the conversation goes on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import select

from intern.bot.models import Job, WorkItem
from intern.standins.hub import HubStandIn
from intern.standins.hub_jobs import JobsState, jobs_state
from intern.standins.llm import LLMStandIn
from intern.standins.slack import SlackStandIn, mention_event
from tests.e2e.harness import job_rule
from tests.e2e.test_slack_flow import approval_id_of, cards, click
from tests.faults.cluster import APPROVER, REQUESTER, Cluster, count, open_db, started, wait_until


def on_accept(jobs: JobsState, action: Any) -> None:
    """Run `action` the moment the Hub stand-in has created a job, before it answers the request."""
    original = jobs.new_job

    def new_job(*args: Any, **kwargs: Any) -> Any:
        job = original(*args, **kwargs)
        jobs.new_job = original  # type: ignore[method-assign]
        action()
        return job

    jobs.new_job = new_job  # type: ignore[method-assign]


async def card_for(cluster: Cluster, text: str) -> tuple[str, str]:
    event = mention_event(text, user=REQUESTER)
    assert (await cluster.nodes[0].sender.send_event(event)).status == 200
    thread = event["ts"]
    await wait_until(lambda: cards(cluster.slack, thread), timeout=30)
    return thread, approval_id_of(cards(cluster.slack, thread)[0])


async def test_killed_between_the_hub_accepting_and_the_db_write_one_job_is_followed_after_restart(
        pg_url: str, stands: tuple[SlackStandIn, HubStandIn, LLMStandIn], tmp_path: Path) -> None:
    slack, hub, llm = stands
    llm.rule = job_rule(flavor="a10g-large", timeout="2h")
    cluster = Cluster(pg_url, slack, hub, llm, tmp_path, size=1, env={"INTERN_LEASE_SECONDS": "2"})
    jobs = jobs_state(hub)
    db = open_db(pg_url)
    async with started(cluster):
        thread, approval = await card_for(cluster, "fine-tune please")
        on_accept(jobs, lambda: cluster.kill9(0))
        node = cluster.nodes[0]
        await node.sender.send_interaction(click(node, "intern_approve", approval, APPROVER, thread))
        await wait_until(lambda: node.child is None, timeout=30)
        assert len(jobs.jobs) == 1
        async with db.session() as s:
            intent = (await s.execute(select(Job).where(Job.approval_id == approval))).scalar_one()
        assert intent.hf_job_id is None and intent.stage == "LAUNCHING", "no intent was recorded before the launch"
        assert not any("launched" in t for t in slack.texts(thread_ts=thread))

        await node.start_child(tmp_path)
        await wait_until(lambda: any("launched" in t for t in slack.texts(thread_ts=thread)), timeout=30)
        hf_id = next(iter(jobs.jobs))
        jobs.set_stage(hf_id, "RUNNING")
        jobs.set_stage(hf_id, "COMPLETED")
        await wait_until(lambda: any("All done" in t for t in slack.texts(thread_ts=thread)), timeout=30)
        await asyncio.sleep(1.0)

        assert len(jobs.jobs) == 1 and len(jobs.created) == 1, "the approval launched a second job"
        async with db.session() as s:
            rows = (await s.execute(select(Job))).scalars().all()
        assert [(r.hf_job_id, r.approval_id, r.notified_finished) for r in rows] == [(hf_id, approval, True)]
        texts = slack.texts(thread_ts=thread)
        assert sum("launched" in t for t in texts) == 1
        assert sum("All done" in t for t in texts) == 1
        assert await count(db, WorkItem, WorkItem.status.in_(("queued", "running", "failed"))) == 0
    await db.dispose()


async def test_a_launch_whose_answer_is_lost_is_found_by_label_not_sent_again(
        pg_url: str, stands: tuple[SlackStandIn, HubStandIn, LLMStandIn], tmp_path: Path) -> None:
    slack, hub, llm = stands
    llm.rule = job_rule(flavor="a10g-large", timeout="2h")
    cluster = Cluster(pg_url, slack, hub, llm, tmp_path, size=1, env={"INTERN_LEASE_SECONDS": "2"})
    jobs = jobs_state(hub)
    db = open_db(pg_url)
    async with started(cluster):
        thread, approval = await card_for(cluster, "fine-tune please")

        def lose_the_answer() -> None:
            raise ConnectionResetError("the Hub's answer to the launch never arrives (HTTP 500)")

        on_accept(jobs, lose_the_answer)
        node = cluster.nodes[0]
        await node.sender.send_interaction(click(node, "intern_approve", approval, APPROVER, thread))
        await wait_until(lambda: any("launched" in t for t in slack.texts(thread_ts=thread)), timeout=30)
        await wait_until(lambda: any("running" in t for t in slack.texts(thread_ts=thread)), timeout=30)
        await asyncio.sleep(0.5)
        assert len(jobs.jobs) == 1, "the launch was sent again"
        launches = [r for r in hub.requests if r.method == "POST" and r.path.startswith("/api/jobs/")]
        assert len(launches) == 1
        async with db.session() as s:
            row = (await s.execute(select(Job).where(Job.approval_id == approval))).scalar_one()
        assert row.hf_job_id == next(iter(jobs.jobs))
    await db.dispose()
