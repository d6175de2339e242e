"""A launch recorded only as an intent is looked up on the Hub by its approval label; what the Hub
answers is checked label by label, so a Hub or proxy that drops the label filter cannot make Intern
follow, bill or report another approval's job."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from intern.agent.tools.jobs_hub import APPROVAL_LABEL
from intern.bot.jobs import LAUNCHING, NOT_LAUNCHED
from intern.bot.models import Approval, Job, utcnow
from intern.standins.hub import HubStandIn
from intern.standins.hub_jobs import jobs_state
from intern.standins.llm import LLMStandIn
from intern.standins.slack import SlackStandIn
from tests.e2e.harness import Harness, job_rule, wait_until
from tests.e2e.test_slack_flow import mention_until_card


@pytest.fixture
async def harness(migrated_url: str) -> AsyncIterator[Harness]:
    async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm:
        llm.rule = job_rule()
        h = Harness(migrated_url, slack, hub, llm)  # type: ignore[arg-type]
        await h.start()
        try:
            yield h
        finally:
            await h.stop()


async def test_an_intent_is_not_reconciled_with_another_approvals_job(harness: Harness) -> None:
    assert harness.proc is not None
    rt = harness.proc.rt
    thread, approval = await mention_until_card(harness)
    jobs = jobs_state(harness.hub)
    foreign = jobs.new_job(harness.hub.user, {"dockerImage": "python:3.12", "command": ["true"],
                                              "flavor": "a10g-large",
                                              "labels": {APPROVAL_LABEL: str(uuid.uuid4())}})
    jobs.honour_label_filter = False
    async with rt.db.transaction() as db:
        a = await db.get(Approval, approval)
        assert a is not None
        # The process that recorded this intent died before the Hub was asked.
        db.add(Job(session_id=a.session_id, approval_id=a.id, namespace=harness.hub.user, flavor="a10g-large",
                   timeout_seconds=7200, hourly_usd=1.5, estimated_cost_usd=3.0, stage=LAUNCHING,
                   requester=a.requester, platform=a.platform, workspace=a.workspace, channel=a.channel,
                   updated_at=utcnow() - timedelta(minutes=5)))

    async def settled() -> Job | None:
        async with rt.db.session() as db:
            row = (await db.execute(select(Job).where(Job.approval_id == approval))).scalar_one()
        return row if row.stage != LAUNCHING or row.hf_job_id else None

    await wait_until(settled, timeout=20)
    row = await settled()
    assert row is not None and row.hf_job_id is None and row.stage == NOT_LAUNCHED
    assert not any(foreign.id in t for t in harness.slack.texts(thread_ts=thread))
