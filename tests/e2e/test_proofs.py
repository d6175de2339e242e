"""Behaviour that must be proved end to end, through signed Slack requests and the real adapter: the
Stop button on the status card, fail-closed spending with no approver at all, and the status card's
edit throttle."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import select

from intern.agent import events as ev
from intern.bot.effects import card_saver
from intern.bot.models import Approval, AuditEvent, Session
from intern.bot.progress import ProgressSink
from intern.standins.hub import HubStandIn
from intern.standins.hub_jobs import jobs_state
from intern.standins.llm import LLMStandIn
from intern.standins.slack import PostedMessage, SlackStandIn, block_action, mention_event
from tests.e2e.harness import APPROVER, OTHER, REQUESTER, Harness, job_rule, wait_until
from tests.e2e.test_slack_flow import click, mention_until_card


def stop_button(message: PostedMessage) -> str | None:
    for block in message.blocks or []:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == "intern_stop":
                return str(element["value"])
    return None


def status_card(h: Harness, thread: str) -> PostedMessage | None:
    return next((m for m in h.slack.posted(thread_ts=thread) if "Intern status" in str(m.blocks)), None)


async def audit(h: Harness, kind: str) -> list[AuditEvent]:
    assert h.proc is not None
    async with h.proc.rt.db.session() as db:
        return list((await db.execute(select(AuditEvent).where(AuditEvent.kind == kind))).scalars().all())


async def test_the_stop_button_stops_the_session_and_cancels_its_job(harness: Harness) -> None:
    thread, approval = await mention_until_card(harness)
    await harness.sender.send_interaction(click(harness, "intern_approve", approval, APPROVER, thread))
    jobs = jobs_state(harness.hub)
    await wait_until(lambda: len(jobs.created) == 1, timeout=20)
    job_id = jobs.created[0].job_id
    jobs.set_stage(job_id, "RUNNING")
    await wait_until(lambda: any("is running" in t for t in harness.slack.texts(thread_ts=thread)), timeout=20)
    card = status_card(harness, thread)
    assert card is not None
    session_id = stop_button(card)
    assert session_id is not None

    def press(user: str) -> dict[str, Any]:
        return block_action("intern_stop", session_id, user=user, team=harness.slack.team_id,  # type: ignore[arg-type]
                            channel=card.channel, message_ts=card.ts, thread_ts=thread)

    assert (await harness.sender.send_interaction(press(OTHER))).status == 200
    await wait_until(lambda: harness.slack.ephemerals(user=OTHER), timeout=10)
    assert "Only the person who started this session" in harness.slack.ephemerals(user=OTHER)[0].text
    await asyncio.sleep(0.5)
    assert jobs.job(job_id).stage == "RUNNING"

    assert (await harness.sender.send_interaction(press(REQUESTER))).status == 200
    await wait_until(lambda: jobs.job(job_id).stage == "CANCELED", timeout=20)
    await wait_until(lambda: any(f"Stopped by <@{REQUESTER}>" in t and job_id in t
                                 for t in harness.slack.texts(thread_ts=thread)), timeout=20)
    assert "Stopping" in harness.slack.ephemerals(user=REQUESTER)[0].text
    await wait_until(lambda: stop_button(harness.slack.message(card.channel, card.ts)) is None,  # type: ignore[arg-type]
                     timeout=20)
    [stopped] = await audit(harness, "session_stopped")
    assert stopped.actor == REQUESTER and stopped.session_id == session_id and stopped.detail["jobs"] == [job_id]
    assert [e.actor for e in await audit(harness, "stop_refused")] == [OTHER]


async def test_with_no_approver_at_all_spending_is_refused_and_nothing_launches(
        migrated_url: str, stands: tuple[SlackStandIn, HubStandIn, LLMStandIn]) -> None:
    stands[2].rule = job_rule()  # type: ignore[attr-defined]
    h = Harness(migrated_url, *stands, approvers="")  # no INTERN_APPROVERS and no channel policy
    await h.start()
    try:
        event = mention_event("fine-tune a small model on my dataset", user=REQUESTER)
        assert (await h.sender.send_event(event)).status == 200
        thread = event["ts"]
        await wait_until(lambda: any("Not run: no approver is configured" in t
                                     for t in h.slack.texts(thread_ts=thread)), timeout=20)
        await wait_until(lambda: any("The job was not launched" in t for t in h.slack.texts(thread_ts=thread)),
                         timeout=20)
        said = next(t for t in h.slack.texts(thread_ts=thread) if "Not run: no approver" in t)
        assert "INTERN_APPROVERS" in said and "policy approvers add" in said
        assert not any(stop_button(m) is None and "intern_approve" in str(m.blocks)
                       for m in h.slack.posted(thread_ts=thread))
        await asyncio.sleep(0.5)
        assert jobs_state(h.hub).created == [] and jobs_state(h.hub).created_schedules == []
        assert h.proc is not None
        async with h.proc.rt.db.session() as db:
            [a] = (await db.execute(select(Approval))).scalars().all()
        assert a.status == "refused" and a.decided_by == "policy"
        [refused] = await audit(h, "approval_refused")
        assert refused.approval_id == a.id and "no approver" in refused.detail["reason"]
    finally:
        await h.stop()


async def test_the_status_card_is_edited_at_most_once_per_interval_and_the_last_state_lands(
        harness: Harness) -> None:
    assert harness.proc is not None
    rt = harness.proc.rt
    thread, _ = await mention_until_card(harness)
    await wait_until(lambda: "Waiting for approval" in str(getattr(status_card(harness, thread), "blocks", "")),
                     timeout=20)  # the turn that posted the card is over: no other edits of it
    card = status_card(harness, thread)
    assert card is not None
    async with rt.db.session() as db:
        session = (await db.execute(select(Session).where(Session.thread == thread))).scalar_one()

    def edits_of_the_card() -> int:
        return sum(1 for r in harness.slack.calls("/api/chat.update") if card.ts in r.body.decode(errors="replace"))

    rt.status_throttle_seconds = 1.0
    sink = ProgressSink(rt, session, card_saver(rt))
    before = edits_of_the_card()
    started = time.monotonic()
    for i in range(40):  # a burst of steps, faster than the interval
        await sink.emit(ev.ToolStarted(f"call-{i}", "hf_inspect_dataset", f"step {i}"))
        await asyncio.sleep(0.05)
    burst = time.monotonic() - started
    await wait_until(lambda: "step 39" in str(harness.slack.message(card.channel, card.ts).blocks),  # type: ignore[union-attr]
                     timeout=15)  # the last change always lands
    edits = edits_of_the_card() - before
    # 40 changes in about two seconds: an edit at most every second, and never one per change.
    assert 1 <= edits <= min(int(burst / 1.0) + 2, 6), (edits, burst)
    await sink.close()
