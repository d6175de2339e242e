"""Turns agent events into what the thread sees: one throttled status card, plus messages.

Events that change durable state (a job launched, LLM usage) are written here, before the loop
moves on, because the sink is awaited.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy import select, update

from intern.agent import events as ev
from intern.bot import audit
from intern.bot.activity import THINKING, Activity, status_for
from intern.bot.cards import StatusState, money
from intern.bot.chat import MessageRef
from intern.bot.models import Session, SpendEntry
from intern.bot.policy import month_of
from intern.bot.runtime import Runtime
from intern.bot.sessions import conversation_of

log = logging.getLogger(__name__)


class ProgressSink:
    def __init__(self, rt: Runtime, session: Session, requester: str) -> None:
        self.rt, self.session, self.requester = rt, session, requester
        self.conv = conversation_of(session)
        self.state = StatusState.from_json((session.status_card or {}).get("state"))
        self.ref = MessageRef.from_json(session.status_card["ref"]) if (session.status_card or {}).get("ref") else None
        self._last_push = 0.0
        self._pending: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.activity = Activity(lambda: self.adapter, self.conv)

    @property
    def adapter(self) -> Any:
        return self.rt.adapter(self.session.platform)

    async def emit(self, event: ev.AgentEvent) -> None:
        handler = getattr(self, f"on_{type(event).__name__}", None)
        if handler is not None:
            await handler(event)

    async def on_TurnStarted(self, e: ev.TurnStarted) -> None:
        self.state.phase, self.state.step = "Working", ""
        await self.push(force=self.ref is None)
        await self.activity.show(THINKING)

    async def on_AssistantReply(self, e: ev.AssistantReply) -> None:
        await self.rt.yield_to_inbound()
        await self.adapter.post_answer(self.conv, self.rt.redactor.redact(e.text), self.session.id)

    async def on_Notice(self, e: ev.Notice) -> None:
        icon = {"error": "🛑 ", "warn": "⚠️ "}.get(e.level, "")
        await self.adapter.post(self.conv, icon + self.rt.redactor.redact(e.text))

    async def on_ToolStarted(self, e: ev.ToolStarted) -> None:
        self.state.step = f"{e.name} {e.summary}".strip()[:200]
        await self.push()
        await self.activity.show(status_for(e.name))

    async def on_ToolFinished(self, e: ev.ToolFinished) -> None:
        if "job" in e.artifacts:
            from intern.bot.jobs import record_launch

            await record_launch(self.rt, self.session, self.requester, e.artifacts["job"])
            job = e.artifacts["job"]
            self.state.jobs[job["hf_job_id"]] = job.get("stage", "SCHEDULING")
            await self.push(force=True)
        if "scheduled_job" in e.artifacts:
            from intern.bot.ownership import record_schedule

            await record_schedule(self.rt, self.session, self.requester, e.artifacts["scheduled_job"])
        if e.approval_id and not e.ok and "job" not in e.artifacts:
            await release_reservation(self.rt, self.session, e.approval_id, e.name, e.summary)
        if "cancelled_job" in e.artifacts:
            async with self.rt.db.transaction() as db:
                audit.record(db, "job_cancel_requested", actor=self.requester, platform=self.session.platform,
                             workspace=self.session.workspace, channel=self.session.channel,
                             session_id=self.session.id, job_id=e.artifacts["cancelled_job"], by="agent")

    async def on_PlanUpdated(self, e: ev.PlanUpdated) -> None:
        self.state.plan = [dict(t) for t in e.todos]
        await self.push()

    async def on_ResearchProgress(self, e: ev.ResearchProgress) -> None:
        self.state.research[e.call_id] = f"step {e.step}: {e.summary}"[:150]
        await self.push()

    async def on_UsageRecorded(self, e: ev.UsageRecorded) -> None:
        self.state.llm_cost_usd += e.cost_usd
        s = self.session
        async with self.rt.db.transaction() as db:
            await db.execute(update(Session).where(Session.id == s.id).values(
                prompt_tokens=Session.prompt_tokens + e.prompt_tokens,
                completion_tokens=Session.completion_tokens + e.completion_tokens,
                llm_cost_usd=Session.llm_cost_usd + e.cost_usd))
            if e.cost_usd > 0:
                await add_llm_spend(db, s, self.requester, e.cost_usd)

    async def finish(self, phase: str) -> None:
        self.state.phase, self.state.step = phase, ""
        await self.activity.show("")
        await self.push(force=True, done=phase != "Waiting for approval")

    async def push(self, force: bool = False, done: bool = False) -> None:
        """Edit the status card at most every few seconds; the last change always lands."""
        wait = self.rt.status_throttle_seconds - (time.monotonic() - self._last_push)
        if not force and wait > 0:
            if self._pending is None or self._pending.done():
                self._pending = asyncio.create_task(self._delayed(wait))
            return
        await self._push_now(done)

    async def _delayed(self, wait: float) -> None:
        await asyncio.sleep(wait)
        await self._push_now(False)

    async def _push_now(self, done: bool) -> None:
        await self.rt.yield_to_inbound()  # a card edit can wait while deliveries are being acked
        async with self._lock:
            await self.rt.card_turn(self.session.id)
            self._last_push = time.monotonic()
            card = self.state.card(self.session.id, done=done)
            try:
                if self.ref is None:
                    self.ref = await self.adapter.post_card(self.conv, card)
                else:
                    await self.adapter.update_card(self.ref, card)
            except Exception:
                log.exception("status card update failed for session %s", self.session.id)
                return
            snapshot = {"ref": self.ref.to_json(), "state": self.state.to_json()}
            async with self.rt.db.transaction() as db:
                await db.execute(update(Session).where(Session.id == self.session.id).values(status_card=snapshot))
            self.session.status_card = snapshot

    async def close(self) -> None:
        self.activity.close()
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()


async def release_reservation(rt: Runtime, s: Session, approval_id: str, tool: str, why: str) -> None:
    """An approved spend that did not happen (the Hub refused it) gives its reservation back."""
    async with rt.db.transaction() as db:
        res = await db.execute(update(SpendEntry).where(SpendEntry.ref == approval_id, SpendEntry.final.is_(False))
                               .values(amount_usd=0.0, final=True))
        if res.rowcount:
            audit.record(db, "launch_failed", platform=s.platform, workspace=s.workspace, channel=s.channel,
                         session_id=s.id, approval_id=approval_id, tool=tool, reason=why[:500])


async def add_llm_spend(db: Any, s: Session, user: str, amount: float) -> None:
    """LLM spend counts toward the channel budget: one running entry per session and month."""
    ref = f"llm:{s.id}:{month_of()}"
    row = (await db.execute(select(SpendEntry).where(SpendEntry.ref == ref))).scalar_one_or_none()
    if row is None:
        db.add(SpendEntry(platform=s.platform, workspace=s.workspace, channel=s.channel, session_id=s.id,
                          user_id=user, kind="llm", ref=ref, amount_usd=amount, final=True, month=month_of()))
    else:
        await db.execute(update(SpendEntry).where(SpendEntry.ref == ref).values(
            amount_usd=SpendEntry.amount_usd + amount))


def spend_line(llm: float, jobs: float) -> str:
    return f"LLM {money(llm)} · jobs {money(jobs)}"
