"""`/intern ask` opens a public thread that becomes a persisted session; its approval card survives a
restart; refusals are private; the session stops from the command and from the button."""

from __future__ import annotations

from sqlalchemy import func, select, update

from intern.bot.models import Approval, AuditEvent, Job, Message, Session
from intern.standins.hub_jobs import jobs_state
from intern.standins.llm import text_reply
from tests.discord.harness import DiscordHarness, ask_until_card, cards, custom_id
from tests.e2e.harness import wait_until


async def count(h: DiscordHarness, model: type, *where: object) -> int:
    async with h.rt.db.session() as db:
        return int((await db.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


async def test_ask_opens_a_public_thread_bound_to_a_session_with_an_approval_card(harness: DiscordHarness) -> None:
    d, p = harness.discord, harness.people
    thread, card = await ask_until_card(harness, "fine-tune a small model on my dataset")
    t = d.channels[thread]
    assert t["type"] == 11 and t["parent_id"] == d.channel_id
    assert t["name"] == "fine-tune a small model on my dataset"
    first = d.posted(thread)[0]
    assert f"<@{p.requester}>" in first.content and "fine-tune a small model" in first.content
    [ask] = [i for i in d.interactions.values() if i.kind == 2]
    [answer] = d.answers(ask)
    assert answer.ephemeral_to == p.requester and f"<#{thread}>" in answer.content

    embed = card.embeds[0]
    assert embed["title"].startswith("Approval needed")
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Estimated max cost"] == "$3.00"  # a10g-large at $1.50/h for 2h
    assert "SFTTrainer" in embed["description"]
    assert [b["label"] for b in card.buttons()] == ["Approve", "Deny"]
    async with harness.rt.db.session() as db:
        s = (await db.execute(select(Session))).scalar_one()
        a = (await db.execute(select(Approval))).scalar_one()
    assert (s.platform, s.workspace, s.channel, s.thread) == ("discord", d.guild_id, d.channel_id, thread)
    assert s.started_by == p.requester
    assert custom_id(card, "approve") == f"intern:approve:{a.id}"
    assert custom_id(card, "deny") == f"intern:deny:{a.id}"
    assert a.card_ref == {"platform": "discord", "channel": thread, "id": card.id, "thread": thread}
    assert jobs_state(harness.hub).created == []


async def test_refusal_is_private_and_after_a_restart_the_approver_launches_one_job(harness: DiscordHarness) -> None:
    d, p = harness.discord, harness.people
    thread, card = await ask_until_card(harness)
    approve = custom_id(card, "approve")
    for user, why in ((p.bystander, "designated approvers"), (p.requester, "self-approval is off")):
        [answer] = await d.answered(await d.click(card, approve, user))
        assert answer.ephemeral_to == user and why in answer.content
    assert d.message(card.id).custom_ids() == card.custom_ids()  # still pending, buttons intact
    public_before = len(d.posted(thread))

    await harness.restart()

    [answer] = await d.answered(await d.click(d.message(card.id), approve, harness.people.approver))
    assert answer.ephemeral_to == p.approver and "Approved" in answer.content
    jobs = jobs_state(harness.hub)
    await wait_until(lambda: len(jobs.created) == 1, timeout=20)
    await wait_until(lambda: not d.message(card.id).custom_ids())
    decided = d.message(card.id)
    assert decided.embeds[0]["title"].startswith(f"Approved by <@{p.approver}>")
    assert not cards(d, thread)
    await wait_until(lambda: any("launched" in t for t in d.texts(thread)))
    assert len(d.posted(thread)) > public_before
    assert len(jobs.created) == 1 and jobs.created[0].flavor == "a10g-large"
    async with harness.rt.db.session() as db:
        refused = (await db.execute(select(AuditEvent).where(AuditEvent.kind == "approval_refused"))).scalars().all()
    assert {e.actor for e in refused} == {p.bystander, p.requester}


async def test_a_card_whose_post_was_never_recorded_is_found_through_the_click(harness: DiscordHarness) -> None:
    """The process that posted the card died before storing where it is: the click names the message."""
    d, p = harness.discord, harness.people
    thread, card = await ask_until_card(harness)
    await wait_until(lambda: count(harness, Approval, Approval.card_ref.is_not(None)))
    async with harness.rt.db.transaction() as db:
        await db.execute(update(Approval).values(card_ref=None))
    [answer] = await d.answered(await d.click(card, custom_id(card, "approve"), p.approver))
    assert "Approved" in answer.content
    await wait_until(lambda: len(jobs_state(harness.hub).created) == 1, timeout=20)
    await wait_until(lambda: not d.message(card.id).custom_ids())
    assert d.message(card.id).embeds[0]["title"].startswith(f"Approved by <@{p.approver}>")  # type: ignore[union-attr]
    assert not cards(d, thread)


async def test_a_role_named_in_the_policy_can_approve(harness: DiscordHarness) -> None:
    d, p = harness.discord, harness.people
    change = await d.slash(p.approver, "policy", words=f"approvers add <@&{p.approver_role}>")
    [answer] = await d.answered(change)
    assert answer.ephemeral_to == p.approver and "Policy updated" in answer.content
    await wait_until(lambda: any(f"<@&{p.approver_role}>" in t and "Policy updated" in t
                                 for t in d.texts(d.channel_id)))

    _, card = await ask_until_card(harness)
    [answer] = await d.answered(await d.click(card, custom_id(card, "approve"), p.bystander))
    assert "designated approvers" in answer.content
    [answer] = await d.answered(await d.click(card, custom_id(card, "approve"), p.role_approver))
    assert "Approved" in answer.content
    await wait_until(lambda: len(jobs_state(harness.hub).created) == 1, timeout=20)
    async with harness.rt.db.session() as db:
        a = (await db.execute(select(Approval))).scalar_one()
    assert a.status == "approved" and a.decided_by == p.role_approver


async def launched_job(h: DiscordHarness) -> tuple[str, str]:
    d = h.discord
    thread, card = await ask_until_card(h)
    await d.answered(await d.click(card, custom_id(card, "approve"), h.people.approver))
    jobs = jobs_state(h.hub)
    await wait_until(lambda: len(jobs.created) == 1, timeout=20)
    job_id = jobs.created[0].job_id
    jobs.set_stage(job_id, "RUNNING")
    await wait_until(lambda: count(h, Job, Job.hf_job_id == job_id))
    return thread, job_id


async def test_intern_stop_in_the_thread_cancels_the_job_and_refuses_bystanders(harness: DiscordHarness) -> None:
    d, p = harness.discord, harness.people
    thread, job_id = await launched_job(harness)
    [answer] = await d.answered(await d.slash(p.requester, "stop"))  # in the parent channel
    assert "inside the session's thread" in answer.content
    [answer] = await d.answered(await d.slash(p.bystander, "stop", channel=thread))
    assert answer.ephemeral_to == p.bystander and "Only the person who started" in answer.content
    assert jobs_state(harness.hub).job(job_id).stage == "RUNNING"

    [answer] = await d.answered(await d.slash(p.requester, "stop", channel=thread))
    assert answer.ephemeral_to == p.requester and "Stopping" in answer.content
    await wait_until(lambda: jobs_state(harness.hub).job(job_id).stage == "CANCELED", timeout=20)
    await wait_until(lambda: any(f"Stopped by <@{p.requester}>" in t for t in d.texts(thread)))


async def test_the_stop_button_on_the_status_card_stops_the_session(harness: DiscordHarness) -> None:
    d, p = harness.discord, harness.people
    thread, card = await ask_until_card(harness)
    [status] = cards(d, thread, "stop")
    stop = custom_id(status, "stop")
    async with harness.rt.db.session() as db:
        session_id = (await db.execute(select(Session.id))).scalar_one()
    assert stop == f"intern:stop:{session_id}"
    [answer] = await d.answered(await d.click(status, stop, p.bystander))
    assert "Only the person who started" in answer.content

    [answer] = await d.answered(await d.click(status, stop, p.requester))
    assert "Stopping" in answer.content
    await wait_until(lambda: any(f"Stopped by <@{p.requester}>" in t for t in d.texts(thread)), timeout=20)
    await wait_until(lambda: not d.message(card.id).custom_ids())  # the pending card was cancelled
    assert d.message(card.id).embeds[0]["title"].startswith("Cancelled")
    assert jobs_state(harness.hub).created == []


async def test_replies_in_the_thread_continue_the_session_and_other_messages_are_ignored(
        harness: DiscordHarness) -> None:
    d, p = harness.discord, harness.people
    thread, _ = await ask_until_card(harness)
    await d.say(d.channel_id, p.requester, "just chatting in the channel")
    await d.say(thread, p.bystander, "also log to trackio please")
    await wait_until(lambda: _user_messages_at_least(harness, 2), timeout=10)
    async with harness.rt.db.session() as db:
        texts = (await db.execute(select(Message.payload).where(Message.role == "user")
                                  .order_by(Message.seq))).scalars().all()
    assert len(texts) == 2 and "trackio" in texts[1]["content"] and f"<@{p.bystander}>" in texts[1]["content"]
    assert await count(harness, Session) == 1


async def _user_messages_at_least(h: DiscordHarness, n: int) -> bool:
    return await count(h, Message, Message.role == "user") >= n


async def test_an_archived_thread_continues_after_a_restart(harness: DiscordHarness) -> None:
    d, p = harness.discord, harness.people
    thread, _ = await ask_until_card(harness)
    d.archive(thread)
    await harness.restart()
    await d.say(thread, p.requester, "one more thing: use bf16")
    await wait_until(lambda: _user_messages_at_least(harness, 2), timeout=10)
    assert await count(harness, Session) == 1


async def test_long_replies_are_split_without_breaking_code_blocks(harness: DiscordHarness) -> None:
    d = harness.discord
    code = "\n".join(f"print('line {i}')" for i in range(300))
    reply = "Here is the script:\n```python\n" + code + "\n```\nDone."
    harness.llm.rule = lambda request: text_reply(reply)  # type: ignore[attr-defined]
    ask = await d.slash(harness.people.requester, "ask", task="write me a long script")
    await d.answered(ask)
    thread = d.threads()[0]["id"]
    await wait_until(lambda: any("Done." in t for t in d.texts(thread)), timeout=20)
    pieces = [m.content for m in d.posted(thread) if not m.embeds][1:]  # after the task message
    assert len(pieces) >= 3 and all(len(x) <= 2000 for x in pieces)
    assert all(x.count("```") % 2 == 0 for x in pieces)
    joined = "".join(pieces)
    assert all(f"print('line {i}')" in joined for i in (0, 150, 299))


async def test_a_long_script_shows_head_and_tail_and_is_attached_in_full(harness: DiscordHarness) -> None:
    from tests.e2e.harness import job_rule

    body = "\n".join(f"step_{i:05d} = train(step={i})  # push_to_hub=True" for i in range(400))
    harness.llm.rule = job_rule(script="from trl import SFTTrainer\n" + body)  # type: ignore[attr-defined]
    _, card = await ask_until_card(harness)
    embed = card.embeds[0]
    assert len(embed["description"]) <= 4096
    assert "step_00000" in embed["description"] and "step_00399" in embed["description"]
    assert "step_00200" not in embed["description"] and "cut" in embed["description"]
    [attachment] = card.data["attachments"]
    assert attachment["filename"] == "full_script.txt"
    assert card.files["full_script.txt"].decode() == "from trl import SFTTrainer\n" + body


async def test_a_refused_stop_typed_in_the_thread_is_told_by_direct_message(harness: DiscordHarness) -> None:
    d, p = harness.discord, harness.people
    thread, card = await ask_until_card(harness)
    await d.say(thread, p.bystander, "stop")
    await wait_until(lambda: [c for c in d.channels.values() if c["type"] == 1], timeout=10)
    [dm] = [c for c in d.channels.values() if c["type"] == 1]
    assert dm["recipients"][0]["id"] == p.bystander
    await wait_until(lambda: d.posted(dm["id"]))
    assert "Only the person who started" in d.posted(dm["id"])[0].content

    d.closed_dms.add(p.bystander)  # then the refusal is said in the thread, to them
    await d.say(thread, p.bystander, "STOP")
    await wait_until(lambda: any(t.startswith(f"<@{p.bystander}> Only the person who started")
                                 for t in d.texts(thread)), timeout=10)
    assert d.message(card.id).custom_ids() == card.custom_ids()  # nothing was stopped


async def test_a_member_of_an_approver_role_may_stop_by_typing_stop(harness: DiscordHarness) -> None:
    d, p = harness.discord, harness.people
    await d.answered(await d.slash(p.approver, "policy", words=f"approvers add <@&{p.approver_role}>"))
    thread, card = await ask_until_card(harness)
    await d.say(thread, p.role_approver, "stop")  # the role comes with the message, not from a member list
    await wait_until(lambda: any(f"Stopped by <@{p.role_approver}>" in t for t in d.texts(thread)), timeout=20)
    await wait_until(lambda: not d.message(card.id).custom_ids())
    assert [c for c in d.channels.values() if c["type"] == 1] == []  # no refusal was sent
