"""`status`, `budget` and `policy …`: read and change what a channel allows.

Only administrators (INTERN_APPROVERS, or administrators named in the channel's policy) may change a
policy; the workspace budget is for global administrators only. Bad values get a clear private
reply and change nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from intern.agent.errors import ToolArgumentError
from intern.agent.pricing import format_duration, parse_timeout
from intern.bot import audit
from intern.bot import policy as policies
from intern.bot.approvals import Approvals
from intern.bot.cards import money
from intern.bot.chat import Command, Conversation, Mention, Reply, mention_in, who
from intern.bot.history import history_command
from intern.bot.models import Approval, ApprovalDecision, ChannelPolicy, Job, Session, SpendEntry

if TYPE_CHECKING:
    from intern.bot.runtime import Runtime

ACTIVE_STAGES = ("SCHEDULING", "RUNNING", "LAUNCHING")


class PolicyError(ValueError):
    pass


class PolicyRefused(PolicyError):
    """The person may not make this change (as opposed to a change that is wrong in itself)."""


async def run_command(rt: Runtime, cmd: Command) -> Reply:
    if cmd.name == "status":
        return await status(rt, cmd)
    if cmd.name == "budget":
        return await budget(rt, cmd)
    if cmd.name == "policy":
        return await policy(rt, cmd)
    if cmd.name == "history":
        return await history_command(rt, cmd)
    if cmd.name == "chart":
        from intern.bot.charting import chart_command

        return await chart_command(rt, cmd)
    return Reply(f"Unknown command `{cmd.name}`.", ok=False)


# --- status and budget ------------------------------------------------------------------------------

async def status(rt: Runtime, cmd: Command) -> Reply:
    c = cmd.conversation
    async with rt.db.session() as db:
        sessions = (await db.execute(select(Session).where(
            Session.platform == c.platform, Session.workspace == c.workspace, Session.channel == c.channel,
            Session.active.is_(True)).order_by(Session.created_at.desc()).limit(10))).scalars().all()
        jobs = (await db.execute(select(Job).where(
            Job.platform == c.platform, Job.workspace == c.workspace, Job.channel == c.channel,
            Job.stage.in_(ACTIVE_STAGES)))).scalars().all()
        pending = (await db.execute(select(Approval).where(
            Approval.platform == c.platform, Approval.workspace == c.workspace, Approval.channel == c.channel,
            Approval.status == "pending"))).scalars().all()
        pol = await policies.effective(db, c.platform, c.workspace, c.channel, rt.settings.approvers)
        spent = await policies.spent(db, c.platform, c.workspace, c.channel)
        view = await policies.budget_view(db, pol, c.platform, c.workspace, c.channel)
    lines = ["*Intern status for this channel*"]
    lines.append(f"Sessions: {len(sessions)} active" + ("" if not sessions else ": " + ", ".join(
        f"{s.status} (started by {who(s.started_by)}, LLM {money(s.llm_cost_usd)})" for s in sessions[:5])))
    lines.append(f"Running jobs: {len(jobs)}" + ("" if not jobs else ": " + ", ".join(
        (f"`{j.hf_job_id}` {j.stage} on {j.flavor}" if j.hf_job_id else f"launching on {j.flavor}")
        for j in jobs)))
    lines.append(f"Pending approvals: {len(pending)}" + ("" if not pending else ": " + ", ".join(
        f"{a.tool} {a.spec.get('operation', '')} ({money(a.estimated_cost_usd)}) by {who(a.requester)}"
        for a in pending)))
    budget_text = "no budget set" if pol.monthly_budget_usd is None else \
        f"{money(view.channel_left)} left of {money(pol.monthly_budget_usd)}"
    lines.append(f"Spend this month: {money(spent)} ({budget_text})")
    return Reply("\n".join(lines))


async def budget(rt: Runtime, cmd: Command) -> Reply:
    c = cmd.conversation
    month = policies.month_of()
    scope = (SpendEntry.platform == c.platform, SpendEntry.workspace == c.workspace, SpendEntry.month == month)
    async with rt.db.session() as db:
        by_channel = (await db.execute(select(SpendEntry.channel, func.sum(SpendEntry.amount_usd)).where(*scope)
                                       .group_by(SpendEntry.channel))).all()
        by_user = (await db.execute(select(SpendEntry.user_id, func.sum(SpendEntry.amount_usd)).where(*scope)
                                    .group_by(SpendEntry.user_id))).all()
        by_session = (await db.execute(select(SpendEntry.session_id, func.sum(SpendEntry.amount_usd)).where(
            *scope, SpendEntry.channel == c.channel).group_by(SpendEntry.session_id))).all()
        pol = await policies.effective(db, c.platform, c.workspace, c.channel, rt.settings.approvers)
        view = await policies.budget_view(db, pol, c.platform, c.workspace, c.channel)
    def table(rows: Any, label: Any) -> str:
        rows = sorted(rows, key=lambda r: -(r[1] or 0))
        return "\n".join(f"• {label(k)}: {money(v or 0)}" for k, v in rows[:15]) or "• nothing yet"
    parts = [f"*Spend in {month} (UTC)* — jobs at actual cost once finished, reserved maximum while running, "
             "plus LLM usage",
             "*By channel*\n" + table(by_channel, lambda ch: f"<#{ch}>"),
             "*By user*\n" + table(by_user, lambda u: who(u) if u else "system"),
             "*By session in this channel*\n" + table(by_session, lambda s: f"`{(s or '')[:8]}`")]
    if pol.monthly_budget_usd is not None:
        parts.append(f"Channel budget: {money(pol.monthly_budget_usd)}, left {money(view.channel_left)}")
    if pol.workspace_budget_usd is not None:
        parts.append(f"Workspace budget: {money(pol.workspace_budget_usd)}, left {money(view.workspace_left)}")
    return Reply("\n\n".join(parts))


# --- policy -----------------------------------------------------------------------------------------

@dataclass
class Change:
    field: str
    value: Any
    summary: str
    workspace: bool = False


def refs(words: list[str]) -> list[Mention]:
    if not words:
        raise PolicyError("Name at least one user (@someone), user group or role.")
    out = []
    for w in words:
        w = w.strip(",")
        mention = mention_in(w)
        if mention is None:
            raise PolicyError(f"`{w}` is not a user, user group or role mention. Use @name so your chat "
                              "client turns it into a mention.")
        out.append(mention)
    return out


def money_value(word: str) -> float:
    m = re.fullmatch(r"\$?(\d+(?:\.\d{1,2})?)", word.strip())
    if not m:
        raise PolicyError(f"`{word}` is not an amount in USD (e.g. 500 or 2.50).")
    value = float(m.group(1))
    if value > 10_000_000:
        raise PolicyError("That amount is too large.")
    return value


def parse_policy(words: list[str], known_flavors: set[str]) -> Change:
    if not words:
        raise PolicyError("Missing setting.")
    key, rest = words[0].lower(), words[1:]
    if key in ("approvers", "admins"):
        if not rest or rest[0].lower() not in ("add", "remove"):
            raise PolicyError(f"Use `policy {key} add @a @b` or `policy {key} remove @a`.")
        named = refs(rest[1:])
        if key == "admins" and rest[0].lower() == "add" and any(r.is_group for r in named):
            raise PolicyError("Administrators are people: name users (@someone), not user groups or roles.")
        return Change(key, (rest[0].lower(), named), f"{key} {rest[0].lower()} " + " ".join(rest[1:]))
    if len(rest) != 1:
        raise PolicyError(f"`policy {key}` takes exactly one value.")
    value = rest[0]
    if key == "approvals-required":
        if not value.isdigit() or not 1 <= int(value) <= 10:
            raise PolicyError("approvals-required must be a whole number from 1 to 10.")
        return Change("approvals_required", int(value), f"approvals required: {value}")
    if key == "self-approval":
        if value.lower() not in ("on", "off"):
            raise PolicyError("self-approval takes `on` or `off`.")
        return Change("self_approval", value.lower() == "on", f"self-approval {value.lower()}")
    if key in ("budget", "workspace-budget"):
        amount = None if value.lower() in ("none", "off", "unlimited") else money_value(value)
        return Change("monthly_budget_usd", amount, f"{key}: {'no limit' if amount is None else money(amount)}",
                      workspace=key == "workspace-budget")
    if key == "max-flavor":
        if value.lower() in ("none", "off"):
            return Change("max_flavor", None, "max-flavor: no limit")
        if value not in known_flavors:
            raise PolicyError(f"Unknown hardware flavor `{value}`. Known: {', '.join(sorted(known_flavors))}.")
        return Change("max_flavor", value, f"max-flavor: {value}")
    if key == "max-timeout":
        if value.lower() in ("none", "off"):
            return Change("max_timeout_seconds", None, "max-timeout: no limit")
        try:
            seconds = parse_timeout(value)
        except ToolArgumentError as exc:
            raise PolicyError(str(exc)) from None
        return Change("max_timeout_seconds", seconds, f"max-timeout: {format_duration(seconds)}")
    if key == "auto-approve-below":
        amount = None if value.lower() in ("none", "off") else money_value(value)
        return Change("auto_approve_below_usd", amount,
                      f"auto-approve-below: {'off' if amount is None else money(amount)}")
    raise PolicyError(f"Unknown policy setting `{key}`. Settings: approvers, admins, approvals-required, "
                      "self-approval, budget, workspace-budget, max-flavor, max-timeout, auto-approve-below.")


async def policy(rt: Runtime, cmd: Command) -> Reply:
    words = cmd.args.split()
    if not words:
        return await show_policy(rt, cmd)
    c = cmd.conversation
    try:
        async with rt.db.session() as db:
            authorize_change(cmd, await policies.effective(db, c.platform, c.workspace, c.channel,
                                                           rt.settings.approvers), None)
        change = stored_keys(rt, c.platform, parse_policy(words, {f.name for f in rt.prices.all()}))
        await check_refs(rt, c, change)
        async with rt.db.transaction() as db:
            # Any PolicyError raised in here rolls the whole change back.
            await change_policy(rt, db, cmd, change)
    except PolicyRefused as exc:
        await audit_refusal(rt, cmd, str(exc))
        return Reply(f"{exc} Nothing was changed.", ok=False)
    except PolicyError as exc:
        return Reply(f"{exc} Nothing was changed.", ok=False)
    return Reply(f"Policy updated by {who(cmd.user)}: {change.summary}.")


def authorize_change(cmd: Command, pol: policies.EffectivePolicy, change: Change | None) -> None:
    """Refuses (PolicyRefused) a person who may not make `change`; with None, any change at all."""
    is_global = cmd.user in pol.global_admins
    if change is not None and change.workspace and not is_global:
        raise PolicyRefused("Only global administrators (INTERN_APPROVERS) can set the workspace budget.")
    if not (is_global or cmd.user in pol.admins):
        raise PolicyRefused("Only administrators can change this channel's policy.")


async def audit_refusal(rt: Runtime, cmd: Command, reason: str) -> None:
    """Who tried which change, and why it was refused (the change itself was rolled back)."""
    c = cmd.conversation
    async with rt.db.transaction() as db:
        audit.record(db, "policy_refused", actor=cmd.user[:64], platform=c.platform, workspace=c.workspace,
                     channel=c.channel, tried=rt.spell(c.platform, f"policy {' '.join(cmd.args.split())}")[:500],
                     reason=reason)


async def change_policy(rt: Runtime, db: Any, cmd: Command, change: Change) -> None:
    c = cmd.conversation
    pol = await policies.effective(db, c.platform, c.workspace, c.channel, rt.settings.approvers)
    authorize_change(cmd, pol, change)
    channel = policies.WORKSPACE if change.workspace else c.channel
    row = await policies.load_row(db, c.platform, c.workspace, channel)
    if row is None:
        row = ChannelPolicy(platform=c.platform, workspace=c.workspace, channel=channel, approvers=[], admins=[],
                            approvals_required=1, self_approval=False)
        db.add(row)
    before = {k: getattr(row, k) for k in POLICY_FIELDS}
    apply_change(row, change, rt.settings.approvers, lambda key: rt.mention_of_key(c.platform, key))
    row.updated_by = cmd.user
    audit.record(db, "policy_changed", actor=cmd.user, platform=c.platform, workspace=c.workspace,
                 channel=channel, change=rt.spell(c.platform, change.summary),
                 before={k: v for k, v in before.items() if v != getattr(row, k)},
                 after={k: getattr(row, k) for k in before if before[k] != getattr(row, k)})


POLICY_FIELDS = ("approvers", "admins", "approvals_required", "self_approval", "monthly_budget_usd", "max_flavor",
                 "max_timeout_seconds", "auto_approve_below_usd")


def stored_keys(rt: Runtime, platform: str, change: Change) -> Change:
    """A change of approvers or administrators names them as the policy stores them (`mention_key`)."""
    if change.field in ("approvers", "admins"):
        action, named = change.value
        change.value = (action, [rt.mention_key(platform, m) for m in named])
    return change


async def check_refs(rt: Runtime, c: Conversation, change: Change) -> None:
    """People and groups being added must exist in this workspace. The adapter checks when it can
    (`check_refs(workspace, refs) -> {ref: reason}`); otherwise only the mention syntax was checked."""
    if change.field not in ("approvers", "admins") or change.value[0] != "add":
        return
    adapter = rt.adapters.get(c.platform)
    check = getattr(adapter, "check_refs", None)
    if check is None:
        return
    problems: dict[str, str] = await check(c.workspace, list(change.value[1]))
    if problems:
        raise PolicyError("; ".join(f"{rt.mention_of_key(c.platform, ref)}: {why}"
                                    for ref, why in problems.items()) + ".")


def apply_change(row: ChannelPolicy, change: Change, global_approvers: frozenset[str],
                 mention_of: Callable[[str], Mention]) -> None:
    """`mention_of` reads a stored key back (to tell a group from a person, and to name it)."""
    if change.field in ("approvers", "admins"):
        action, items = change.value
        current = list(getattr(row, change.field) or [])
        if action == "add":
            new = current + [i for i in items if i not in current]
        else:
            missing = [i for i in items if i not in current]
            if missing:
                shown = ", ".join(str(mention_of(m)) for m in missing)
                raise PolicyError(f"{shown} {'is' if len(missing) == 1 else 'are'} not in the list.")
            new = [i for i in current if i not in items]
        if change.field == "approvers" and not fits_n_of_m(row.approvals_required, new or sorted(global_approvers),
                                                           mention_of):
            raise PolicyError(f"approvals-required is {row.approvals_required} but only "
                              f"{len(new or global_approvers)} approver(s) would remain; lower approvals-required "
                              "first.")
        setattr(row, change.field, new)
        return
    if change.field == "approvals_required":
        approvers = list(row.approvers or []) or sorted(global_approvers)
        if not fits_n_of_m(change.value, approvers, mention_of):
            raise PolicyError(f"Only {len(approvers)} approver(s) are designated; add approvers first.")
    setattr(row, change.field, change.value)


def fits_n_of_m(required: int, approvers: list[str], mention_of: Callable[[str], Mention]) -> bool:
    """N of M needs M >= N. A user group or role counts as many (its size is known only at click time);
    no approver at all is the fail-closed state, allowed."""
    if not approvers or any(mention_of(str(a)).is_group for a in approvers):
        return True
    return required <= len(approvers)


async def show_policy(rt: Runtime, cmd: Command) -> Reply:
    c = cmd.conversation
    async with rt.db.session() as db:
        pol = await policies.effective(db, c.platform, c.workspace, c.channel, rt.settings.approvers)
        view = await policies.budget_view(db, pol, c.platform, c.workspace, c.channel)
        spent = await policies.spent(db, c.platform, c.workspace, c.channel)
    def named(items: tuple[str, ...] | frozenset[str]) -> str:
        return ", ".join(str(rt.mention_of_key(c.platform, i)) for i in sorted(items)) or "none"
    source = "this channel's list" if pol.channel_has_own_approvers else "INTERN_APPROVERS (global)"
    lines = [
        "*Policy for this channel*",
        f"Approvers: {named(pol.approvers)} (from {source})" if pol.approvers else
        "Approvers: none — spending and Hub writes are refused until one is set",
        f"Approvals required: {pol.approvals_required}",
        f"Self-approval: {'on' if pol.self_approval else 'off'}",
        f"Monthly budget: {money(pol.monthly_budget_usd) if pol.monthly_budget_usd is not None else 'no limit'}"
        + (f", {money(view.channel_left)} left" if view.channel_left is not None else "")
        + f" (spent {money(spent)} this month)",
        f"Workspace budget: {money(pol.workspace_budget_usd) if pol.workspace_budget_usd is not None else 'no limit'}"
        + (f", {money(view.workspace_left)} left" if view.workspace_left is not None else ""),
        f"Largest hardware: {pol.max_flavor or 'no limit'}",
        f"Longest timeout: {format_duration(pol.max_timeout_seconds) if pol.max_timeout_seconds else 'no limit'}",
        f"Auto-approve below: {money(pol.auto_approve_below_usd) if pol.auto_approve_below_usd is not None else 'off'}",
        f"Administrators: {named(pol.admins)} plus global {named(pol.global_admins)}",
    ]
    return Reply("\n".join(lines))


# --- a person's overview (Slack's App Home) ---------------------------------------------------------

@dataclass(frozen=True)
class HomeSession:
    id: str
    channel: str
    status: str
    created_at: Any
    llm_cost_usd: float


@dataclass(frozen=True)
class HomeApproval:
    id: str
    title: str
    channel: str
    requester: str
    cost_usd: float | None
    expires_at: Any
    can_decide: bool  # the person is an approver here and not barred by self-approval


@dataclass(frozen=True)
class HomeBudget:
    channel: str  # policies.WORKSPACE for the whole workspace
    budget_usd: float
    spent_usd: float

    @property
    def left_usd(self) -> float:
        return self.budget_usd - self.spent_usd


@dataclass(frozen=True)
class HomeSummary:
    user: str
    sessions: list[HomeSession]
    pending: list[HomeApproval]
    budgets: list[HomeBudget]


async def home_summary(rt: Runtime, platform: str, workspace: str, user: str, limit: int = 15) -> HomeSummary:
    """What one person sees on their own page: their sessions, the approvals waiting for them (or
    requested by them), and the budgets of the workspace's channels this month."""
    async with rt.db.session() as db:
        sessions = (await db.execute(select(Session).where(
            Session.platform == platform, Session.workspace == workspace, Session.started_by == user)
            .order_by(Session.created_at.desc()).limit(limit))).scalars().all()
        pending = (await db.execute(select(Approval).where(
            Approval.platform == platform, Approval.workspace == workspace, Approval.status == "pending")
            .order_by(Approval.created_at))).scalars().all()
        rows = (await db.execute(select(ChannelPolicy).where(
            ChannelPolicy.platform == platform, ChannelPolicy.workspace == workspace,
            ChannelPolicy.monthly_budget_usd.is_not(None)).order_by(ChannelPolicy.channel))).scalars().all()
        budgets = [HomeBudget(r.channel, float(r.monthly_budget_usd or 0.0), await policies.spent(
            db, platform, workspace, None if r.channel == policies.WORKSPACE else r.channel)) for r in rows]
        voted = set((await db.execute(select(ApprovalDecision.approval_id).where(
            ApprovalDecision.user_id == user, ApprovalDecision.approval_id.in_([a.id for a in pending]))))
            .scalars().all()) if pending else set()
        policy_of: dict[str, policies.EffectivePolicy] = {}
        for a in pending:
            if a.channel not in policy_of:
                policy_of[a.channel] = await policies.effective(db, platform, workspace, a.channel,
                                                                rt.settings.approvers)
    waiting = []
    for a in pending:
        pol = policy_of[a.channel]
        approver = await Approvals(rt).is_member(platform, workspace, user, pol.approvers)
        can = approver and (a.requester != user or pol.self_approval) and a.id not in voted
        if can or a.requester == user:
            waiting.append(HomeApproval(a.id, str((a.card or {}).get("title") or a.tool), a.channel, a.requester,
                                        a.estimated_cost_usd, a.expires_at, can))
    return HomeSummary(user, [HomeSession(s.id, s.channel, s.status, s.created_at, s.llm_cost_usd)
                              for s in sessions], waiting[:limit], budgets)
