"""`@intern policy …`, `@intern status` and `@intern budget` through signed Slack events: who may change
what, what a bad value gets (a private reply, nothing changed), and what the channel is shown."""

from __future__ import annotations

import io
import json
from typing import Any

from sqlalchemy import select

from intern.bot.export import export_audit
from intern.bot.models import ChannelPolicy
from intern.bot.settings import Settings
from intern.standins.slack import SlackStandIn
from tests.e2e.harness import Harness, wait_until
from tests.governance.conftest import StartBot
from tests.governance.helpers import (
    ADMIN,
    APPROVER_1,
    APPROVER_2,
    APPROVER_3,
    BYSTANDER,
    CHANNEL_ADMIN,
    REQUESTER,
    approval_id_in,
    audit_events,
    click,
    command,
    first_card,
    policy_row,
    rt,
    start_task,
)

SETTINGS = ("approvers", "admins", "approvals_required", "self_approval", "monthly_budget_usd", "max_flavor",
            "max_timeout_seconds", "auto_approve_below_usd")


def snapshot(row: ChannelPolicy | None) -> dict[str, Any] | None:
    return None if row is None else {k: getattr(row, k) for k in SETTINGS}


async def all_rows(h: Harness) -> dict[str, dict[str, Any] | None]:
    async with rt(h).db.session() as db:
        rows = (await db.execute(select(ChannelPolicy))).scalars().all()
    return {r.channel: snapshot(r) for r in rows}


def known_users(slack: SlackStandIn) -> None:
    """users.info answers only for these (the stand-in otherwise invents any U… id)."""
    slack.auto_users = False
    for uid in (ADMIN, CHANNEL_ADMIN, APPROVER_1, APPROVER_2, APPROVER_3, REQUESTER, BYSTANDER):
        slack.add_user(uid, uid.lower())
    slack.add_user("U0OUTSIDER", "outsider", team_id="T0ELSEWHERE")
    slack.add_user("U0GONE", "gone", deleted=True)
    slack.add_usergroup("S0MLTEAM", [APPROVER_1, APPROVER_2])


async def test_an_administrator_sets_every_setting_and_policy_shows_it(bot: Harness) -> None:
    known_users(bot.slack)
    changes = [
        (f"policy approvers add <@{APPROVER_1}> <@{APPROVER_2}|bob>", "approvers add"),
        ("policy approvals-required 2", "approvals required: 2"),
        ("policy self-approval on", "self-approval on"),
        ("policy budget 500", "budget: $500.00"),
        ("policy workspace-budget 2000", "workspace-budget: $2,000.00"),
        ("policy max-flavor a100-large", "max-flavor: a100-large"),
        ("policy max-timeout 12h", "max-timeout: 12h"),
        ("policy auto-approve-below 2.50", "auto-approve-below: $2.50"),
        (f"policy admins add <@{CHANNEL_ADMIN}>", "admins add"),
        ("policy approvers add <!subteam^S0MLTEAM|ml-team>", "approvers add"),
    ]
    for words, said in changes:
        answer = await command(bot, words, ADMIN)
        assert answer.public, (words, answer.text)
        assert f"Policy updated by <@{ADMIN}>" in answer.text and said in answer.text, (words, answer.text)

    row = await policy_row(bot)
    assert snapshot(row) == {
        "approvers": [APPROVER_1, APPROVER_2, "<!subteam^S0MLTEAM>"], "admins": [CHANNEL_ADMIN],
        "approvals_required": 2, "self_approval": True, "monthly_budget_usd": 500.0, "max_flavor": "a100-large",
        "max_timeout_seconds": 12 * 3600, "auto_approve_below_usd": 2.5}
    workspace = await policy_row(bot, "*")
    assert workspace is not None and workspace.monthly_budget_usd == 2000.0

    shown = await command(bot, "policy", BYSTANDER)  # anyone may read it
    assert shown.public
    for line in (f"Approvers: <!subteam^S0MLTEAM>, <@{APPROVER_1}>, <@{APPROVER_2}> (from this channel's list)",
                 "Approvals required: 2", "Self-approval: on", "Monthly budget: $500.00, $500.00 left",
                 "Workspace budget: $2,000.00, $2,000.00 left", "Largest hardware: a100-large",
                 "Longest timeout: 12h", "Auto-approve below: $2.50",
                 f"Administrators: <@{CHANNEL_ADMIN}> plus global <@{ADMIN}>"):
        assert line in shown.text, (line, shown.text)

    changed = await audit_events(bot, "policy_changed")
    assert len(changed) == len(changes) and all(e.actor == ADMIN for e in changed)
    budget = next(e for e in changed if e.detail["change"].startswith("budget"))
    assert budget.channel == "C0GENERAL" and budget.workspace == bot.slack.team_id
    assert budget.detail["before"] == {"monthly_budget_usd": None}
    assert budget.detail["after"] == {"monthly_budget_usd": 500.0}
    assert next(e for e in changed if "workspace-budget" in e.detail["change"]).channel == "*"


