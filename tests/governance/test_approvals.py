"""The approval machinery end to end: N of M, denial, self-approval, budgets, auto-approve, caps,
schedules and Hub writes, expiry, superseding, and where the money goes. Every click is a signed Slack
request; every job a call the Hub stand-in records."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from intern.agent.tools.base import ApprovalInfo, ApprovalRequest, spec_hash
from intern.bot.approvals import Gate, now
from intern.bot.inbox import enqueue
from intern.bot.models import Approval, ApprovalDecision, Job, Session, SpendEntry
from intern.standins.hub_jobs import jobs_state
from intern.standins.hub_repos import repo_store
from tests.e2e.harness import Harness, wait_until
from tests.governance.conftest import StartBot
from tests.governance.helpers import (
    ADMIN,
    APPROVER_1,
    APPROVER_2,
    APPROVER_3,
    REQUESTER,
    approval,
    approval_id_in,
    audit_events,
    button_value,
    card_of,
    card_text,
    click,
    command,
    count,
    first_card,
    launch_args,
    pending_cards,
    private_reply,
    rt,
    start_task,
    tool_rule,
)


async def set_policy(h: Harness, *words: str) -> None:
    for w in words:
        answer = await command(h, f"policy {w}", ADMIN)
        assert answer.public, (w, answer.text)


async def card_reads(h: Harness, approval_id: str, text: str, timeout: float = 10) -> str:
    await wait_until(lambda: text in card_text(card_of(h, approval_id)), timeout=timeout)
    return card_text(card_of(h, approval_id))


def launched(h: Harness) -> int:
    return len(jobs_state(h.hub).created)


async def new_card(h: Harness, user: str = REQUESTER, text: str = "fine-tune a small model") -> tuple[str, str]:
    thread = await start_task(h, text, user=user)
    aid = approval_id_in(await first_card(h, thread))
    assert aid is not None
    return thread, aid


async def test_n_of_m_counts_each_approver_once_and_the_card_shows_who(bot: Harness) -> None:
    await set_policy(bot, f"approvers add <@{APPROVER_1}> <@{APPROVER_2}> <@{APPROVER_3}>", "approvals-required 2")
    thread, aid = await new_card(bot)
    assert "0 of 2 (none yet)" in card_text(card_of(bot, aid))

    await click(bot, "intern_approve", aid, APPROVER_1, thread)
    await card_reads(bot, aid, f"1 of 2 (<@{APPROVER_1}>)")
    assert button_value(card_of(bot, aid)) == aid  # still open

    await click(bot, "intern_approve", aid, APPROVER_1, thread)  # a second click by the same approver
    assert "already recorded" in await private_reply(bot, APPROVER_1)
    await click(bot, "intern_deny", aid, APPROVER_1, thread)  # and a change of mind
    assert "already decided" in await private_reply(bot, APPROVER_1, after=1)
    assert (await approval(bot, aid)).status == "pending" and launched(bot) == 0

    await click(bot, "intern_approve", aid, APPROVER_2, thread)
    await wait_until(lambda: launched(bot) == 1, timeout=20)
    text = await card_reads(bot, aid, "Approved by")
    assert f"Approved by <@{APPROVER_1}>, <@{APPROVER_2}>" in text
    assert button_value(card_of(bot, aid)) is None
    assert await count(bot, ApprovalDecision, ApprovalDecision.approval_id == aid) == 2
    decided = await audit_events(bot, "approval_decided")
    assert len(decided) == 1 and decided[0].actor == APPROVER_2
    assert decided[0].detail["approvers"] == [APPROVER_1, APPROVER_2]
    assert [e.actor for e in await audit_events(bot, "approval_vote")] == [APPROVER_1]


async def test_any_deny_ends_it_and_the_agent_is_told(bot: Harness) -> None:
    await set_policy(bot, f"approvers add <@{APPROVER_1}> <@{APPROVER_2}> <@{APPROVER_3}>", "approvals-required 2")
    thread, aid = await new_card(bot)
    await click(bot, "intern_approve", aid, APPROVER_1, thread)
    await card_reads(bot, aid, "1 of 2")
    await click(bot, "intern_deny", aid, APPROVER_2, thread)
    await card_reads(bot, aid, f"Denied by <@{APPROVER_2}>")
    await click(bot, "intern_approve", aid, APPROVER_3, thread)
    assert f"Already denied by <@{APPROVER_2}>" in await private_reply(bot, APPROVER_3)
    await wait_until(lambda: any("not launched" in t and "denied by" in t
                                 for t in bot.slack.texts(thread_ts=thread)), timeout=20)
    assert launched(bot) == 0
    assert (await approval(bot, aid)).status == "denied"


async def test_self_approval_on_and_off(bot: Harness) -> None:
    await set_policy(bot, f"approvers add <@{REQUESTER}> <@{APPROVER_1}>", "self-approval on")
    thread, aid = await new_card(bot)
    await click(bot, "intern_approve", aid, REQUESTER, thread)
    await wait_until(lambda: launched(bot) == 1, timeout=20)
    assert f"Approved by <@{REQUESTER}>" in await card_reads(bot, aid, "Approved")

    await set_policy(bot, "self-approval off")
    thread, aid = await new_card(bot, text="train a second one")
    await click(bot, "intern_approve", aid, REQUESTER, thread)
    assert "self-approval is off" in await private_reply(bot, REQUESTER)
    assert (await approval(bot, aid)).status == "pending"
    await click(bot, "intern_approve", aid, APPROVER_1, thread)
    await wait_until(lambda: launched(bot) == 2, timeout=20)


async def test_a_user_group_approves_through_its_members_resolved_at_click_time(bot: Harness) -> None:
    bot.slack.add_usergroup("S0MLTEAM", [APPROVER_2])
    await set_policy(bot, "approvers add <!subteam^S0MLTEAM|ml-team>")
    thread, aid = await new_card(bot)
    await click(bot, "intern_approve", aid, APPROVER_1, thread)
    assert "designated approvers" in await private_reply(bot, APPROVER_1)
    bot.slack.add_usergroup("S0MLTEAM", [APPROVER_1, APPROVER_2])  # joined the group after the card was posted
    await click(bot, "intern_approve", aid, APPROVER_1, thread)
    await wait_until(lambda: launched(bot) == 1, timeout=20)


async def test_over_budget_the_card_says_so_approval_is_refused_until_the_budget_is_raised(bot: Harness) -> None:
    await set_policy(bot, f"approvers add <@{APPROVER_1}>", "budget 2")
    thread, aid = await new_card(bot)
    text = card_text(card_of(bot, aid))
    assert "*Budget left this month*\n$2.00" in text
    assert "Over budget: this request may cost $3.00 but only $2.00 is left" in text
    await click(bot, "intern_approve", aid, APPROVER_1, thread)
    refusal = await private_reply(bot, APPROVER_1)
    assert "$3.00" in refusal and "only $2.00 of the budget is left" in refusal
    assert (await approval(bot, aid)).status == "pending" and launched(bot) == 0

    await set_policy(bot, "budget 10")
    await click(bot, "intern_approve", aid, APPROVER_1, thread)  # the same approver, now within budget
    await wait_until(lambda: launched(bot) == 1, timeout=20)


async def test_the_workspace_budget_binds_every_channel(bot: Harness) -> None:
    await set_policy(bot, f"approvers add <@{APPROVER_1}>", "workspace-budget 1")
    thread, aid = await new_card(bot)
    assert "only $1.00 is left" in card_text(card_of(bot, aid))
    await click(bot, "intern_approve", aid, APPROVER_1, thread)
    assert "only $1.00 of the budget is left" in await private_reply(bot, APPROVER_1)
    assert launched(bot) == 0


async def test_auto_approve_below_the_threshold_runs_without_a_click_and_says_so(bot: Harness) -> None:
    await set_policy(bot, f"approvers add <@{APPROVER_1}>", "auto-approve-below 5")
    thread = await start_task(bot)
    await wait_until(lambda: launched(bot) == 1, timeout=20)
    card = await first_card(bot, thread)
    text = card_text(card)
    assert "automatically (under the channel's auto-approve threshold)" in text
    assert button_value(card) is None
    aid = approval_id_in(card)
    a = await approval(bot, aid)  # type: ignore[arg-type]
    assert a.status == "approved" and a.auto_approved and a.decided_by == "auto-approve"
    decided = await audit_events(bot, "approval_decided")
    assert decided[0].actor == "intern" and decided[0].detail["auto"] is True


async def test_auto_approve_needs_the_estimate_under_the_threshold_and_within_budget(bot: Harness) -> None:
    await set_policy(bot, f"approvers add <@{APPROVER_1}>", "auto-approve-below 2.50")
    _, above = await new_card(bot)  # $3.00 is not below $2.50
    assert button_value(card_of(bot, above)) == above
    await set_policy(bot, "auto-approve-below 5", "budget 2")
    _, over = await new_card(bot, text="another one")  # under the threshold but over the budget
    assert button_value(card_of(bot, over)) == over
    assert launched(bot) == 0


async def test_caps_refuse_outright_and_the_thread_is_told_why(bot: Harness) -> None:
    await set_policy(bot, f"approvers add <@{APPROVER_1}>", "max-flavor a10g-small", "auto-approve-below 100")
    thread = await start_task(bot)
    await wait_until(lambda: any("Not run: hardware a10g-large ($1.50/h) is above this channel's largest "
                                 "allowed flavor a10g-small ($1.00/h)" in t for t in bot.slack.texts(thread_ts=thread)))
    await wait_until(lambda: any("The job was not launched" in t and "policy" in t
                                 for t in bot.slack.texts(thread_ts=thread)), timeout=20)
    assert pending_cards(bot, thread) == []

    await set_policy(bot, "max-flavor none", "max-timeout 1h")
    thread = await start_task(bot, "try again")
    await wait_until(lambda: any("timeout 2h is longer than this channel's limit of 1h" in t
                                 for t in bot.slack.texts(thread_ts=thread)))
    assert launched(bot) == 0 and pending_cards(bot, thread) == []
    refused = await audit_events(bot, "approval_refused")
    assert len(refused) == 2 and all(e.approval_id and e.spec_sha256 for e in refused)
    assert "a10g-small" in refused[0].detail["reason"] and "1h" in refused[1].detail["reason"]


async def test_scheduled_runs_and_hub_writes_always_need_a_click(start_bot: StartBot, stands: Any) -> None:
    hub = stands[1]
    repo_store(hub).add(f"{hub.user}/notes")
    schedule = launch_args(flavor="cpu-basic", timeout="10m", operation="scheduled run", schedule="@daily")
    upload = {"operation": "upload", "repo_id": f"{hub.user}/notes", "path": "README.md", "content": "# notes\n"}
    bot = await start_bot(rule=tool_rule([("hf_jobs", schedule), ("hf_repo_files", upload)]))
    await set_policy(bot, f"approvers add <@{APPROVER_1}>", "auto-approve-below 1000")
    thread = await start_task(bot, "schedule a nightly eval and write the notes")
    await wait_until(lambda: len(pending_cards(bot, thread)) == 2, timeout=20)
    texts = [card_text(c) for c in pending_cards(bot, thread)]
    assert any("*Schedule*\n@daily" in t and "Max cost per run" in t for t in texts)
    assert any("Upload README.md" in t for t in texts)
    async with rt(bot).db.session() as db:
        rows = (await db.execute(select(Approval))).scalars().all()
    assert {(a.tool, a.status, a.auto_approved) for a in rows} == {("hf_jobs", "pending", False),
                                                                  ("hf_repo_files", "pending", False)}
    assert jobs_state(bot.hub).created_schedules == []


async def test_expiry_closes_the_card_tells_the_agent_and_a_late_click_says_expired(start_bot: StartBot) -> None:
    bot = await start_bot(INTERN_APPROVAL_TTL_MINUTES="0.01")
    await set_policy(bot, f"approvers add <@{APPROVER_1}>")
    thread, aid = await new_card(bot)
    await card_reads(bot, aid, "Expired", timeout=10)
    assert button_value(card_of(bot, aid)) is None
    await wait_until(lambda: any("not launched" in t and "expired" in t for t in bot.slack.texts(thread_ts=thread)),
                     timeout=20)
    await click(bot, "intern_approve", aid, APPROVER_1, thread)
    assert "expired" in await private_reply(bot, APPROVER_1)
    assert launched(bot) == 0
    expired = await audit_events(bot, "approval_expired")
    assert [e.approval_id for e in expired] == [aid] and expired[0].actor == "intern"


async def test_two_launches_in_one_step_each_get_their_own_card(start_bot: StartBot) -> None:
    first, second = launch_args(flavor="a10g-small"), launch_args(flavor="t4-small", timeout="1h")
    bot = await start_bot(rule=tool_rule([("hf_jobs", first), ("hf_jobs", second)]))
    await set_policy(bot, f"approvers add <@{APPROVER_1}>")
    thread = await start_task(bot, "run both experiments")
    await wait_until(lambda: len(pending_cards(bot, thread)) == 2, timeout=20)
    for card in pending_cards(bot, thread):
        await click(bot, "intern_approve", button_value(card) or "", APPROVER_1, thread)
    await wait_until(lambda: launched(bot) == 2, timeout=20)
    assert sorted(j.flavor for j in jobs_state(bot.hub).created) == ["a10g-small", "t4-small"]


async def test_a_changed_request_in_a_later_turn_supersedes_the_pending_card(bot: Harness) -> None:
    await set_policy(bot, f"approvers add <@{APPROVER_1}>")
    thread, old = await new_card(bot)
    async with rt(bot).db.session() as db:
        session = (await db.execute(select(Session).where(Session.thread == thread))).scalar_one()
    spec = launch_args(timeout="3h")
    info = ApprovalInfo(kind="spend", title="hf_jobs run", flavor="a10g-large", timeout_seconds=3 * 3600,
                        hourly_usd=1.5, estimated_cost_usd=4.5)
    answer = await Gate(rt(bot), session, REQUESTER).request(
        ApprovalRequest("call-later-turn", "hf_jobs", spec, spec_hash("hf_jobs", spec), info))
    assert answer.status == "pending"
    await card_reads(bot, old, "Superseded")
    assert button_value(card_of(bot, old)) is None
    assert button_value(card_of(bot, answer.approval_id or "")) == answer.approval_id
    await click(bot, "intern_approve", old, APPROVER_1, thread)
    assert "replaced by a newer one" in await private_reply(bot, APPROVER_1)
    assert (await approval(bot, old)).status == "superseded"
    assert [e.approval_id for e in await audit_events(bot, "approval_superseded")] == [old]


async def test_llm_spend_counts_toward_the_budget(start_bot: StartBot) -> None:
    bot = await start_bot(rule=tool_rule([("hf_jobs", launch_args())], usage=(1_000_000, 0)),
                          INTERN_MODEL="openai/gpt-4o")
    await set_policy(bot, f"approvers add <@{APPROVER_1}>", "budget 4")
    thread, aid = await new_card(bot)  # the model's step cost $2.50 (1M prompt tokens of gpt-4o)
    text = card_text(card_of(bot, aid))
    assert "*Budget left this month*\n$1.50" in text and "Over budget" in text
    await click(bot, "intern_approve", aid, APPROVER_1, thread)
    assert "only $1.50 of the budget is left" in await private_reply(bot, APPROVER_1)
    async with rt(bot).db.session() as db:
        llm = (await db.execute(select(SpendEntry).where(SpendEntry.kind == "llm"))).scalar_one()
    assert llm.amount_usd >= 2.5 and llm.user_id == REQUESTER
    spend = await command(bot, "budget", ADMIN)
    assert "<#C0GENERAL>: $2.5" in spend.text


async def test_the_reservation_is_replaced_by_the_actual_cost_when_the_job_ends(bot: Harness) -> None:
    await set_policy(bot, f"approvers add <@{APPROVER_1}>", "budget 100")
    thread, aid = await new_card(bot)
    await click(bot, "intern_approve", aid, APPROVER_1, thread)
    jobs = jobs_state(bot.hub)
    await wait_until(lambda: launched(bot) == 1, timeout=20)
    async with rt(bot).db.session() as db:
        reserved = (await db.execute(select(SpendEntry).where(SpendEntry.ref == aid))).scalar_one()
    assert reserved.amount_usd == 3.0 and not reserved.final
    assert "$97.00 left" in (await command(bot, "policy", ADMIN)).text

    job_id = jobs.created[0].job_id
    jobs.set_stage(job_id, "RUNNING")
    await wait_until(lambda: any("is running" in t for t in bot.slack.texts(thread_ts=thread)), timeout=20)
    jobs.set_stage(job_id, "COMPLETED")
    ran = jobs.job(job_id)  # it ran for exactly half an hour: $0.75 on a10g-large
    assert ran.finished_at is not None
    ran.started_at = ran.finished_at - timedelta(minutes=30)
    await wait_until(lambda: any("completed after" in t for t in bot.slack.texts(thread_ts=thread)), timeout=20)
    async with rt(bot).db.session() as db:
        entry = (await db.execute(select(SpendEntry).where(SpendEntry.ref == aid))).scalar_one()
        job = (await db.execute(select(Job))).scalar_one()
    assert entry.final and job.actual_cost_usd is not None
    assert entry.amount_usd == job.actual_cost_usd == 0.75
    assert "$99.25 left" in (await command(bot, "policy", ADMIN)).text
    finished = await audit_events(bot, "job_finished")
    assert finished[0].detail["cost"] == 0.75 and finished[0].job_id == job_id


async def overdue(h: Harness, approval_id: str, by: timedelta = timedelta(seconds=1)) -> None:
    """The approval's expiry time passes while the sweeper sleeps (it runs every few seconds)."""
    async with rt(h).db.transaction() as db:
        a = await db.get(Approval, approval_id)
        assert a is not None and a.status == "pending"
        a.expires_at = now() - by


