"""Commands and bad input: every answer is private and clear, and bad input changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from intern.bot.models import ChannelPolicy, InboundEvent, Session
from intern.standins.hub_jobs import jobs_state
from tests.discord.harness import DiscordHarness, ask_until_card, custom_id
from tests.e2e.harness import wait_until


async def sessions(h: DiscordHarness) -> int:
    async with h.rt.db.session() as db:
        return int((await db.execute(select(func.count()).select_from(Session))).scalar_one())


async def test_status_budget_and_policy_in_a_thread_speak_for_the_parent_channel(harness: DiscordHarness) -> None:
    d, p = harness.discord, harness.people
    thread, _ = await ask_until_card(harness)
    [status] = await d.answered(await d.slash(p.bystander, "status", channel=thread))
    assert status.ephemeral_to == p.bystander
    assert "**Intern status for this channel**" in status.content  # Slack's *bold* reads as bold here
    assert "Sessions: 1 active" in status.content and "Pending approvals: 1" in status.content
    [budget] = await d.answered(await d.slash(p.bystander, "budget", channel=thread))
    assert "Spend in" in budget.content

    [changed] = await d.answered(await d.slash(p.approver, "policy", channel=thread, words="budget 250"))
    assert "Policy updated" in changed.content
    async with harness.rt.db.session() as db:
        row = (await db.execute(select(ChannelPolicy))).scalar_one()
    assert (row.platform, row.workspace, row.channel) == ("discord", d.guild_id, d.channel_id)
    assert row.monthly_budget_usd == 250
    [shown] = await d.answered(await d.slash(p.bystander, "policy"))
    assert "Monthly budget: $250.00" in shown.content


async def test_policy_changes_by_a_non_administrator_are_refused_privately(harness: DiscordHarness) -> None:
    d, p = harness.discord, harness.people
    [answer] = await d.answered(await d.slash(p.bystander, "policy", words="self-approval on"))
    assert answer.ephemeral_to == p.bystander and "Only administrators" in answer.content
    [answer] = await d.answered(await d.slash(p.approver, "policy", words="approvers add everyone"))
    assert "not a user, user group or role mention" in answer.content
    assert not d.posted(d.channel_id)  # nothing announced
    async with harness.rt.db.session() as db:
        assert (await db.execute(select(ChannelPolicy))).scalars().all() == []


async def test_commands_in_direct_messages_get_a_clear_private_answer(harness: DiscordHarness) -> None:
    d, p = harness.discord, harness.people
    for sub, options in (("ask", {"task": "train a model"}), ("status", {}), ("stop", {}),
                         ("policy", {"words": "budget 5"})):
        interaction = await d.slash(p.requester, sub, dm=True, **options)
        [answer] = await d.answered(interaction)
        assert answer.ephemeral_to == p.requester and "not in direct messages" in answer.content
    assert d.threads() == []
    assert await sessions(harness) == 0


async def test_no_permission_to_open_a_thread_is_explained_and_starts_nothing(harness: DiscordHarness) -> None:
    d, p = harness.discord, harness.people
    d.forbid_threads(d.channel_id)
    [answer] = await d.answered(await d.slash(p.requester, "ask", task="train a model"))
    assert answer.ephemeral_to == p.requester and "Create Public Threads" in answer.content
    assert d.threads() == [] and d.posted() == []
    assert await sessions(harness) == 0
    async with harness.rt.db.session() as db:
        assert (await db.execute(select(InboundEvent))).scalars().all() == []


async def test_unknown_and_tampered_buttons_are_refused_privately(harness: DiscordHarness) -> None:
    d, p = harness.discord, harness.people
    thread, card = await ask_until_card(harness)
    approval = custom_id(card, "approve").rsplit(":", 1)[1]
    deleted = approval[:-1] + ("0" if approval[-1] != "0" else "1")
    old = d.add_bot_message(thread, "from an older version", [{"type": 1, "components": [
        {"type": 2, "style": 1, "label": "Retry", "custom_id": "legacy:retry:42"},
        {"type": 2, "style": 3, "label": "Approve", "custom_id": f"intern:approve:{deleted}"},
        {"type": 2, "style": 3, "label": "Approve", "custom_id": "intern:approve:not-a-uuid"},
        {"type": 2, "style": 4, "label": "Stop", "custom_id": "intern:stop:not-a-session"}]}])
    [answer] = await d.answered(await d.click(old, "legacy:retry:42", p.approver))
    assert answer.ephemeral_to == p.approver and "not one of Intern's" in answer.content
    for cid in (f"intern:approve:{deleted}", "intern:approve:not-a-uuid"):
        [answer] = await d.answered(await d.click(old, cid, p.approver))
        assert answer.ephemeral_to == p.approver and "unknown" in answer.content
    [answer] = await d.answered(await d.click(old, "intern:stop:not-a-session", p.approver))
    assert "does not belong to a known session" in answer.content
    assert jobs_state(harness.hub).created == []
    assert d.message(card.id).custom_ids() == card.custom_ids()


async def test_the_bots_own_account_never_decides(harness: DiscordHarness) -> None:
    d = harness.discord
    _, card = await ask_until_card(harness)
    pressed = await d.click(card, custom_id(card, "approve"), d.bot_user_id)
    [answer] = await d.answered(await d.click(card, custom_id(card, "deny"), harness.people.bystander))
    assert "designated approvers" in answer.content  # handled after the bot's press was dropped
    assert pressed.callback_type is None and d.answers(pressed) == []
    async with harness.rt.db.session() as db:
        from intern.bot.models import ApprovalDecision

        assert (await db.execute(select(ApprovalDecision))).scalars().all() == []


async def test_two_decisions_at_once_apply_one_and_tell_the_other_who_decided(harness: DiscordHarness) -> None:
    d, p = harness.discord, harness.people
    _, card = await ask_until_card(harness)
    deny = await d.click(card, custom_id(card, "deny"), p.approver)
    approve = await d.click(card, custom_id(card, "approve"), p.approver)  # before the card edit landed
    texts = [(await d.answered(x))[0].content for x in (deny, approve)]
    assert len([t for t in texts if t.startswith(("Approved", "Denied"))]) == 1
    assert len([t for t in texts if t.startswith(("Already approved by", "Already denied by"))]) == 1
    approved = texts[1].startswith("Approved")
    await wait_until(lambda: len(jobs_state(harness.hub).created) == int(approved), timeout=20)


async def test_a_press_on_a_stale_view_of_a_decided_card_says_who_decided(harness: DiscordHarness) -> None:
    d, p = harness.discord, harness.people
    _, card = await ask_until_card(harness)
    approve = custom_id(card, "approve")
    [denied] = await d.answered(await d.click(card, custom_id(card, "deny"), p.approver))
    assert denied.content.startswith("Denied")
    await wait_until(lambda: not d.message(card.id).custom_ids())
    # The presser's client still shows the buttons; Discord sends the card as it is now, without them.
    [late] = await d.answered(await d.click(card, approve, p.approver))
    assert late.ephemeral_to == p.approver and f"Already denied by <@{p.approver}>" in late.content
    assert jobs_state(harness.hub).created == []
