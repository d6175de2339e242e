"""Channel policy: who approves, how many, budgets and caps. Resolved from the channel's row, the
workspace row (channel '*') and the global settings (INTERN_APPROVERS)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from intern.bot.models import ChannelPolicy, SpendEntry

WORKSPACE = "*"


@dataclass(frozen=True)
class EffectivePolicy:
    approvers: tuple[str, ...]  # stored mention keys: a person's id, or a group or role as its adapter keys it
    admins: tuple[str, ...]
    global_admins: frozenset[str]
    approvals_required: int = 1
    self_approval: bool = False
    monthly_budget_usd: float | None = None
    workspace_budget_usd: float | None = None
    max_flavor: str | None = None
    max_timeout_seconds: int | None = None
    auto_approve_below_usd: float | None = None
    channel_has_own_approvers: bool = False
    notes: list[str] = field(default_factory=list)


def month_of(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m")


async def load_row(db: AsyncSession, platform: str, workspace: str, channel: str) -> ChannelPolicy | None:
    return (await db.execute(select(ChannelPolicy).where(
        ChannelPolicy.platform == platform, ChannelPolicy.workspace == workspace,
        ChannelPolicy.channel == channel))).scalar_one_or_none()


async def effective(db: AsyncSession, platform: str, workspace: str, channel: str,
                    global_approvers: frozenset[str]) -> EffectivePolicy:
    row = await load_row(db, platform, workspace, channel)
    ws = await load_row(db, platform, workspace, WORKSPACE)
    own = tuple(row.approvers) if row and row.approvers else ()
    return EffectivePolicy(
        approvers=own or tuple(sorted(global_approvers)),
        admins=tuple(row.admins) if row and row.admins else (),
        global_admins=global_approvers,
        approvals_required=row.approvals_required if row else 1,
        self_approval=row.self_approval if row else False,
        monthly_budget_usd=row.monthly_budget_usd if row else None,
        workspace_budget_usd=ws.monthly_budget_usd if ws else None,
        max_flavor=row.max_flavor if row else None,
        max_timeout_seconds=row.max_timeout_seconds if row else None,
        auto_approve_below_usd=row.auto_approve_below_usd if row else None,
        channel_has_own_approvers=bool(own),
    )


async def spent(db: AsyncSession, platform: str, workspace: str, channel: str | None,
                month: str | None = None) -> float:
    """Spend this month: finished amounts plus open reservations. channel=None: the whole workspace."""
    q = select(func.coalesce(func.sum(SpendEntry.amount_usd), 0.0)).where(
        SpendEntry.platform == platform, SpendEntry.workspace == workspace,
        SpendEntry.month == (month or month_of()))
    if channel is not None:
        q = q.where(SpendEntry.channel == channel)
    return float((await db.execute(q)).scalar_one())


@dataclass(frozen=True)
class BudgetView:
    channel_left: float | None
    workspace_left: float | None

    @property
    def left(self) -> float | None:
        values = [v for v in (self.channel_left, self.workspace_left) if v is not None]
        return min(values) if values else None

    def allows(self, amount: float | None) -> bool:
        return self.left is None or (amount or 0.0) <= self.left + 1e-9


async def budget_view(db: AsyncSession, pol: EffectivePolicy, platform: str, workspace: str,
                      channel: str) -> BudgetView:
    ch = ws = None
    if pol.monthly_budget_usd is not None:
        ch = pol.monthly_budget_usd - await spent(db, platform, workspace, channel)
    if pol.workspace_budget_usd is not None:
        ws = pol.workspace_budget_usd - await spent(db, platform, workspace, None)
    return BudgetView(ch, ws)
