"""Approvals: the gate the agent consults, click authorization, decisions, expiry and stop.

State machine: pending → approved | denied | expired | cancelled | superseded; `refused` is written
directly when policy forbids a request outright. Every transition out of `pending` is one
compare-and-set (`UPDATE … WHERE status = 'pending'`); the decision that wins it does the follow-up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from intern.agent.code_files import CodeSnapshot, SnapshotFile
from intern.agent.ports import GateAnswer
from intern.agent.tools.base import ApprovalRequest
from intern.bot import audit
from intern.bot import policy as policies
from intern.bot.cards import approval_card, money
from intern.bot.chat import ApprovalClick, Card, MessageRef, Reply, who
from intern.bot.inbox import claim_event, enqueue
from intern.bot.models import Approval, ApprovalDecision, ApprovalFile, InboundEvent, Session, SpendEntry
from intern.bot.runtime import Runtime
from intern.bot.sessions import conversation_of

log = logging.getLogger(__name__)

REDRAW_DELAYS = (2.0, 5.0, 15.0, 30.0)  # seconds before each new try of a card edit that failed
# A pending approval with no card this long after it was made: its card never reached the thread.
MISSING_CARD_SECONDS = 120.0
MISSING_CARD_NOTE = "Posted again: the first post of this card did not reach the thread."
_redraws: set[asyncio.Task[None]] = set()  # kept referenced until done

DECIDED = ("approved", "denied", "expired", "cancelled", "superseded", "refused")


def now() -> datetime:
    return datetime.now(UTC)


def _answer(a: Approval) -> GateAnswer:
    status = a.status
    if status == "refused":
        return GateAnswer("denied", a.id, by="policy", reason=a.reason)
    if status == "superseded":
        return GateAnswer("cancelled", a.id, reason="superseded")
    return GateAnswer(status, a.id, spec=a.spec if status == "approved" else None,  # type: ignore[arg-type]
                      by=a.decided_by, reason=a.reason, auto=a.auto_approved)


def decided_late(a: Approval) -> bool:
    """Approved by a decision recorded after the expiry time (a clicking process whose clock ran
    behind): such an approval counts as expired and never launches."""
    return (a.status == "approved" and not a.auto_approved and a.decided_at is not None
            and a.decided_at > a.expires_at)


def flavor_rank(rt: Runtime, name: str) -> float | None:
    try:
        return rt.prices.lookup(name).hourly_usd
    except Exception:
        return None


class Gate:
    """The agent's ApprovalGate for one session's turn."""

    def __init__(self, rt: Runtime, session: Session, requester: str) -> None:
        self.rt, self.session, self.requester = rt, session, requester
        # Approvals requested through this gate belong to this turn's step: they never supersede each
        # other (two launches in one step are two cards).
        self.requested: set[str] = set()

    async def lookup(self, call_id: str) -> GateAnswer | None:
        async with self.rt.db.session() as db:
            a = (await db.execute(select(Approval).where(
                Approval.session_id == self.session.id, Approval.call_id == call_id))).scalar_one_or_none()
        if a is not None and decided_late(a):
            await Approvals(self.rt).expire_late(a.id)
            return GateAnswer("expired", a.id)
        return _answer(a) if a else None

    async def request(self, req: ApprovalRequest) -> GateAnswer:
        s = self.session
        info = dataclasses.asdict(dataclasses.replace(req.info, snapshot=None))
        info.pop("snapshot", None)
        info = self.rt.redactor.redact_obj(info)
        async with self.rt.db.transaction() as db:
            pol = await policies.effective(db, s.platform, s.workspace, s.channel, self.rt.settings.approvers)
            budget = await policies.budget_view(db, pol, s.platform, s.workspace, s.channel)
            refusal = self.refusal(pol, req)
            a = Approval(
                id=str(uuid.uuid4()), session_id=s.id, call_id=req.call_id, tool=req.tool, kind=req.info.kind,
                spec=req.spec, spec_sha256=req.spec_sha256, card=info,
                estimated_cost_usd=req.info.estimated_cost_usd, requester=self.requester, platform=s.platform,
                workspace=s.workspace, channel=s.channel, approvers=list(pol.approvers),
                required_approvals=pol.approvals_required, self_approval=pol.self_approval,
                expires_at=now() + timedelta(minutes=self.rt.settings.approval_ttl_minutes),
            )
            scope = dict(platform=s.platform, workspace=s.workspace, channel=s.channel, session_id=s.id,
                         approval_id=a.id, spec_sha256=req.spec_sha256)
            if refusal:
                a.status, a.reason, a.decided_at, a.decided_by = "refused", refusal, now(), "policy"
                audit.record(db, "approval_refused", **scope, reason=refusal, tool=req.tool)
            elif self.auto_approvable(pol, budget, req):
                a.status, a.auto_approved, a.decided_at, a.decided_by = "approved", True, now(), "auto-approve"
                audit.record(db, "approval_requested", actor=self.requester, **scope, tool=req.tool,
                             cost=req.info.estimated_cost_usd)
                audit.record(db, "approval_decided", **scope, decision="approved", auto=True,
                             cost=req.info.estimated_cost_usd)
                reserve(db, a)
            else:
                audit.record(db, "approval_requested", actor=self.requester, **scope, tool=req.tool,
                             cost=req.info.estimated_cost_usd)
            superseded = await supersede_older(db, a, keep=self.requested)
            db.add(a)
            if req.info.snapshot is not None and not refusal:
                await db.flush()
                db.add_all(ApprovalFile(approval_id=a.id, path=f.path, size=f.size, sha256=f.sha256, content=f.data)
                           for f in req.info.snapshot.files)
        self.requested.add(a.id)
        await self.post(a, budget.left)
        for old in superseded:
            await Approvals(self.rt).refresh_card(old)
        if refusal:
            await self.rt.adapter(s.platform).post(conversation_of(s), f"🛑 Not run: {refusal}")
        return _answer(a)

    def refusal(self, pol: policies.EffectivePolicy, req: ApprovalRequest) -> str | None:
        if not pol.approvers:
            return ("no approver is configured for this channel, so spending and Hub writes are refused. "
                    "An administrator can set INTERN_APPROVERS or run `@intern policy approvers add @someone`.")
        info = req.info
        if pol.max_flavor and info.flavor:
            cap, asked = flavor_rank(self.rt, pol.max_flavor), flavor_rank(self.rt, info.flavor)
            if cap is not None and asked is not None and asked > cap + 1e-9:
                return (f"hardware {info.flavor} ({money(asked)}/h) is above this channel's largest allowed "
                        f"flavor {pol.max_flavor} ({money(cap)}/h).")
        if pol.max_timeout_seconds and info.timeout_seconds and info.timeout_seconds > pol.max_timeout_seconds:
            from intern.agent.pricing import format_duration

            return (f"timeout {format_duration(info.timeout_seconds)} is longer than this channel's limit of "
                    f"{format_duration(pol.max_timeout_seconds)}.")
        return None

    def auto_approvable(self, pol: policies.EffectivePolicy, budget: policies.BudgetView,
                        req: ApprovalRequest) -> bool:
        cost = req.info.estimated_cost_usd
        return (req.info.auto_approvable and req.info.kind == "spend" and pol.auto_approve_below_usd is not None
                and cost is not None and cost < pol.auto_approve_below_usd and budget.allows(cost))

    async def post(self, a: Approval, budget_left: float | None) -> None:
        adapter = self.rt.adapter(a.platform)
        try:
            ref = await adapter.post_card(conversation_of(self.session), approval_card(a, budget_left=budget_left))
        except Exception:
            log.exception("could not post approval card %s", a.id)
            return
        async with self.rt.db.transaction() as db:
            await db.execute(update(Approval).where(Approval.id == a.id).values(card_ref=ref.to_json()))
        a.card_ref = ref.to_json()
        # A click can land between the post and the line above: its card edit found no card to edit.
        # Read after the commit, so that either this sees the decision or the click sees the card.
        async with self.rt.db.session() as db:
            status = await db.scalar(select(Approval.status).where(Approval.id == a.id))
            decided = await db.scalar(select(func.count()).select_from(ApprovalDecision).where(
                ApprovalDecision.approval_id == a.id))
        if status != "pending" or decided:
            await Approvals(self.rt).refresh_card(a.id)


async def supersede_older(db: AsyncSession, new: Approval, keep: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """A changed request for the same action, made in a later turn, replaces the pending one; returns
    the ids replaced (their cards must be updated to say so). `keep`: approvals of the current step."""
    olds = (await db.execute(select(Approval).where(
        Approval.session_id == new.session_id, Approval.tool == new.tool, Approval.status == "pending",
        Approval.call_id != new.call_id, Approval.id.not_in(keep or [""])))).scalars().all()
    replaced: list[str] = []
    for old in olds:
        if old.spec.get("operation") != new.spec.get("operation") or old.spec_sha256 == new.spec_sha256:
            continue
        res = await db.execute(update(Approval).where(Approval.id == old.id, Approval.status == "pending")
                               .values(status="superseded", decided_at=now(), reason=f"superseded by {new.id}"))
        if res.rowcount:
            replaced.append(old.id)
            audit.record(db, "approval_superseded", platform=old.platform, workspace=old.workspace,
                         channel=old.channel, session_id=old.session_id, approval_id=old.id,
                         spec_sha256=old.spec_sha256, superseded_by=new.id)
    return replaced


def reserve(db: AsyncSession, a: Approval) -> None:
    """An approved spend reserves its maximum cost until the actual cost replaces it."""
    if a.kind != "spend" or not a.estimated_cost_usd:
        return
    db.add(SpendEntry(platform=a.platform, workspace=a.workspace, channel=a.channel, session_id=a.session_id,
                      user_id=a.requester, kind="job" if a.tool == "hf_jobs" else "sandbox", ref=a.id,
                      amount_usd=a.estimated_cost_usd, final=False, month=policies.month_of()))


def clean(value: str) -> str:
    """`value` without control characters (a NUL byte cannot be stored in PostgreSQL text or JSON)."""
    return "".join(ch for ch in value if ch.isprintable())


def is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except (ValueError, AttributeError, TypeError):
        return False


class Approvals:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def is_member(self, platform: str, workspace: str, user: str, refs: list[str] | tuple[str, ...],
                        user_groups: tuple[str, ...] = ()) -> bool:
        if user in refs:
            return True
        for ref in refs:
            group = self.rt.mention_of_key(platform, ref)
            if not group.is_group:
                continue
            if group.id in user_groups:
                return True
            try:
                members = await self.rt.adapter(platform).members_of(workspace, ref)
            except Exception:
                log.warning("could not resolve approver group %s", ref)
                continue
            if user in members:
                return True
        return False

    async def click(self, c: ApprovalClick) -> Reply:
        if c.decision not in ("approve", "deny") or not all(
                clean(v) == v for v in (c.approval_id, c.user, c.workspace, c.platform)):
            await self._refusal_audit(c, None, "malformed click")
            return Reply("This click could not be read (malformed values). Nothing was changed.", ok=False)
        if not is_uuid(c.approval_id):
            await self._refusal_audit(c, None, "unknown approval id")
            return Reply("This button does not belong to a known approval (unknown or altered id). Nothing was "
                         "changed.", ok=False)
        at = now()  # one moment for the expiry check and the compare-and-set that decides
        expired, result = False, None
        async with self.rt.db.transaction() as db:
            q = select(Approval).where(Approval.id == c.approval_id)
            if self.rt.db.is_postgres:
                q = q.with_for_update()
            a = (await db.execute(q)).scalar_one_or_none()
            if a is None or a.platform != c.platform:
                self._audit_refusal(db, c, a, "unknown approval id")
                return Reply("This button does not belong to a known approval (unknown or altered id). Nothing "
                             "was changed.", ok=False)
            if c.workspace != a.workspace:
                self._audit_refusal(db, c, a, "clicker belongs to another workspace")
                return Reply("You can't decide on this request: it belongs to another workspace.", ok=False)
            learned = not a.card_ref and c.card is not None and c.card.platform == a.platform
            if learned and c.card is not None:
                # The card was posted by a process that died before it could record where: the click says.
                a.card_ref = c.card.to_json()
            if a.status != "pending":
                pass  # decided already: said below (and, if the card was just found, it is redrawn)
            elif a.expires_at <= at:
                # Past its time though the sweeper has not seen it yet: it expires now, with this click.
                self._audit_refusal(db, c, a, "expired")
                expired = await expire(db, a)
            else:
                result = await self.decide(db, a, c, at)
        if learned and not expired and (result is None or not result.ok):
            await self.refresh_card(a.id)  # a decided card that still showed its buttons
        if expired:
            await self.refresh_card(a.id)
            self.rt.poke()
        if result is None:
            return Reply(self.already(a), ok=False)
        if result.ok:
            await self.refresh_card(a.id)
            self.rt.poke()
        return result

    async def decide(self, db: AsyncSession, a: Approval, c: ApprovalClick, at: datetime) -> Reply:
        refusal = await self.authorize(db, a, c)
        if refusal:
            self._audit_refusal(db, a=a, c=c, reason=refusal)
            return Reply(refusal, ok=False)
        # Claimed only once the click counts: a refused click (over budget, not yet an approver)
        # must not make the same person's later, valid click look like a duplicate.
        if not await claim_event(db, f"click:{c.approval_id}:{c.user}:{c.decision}", "click"):
            return Reply("Your click on this card was already recorded.", ok=False)
        try:
            async with db.begin_nested():
                db.add(ApprovalDecision(approval_id=a.id, user_id=c.user, decision=c.decision))
                await db.flush()
        except IntegrityError:
            return Reply("You already decided on this request.", ok=False)
        return await self.apply(db, a, c, at)

    async def authorize(self, db: AsyncSession, a: Approval, c: ApprovalClick) -> str | None:
        pol = await policies.effective(db, a.platform, a.workspace, a.channel, self.rt.settings.approvers)
        if not await self.is_member(a.platform, a.workspace, c.user, pol.approvers, c.user_groups):
            return "Only this channel's designated approvers can decide on this request. Nothing was changed."
        if c.user == a.requester and not pol.self_approval:
            return ("You requested this, and self-approval is off in this channel: another approver must "
                    "decide. Nothing was changed.")
        if c.decision == "approve" and a.kind == "spend":
            budget = await policies.budget_view(db, pol, a.platform, a.workspace, a.channel)
            if not budget.allows(a.estimated_cost_usd):
                return (f"This request may cost {money(a.estimated_cost_usd)} but only {money(budget.left)} of "
                        "the budget is left this month, so it cannot be approved.")
        return None

    async def apply(self, db: AsyncSession, a: Approval, c: ApprovalClick, at: datetime) -> Reply:
        scope = dict(platform=a.platform, workspace=a.workspace, channel=a.channel, session_id=a.session_id,
                     approval_id=a.id, spec_sha256=a.spec_sha256)
        approvers = (await db.execute(select(ApprovalDecision.user_id).where(
            ApprovalDecision.approval_id == a.id, ApprovalDecision.decision == "approve")
            .order_by(ApprovalDecision.id))).scalars().all()
        if c.decision == "approve" and len(approvers) < a.required_approvals:
            audit.record(db, "approval_vote", actor=c.user, **scope, decision="approve",
                         given=len(approvers), required=a.required_approvals)
            return Reply(f"Approval recorded: {len(approvers)} of {a.required_approvals}.")
        status = "approved" if c.decision == "approve" else "denied"
        decided_by = ",".join(approvers) if status == "approved" else c.user
        res = await db.execute(update(Approval).where(Approval.id == a.id, Approval.status == "pending",
                                                      Approval.expires_at > at)
                               .values(status=status, decided_by=decided_by, decided_at=at))
        if res.rowcount != 1:
            await db.refresh(a)
            return Reply(self.already(a), ok=False)
        await db.refresh(a)
        audit.record(db, "approval_decided", actor=c.user, **scope, decision=status,
                     cost=a.estimated_cost_usd, approvers=list(approvers) if status == "approved" else None)
        if status == "approved":
            reserve(db, a)
        enqueue(db, a.session_id, "resume", {"approval_id": a.id})
        return Reply(f"{'Approved' if status == 'approved' else 'Denied'}. Thanks!")

    def already(self, a: Approval) -> str:
        named = ", ".join(who(u) for u in (a.decided_by or "").split(",") if u)
        if a.status == "approved":
            return f"Already approved by {'auto-approve' if a.auto_approved else named}."
        if a.status == "denied":
            return f"Already denied by {named}."
        if a.status == "expired":
            return "This request expired; ask Intern in the thread to request it again."
        if a.status == "superseded":
            return "This request was replaced by a newer one; use the newer card."
        if a.status == "refused":
            return f"This request was refused by policy: {a.reason}"
        return f"This request was cancelled ({a.reason})." if a.reason else "This request was cancelled."

    def _audit_refusal(self, db: AsyncSession, c: ApprovalClick, a: Approval | None, reason: str) -> None:
        audit.record(db, "approval_refused", actor=clean(c.user)[:64], platform=clean(c.platform)[:32],
                     workspace=clean(c.workspace)[:64],
                     channel=a.channel if a else None, session_id=a.session_id if a else None,
                     approval_id=a.id if a else None, spec_sha256=a.spec_sha256 if a else None,
                     reason=reason, clicked=clean(str(c.decision))[:16],
                     claimed_id=None if a else clean(c.approval_id)[:64])

    async def _refusal_audit(self, c: ApprovalClick, a: Approval | None, reason: str) -> None:
        async with self.rt.db.transaction() as db:
            self._audit_refusal(db, c, a, reason)

    async def refresh_card(self, approval_id: str, note: str | None = None) -> None:
        """Redraw the card as the approval now stands. An edit the platform refused (a timeout, a 5xx,
        a rate limit past the client's own retries) is tried again in the background: a decided card
        left with its buttons would tell everyone who sees it that the request still waits."""
        if await self._redraw(approval_id, note):
            return
        task = asyncio.create_task(self._redraw_later(approval_id, note), name=f"redraw-card-{approval_id}")
        _redraws.add(task)
        task.add_done_callback(_redraws.discard)

    async def _redraw_later(self, approval_id: str, note: str | None) -> None:
        for delay in REDRAW_DELAYS:
            await asyncio.sleep(delay)
            if await self._redraw(approval_id, note):
                log.info("approval card %s redrawn after an earlier failed edit", approval_id)
                return
        log.error("approval card %s could not be redrawn after %d tries; it may still show buttons",
                  approval_id, len(REDRAW_DELAYS) + 1)

    async def _card(self, db: AsyncSession, a: Approval, note: str | None) -> Card:
        """The card of `a` as it now stands: the budget left, the approvals given so far."""
        pol = await policies.effective(db, a.platform, a.workspace, a.channel, self.rt.settings.approvers)
        budget = await policies.budget_view(db, pol, a.platform, a.workspace, a.channel)
        given = (await db.execute(select(ApprovalDecision.user_id).where(
            ApprovalDecision.approval_id == a.id, ApprovalDecision.decision == "approve")
            .order_by(ApprovalDecision.id))).scalars().all()
        return approval_card(a, budget_left=budget.left, approvals_given=list(given), note=note)

    async def _redraw(self, approval_id: str, note: str | None) -> bool:
        """True when the card was redrawn (or there is none to redraw)."""
        try:
            async with self.rt.db.session() as db:
                a = await db.get(Approval, approval_id)
                if a is None or not a.card_ref:
                    return True
                card = await self._card(db, a, note)
            await self.rt.adapter(a.platform).update_card(MessageRef.from_json(a.card_ref), card)
        except Exception as exc:
            log.warning("could not update approval card %s (%s: %s)", approval_id, type(exc).__name__,
                        str(exc)[:200])
            return False
        return True

    async def expire_due(self) -> int:
        """Mark overdue pending approvals expired, tell the agent, edit the cards."""
        async with self.rt.db.session() as db:
            due = (await db.execute(select(Approval.id).where(
                Approval.status == "pending", Approval.expires_at <= now()))).scalars().all()
        expired = []
        for aid in due:
            async with self.rt.db.transaction() as db:
                a = await db.get(Approval, aid)
                if a is None or not await expire(db, a):
                    continue
            expired.append(aid)
        for aid in expired:
            await self.refresh_card(aid)
        if expired:
            self.rt.poke()
        return len(expired)

    async def post_missing_cards(self) -> int:
        """Pending approvals whose card never reached the thread (the process that made the request
        stopped before posting it, or the platform refused the post) get their card now, posted by one
        process (a claimed key; given back when the post fails, so a later sweep tries again). How
        many were posted."""
        cutoff = now() - timedelta(seconds=MISSING_CARD_SECONDS)
        async with self.rt.db.session() as db:
            rows = (await db.execute(select(Approval, Session).join(Session, Session.id == Approval.session_id).where(
                Approval.status == "pending", Approval.created_at < cutoff, Approval.expires_at > now()))).all()
        posted = 0
        for a, s in rows:
            if a.card_ref or a.platform not in self.rt.adapters:
                continue
            key = f"card:{a.id}"
            async with self.rt.db.transaction() as db:
                if not await claim_event(db, key, "approval_card"):
                    continue
                card = await self._card(db, a, MISSING_CARD_NOTE)
            try:
                ref = await self.rt.adapter(a.platform).post_card(conversation_of(s), card)
            except Exception as exc:
                log.warning("could not post the missing card of approval %s (%s); trying again later", a.id,
                            type(exc).__name__)
                async with self.rt.db.transaction() as db:
                    await db.execute(delete(InboundEvent).where(InboundEvent.key == key))
                continue
            async with self.rt.db.transaction() as db:
                await db.execute(update(Approval).where(Approval.id == a.id).values(card_ref=ref.to_json()))
            log.info("approval %s: its card never reached the thread; posted it now", a.id)
            posted += 1
        return posted

    async def expire_late(self, approval_id: str) -> None:
        """An approval decided after its expiry time is expired instead; its reservation is released."""
        async with self.rt.db.transaction() as db:
            res = await db.execute(update(Approval).where(Approval.id == approval_id, Approval.status == "approved")
                                   .values(status="expired", reason="decided after its expiry time"))
            if res.rowcount != 1:
                return
            a = await db.get(Approval, approval_id)
            assert a is not None
            await db.execute(update(SpendEntry).where(SpendEntry.ref == approval_id, SpendEntry.final.is_(False))
                             .values(amount_usd=0.0, final=True))
            audit.record(db, "approval_expired", platform=a.platform, workspace=a.workspace, channel=a.channel,
                         session_id=a.session_id, approval_id=a.id, spec_sha256=a.spec_sha256,
                         reason="decided after its expiry time", decided_by=a.decided_by)
        await self.refresh_card(approval_id)

    async def cancel_pending(self, session_id: str, actor: str, reason: str = "session stopped") -> list[str]:
        async with self.rt.db.transaction() as db:
            rows = (await db.execute(select(Approval).where(
                Approval.session_id == session_id, Approval.status == "pending"))).scalars().all()
            ids = []
            for a in rows:
                res = await db.execute(update(Approval).where(Approval.id == a.id, Approval.status == "pending")
                                       .values(status="cancelled", decided_by=actor, decided_at=now(),
                                               reason=reason))
                if res.rowcount:
                    ids.append(a.id)
                    audit.record(db, "approval_cancelled", actor=actor, platform=a.platform,
                                 workspace=a.workspace, channel=a.channel, session_id=a.session_id,
                                 approval_id=a.id, spec_sha256=a.spec_sha256, reason=reason)
        for aid in ids:
            await self.refresh_card(aid)
        return ids


async def expire(db: AsyncSession, a: Approval) -> bool:
    """Pending → expired (compare-and-set): audited, and the waiting turn resumes to hear it. True
    when this call made the transition."""
    res = await db.execute(update(Approval).where(Approval.id == a.id, Approval.status == "pending")
                           .values(status="expired", decided_at=now()))
    await db.refresh(a)
    if res.rowcount != 1:
        return False
    audit.record(db, "approval_expired", platform=a.platform, workspace=a.workspace, channel=a.channel,
                 session_id=a.session_id, approval_id=a.id, spec_sha256=a.spec_sha256)
    enqueue(db, a.session_id, "resume", {"approval_id": a.id})
    return True


async def pending_count(db: AsyncSession, session_id: str) -> int:
    return int((await db.execute(select(func.count()).select_from(Approval).where(
        Approval.session_id == session_id, Approval.status == "pending"))).scalar_one())


def card_snapshot(a: Approval) -> dict[str, Any]:
    return {"id": a.id, "status": a.status, "tool": a.tool, "cost": a.estimated_cost_usd}


class ApprovedCode:
    """The code an approval covers, as stored with it (`ApprovedCodeStore` of the jobs tool)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def load(self, approval_id: str) -> CodeSnapshot | None:
        async with self.rt.db.session() as db:
            a = await db.get(Approval, approval_id)
            if a is None or not isinstance(a.spec.get("sandbox_code"), dict):
                return None
            rows = (await db.execute(select(ApprovalFile).where(ApprovalFile.approval_id == approval_id)
                                     .order_by(ApprovalFile.path))).scalars().all()
        manifest = a.spec["sandbox_code"]
        files = tuple(SnapshotFile(r.path, bytes(r.content)) for r in rows)
        listed = {(f["path"], f["sha256"]) for f in manifest.get("files", [])}
        if {(f.path, f.sha256) for f in files} != listed:
            raise ValueError(f"the stored code of approval {approval_id} does not match its card")
        return CodeSnapshot(str(manifest.get("root", "")), manifest.get("kind", "folder"), files)
