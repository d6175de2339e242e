"""The durable work queue: claim a session with a lease, take its items in order, keep the lease with
a heartbeat, and record how each item ended. It knows sessions and work items, never what a turn does.

A session is claimed with a compare-and-set on its lease (on PostgreSQL the candidate rows are picked
with `FOR UPDATE SKIP LOCKED`), so one session is never worked by two workers or two processes at
once. A heartbeat extends the lease and notices a stop request; a process that dies simply stops
heartbeating and another process takes the session over when the lease lapses. A process that cannot
renew its lease (the database is away) gives the work up before the lease can lapse.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, exists, or_, select, update

from intern.agent.errors import retryable
from intern.bot.models import Session, WorkItem
from intern.bot.store import Database, retry_transient

log = logging.getLogger(__name__)

CLAIM_BATCH = 50


def now() -> datetime:
    return datetime.now(UTC)


class LeaseHost(Protocol):
    """What the queue needs of the running process (the runtime): its database, its name as a lease
    owner, and the lease's timing (tests shorten it)."""

    db: Database
    owner: str
    lease_seconds: float
    heartbeat_seconds: float


@dataclass(frozen=True)
class Claimable:
    id: str
    channel: str  # platform:workspace:channel
    user: str  # platform:starter


def fair_pick(candidates: list[Claimable], room: int, held: list[Claimable]) -> list[Claimable]:
    """Up to `room` of `candidates` (oldest first), fairly: each pick goes to the channel, then the
    user, holding the fewest sessions in hand, so one channel's or one user's long queue never keeps
    another's work waiting while slots come free. Nobody is kept waiting for fairness alone: work is
    taken whenever a slot is free."""
    channels = Counter(c.channel for c in held)
    users = Counter(c.user for c in held)
    left, chosen = list(candidates), []
    while left and len(chosen) < room:
        best = min(left, key=lambda c: (channels[c.channel], users[c.user]))  # ties: the oldest
        chosen.append(best)
        left.remove(best)
        channels[best.channel] += 1
        users[best.user] += 1
    return chosen


