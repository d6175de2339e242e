"""Slack's App Home tab: on `app_home_opened`, the person's sessions, the approvals waiting for them,
the channel budgets, the workspace's latest runs and this month's job spend by outcome, published
with `views.publish`. The rendering is a pure function."""

from __future__ import annotations

from typing import Any

from intern.bot.cards import money, when
from intern.bot.commands import HomeApproval, HomeBudget, HomeSession, HomeSummary, home_summary
from intern.bot.feedback import counts as feedback_counts
from intern.bot.history import HomeRuns, home_runs, table_row

SECTION_LIMIT = 3000
PLATFORM = "slack"


async def publish_home(bot: Any, client: Any, workspace: str, user: str) -> None:
    summary = await home_summary(bot.rt, PLATFORM, workspace, user)
    runs = await home_runs(bot.rt, PLATFORM, workspace)
    votes = await feedback_counts(bot.rt, platform=PLATFORM, workspace=workspace)
    await client.views_publish(user_id=user, view=home_view(summary, runs, votes))


def home_view(summary: HomeSummary, runs: HomeRuns | None = None,
              votes: dict[str, int] | None = None) -> dict[str, Any]:
    return {"type": "home", "blocks": home_blocks(summary, runs, votes)}


def home_blocks(summary: HomeSummary, runs: HomeRuns | None = None,
                votes: dict[str, int] | None = None) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Intern", "emoji": True}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": (
            "Mention @intern in a channel to start a session. Approve or deny on the card in its thread.")}]},
    ]
    blocks += _section("Your sessions", [_session_line(s) for s in summary.sessions],
                       "You have not started a session yet.")
    blocks += _section("Approvals waiting", [_approval_line(a, summary.user) for a in summary.pending],
                       "Nothing is waiting for you.")
    blocks += _section("Budgets this month (UTC)", [_budget_line(b) for b in summary.budgets],
                       "No channel has a budget: spending still needs an approval.")
    if runs is not None:
        blocks += _section("Latest runs in this workspace", [table_row(r) for r in runs.latest],
                           "No runs yet: every job Intern launches is listed here.")
        blocks += _section(f"Job spend in {runs.month} by outcome", _spend_lines(runs.spend_by_outcome),
                           "No jobs this month.")
    if votes is not None:
        rated = votes.get("up", 0) + votes.get("down", 0)
        blocks += _section("Feedback on Intern's answers", [f"• {votes.get('up', 0)} 👍 · {votes.get('down', 0)} 👎"]
                           if rated else [], "No answer has been rated yet.")
    return blocks[:100]


OUTCOME_ORDER = ("completed", "failed", "timed_out", "cancelled", "running")


def _spend_lines(spend: dict[str, float]) -> list[str]:
    lines = [f"• {o.replace('_', ' ')}{' (reserved so far)' if o == 'running' else ''}: {money(spend[o])}"
             for o in OUTCOME_ORDER if o in spend]
    if spend:
        lines.append(f"• total: {money(sum(spend.values()))}")
    return lines


def _section(title: str, lines: list[str], empty: str) -> list[dict[str, Any]]:
    text = "\n".join(lines) if lines else f"_{empty}_"
    if len(text) > SECTION_LIMIT - len(title) - 4:
        text = text[: SECTION_LIMIT - len(title) - 6] + "\n…"
    return [{"type": "divider"}, {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*\n{text}"}}]


def _session_line(s: HomeSession) -> str:
    return (f"• <#{s.channel}> · {s.status.replace('_', ' ')} · started {when(s.created_at)} · "
            f"LLM {money(s.llm_cost_usd)} · `{s.id[:8]}`")


def _approval_line(a: HomeApproval, user: str) -> str:
    if a.can_decide:
        who = "*you can decide*"
    elif a.requester == user:
        who = "requested by you, waiting for an approver"
    else:
        who = "waiting"
    cost = f" ({money(a.cost_usd)})" if a.cost_usd is not None else ""
    return f"• {a.title}{cost} in <#{a.channel}> by <@{a.requester}> · {who} · expires {when(a.expires_at)}"


def _budget_line(b: HomeBudget) -> str:
    where = "Whole workspace" if b.channel == "*" else f"<#{b.channel}>"
    return f"• {where}: {money(b.spent_usd)} spent of {money(b.budget_usd)}, {money(b.left_usd)} left"
