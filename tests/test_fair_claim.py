"""Fair claiming: one channel or one user with a long queue of sessions does not take every worker.
Real Worker.claim on the database (SQLite, and PostgreSQL when set)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from intern.bot.models import Session, WorkItem
from intern.bot.queue import Claimable, fair_pick
from intern.bot.store import Database
from intern.bot.worker import Worker
from tests.test_inbound_priority import make_runtime


async def add_sessions(db: Database, channel: str, users: list[str], start: datetime) -> list[str]:
    ids = []
    async with db.transaction() as tx:
        for i, user in enumerate(users):
            s = Session(platform="slack", workspace="T1", channel=channel, thread=f"{channel}.{i}", started_by=user,
                        updated_at=start + timedelta(seconds=i))
            tx.add(s)
            await tx.flush()
            tx.add(WorkItem(session_id=s.id, kind="message", payload={"user": user}))
            ids.append(s.id)
    return ids


async def test_a_busy_channel_leaves_a_worker_to_another_channel(db: Database) -> None:
    old = datetime.now(UTC) - timedelta(hours=1)
    busy = await add_sessions(db, "C_BUSY", [f"U{i}" for i in range(10)], old)
    [quiet] = await add_sessions(db, "C_QUIET", ["U_Q"], old + timedelta(minutes=5))
    worker = Worker(make_runtime(db), slots=4)
    claimed = await worker.claim(4)
    assert quiet in claimed and len(claimed) == 4  # the newest, yet not behind the busy channel's queue
    assert len(set(claimed) & set(busy)) == 3


async def test_a_slot_that_comes_free_goes_to_the_channel_that_has_none(db: Database) -> None:
    old = datetime.now(UTC) - timedelta(hours=1)
    busy = await add_sessions(db, "C_BUSY", [f"U{i}" for i in range(10)], old)
    worker = Worker(make_runtime(db), slots=3)
    first = await worker.claim(3)
    assert set(first) <= set(busy) and len(first) == 3  # nobody else waits: every slot is used
    [newcomer] = await add_sessions(db, "C_NEW", ["U_NEW"], old + timedelta(minutes=5))
    done = first[0]
    await worker.queue.release(done)
    worker.queue.owners.pop(done)
    await db_done(db, done)
    assert await worker.claim(1) == [newcomer]  # before the seven older sessions of the busy channel


async def db_done(db: Database, sid: str) -> None:
    async with db.transaction() as tx:
        await tx.execute(update(WorkItem).where(WorkItem.session_id == sid).values(status="done"))


def test_each_pick_goes_to_the_channel_and_user_holding_the_fewest() -> None:
    held = [Claimable("h1", "A", "u1"), Claimable("h2", "A", "u2")]
    candidates = [Claimable("a3", "A", "u3"), Claimable("b1", "B", "u1"), Claimable("c1", "C", "u4")]
    assert [c.id for c in fair_pick(candidates, 2, held)] == ["c1", "b1"]
    assert [c.id for c in fair_pick(candidates, 3, held)] == ["c1", "b1", "a3"]
    assert fair_pick(candidates, 1, []) == [candidates[0]]
