"""Who may do what, through `intern serve`: ending a session, jobs of other workspaces and channels,
requests from other Slack teams, budgets that stop model spend, the per-user session limit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from intern.bot.models import AuditEvent, Session, WorkItem
from intern.standins.hub import HubStandIn
from intern.standins.llm import LLMStandIn
from intern.standins.slack import SlackStandIn, message_event
from tests.e2e.harness import APPROVER, OTHER, REQUESTER, Harness, job_rule, wait_until
from tests.e2e.test_slack_flow import mention_until_card


@pytest.fixture
async def stands() -> AsyncIterator[tuple[SlackStandIn, HubStandIn, LLMStandIn]]:
    async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm:
        yield slack, hub, llm  # type: ignore[misc]


@pytest.fixture
async def harness(migrated_url: str, stands: tuple[SlackStandIn, HubStandIn, LLMStandIn]) -> AsyncIterator[Harness]:
    slack, hub, llm = stands
    llm.rule = job_rule()
    h = Harness(migrated_url, slack, hub, llm)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


async def count(h: Harness, model: type, *where: object) -> int:
    assert h.proc is not None
    async with h.proc.rt.db.session() as db:
        return int((await db.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


async def test_a_bystander_cannot_end_a_session_with_new_session(harness: Harness) -> None:
    thread, _ = await mention_until_card(harness)
    r = await harness.sender.send_event(message_event("new session", user=OTHER, thread_ts=thread))
    assert r.status == 200
    await wait_until(lambda: harness.slack.ephemerals(user=OTHER))
    assert "Only the person who started this session" in harness.slack.ephemerals(user=OTHER)[0].text
    assert await count(harness, Session) == 1
    assert await count(harness, Session, Session.active.is_(True)) == 1
    assert await count(harness, WorkItem, WorkItem.kind == "seed") == 0
    assert await count(harness, AuditEvent, AuditEvent.kind == "stop_refused", AuditEvent.actor == OTHER) == 1
    # An approver may.
    r = await harness.sender.send_event(message_event("new session", user=APPROVER, thread_ts=thread))
    await wait_until(lambda: count(harness, Session, Session.active.is_(False)))
    assert await count(harness, Session, Session.active.is_(True), Session.started_by == APPROVER) == 1
    assert REQUESTER != APPROVER
