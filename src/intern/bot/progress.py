"""The status card: one throttled message per session, drawn from the card's state.

It only draws. What an event changes durably (a job, spend, the audit trail, a reply) is written by
`effects.py`, which hands each event on to the card afterwards; the card's own snapshot is stored
through the `save` it is given.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from intern.agent import events as ev
from intern.bot.activity import THINKING, Activity, status_for
from intern.bot.cards import StatusState, money
from intern.bot.chat import MessageRef
from intern.bot.models import Session
from intern.bot.runtime import Runtime
from intern.bot.sessions import conversation_of

log = logging.getLogger(__name__)

# Stores the card's snapshot (its message and state) for the session.
SaveCard = Callable[[str, dict[str, Any]], Awaitable[None]]


class ProgressSink:
    def __init__(self, rt: Runtime, session: Session, save: SaveCard) -> None:
        self.rt, self.session, self.save = rt, session, save
        self.conv = conversation_of(session)
        self.state = StatusState.from_json((session.status_card or {}).get("state"))
        self.ref = MessageRef.from_json(session.status_card["ref"]) if (session.status_card or {}).get("ref") else None
        self._last_push = 0.0
        self._pending: asyncio.Task[None] | None = None
        self._changes = 0  # pushes asked for so far
        self._drawn = 0  # of those, how many the card last drawn includes
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

    async def on_ToolStarted(self, e: ev.ToolStarted) -> None:
        self.state.step = f"{e.name} {e.summary}".strip()[:200]
        await self.push()
        await self.activity.show(status_for(e.name))

    async def on_ToolFinished(self, e: ev.ToolFinished) -> None:
        if "job" in e.artifacts:
            job = e.artifacts["job"]
            self.state.jobs[job["hf_job_id"]] = job.get("stage", "SCHEDULING")
            await self.push(force=True)

    async def on_PlanUpdated(self, e: ev.PlanUpdated) -> None:
        self.state.plan = [dict(t) for t in e.todos]
        await self.push()

    async def on_ResearchProgress(self, e: ev.ResearchProgress) -> None:
        self.state.research[e.call_id] = f"step {e.step}: {e.summary}"[:150]
        await self.push()

    async def on_UsageRecorded(self, e: ev.UsageRecorded) -> None:
        self.state.llm_cost_usd += e.cost_usd  # shown at the next edit

    async def finish(self, phase: str) -> None:
        self.state.phase, self.state.step = phase, ""
        await self.activity.show("")
        await self.push(force=True, done=phase != "Waiting for approval")

    async def push(self, force: bool = False, done: bool = False) -> None:
        """Edit the status card at most every few seconds; the last change always lands."""
        self._changes += 1
        wait = self.rt.status_throttle_seconds - (time.monotonic() - self._last_push)
        if not force and wait > 0:
            if self._pending is None or self._pending.done():
                self._pending = asyncio.create_task(self._delayed(wait))
            return
        await self._push_now(done)

    async def _delayed(self, wait: float) -> None:
        await asyncio.sleep(wait)
        await self._push_now(False)
        if self._drawn != self._changes:  # changed while this edit was under way: one more edit, later
            self._pending = asyncio.create_task(self._delayed(self.rt.status_throttle_seconds))

    async def _push_now(self, done: bool) -> None:
        await self.rt.yield_to_inbound()  # a card edit can wait while deliveries are being acked
        async with self._lock:
            await self.rt.card_turn(self.session.id)
            self._last_push = time.monotonic()
            drawn = self._changes
            card = self.state.card(self.session.id, done=done)
            try:
                if self.ref is None:
                    self.ref = await self.adapter.post_card(self.conv, card)
                else:
                    await self.adapter.update_card(self.ref, card)
            except Exception:
                log.exception("status card update failed for session %s", self.session.id)
                return
            self._drawn = drawn
            snapshot = {"ref": self.ref.to_json(), "state": self.state.to_json()}
            await self.save(self.session.id, snapshot)
            self.session.status_card = snapshot

    async def close(self) -> None:
        self.activity.close()
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()


def spend_line(llm: float, jobs: float) -> str:
    return f"LLM {money(llm)} · jobs {money(jobs)}"