async def test_a_click_after_the_expiry_time_is_refused_even_before_the_sweep(bot: Harness) -> None:
    await set_policy(bot, f"approvers add <@{APPROVER_1}>")
    thread, aid = await new_card(bot)
    rt(bot).sweep_seconds = 3600.0  # the sweeper's next round is far away: only the click sees the time
    await asyncio.sleep(0.5)
    await overdue(bot, aid)
    await click(bot, "intern_approve", aid, APPROVER_1, thread)
    assert "expired" in await private_reply(bot, APPROVER_1)
    a = await approval(bot, aid)
    assert a.status == "expired" and a.decided_by is None
    await card_reads(bot, aid, "Expired")
    await wait_until(lambda: any("not launched" in t and "expired" in t for t in bot.slack.texts(thread_ts=thread)),
                     timeout=20)
    assert launched(bot) == 0
    assert await count(bot, ApprovalDecision, ApprovalDecision.approval_id == aid) == 0
    assert await count(bot, SpendEntry, SpendEntry.ref == aid) == 0
    refused = await audit_events(bot, "approval_refused")
    assert [(e.actor, e.detail["reason"]) for e in refused] == [(APPROVER_1, "expired")]
    assert [e.approval_id for e in await audit_events(bot, "approval_expired")] == [aid]


