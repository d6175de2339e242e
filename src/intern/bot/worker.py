"""Workers: take the sessions that have work from the queue and work their items in order, one turn at
a time; a stop item stops the session. Claiming and leases are `queue.py`'s, a turn is `turns.py`'s,
stopping is `stopping.py`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from intern.agent.errors import retryable
from intern.bot.models import Session, WorkItem
from intern.bot.queue import WorkQueue
from intern.bot.runtime import Runtime
from intern.bot.sessions import conversation_of
from intern.bot.stopping import Stopping
from intern.bot.store import Backoff, log_failure
from intern.bot.transcripts import TranscriptWriter
from intern.bot.turns import Turns

log = logging.getLogger(__name__)

# A work item that keeps failing on database errors is given up after this many attempts.
MAX_TRANSIENT_ATTEMPTS = 12


def now() -> datetime:
    return datetime.now(UTC)


class Worker:
    def __init__(self, rt: Runtime, slots: int | None = None, poll_seconds: float = 1.0) -> None:
        self.rt = rt
        self.slots = slots or rt.settings.workers
        self.poll_seconds = poll_seconds
        self.queue = WorkQueue(rt, self.slots, on_held=self._held_changed)
        self.transcripts = TranscriptWriter(rt)
        self.turns = Turns(rt, self.transcripts)
        self.stopping = Stopping(rt)

    @property
    def running(self) -> dict[str, Any]:
        return self.queue.in_hand

    def _held_changed(self, count: int) -> None:
        self.rt.active_turns = count  # the status cards' edit rate follows it

    async def claim(self, room: int = 1) -> list[str]:
        return await self.queue.claim(room)

    async def run(self) -> None:
        backoff = Backoff(first=0.2, cap=5.0)
        while self.queue.accepting:
            await self.rt.yield_to_inbound()
            claimed: list[str] = []
            if len(self.running) < self.slots:
                try:
                    claimed = await self.claim(self.slots - len(self.running))
                    backoff.reset()
                except Exception as exc:
                    await self.claim_failed(exc, backoff)
            for sid in claimed:
                self.running[sid] = asyncio.create_task(self.work_session(sid), name=f"session-{sid}")
            if claimed:
                continue
            self.rt.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.rt.wake.wait(), timeout=self.poll_seconds)

    async def claim_failed(self, exc: Exception, backoff: Backoff) -> None:
        if log_failure(log, exc, "claiming work", "retrying with backoff"):
            await asyncio.sleep(backoff.next_delay())

    async def drain(self, timeout: float = 30.0) -> None:
        """Graceful stop: take no new work, let turns in hand finish (or release them)."""
        self.queue.accepting = False
        self.rt.wake.set()
        tasks = list(self.running.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for t in pending:
                t.cancel()
            for t in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    async def work_session(self, sid: str) -> None:
        released = False
        try:
            item = await self.queue.advance(sid, None)
            while item is not None:
                done = await self.queue.with_heartbeat(sid, self.handle(sid, item),
                                                       cancel_on_stop=item.kind != "stop")
                item = await self.queue.advance(sid, item.id if done else None)
            released = True
        except Exception as exc:
            log_failure(log, exc, f"session {sid}", "the session is released")
        finally:
            if not released:
                await self.queue.release(sid)
            self.queue.let_go(sid)
            self.rt.poke()

    async def handle(self, sid: str, item: WorkItem) -> bool:
        """Work one item. True when it ended normally (the caller records it done with the next
        step); otherwise its outcome is recorded here."""
        try:
            if item.kind == "stop":
                await self.stopping.run(sid, item)
            else:
                await self.turns.run(sid, item)
        except asyncio.CancelledError:
            stopping = await self.queue.stop_requested(sid)
            await self.queue.finish_item(item.id, "done" if stopping else "queued")
            if not stopping:
                raise
            return False
        except Exception as exc:
            await self.item_failed(sid, item, exc)
            return False
        return True

    async def item_failed(self, sid: str, item: WorkItem, exc: Exception) -> None:
        if retryable(exc) and item.attempts < MAX_TRANSIENT_ATTEMPTS:
            # The database (or the connection to it) went away mid-turn: the transcript holds every
            # step taken, so the item is simply worked again a little later.
            delay = min(60.0, 0.5 * 2 ** item.attempts)
            log.warning("session %s: work item %s interrupted by %s; again in %.0fs", sid, item.id,
                        type(exc).__name__, delay)
            await self.queue.finish_item(item.id, "queued", available_at=now() + timedelta(seconds=delay))
            return
        log.error("session %s: work item %s failed", sid, item.id, exc_info=exc)
        await self.queue.finish_item(item.id, "failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        await self.tell(sid, "🛑 Something went wrong on my side while working on this "
                             f"({type(exc).__name__}). Your message is saved; reply to try again.")

    async def tell(self, sid: str, text: str) -> None:
        with contextlib.suppress(Exception):
            async with self.rt.db.session() as db:
                s = await db.get(Session, sid)
            if s is not None:
                await self.rt.adapter(s.platform).post(conversation_of(s), text)
