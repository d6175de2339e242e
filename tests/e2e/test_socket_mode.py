"""Socket Mode: with SLACK_APP_TOKEN set, events and clicks arrive over Slack's WebSocket instead of HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from intern.standins.hub import HubStandIn
from intern.standins.hub_jobs import jobs_state
from intern.standins.llm import LLMStandIn
from intern.standins.slack import SlackStandIn, block_action, event_callback, mention_event
from tests.e2e.harness import APPROVER, REQUESTER, Harness, job_rule, wait_until
from tests.e2e.test_slack_flow import approval_id_of, cards


@pytest.fixture
async def harness(migrated_url: str) -> AsyncIterator[Harness]:
    async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm:
        llm.rule = job_rule()
        h = Harness(migrated_url, slack, hub, llm, extra_env={"SLACK_APP_TOKEN": slack.app_token})  # type: ignore[arg-type]
        await h.start()
        try:
            yield h
        finally:
            await h.stop()


async def test_mention_and_approval_over_socket_mode(harness: Harness) -> None:
    slack = harness.slack
    event = mention_event("fine-tune a small model", user=REQUESTER)
    envelope_id = await slack.socket_send("events_api", event_callback(event))
    await wait_until(lambda: envelope_id in slack.socket_acks)
    thread = event["ts"]
    await wait_until(lambda: cards(slack, thread), timeout=20)
    approval = approval_id_of(cards(slack, thread)[0])
    card = cards(slack, thread)[0]
    click_id = await slack.socket_send("interactive", block_action(
        "intern_approve", approval, user=APPROVER, channel=card.channel, message_ts=card.ts, thread_ts=thread))
    await wait_until(lambda: click_id in slack.socket_acks)
    jobs = jobs_state(harness.hub)
    await wait_until(lambda: len(jobs.created) == 1, timeout=20)
    # a redelivery of the same event over the socket is a no-op
    again = await slack.socket_send("events_api", event_callback(event), retry_attempt=1)
    await wait_until(lambda: again in slack.socket_acks)
    assert len(cards(slack, thread)) <= 1 and len(jobs.created) == 1
