"""The App Home tab: opening it publishes (views.publish) the person's sessions, the approvals waiting
for them and the channel budgets."""

from __future__ import annotations

from typing import Any

from intern.standins.slack import new_ts
from tests.e2e.harness import Harness, wait_until
from tests.governance.helpers import (
    ADMIN,
    APPROVER_1,
    BYSTANDER,
    REQUESTER,
    command,
    first_card,
    start_task,
)


def home_opened(user: str, tab: str = "home") -> dict[str, Any]:
    """Slack's `app_home_opened` event (the user opened the app's Home or Messages tab)."""
    return {"type": "app_home_opened", "user": user, "channel": "D0INTERN", "tab": tab, "event_ts": new_ts()}


def home_text(h: Harness, user: str) -> str:
    view = h.slack.views[user]
    return "\n".join(str(b.get("text", {}).get("text", "")) for b in view["blocks"])


async def open_home(h: Harness, user: str) -> str:
    h.slack.views.pop(user, None)
    assert (await h.sender.send_event(home_opened(user))).status == 200
    await wait_until(lambda: user in h.slack.views, timeout=10)
    assert h.slack.views[user]["type"] == "home" and h.slack.views[user]["team_id"] == h.slack.team_id
    return home_text(h, user)


async def test_the_home_tab_lists_sessions_waiting_approvals_and_budgets(bot: Harness) -> None:
    for words in (f"policy approvers add <@{APPROVER_1}>", "policy budget 500", "policy workspace-budget 2000"):
        assert (await command(bot, words, ADMIN)).public
    assert (await command(bot, "policy budget 50", ADMIN, channel="C0OTHER")).public
    await first_card(bot, await start_task(bot))

    approver = await open_home(bot, APPROVER_1)
    assert f"hf_jobs run ($3.00) in <#C0GENERAL> by <@{REQUESTER}> · *you can decide*" in approver
    assert "You have not started a session yet." in approver
    assert "<#C0GENERAL>: $0.00 spent of $500.00, $500.00 left" in approver
    assert "<#C0OTHER>: $0.00 spent of $50.00, $50.00 left" in approver
    assert "Whole workspace: $0.00 spent of $2,000.00, $2,000.00 left" in approver

    requester = await open_home(bot, REQUESTER)
    assert "• <#C0GENERAL> · waiting approval · started" in requester
    assert "requested by you, waiting for an approver" in requester

    nobody = await open_home(bot, BYSTANDER)
    assert "Nothing is waiting for you." in nobody and "You have not started a session yet." in nobody


async def test_the_messages_tab_publishes_nothing(bot: Harness) -> None:
    assert (await bot.sender.send_event(home_opened(APPROVER_1, tab="messages"))).status == 200
    await open_home(bot, BYSTANDER)  # a later home opening is served, so the first one was handled
    assert APPROVER_1 not in bot.slack.views