async def test_the_vote_that_would_complete_n_of_m_after_the_expiry_time_is_refused(bot: Harness) -> None:
    await set_policy(bot, f"approvers add <@{APPROVER_1}> <@{APPROVER_2}>", "approvals-required 2")
    thread, aid = await new_card(bot)
    rt(bot).sweep_seconds = 3600.0
    await click(bot, "intern_approve", aid, APPROVER_1, thread)
    await card_reads(bot, aid, "1 of 2")
    await overdue(bot, aid)
    await click(bot, "intern_approve", aid, APPROVER_2, thread)
    assert "expired" in await private_reply(bot, APPROVER_2)
    await asyncio.sleep(1.0)
    assert (await approval(bot, aid)).status == "expired" and launched(bot) == 0


async def test_an_approval_decided_after_its_expiry_time_never_launches(bot: Harness) -> None:
    """A decision written past the expiry time (a clicking process whose clock ran behind) is treated
    as expired by the launch itself."""
    await set_policy(bot, f"approvers add <@{APPROVER_1}>")
    thread, aid = await new_card(bot)
    rt(bot).sweep_seconds = 3600.0
    await asyncio.sleep(0.5)
    async with rt(bot).db.transaction() as db:
        a = await db.get(Approval, aid)
        assert a is not None
        a.expires_at, a.status, a.decided_by, a.decided_at = now() - timedelta(minutes=2), "approved", APPROVER_1, now()
        enqueue(db, a.session_id, "resume", {"approval_id": aid})
    rt(bot).poke()
    await wait_until(lambda: any("not launched" in t and "expired" in t for t in bot.slack.texts(thread_ts=thread)),
                     timeout=20)
    assert launched(bot) == 0
