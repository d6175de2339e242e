"""The budget asked before every model step: the channel's and the workspace's monthly budgets, what
is left against the step's estimate (SQLite, and PostgreSQL when set)."""

from __future__ import annotations

from intern.bot.budgets import TurnBudget
from intern.bot.models import ChannelPolicy, Session, SpendEntry
from intern.bot.policy import month_of
from intern.bot.store import Database
from tests.test_inbound_priority import make_runtime


async def setup(db: Database, policies: dict[str, float], spend: dict[str, float]) -> TurnBudget:
    async with db.transaction() as tx:
        s = Session(platform="slack", workspace="T1", channel="C1", thread="1.0", started_by="U1")
        tx.add(s)
        for channel, budget in policies.items():
            tx.add(ChannelPolicy(platform="slack", workspace="T1", channel=channel, approvers=[], admins=[],
                                 monthly_budget_usd=budget))
        for channel, amount in spend.items():
            tx.add(SpendEntry(platform="slack", workspace="T1", channel=channel, kind="llm", amount_usd=amount,
                              final=True, month=month_of()))
        tx.add(SpendEntry(platform="slack", workspace="T2", channel="C1", kind="llm", amount_usd=999.0, final=True,
                          month=month_of()))  # another workspace's spend counts for nobody here
    return TurnBudget(make_runtime(db), s)


async def test_without_budgets_the_model_is_always_asked(db: Database) -> None:
    guard = await setup(db, {}, {"C1": 50.0})
    assert await guard.refusal(10.0) is None


async def test_the_channel_budget_covers_the_next_step_or_stops_it(db: Database) -> None:
    guard = await setup(db, {"C1": 5.0}, {"C1": 4.0, "C2": 100.0})
    assert await guard.refusal(0.5) is None
    refusal = await guard.refusal(2.0)
    assert refusal and "This channel's monthly budget of $5.00 is spent ($1.00 left" in refusal


async def test_the_workspace_budget_counts_every_channel(db: Database) -> None:
    guard = await setup(db, {"*": 10.0, "C1": 100.0}, {"C1": 1.0, "C2": 9.0})
    refusal = await guard.refusal(0.0)
    assert refusal and "The workspace's monthly budget of $10.00 is spent" in refusal
    assert "workspace-budget" in refusal
