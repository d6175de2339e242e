"""A Slack thread becomes a persisted agent session that launches an approved GPU job."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from intern.bot.models import Approval, AuditEvent, InboundEvent, Job, Message, Session, WorkItem
from intern.standins.hub_jobs import jobs_state
from intern.standins.llm import text_reply
from intern.standins.slack import (
    SlackStandIn,
    block_action,
    mention_and_message,
    mention_event,
    message_event,
    slash_command,
)
from tests.e2e.harness import APPROVER, OTHER, REQUESTER, Harness, count, job_rule, wait_until


def cards(slack: SlackStandIn, thread: str) -> list:
    return [m for m in slack.posted(thread_ts=thread)
            if any(b.get("type") == "actions" and any(e.get("action_id") == "intern_approve"
                                                      for e in b.get("elements", [])) for b in m.blocks or [])]


def approval_id_of(card) -> str:
    for b in card.blocks:
        if b.get("type") == "actions":
            for e in b["elements"]:
                if e["action_id"] == "intern_approve":
                    return e["value"]
    raise AssertionError("no approve button")


async def mention_until_card(h: Harness, text: str = "fine-tune a small model on my dataset") -> tuple[str, str]:
    event = mention_event(text, user=REQUESTER)
    r = await h.sender.send_event(event)
    assert r.status == 200
    thread = event["ts"]
    await wait_until(lambda: cards(h.slack, thread), timeout=20)
    return thread, approval_id_of(cards(h.slack, thread)[0])


def click(h: Harness, action: str, approval: str, user: str, thread: str, team: str | None = None) -> dict:
    card = h.slack.posted(thread_ts=thread)[-1]
    return block_action(action, approval, user=user, team=team or h.slack.team_id, channel=card.channel,
                        message_ts=card.ts, thread_ts=thread)


async def test_mention_gets_an_approval_card_with_cost_and_script(harness: Harness) -> None:
    thread, approval = await mention_until_card(harness)
    card = cards(harness.slack, thread)[0]
    text = str(card.blocks)
    assert "a10g-large" in text and "2h" in text
    assert "$3.00" in text  # 1.50/h x 2h
    assert "SFTTrainer" in text  # the script is on the card
    assert card.thread_ts == thread
    assert jobs_state(harness.hub).created == []
    async with harness.proc.rt.db.session() as db:  # type: ignore[union-attr]
        a = await db.get(Approval, approval)
        assert a is not None and a.status == "pending" and a.requester == REQUESTER
        assert len(a.spec_sha256) == 64 and a.estimated_cost_usd == pytest.approx(3.0)
        kinds = (await db.execute(select(AuditEvent.kind))).scalars().all()
    assert "approval_requested" in kinds


async def test_duplicate_deliveries_are_handled_once(harness: Harness) -> None:
    mention, message = mention_and_message("train something", user=REQUESTER)
    first = await harness.sender.send_event(mention, event_id="Ev0DUP1")
    retry = await harness.sender.send_event(mention, event_id="Ev0DUP1", retry_num=1)
    twin = await harness.sender.send_event(message, event_id="Ev0DUP2")
    assert (first.status, retry.status, twin.status) == (200, 200, 200)
    thread = mention["ts"]
    await wait_until(lambda: cards(harness.slack, thread), timeout=20)
    await asyncio.sleep(0.5)
    assert len(cards(harness.slack, thread)) == 1
    assert await count(harness, Session) == 1
    assert await count(harness, Message, Message.role == "user") == 1
    assert await count(harness, WorkItem, WorkItem.kind == "message") == 1
    assert len([r for r in harness.llm.requests if r.path.endswith("/chat/completions")]) == 1


async def test_a_burst_with_redeliveries_inside_it_is_stored_once_each(harness: Harness) -> None:
    """Concurrent deliveries are written together; a retry of an event arriving in the same batch as
    the original, and the `message` twin of a mention, are still handled once."""
    harness.llm.rule = lambda req: text_reply("On it.")
    users = [f"U0BURST{i:02d}" for i in range(12)]
    mentions = [mention_and_message(f"task {i} for the burst", user=u) for i, u in enumerate(users)]
    sends = []
    for i, (mention, message) in enumerate(mentions):
        sends += [harness.sender.send_event(mention, event_id=f"Ev0BURST{i}"),
                  harness.sender.send_event(mention, event_id=f"Ev0BURST{i}", retry_num=1),
                  harness.sender.send_event(message, event_id=f"Ev0BURSTMSG{i}")]
    responses = await asyncio.gather(*sends)
    assert {r.status for r in responses} == {200}
    threads = [m["ts"] for m, _ in mentions]
    await wait_until(lambda: all("On it." in harness.slack.texts(thread_ts=t) for t in threads), timeout=30)
    assert await count(harness, Session) == len(users)
    assert await count(harness, Message, Message.role == "user") == len(users)
    assert await count(harness, WorkItem, WorkItem.kind == "message") == len(users)
    async with harness.proc.rt.db.session() as db:  # type: ignore[union-attr]
        started = dict((await db.execute(select(Session.thread, Session.started_by))).all())
    assert started == dict(zip(threads, users, strict=True))
    assert all(harness.slack.texts(thread_ts=t).count("On it.") == 1 for t in threads)


async def test_non_approver_and_requester_are_refused_privately(harness: Harness) -> None:
    thread, approval = await mention_until_card(harness)
    for user in (OTHER, REQUESTER):
        r = await harness.sender.send_interaction(click(harness, "intern_approve", approval, user, thread))
        assert r.status == 200
    await wait_until(lambda: len(harness.slack.ephemerals()) >= 2)
    refusals = {m.ephemeral_user: m.text for m in harness.slack.ephemerals()}
    assert "designated approvers" in refusals[OTHER]
    assert "self-approval is off" in refusals[REQUESTER]
    assert jobs_state(harness.hub).created == []
    async with harness.proc.rt.db.session() as db:  # type: ignore[union-attr]
        assert (await db.get(Approval, approval)).status == "pending"  # type: ignore[union-attr]
        refused = (await db.execute(select(AuditEvent).where(AuditEvent.kind == "approval_refused"))).scalars().all()
    assert {e.actor for e in refused} == {OTHER, REQUESTER}


async def test_approver_click_launches_one_job_and_agent_reports_when_it_completes(harness: Harness) -> None:
    thread, approval = await mention_until_card(harness)
    r = await harness.sender.send_interaction(click(harness, "intern_approve", approval, APPROVER, thread))
    assert r.status == 200
    jobs = jobs_state(harness.hub)
    await wait_until(lambda: len(jobs.created) == 1, timeout=20)
    spec = jobs.created[0]
    assert spec.flavor == "a10g-large" and spec.timeout_seconds == 7200
    assert "HF_TOKEN" in spec.secret_names
    job_id = spec.job_id
    await wait_until(lambda: any("launched" in t for t in harness.slack.texts(thread_ts=thread)))
    jobs.set_stage(job_id, "RUNNING")
    jobs.append_logs(job_id, "step 10 loss 1.23", "step 20 loss 0.98")
    await wait_until(lambda: any("is running" in t for t in harness.slack.texts(thread_ts=thread)))
    jobs.set_stage(job_id, "COMPLETED")
    await wait_until(lambda: any("All done" in t for t in harness.slack.texts(thread_ts=thread)), timeout=20)
    texts = harness.slack.texts(thread_ts=thread)
    assert any("completed" in t and job_id in t for t in texts)
    # the card was updated in place: no buttons, says who approved
    card = harness.slack.message(cards(harness.slack, thread)[0].channel, cards(harness.slack, thread)[0].ts) \
        if cards(harness.slack, thread) else None
    assert card is None  # no card with buttons remains
    async with harness.proc.rt.db.session() as db:  # type: ignore[union-attr]
        job = (await db.execute(select(Job))).scalar_one()
        assert job.stage == "COMPLETED" and job.actual_cost_usd is not None
        kinds = (await db.execute(select(AuditEvent.kind))).scalars().all()
    assert {"approval_decided", "job_launched", "job_finished"} <= set(kinds)
    assert len(jobs.created) == 1


async def test_a_click_that_lands_before_the_card_post_returns_still_updates_the_card(harness: Harness) -> None:
    harness.slack.delay_replies("chat.postMessage", 1.5)  # the card is visible before the app hears its ts
    thread, approval = await mention_until_card(harness)
    r = await harness.sender.send_interaction(click(harness, "intern_approve", approval, APPROVER, thread))
    assert r.status == 200
    await wait_until(lambda: len(jobs_state(harness.hub).created) == 1, timeout=20)
    await wait_until(lambda: not cards(harness.slack, thread), timeout=20)  # no card with buttons remains
    [card] = [m for m in harness.slack.posted(thread_ts=thread) if approval in str(m.blocks)]
    assert f"Approved by <@{APPROVER}>" in str(card.blocks)


async def test_a_card_edit_slack_refuses_is_tried_again_until_the_card_shows_the_decision(harness: Harness) -> None:
    thread, approval = await mention_until_card(harness)
    [card] = cards(harness.slack, thread)
    harness.slack.inject_error("chat.update", "internal_error", times=2, where={"ts": card.ts})
    r = await harness.sender.send_interaction(click(harness, "intern_approve", approval, APPROVER, thread))
    assert r.status == 200
    await wait_until(lambda: len(jobs_state(harness.hub).created) == 1, timeout=20)
    await wait_until(lambda: not cards(harness.slack, thread), timeout=30)  # redrawn on the third try
    assert f"Approved by <@{APPROVER}>" in str(harness.slack.message(card.channel, card.ts).blocks)
    tries = [c for c in harness.slack.method_calls("chat.update") if c.get("ts") == card.ts]
    assert len(tries) >= 3, tries


async def test_a_card_whose_post_was_never_recorded_is_found_through_the_click(harness: Harness) -> None:
    """The process that posted the card died before storing where it is: the click names the message."""
    thread, approval = await mention_until_card(harness)
    [card] = cards(harness.slack, thread)
    assert harness.proc is not None
    await wait_until(lambda: count(harness, Approval, Approval.id == approval, Approval.card_ref.is_not(None)))
    async with harness.proc.rt.db.transaction() as db:
        await db.execute(update(Approval).where(Approval.id == approval).values(card_ref=None))
    payload = click(harness, "intern_approve", approval, APPROVER, thread)
    payload["container"]["message_ts"] = payload["message"]["ts"] = card.ts
    assert (await harness.sender.send_interaction(payload)).status == 200
    await wait_until(lambda: len(jobs_state(harness.hub).created) == 1, timeout=20)
    await wait_until(lambda: not cards(harness.slack, thread), timeout=20)
    assert f"Approved by <@{APPROVER}>" in str(harness.slack.message(card.channel, card.ts).blocks)
    async with harness.proc.rt.db.session() as db:
        a = await db.get(Approval, approval)
    assert a is not None and a.card_ref is not None and a.card_ref["id"] == card.ts


async def test_a_card_that_never_reached_the_thread_is_posted_again_once(harness: Harness) -> None:
    """The process that made the request stopped before its card was posted (here: the card is taken
    out of the thread and its record with it): a sweep posts it, once, and it works."""
    thread, approval = await mention_until_card(harness)
    [lost] = cards(harness.slack, thread)
    assert harness.proc is not None
    await wait_until(lambda: count(harness, Approval, Approval.id == approval, Approval.card_ref.is_not(None)))
    harness.slack.message(lost.channel, lost.ts).deleted = True
    async with harness.proc.rt.db.transaction() as db:
        await db.execute(update(Approval).where(Approval.id == approval).values(
            card_ref=None, created_at=datetime.now(UTC) - timedelta(minutes=5)))
    await wait_until(lambda: cards(harness.slack, thread), timeout=20)
    await asyncio.sleep(1.0)  # more sweeps: still one card
    [card] = cards(harness.slack, thread)
    assert card.ts != lost.ts and approval in str(card.blocks)
    assert "Posted again: the first post of this card did not reach the thread." in str(card.blocks)
    payload = click(harness, "intern_approve", approval, APPROVER, thread)
    payload["container"]["message_ts"] = payload["message"]["ts"] = card.ts
    await harness.sender.send_interaction(payload)
    await wait_until(lambda: len(jobs_state(harness.hub).created) == 1, timeout=20)
    await wait_until(lambda: not cards(harness.slack, thread), timeout=20)
    assert f"Approved by <@{APPROVER}>" in str(harness.slack.message(card.channel, card.ts).blocks)


async def test_twenty_concurrent_approver_clicks_launch_one_job(harness: Harness) -> None:
    thread, approval = await mention_until_card(harness)
    payloads = [click(harness, "intern_approve", approval, APPROVER, thread) for _ in range(20)]
    for i, p in enumerate(payloads):
        p["actions"][0]["action_ts"] = f"1700000000.{i:06d}"
    results = await asyncio.gather(*(harness.sender.send_interaction(p) for p in payloads))
    assert all(r.status == 200 for r in results)
    jobs = jobs_state(harness.hub)
    await wait_until(lambda: len(jobs.created) == 1, timeout=20)
    await asyncio.sleep(1.0)
    assert len(jobs.created) == 1
    assert await count(harness, WorkItem, WorkItem.kind == "resume") == 1


async def test_thread_reply_continues_the_session(harness: Harness) -> None:
    thread, _ = await mention_until_card(harness)
    reply = message_event("also log to trackio please", user=REQUESTER, thread_ts=thread)
    r = await harness.sender.send_event(reply)
    assert r.status == 200
    await wait_until(lambda: count(harness, Message, Message.role == "user"), timeout=5)
    assert await count(harness, Session) == 1
    assert await count(harness, Message, Message.role == "user") == 2


async def test_stop_cancels_the_running_job(harness: Harness) -> None:
    thread, approval = await mention_until_card(harness)
    await harness.sender.send_interaction(click(harness, "intern_approve", approval, APPROVER, thread))
    jobs = jobs_state(harness.hub)
    await wait_until(lambda: len(jobs.created) == 1, timeout=20)
    job_id = jobs.created[0].job_id
    jobs.set_stage(job_id, "RUNNING")
    await wait_until(lambda: count(harness, Job, Job.hf_job_id == job_id))
    await harness.sender.send_event(message_event("stop", user=REQUESTER, thread_ts=thread))
    await wait_until(lambda: jobs.job(job_id).stage == "CANCELED", timeout=20)
    await wait_until(lambda: any("Stopped by" in t for t in harness.slack.texts(thread_ts=thread)))
    # One terminal record of the cancellation (from the job's end), one record of who asked for it.
    await wait_until(lambda: count(harness, AuditEvent, AuditEvent.kind == "job_cancelled"), timeout=20)
    await asyncio.sleep(0.5)
    assert await count(harness, AuditEvent, AuditEvent.kind == "job_cancelled") == 1
    assert await count(harness, AuditEvent, AuditEvent.kind == "job_cancel_requested",
                       AuditEvent.actor == REQUESTER) == 1


async def test_continuing_in_a_new_session_closes_the_old_sessions_cards(harness: Harness) -> None:
    thread, approval = await mention_until_card(harness)
    r = await harness.sender.send_event(message_event("new session", user=REQUESTER, thread_ts=thread))
    assert r.status == 200
    await wait_until(lambda: count(harness, Approval, Approval.id == approval, Approval.status == "cancelled"),
                     timeout=20)
    assert await count(harness, Session) == 2
    assert await count(harness, Session, Session.active.is_(True)) == 1
    # The card in the thread no longer offers buttons and says why.
    card = next(m for m in harness.slack.posted(thread_ts=thread) if approval in str(m.blocks))
    await wait_until(lambda: "intern_approve" not in str(harness.slack.message(card.channel, card.ts).blocks))
    assert "continued in a new session" in str(harness.slack.message(card.channel, card.ts).blocks)
    # A late click on the old card changes nothing.
    await harness.sender.send_interaction(block_action("intern_approve", approval, user=APPROVER,
                                                       team=harness.slack.team_id, channel=card.channel,
                                                       message_ts=card.ts, thread_ts=thread))
    await asyncio.sleep(0.5)
    assert jobs_state(harness.hub).created == []


async def test_invalid_signature_is_rejected_and_nothing_is_stored(harness: Harness) -> None:
    event = mention_event("hello", user=REQUESTER)
    import json

    from intern.standins.slack import event_callback

    body = json.dumps(event_callback(event)).encode()
    r = await harness.sender.post(body, "application/json", signature="v0=" + "0" * 64)
    assert r.status == 401
    assert await count(harness, InboundEvent) == 0
    assert await count(harness, Session) == 0


async def test_signed_garbage_gets_400(harness: Harness) -> None:
    r = await harness.sender.post(b"{not json", "application/json")
    assert r.status == 400
    r = await harness.sender.post(b"payload=%7Bbroken", "application/x-www-form-urlencoded")
    assert r.status == 400
    assert await count(harness, Session) == 0


async def test_large_and_non_ascii_messages_are_kept(harness: Harness) -> None:
    from intern.standins.llm import text_reply

    harness.llm.rule = lambda req: text_reply("Reçu 👍 — 受け取りました")
    text = "données d'entraînement 日本語 🚀 " + ("x" * 50_000)
    event = mention_event(text, user=REQUESTER)
    assert (await harness.sender.send_event(event)).status == 200
    await wait_until(lambda: any("受け取りました" in t for t in harness.slack.texts(thread_ts=event["ts"])))
    async with harness.proc.rt.db.session() as db:  # type: ignore[union-attr]
        stored = (await db.execute(select(Message).where(Message.role == "user"))).scalar_one()
    assert "日本語 🚀" in stored.payload["content"] and len(stored.payload["content"]) > 50_000


async def test_unknown_or_tampered_approval_id_is_refused(harness: Harness) -> None:
    thread, approval = await mention_until_card(harness)
    tampered = approval[:-1] + ("0" if approval[-1] != "0" else "1")
    for value in (tampered, "not-a-uuid", "x" * 5000):
        await harness.sender.send_interaction(click(harness, "intern_approve", value, APPROVER, thread))
    await wait_until(lambda: len(harness.slack.ephemerals(user=APPROVER)) >= 3)
    assert all("unknown" in m.text for m in harness.slack.ephemerals(user=APPROVER))
    assert jobs_state(harness.hub).created == []


async def test_click_from_another_workspace_is_refused(harness: Harness) -> None:
    thread, approval = await mention_until_card(harness)
    await harness.sender.send_interaction(click(harness, "intern_approve", approval, APPROVER, thread, team="T0OTHER"))
    await wait_until(lambda: harness.slack.ephemerals(user=APPROVER))
    assert "another workspace" in harness.slack.ephemerals(user=APPROVER)[0].text
    assert jobs_state(harness.hub).created == []


async def test_second_decision_says_already_approved(harness: Harness) -> None:
    thread, approval = await mention_until_card(harness)
    await harness.sender.send_interaction(click(harness, "intern_approve", approval, APPROVER, thread))
    await wait_until(lambda: len(jobs_state(harness.hub).created) == 1, timeout=20)
    await harness.sender.send_interaction(click(harness, "intern_deny", approval, APPROVER, thread))
    await wait_until(lambda: harness.slack.ephemerals(user=APPROVER))
    assert "Already approved by" in harness.slack.ephemerals(user=APPROVER)[-1].text


async def test_hub_refusing_the_launch_is_told_and_the_reservation_is_released(harness: Harness) -> None:
    from intern.bot.models import SpendEntry

    thread, approval = await mention_until_card(harness)
    jobs = jobs_state(harness.hub)
    jobs.fail_next(1, status=403, method="POST")
    await harness.sender.send_interaction(click(harness, "intern_approve", approval, APPROVER, thread))
    await wait_until(lambda: any("not launched" in t for t in harness.slack.texts(thread_ts=thread)), timeout=20)
    assert jobs.created == []
    async with harness.proc.rt.db.session() as db:  # type: ignore[union-attr]
        entry = (await db.execute(select(SpendEntry).where(SpendEntry.ref == approval))).scalar_one()
        kinds = (await db.execute(select(AuditEvent.kind))).scalars().all()
    assert entry.amount_usd == 0.0 and entry.final
    assert "launch_failed" in kinds


async def test_a_long_script_is_cut_on_the_card_and_attached_in_full(harness: Harness) -> None:
    long_script = "\n".join(f"print('line {i:05d}')  # padding to make the script long" for i in range(400))
    long_script += "\nfrom trl import SFTConfig\nSFTConfig(output_dir='o', push_to_hub=True, hub_model_id='t/m')\n"
    harness.llm.rule = job_rule(script=long_script)
    thread, approval = await mention_until_card(harness)
    card = cards(harness.slack, thread)[0]
    body = next(b["text"]["text"] for b in card.blocks if b.get("type") == "section" and "```" in b.get("text", {}).get("text", ""))
    assert len(body) <= 3000 and "cut" in body
    assert "line 00000" in body and "line 00399" in body  # head and tail
    await wait_until(lambda: any(f.completed for f in harness.slack.files.values()))
    uploaded = next(f for f in harness.slack.files.values() if f.completed)
    assert uploaded.thread_ts == thread and uploaded.content is not None
    assert uploaded.content.decode() == long_script
    async with harness.proc.rt.db.session() as db:  # type: ignore[union-attr]
        a = await db.get(Approval, approval)
    import hashlib
    import json

    expected = hashlib.sha256(json.dumps({"tool": "hf_jobs", "args": a.spec}, sort_keys=True, separators=(",", ":"),  # type: ignore[union-attr]
                                         ensure_ascii=False).encode()).hexdigest()
    assert a.spec["script"] == long_script and a.spec_sha256 == expected  # type: ignore[union-attr]


async def slash(h: Harness, text: str, user: str = REQUESTER) -> dict:
    r = await h.sender.send_slash_command(slash_command("/intern", text, user_id=user, team_id=h.slack.team_id,
                                                        channel_id="C0GENERAL"))
    assert r.status == 200, r.text
    return r.json() if r.text else {}


async def test_slash_ask_opens_a_thread_that_becomes_the_session(harness: Harness) -> None:
    answer = await slash(harness, "ask fine-tune a small model on my dataset")
    assert not answer.get("text")  # the thread is the answer
    root = next(m for m in harness.slack.posted(channel="C0GENERAL") if "asked Intern" in m.text)
    assert f"<@{REQUESTER}>" in root.text and root.thread_ts is None
    await wait_until(lambda: cards(harness.slack, root.ts), timeout=20)
    assert await count(harness, Session, Session.thread == root.ts, Session.started_by == REQUESTER) == 1
    # A reply in that thread continues the same session.
    r = await harness.sender.send_event(message_event("use lora", user=REQUESTER, thread_ts=root.ts,
                                                      channel="C0GENERAL"))
    assert r.status == 200

    async def both_stored() -> bool:
        return await count(harness, Message, Message.role == "user", Message.author == REQUESTER) == 2

    await wait_until(both_stored)
    assert await count(harness, Session) == 1


async def test_slash_status_help_and_refusals(harness: Harness) -> None:
    status = await slash(harness, "status")
    assert status["response_type"] == "in_channel" and "Intern status" in status["text"]
    helptext = await slash(harness, "")
    assert "/intern ask" in helptext["text"]
    refused = await slash(harness, "policy budget 500", user=OTHER)
    assert refused["response_type"] == "ephemeral" and "admin" in refused["text"].lower()
    empty = await slash(harness, "ask")
    assert "Tell me the task" in empty["text"]
    assert await count(harness, Session) == 0


async def test_slash_ask_in_a_channel_without_the_bot_says_how_to_fix_it(harness: Harness) -> None:
    harness.slack.inject_error("chat.postMessage", "not_in_channel")
    answer = await slash(harness, "ask train something")
    assert "not_in_channel" in answer["text"] and "/invite @intern" in answer["text"]
    assert await count(harness, Session) == 0
