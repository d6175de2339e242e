"""Slack's AI-app conventions through the real bot (slack_bolt over HTTP, litellm, SQLAlchemy): the
thinking status under the thread while a turn works, and feedback buttons on final answers."""

from __future__ import annotations

import io
import itertools
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from intern.bot.export import show_session
from intern.bot.models import AuditEvent, Feedback, Session
from intern.bot.settings import Settings
from intern.standins.hub import HubStandIn
from intern.standins.llm import LLMStandIn
from intern.standins.slack import SlackStandIn, feedback_action, mention_event, view_submission
from tests.e2e.harness import OTHER, REQUESTER, Harness, wait_until

ANSWER = "Use LoRA with rank 16 on an A10G; it fits and costs about $3."


@pytest.fixture
async def harness(migrated_url: str) -> AsyncIterator[Harness]:
    async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm:
        h = Harness(migrated_url, slack, hub, llm)  # type: ignore[arg-type]
        await h.start()
        try:
            yield h
        finally:
            await h.stop()


def script_turn(llm: LLMStandIn) -> None:
    """A turn with a step in hand: the plan tool, each model answer taking a little over a second."""
    todos = [{"id": "1", "content": "size the run", "status": "in_progress"}]
    llm.enqueue_tool_calls([("plan", {"todos": todos})], text="Let me plan.", delay=1.2)
    llm.enqueue_tool_calls([("plan", {"todos": [{**todos[0], "status": "completed"}]})], delay=1.2)
    llm.enqueue_text(ANSWER, delay=1.2)


async def one_turn(h: Harness) -> tuple[str, str]:
    script_turn(h.llm)
    event = mention_event("how should I fine-tune Qwen2.5-7B?", user=REQUESTER)
    assert (await h.sender.send_event(event)).status == 200
    await wait_until(lambda: ANSWER in h.slack.texts(thread_ts=event["ts"]), timeout=60)
    await wait_until(lambda: h.slack.status_of(event["channel"], event["ts"])[-1:] == [""], timeout=10)
    return event["channel"], event["ts"]


def answer_message(h: Harness, thread: str) -> dict:
    m = next(m for m in h.slack.posted(thread_ts=thread) if m.text == ANSWER)
    return m.to_api(h.slack.workspace)


async def test_the_thread_shows_what_the_turn_is_doing_and_clears_it(harness: Harness) -> None:
    channel, thread = await one_turn(harness)
    shown = harness.slack.status_of(channel, thread)
    assert shown[0] == "is thinking…" and "is planning…" in shown and shown[-1] == ""
    assert all(a != b for a, b in itertools.pairwise(shown))  # never the same status twice in a row
    calls = harness.slack.method_calls("assistant.threads.setStatus")
    assert {c["channel_id"] for c in calls} == {channel} and {c["thread_ts"] for c in calls} == {thread}
    assert len(calls) <= 3 * 2 + 1  # at most one per step (three model calls, two tool steps) and the end


async def test_a_workspace_that_refuses_the_status_is_told_once_and_the_turn_goes_on(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    harness.slack.inject_error("assistant.threads.setStatus", "missing_scope", times=1)
    with caplog.at_level(logging.WARNING, logger="intern.adapters.slack.app"):
        await one_turn_without_clear(harness)
        await one_turn_without_clear(harness)
    assert len(harness.slack.method_calls("assistant.threads.setStatus")) == 1  # not asked again
    warnings = [r for r in caplog.records if "assistant.threads.setStatus" in r.getMessage()]
    assert len(warnings) == 1 and "missing_scope" in warnings[0].getMessage()


async def one_turn_without_clear(h: Harness) -> None:
    script_turn(h.llm)
    event = mention_event("plan a run", user=REQUESTER)
    assert (await h.sender.send_event(event)).status == 200
    await wait_until(lambda: ANSWER in h.slack.texts(thread_ts=event["ts"]), timeout=60)


async def test_a_final_answer_carries_feedback_buttons_counted_once_per_person(harness: Harness) -> None:
    channel, thread = await one_turn(harness)
    message = answer_message(harness, thread)
    [block] = [b for b in message["blocks"] if b["type"] == "context_actions"]
    buttons = block["elements"][0]
    assert buttons["type"] == "feedback_buttons" and buttons["action_id"] == "intern_feedback"
    async with harness.proc.rt.db.session() as db:  # type: ignore[union-attr]
        sid = (await db.execute(select(Session.id))).scalar_one()
    assert buttons["positive_button"]["value"] == f"up:{sid}"
    assert buttons["negative_button"]["value"] == f"down:{sid}"

    for _ in range(2):  # a second identical click (or Slack's retry) changes nothing
        r = await harness.sender.send_interaction(feedback_action(message, "up", user=OTHER, channel=channel))
        assert r.status == 200
    await wait_until(lambda: len(harness.slack.ephemerals(user=OTHER)) == 2)
    assert "👍" in harness.slack.ephemerals(user=OTHER)[0].text
    assert await votes(harness) == [(OTHER, "up", None)]
    assert await feedback_audits(harness) == 1

    # the other thumb changes the vote and asks (optionally) why, in a modal
    await harness.sender.send_interaction(feedback_action(message, "down", user=OTHER, channel=channel))
    await wait_until(lambda: harness.slack.modals)
    assert await votes(harness) == [(OTHER, "down", None)]
    modal = harness.slack.modals[-1]
    await harness.sender.send_interaction(view_submission(modal, {"reason": {"reason": "It ignored the budget."}},
                                                          user=OTHER))
    await wait_until(lambda: harness.slack.ephemerals(user=OTHER)[-1:] and
                     "reason is recorded" in harness.slack.ephemerals(user=OTHER)[-1].text)
    assert await votes(harness) == [(OTHER, "down", "It ignored the budget.")]
    assert await feedback_audits(harness) == 3

    out = io.StringIO()
    await show_session(Settings(**harness.env()), sid, out)  # type: ignore[arg-type]
    assert "Feedback on answers: 0 👍 · 1 👎" in out.getvalue()


async def test_feedback_from_another_workspace_changes_nothing(harness: Harness) -> None:
    channel, thread = await one_turn(harness)
    message = answer_message(harness, thread)
    harness.slack.add_workspace("T0ELSEWHERE")
    r = await harness.sender.send_interaction(feedback_action(message, "up", user=OTHER, channel=channel,
                                                              team="T0ELSEWHERE"))
    assert r.status == 200
    await wait_until(lambda: harness.slack.ephemerals(user=OTHER))
    assert "do not belong" in harness.slack.ephemerals(user=OTHER)[-1].text
    assert await votes(harness) == [] and await feedback_audits(harness) == 0


async def votes(h: Harness) -> list[tuple[str, str, str | None]]:
    async with h.proc.rt.db.session() as db:  # type: ignore[union-attr]
        rows = (await db.execute(select(Feedback.user_id, Feedback.vote, Feedback.reason))).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def feedback_audits(h: Harness) -> int:
    async with h.proc.rt.db.session() as db:  # type: ignore[union-attr]
        return int((await db.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.kind == "feedback"))).scalar_one())