class WorkQueue:
    """The sessions this worker holds (`in_hand`), their leases and their items."""

    def __init__(self, host: LeaseHost, slots: int, on_held: Callable[[int], None] = lambda _n: None) -> None:
        self.host, self.slots, self.on_held = host, slots, on_held
        self.in_hand: dict[str, Any] = {}  # session id -> whatever the worker keeps for it (its task)
        self.owners: dict[str, Claimable] = {}  # channel and starter of each session in hand
        self.accepting = True
        self._held: dict[str, tuple[asyncio.Future[Any], bool]] = {}
        self._keeper: asyncio.Task[None] | None = None

    def let_go(self, sid: str) -> None:
        """The worker is done with the session (its lease was released or lapses)."""
        self.in_hand.pop(sid, None)
        self.owners.pop(sid, None)

    async def claim(self, room: int = 1) -> list[str]:
        """Lease up to `room` sessions that have work; returns their ids. Fairly: see `fair_pick`."""
        t = now()
        free = or_(Session.lease_owner.is_(None), Session.lease_expires_at < t)
        has_work = exists().where(WorkItem.session_id == Session.id, WorkItem.status.in_(("queued", "running")),
                                  WorkItem.available_at <= t)
        pick = select(Session.id, Session.platform, Session.workspace, Session.channel, Session.started_by) \
            .where(free, has_work)
        if self.in_hand:
            pick = pick.where(Session.id.not_in(list(self.in_hand)))
        # A wider window than the room, to choose from fairly.
        pick = pick.order_by(Session.updated_at).limit(CLAIM_BATCH)
        if self.host.db.is_postgres:
            pick = pick.with_for_update(skip_locked=True)
        async with self.host.db.transaction() as db:
            rows = [Claimable(r[0], f"{r[1]}:{r[2]}:{r[3]}", f"{r[1]}:{r[4]}") for r in (await db.execute(pick)).all()]
            chosen = fair_pick(rows, room, list(self.owners.values()))
            if not chosen:
                return []
            res = await db.execute(update(Session).where(and_(Session.id.in_([c.id for c in chosen]), free)).values(
                lease_owner=self.host.owner, lease_expires_at=t + timedelta(seconds=self.host.lease_seconds))
                .returning(Session.id))
            ids = list(res.scalars().all())
        self.owners.update({c.id: c for c in chosen if c.id in ids})
        return ids

    async def advance(self, sid: str, done_id: int | None) -> WorkItem | None:
        """In one transaction: record item `done_id` done, take the session's next item, and when
        there is none (or the process is stopping) release the session's lease."""
        async def once() -> WorkItem | None:
            async with self.host.db.transaction() as db:
                if done_id is not None:
                    await db.execute(update(WorkItem).where(
                        WorkItem.id == done_id, WorkItem.lease_owner == self.host.owner).values(
                        status="done", error=None, lease_owner=None, finished_at=now()))
                item = await self.take_next(db, sid) if self.accepting else None
                if item is None:
                    await db.execute(update(Session).where(Session.id == sid, Session.lease_owner == self.host.owner)
                                     .values(lease_owner=None, lease_expires_at=None))
                return item

        return await retry_transient(once, attempts=6)  # type: ignore[no-any-return]

    async def take_next(self, db: Any, sid: str) -> WorkItem | None:
        item = (await db.execute(select(WorkItem).where(
            WorkItem.session_id == sid, WorkItem.status.in_(("queued", "running")),
            WorkItem.available_at <= now()).order_by(WorkItem.id).limit(1))).scalar_one_or_none()
        if item is None:
            return None
        item.status, item.lease_owner, item.attempts = "running", self.host.owner, item.attempts + 1
        return item  # type: ignore[no-any-return]

    async def release(self, sid: str) -> None:
        async def once() -> None:
            async with self.host.db.transaction() as db:
                await db.execute(update(Session).where(Session.id == sid, Session.lease_owner == self.host.owner)
                                 .values(lease_owner=None, lease_expires_at=None))

        try:
            await retry_transient(once, attempts=4)
        except Exception:
            log.warning("session %s: lease not released (it lapses by itself)", sid)

    async def with_heartbeat(self, sid: str, work: Any, cancel_on_stop: bool = True) -> Any:
        """Run one item of a leased session and return what it returns (None when cancelled); the
        lease keeper renews the lease meanwhile and cancels the work when the session is stopped or
        its lease is lost."""
        task = asyncio.ensure_future(work)
        self._held[sid] = (task, cancel_on_stop)
        self.on_held(len(self._held))
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self.keep_leases(), name="lease-keeper")
        try:
            return await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
            return None
        finally:
            if self._held.get(sid, (None,))[0] is task:
                del self._held[sid]
            self.on_held(len(self._held))

    async def keep_leases(self) -> None:
        """One heartbeat for every session this process is working on: a single UPDATE per beat
        extends all their leases and reads their stop flags (a beat per session would cost a
        transaction per session per second)."""
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while self._held:
            await asyncio.sleep(min(self.host.heartbeat_seconds, 1.0))
            held = dict(self._held)
            if not held:
                break
            try:
                flags = await self.renew(list(held))
            except Exception as exc:
                # Past this point another process may already hold the leases: give the turns up.
                if loop.time() - renewed > self.host.lease_seconds * 0.75:
                    log.warning("leases not renewed for %.0fs (%s); giving %d turn(s) up", loop.time() - renewed,
                                type(exc).__name__, len(held))
                    for task, _ in held.values():
                        task.cancel()
                else:
                    log.warning("heartbeat failed (%s: %s)", type(exc).__name__, str(exc).splitlines()[0][:200])
                continue
            renewed = loop.time()
            for sid, (task, cancel_on_stop) in held.items():
                if self._held.get(sid, (None,))[0] is not task:
                    continue  # that item ended meanwhile (and its lease may have been released with it)
                if sid not in flags:
                    log.warning("session %s: lease lost, cancelling the turn", sid)
                    task.cancel()
                elif flags[sid] and cancel_on_stop:
                    task.cancel()

    async def renew(self, sids: list[str]) -> dict[str, bool]:
        """Extend the leases still ours; returns each one's stop flag. Rows are locked in id order,
        as every statement here that updates many sessions does, so that two cannot deadlock."""
        async with self.host.db.transaction() as db:
            mine = select(Session.id).where(Session.id.in_(sids), Session.lease_owner == self.host.owner)
            if self.host.db.is_postgres:
                # FOR NO KEY UPDATE, the lock the UPDATE takes anyway: it does not wait on the key-share
                # locks that inserting messages takes on the same sessions.
                mine = mine.order_by(Session.id).with_for_update(key_share=True)
            ids = list((await db.execute(mine)).scalars().all())
            if not ids:
                return {}
            res = await db.execute(update(Session).where(Session.id.in_(ids)).values(
                lease_expires_at=now() + timedelta(seconds=self.host.lease_seconds))
                .returning(Session.id, Session.stop_requested))
            return {row[0]: bool(row[1]) for row in res.all()}

    async def stop_requested(self, sid: str) -> bool:
        try:
            async with self.host.db.session() as db:
                s = await db.get(Session, sid)
                return bool(s and s.stop_requested)
        except Exception as exc:
            if not retryable(exc):
                raise
            return False

    async def finish_item(self, item_id: int, status: str, error: str | None = None,
                          available_at: datetime | None = None) -> None:
        """Record the item's end; only while it is still ours (a process that gave its lease up must
        not touch an item another process has taken over)."""
        values: dict[str, Any] = dict(status=status, error=error, lease_owner=None,
                                      finished_at=now() if status != "queued" else None)
        if available_at is not None:
            values["available_at"] = available_at

        async def once() -> None:
            async with self.host.db.transaction() as db:
                await db.execute(update(WorkItem).where(WorkItem.id == item_id,
                                                        WorkItem.lease_owner == self.host.owner).values(**values))

        try:
            await retry_transient(once, attempts=6)
        except Exception as exc:
            if not retryable(exc):
                raise
            log.warning("work item %s: could not record %s (%s); it is worked again later", item_id, status,
                        type(exc).__name__)