async def test_a_non_administrator_is_refused_privately_and_nothing_changes(bot: Harness) -> None:
    for words in (f"policy approvers add <@{BYSTANDER}>", "policy approvals-required 1", "policy self-approval on",
                  "policy budget 500", "policy workspace-budget 2000", "policy max-flavor a100-large",
                  "policy max-timeout 12h", "policy auto-approve-below 2.50", f"policy admins add <@{BYSTANDER}>"):
        answer = await command(bot, words, BYSTANDER)
        assert not answer.public, words
        assert "Only" in answer.text and "administrators" in answer.text, (words, answer.text)
        assert "Nothing was changed" in answer.text
    assert await all_rows(bot) == {}
    assert await audit_events(bot, "policy_changed") == []


async def test_a_refused_policy_change_is_audited_and_exported(bot: Harness) -> None:
    tries = [("policy budget 500", BYSTANDER, "Only administrators"),
             ("policy frobnicate 3", BYSTANDER, "Only administrators"),  # refused before its words are read
             ("policy workspace-budget 50", CHANNEL_ADMIN, "global administrators")]
    assert (await command(bot, f"policy admins add <@{CHANNEL_ADMIN}>", ADMIN)).public
    for words, user, why in tries:
        answer = await command(bot, words, user)
        assert not answer.public and why in answer.text
    refused = await audit_events(bot, "policy_refused")
    assert [(e.actor, e.detail["tried"], e.channel, e.workspace) for e in refused] == [
        (user, words, "C0GENERAL", bot.slack.team_id) for words, user, _ in tries]
    assert all(why in e.detail["reason"] for e, (_, _, why) in zip(refused, tries, strict=True))
    out = io.StringIO()
    assert await export_audit(Settings(**bot.env()), since=None, fmt="jsonl", out=out) == 0  # type: ignore[arg-type]
    exported = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(e["actor"], e["detail"]["tried"]) for e in exported if e["kind"] == "policy_refused"] == [
        (user, words) for words, user, _ in tries]
    rows = await all_rows(bot)
    assert rows["C0GENERAL"]["monthly_budget_usd"] is None and "*" not in rows  # type: ignore[index]


async def test_a_channel_administrator_runs_the_channel_but_not_the_workspace_budget(bot: Harness) -> None:
    assert (await command(bot, f"policy admins add <@{CHANNEL_ADMIN}>", ADMIN)).public
    assert (await command(bot, "policy budget 100", CHANNEL_ADMIN)).public
    refused = await command(bot, "policy workspace-budget 50", CHANNEL_ADMIN)
    assert not refused.public and "global administrators" in refused.text
    elsewhere = await command(bot, "policy budget 5", CHANNEL_ADMIN, channel="C0OTHER")
    assert not elsewhere.public and "Only administrators" in elsewhere.text
    rows = await all_rows(bot)
    assert set(rows) == {"C0GENERAL"} and rows["C0GENERAL"]["monthly_budget_usd"] == 100.0  # type: ignore[index]


