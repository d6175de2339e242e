"""Budgets that stop model spend: the agent's `SpendGuard` port for one turn, and the per-user limit
on new sessions."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from intern.bot import policy as policies
from intern.bot.cards import money
from intern.bot.models import ChannelPolicy, Session, SpendEntry
from intern.bot.runtime import Runtime


class TurnBudget:
    """Asked before every model call of a turn (the research sub-agent's too)."""

    def __init__(self, rt: Runtime, session: Session) -> None:
        self.rt, self.session = rt, session

    async def refusal(self, estimate_usd: float) -> str | None:
        s = self.session
        async with self.rt.db.session() as db:
            # Asked at every model step: one query answers the common case, a channel without budgets,
            # and one more the month's spend of the channel and of the workspace.
            rows = (await db.execute(select(ChannelPolicy.channel, ChannelPolicy.monthly_budget_usd).where(
                ChannelPolicy.platform == s.platform, ChannelPolicy.workspace == s.workspace,
                ChannelPolicy.channel.in_((s.channel, policies.WORKSPACE))))).all()
            budgets = {channel: budget for channel, budget in rows if budget is not None}
            if not budgets:
                return None
            here = case((SpendEntry.channel == s.channel, SpendEntry.amount_usd), else_=0.0)
            channel_spent, workspace_spent = (await db.execute(select(
                func.coalesce(func.sum(here), 0.0), func.coalesce(func.sum(SpendEntry.amount_usd), 0.0)).where(
                SpendEntry.platform == s.platform, SpendEntry.workspace == s.workspace,
                SpendEntry.month == policies.month_of()))).one()
        channel_budget, workspace_budget = budgets.get(s.channel), budgets.get(policies.WORKSPACE)
        view = policies.BudgetView(
            None if channel_budget is None else channel_budget - float(channel_spent),
            None if workspace_budget is None else workspace_budget - float(workspace_spent))
        return spent_message(channel_budget, workspace_budget, view, estimate_usd)


def spent_message(channel_budget: float | None, workspace_budget: float | None, view: policies.BudgetView,
                  estimate_usd: float) -> str | None:
    """Why the model may not be asked again, or None. A budget is spent when nothing is left or when
    what is left cannot cover the next step's estimate."""
    for left, budget, whose, how in (
            (view.channel_left, channel_budget, "This channel's", "`@intern policy budget <USD>`"),
            (view.workspace_left, workspace_budget, "The workspace's",
             "`@intern policy workspace-budget <USD>` (global administrators)")):
        if left is not None and budget is not None and (left <= 1e-9 or left < estimate_usd):
            return (f"{whose} monthly budget of {money(budget)} is spent ({money(max(left, 0.0))} left, the next "
                    f"model step would cost about {money(estimate_usd)}), so I stopped before asking the model "
                    f"again. An administrator can raise it with {how}; the session continues when you reply.")
    return None


async def sessions_started_last_hour(db: AsyncSession, starters: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """New sessions of each (platform, user) in the last hour, in one query (in the caller's transaction).

    On PostgreSQL each starter's count is taken under a transaction-level advisory lock, held until
    the caller commits the sessions it decided to start: processes receiving the same person's
    mentions at once count one after another, so together they never start more than the limit.
    (SQLite lets one transaction write at a time and fails a writer whose reads went stale.)"""
    if not starters:
        return {}
    if db.bind.dialect.name == "postgresql":
        for platform, user in sorted(starters):  # one order everywhere: no deadlock between batches
            digest = hashlib.sha256(f"intern:session-limit:{platform}:{user}".encode()).digest()
            await db.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                             {"key": int.from_bytes(digest[:8], "big", signed=True)})
    since = datetime.now(UTC) - timedelta(hours=1)
    rows = (await db.execute(select(Session.platform, Session.started_by, func.count()).where(
        tuple_(Session.platform, Session.started_by).in_(list(starters)), Session.created_at >= since)
        .group_by(Session.platform, Session.started_by))).all()
    counts = dict.fromkeys(starters, 0)
    counts.update({(r[0], r[1]): int(r[2]) for r in rows})
    return counts


def session_limit_message(limit: int) -> str:
    """INTERN_MAX_SESSIONS_PER_USER_HOUR: the private answer to one session too many."""
    return (f"You have started {limit} sessions in the last hour, the most one person may "
            "(INTERN_MAX_SESSIONS_PER_USER_HOUR). Continue in one of your open threads, or try again later. "
            "Nothing was started.")
