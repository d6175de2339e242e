"""Three `intern serve` processes behind one Slack app: every event reaches all three (Slack's
retries and a load balancer do that), and a hundred clicks on one card land on all three at once.
Each message is handled once, and the approval launches exactly one job."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from sqlalchemy import select

from intern.bot.models import Approval, ApprovalDecision, InboundEvent, Job, Message, Session, WorkItem
from intern.standins.hub import HubStandIn
from intern.standins.hub_jobs import jobs_state
from intern.standins.llm import LLMStandIn
from intern.standins.slack import SlackStandIn, block_action, event_callback, mention_and_message
from tests.e2e.harness import OTHER, job_rule
from tests.e2e.test_slack_flow import approval_id_of, cards
from tests.faults.cluster import APPROVER, REQUESTER, Cluster, count, open_db, started, wait_until

APPROVERS = [APPROVER, "U0APPROVER2", "U0APPROVER3"]
THREADS = 10
CLICKS = 100


async def test_events_delivered_to_every_process_are_handled_once_and_clicks_launch_one_job(
        pg_url: str, stands: tuple[SlackStandIn, HubStandIn, LLMStandIn], tmp_path: Path) -> None:
    slack, hub, llm = stands
    llm.rule = job_rule(flavor="a10g-large", timeout="2h")
    cluster = Cluster(pg_url, slack, hub, llm, tmp_path, size=3, env={"INTERN_LEASE_SECONDS": "3"},
                      approvers=",".join([*APPROVERS, REQUESTER]))
    db = open_db(pg_url)
    async with started(cluster):
        threads = await deliver_everywhere(cluster)
        await wait_until(lambda: all(cards(slack, t) for t in threads), timeout=60)
        await asyncio.sleep(1.0)  # a late duplicate turn would post a second card by now

        assert await count(db, Session) == THREADS
        assert await count(db, Message, Message.role == "user") == THREADS
        assert await count(db, WorkItem, WorkItem.kind == "message") == THREADS
        assert await count(db, InboundEvent, InboundEvent.kind == "message") == THREADS
        assert all(len(cards(slack, t)) == 1 for t in threads)
        assert len(llm.chat_requests) == THREADS, "some message reached the model twice"

        thread = threads[0]
        approval = approval_id_of(cards(slack, thread)[0])
        statuses = await click_storm(cluster, approval, thread)
        assert set(statuses) == {200}

        jobs = jobs_state(hub)
        await wait_until(lambda: len(jobs.created) == 1, timeout=30)
        await wait_until(lambda: any("launched" in t for t in slack.texts(thread_ts=thread)), timeout=30)
        await asyncio.sleep(1.5)
        assert len(jobs.created) == 1
        assert jobs.created[0].labels.get("intern-approval") == approval
        async with db.session() as s:
            a = await s.get(Approval, approval)
            assert a is not None and a.status == "approved"
            assert a.decided_by in APPROVERS
            voters = (await s.execute(select(ApprovalDecision.user_id).where(
                ApprovalDecision.approval_id == approval))).scalars().all()
        assert set(voters) <= set(APPROVERS), f"a refused click was recorded as a decision: {voters}"
        assert await count(db, WorkItem, WorkItem.kind == "resume") == 1
        assert await count(db, Job) == 1
        assert sum("launched" in t for t in slack.texts(thread_ts=thread)) == 1

        jobs.set_stage(jobs.created[0].job_id, "RUNNING")
        jobs.set_stage(jobs.created[0].job_id, "COMPLETED")
        await wait_until(lambda: any("All done" in t for t in slack.texts(thread_ts=thread)), timeout=30)
        await asyncio.sleep(1.0)
        assert sum("All done" in t for t in slack.texts(thread_ts=thread)) == 1
        assert sum(t.startswith("✅ Job") for t in slack.texts(thread_ts=thread)) == 1
        assert "Traceback" not in cluster.logs()
    await db.dispose()


async def deliver_everywhere(cluster: Cluster) -> list[str]:
    """Each mention arrives as Slack sends it — an `app_mention` and a `message` for the same ts — and
    each of the two envelopes reaches all three processes at once (first try and two retries)."""
    threads, sends = [], []
    for i in range(THREADS):
        mention, message = mention_and_message(f"fine-tune a model, task {i}", user=REQUESTER)
        threads.append(mention["ts"])
        for event in (mention, message):
            envelope = event_callback(event, team_id=cluster.slack.team_id)
            for retry, node in enumerate(cluster.nodes):
                sends.append(node.sender.send_envelope(envelope, retry_num=retry or None))
    results = await asyncio.gather(*sends)
    assert {r.status for r in results} == {200}
    return threads


async def click_storm(cluster: Cluster, approval: str, thread: str) -> list[int]:
    """A hundred clicks, over the three processes: the approvers (several times each), the requester
    (self-approval is off) and a bystander."""
    card = cards(cluster.slack, thread)[0]
    users = itertools.cycle([*APPROVERS, REQUESTER, OTHER])
    sends = []
    for i in range(CLICKS):
        payload = block_action("intern_approve", approval, user=next(users), team=cluster.slack.team_id,
                               channel=card.channel, message_ts=card.ts, thread_ts=thread)
        payload["actions"][0]["action_ts"] = f"1700000000.{i:06d}"
        sends.append(cluster.nodes[i % len(cluster.nodes)].sender.send_interaction(payload))
    return [r.status for r in await asyncio.gather(*sends)]