BAD_VALUES = [
    ("policy approvals-required 0", "from 1 to 10"),
    ("policy approvals-required 11", "from 1 to 10"),
    ("policy approvals-required two", "from 1 to 10"),
    ("policy approvals-required 3", "approver"),  # only two approvers are designated
    ("policy self-approval maybe", "`on` or `off`"),
    ("policy budget -5", "not an amount"),
    ("policy budget 5.123", "not an amount"),
    ("policy budget five", "not an amount"),
    ("policy budget 1e3", "not an amount"),
    ("policy budget 500 USD", "exactly one value"),
    ("policy budget 99999999999", "too large"),
    ("policy workspace-budget lots", "not an amount"),
    ("policy max-flavor a100-huge", "Unknown hardware flavor"),
    ("policy max-timeout 12", "not understood"),
    ("policy max-timeout 0h", "longer than zero"),
    ("policy max-timeout soon", "not understood"),
    ("policy auto-approve-below cheap", "not an amount"),
    ("policy approvers add bob", "not a user"),
    ("policy approvers add", "Name at least one"),
    ("policy approvers frobnicate <@U0APPR3>", "approvers add"),
    (f"policy approvers remove <@{APPROVER_3}>", "not in the list"),
    ("policy admins add @nobody", "not a user"),
    ("policy approvers add <@U0GHOST>", "unknown"),
    ("policy approvers add <@U0GONE>", "unknown"),
    ("policy approvers add <@U0OUTSIDER>", "another workspace"),
    ("policy approvers add <!subteam^S0NOSUCH>", "unknown"),
    ("policy admins add <@U0GHOST>", "unknown"),
    ("policy admins add <!subteam^S0MLTEAM>", "Administrators are people"),
    ("policy frobnicate 3", "Unknown policy setting"),
]


async def test_bad_values_get_a_clear_private_reply_and_change_nothing(bot: Harness) -> None:
    known_users(bot.slack)
    for words in (f"policy approvers add <@{APPROVER_1}> <@{APPROVER_2}>", "policy budget 100"):
        assert (await command(bot, words, ADMIN)).public
    before = await all_rows(bot)
    audits = len(await audit_events(bot, "policy_changed"))
    for words, said in BAD_VALUES:
        answer = await command(bot, words, ADMIN)
        assert not answer.public, (words, answer.text)
        assert said in answer.text and "Nothing was changed" in answer.text, (words, answer.text)
        assert await all_rows(bot) == before, words
    assert len(await audit_events(bot, "policy_changed")) == audits


async def test_a_change_that_would_break_n_of_m_is_refused_and_rolled_back(bot: Harness) -> None:
    for words in (f"policy approvers add <@{APPROVER_1}> <@{APPROVER_2}>", "policy approvals-required 2"):
        assert (await command(bot, words, ADMIN)).public
    before = await all_rows(bot)
    answer = await command(bot, f"policy approvers remove <@{APPROVER_2}>", ADMIN)
    assert not answer.public and "lower approvals-required first" in answer.text
    assert await all_rows(bot) == before
    assert (await policy_row(bot)).approvers == [APPROVER_1, APPROVER_2]  # type: ignore[union-attr]


async def test_approvals_required_counts_the_global_approvers_when_the_channel_has_none(start_bot: StartBot) -> None:
    bot = await start_bot(approvers=f"{ADMIN},{APPROVER_1}")
    refused = await command(bot, "policy approvals-required 3", ADMIN)
    assert not refused.public and "2 approver" in refused.text
    assert await all_rows(bot) == {}
    assert (await command(bot, "policy approvals-required 2", ADMIN)).public


async def test_status_budget_and_policy_show_what_the_channel_has(bot: Harness) -> None:
    for words in (f"policy approvers add <@{APPROVER_1}>", "policy budget 500"):
        assert (await command(bot, words, ADMIN)).public
    first = await start_task(bot)
    card = await first_card(bot, first)
    pending_id = approval_id_in(card)
    assert pending_id
    second = await start_task(bot, "train another one")
    approved_id = approval_id_in(await first_card(bot, second))
    assert approved_id
    await click(bot, "intern_approve", approved_id, APPROVER_1, second)
    await wait_until(lambda: any("launched" in t for t in bot.slack.texts(thread_ts=second)), timeout=20)

    status = await command(bot, "status", BYSTANDER)
    assert status.public
    assert "Sessions: 2 active" in status.text and f"<@{REQUESTER}>" in status.text
    assert "Running jobs: 1" in status.text and "a10g-large" in status.text
    assert f"Pending approvals: 1: hf_jobs run ($3.00) by <@{REQUESTER}>" in status.text
    assert "Spend this month: $3.0" in status.text and "left of $500.00" in status.text

    budget = await command(bot, "budget", BYSTANDER)
    assert budget.public
    assert "*By channel*\n• <#C0GENERAL>: $3.0" in budget.text
    assert f"*By user*\n• <@{REQUESTER}>: $3.0" in budget.text
    assert "Channel budget: $500.00, left $49" in budget.text

    shown = await command(bot, "policy", REQUESTER)
    assert "Monthly budget: $500.00, $49" in shown.text and "(spent $3.0" in shown.text
