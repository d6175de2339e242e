"""Fair claiming: one channel or one user with a long queue of sessions does not take every worker.
Real Worker.claim on the database (SQLite, and PostgreSQL when set)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from intern.bot.models import Session, WorkItem
from intern.bot.store import Database
from intern.bot.worker import Claimable, Worker, fair_pick
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
    assert quiet in claimed and len(claimed) == 4
    assert len(set(claimed) & set(busy)) == 3


async def test_one_user_alone_never_holds_every_worker(db: Database) -> None:
    await add_sessions(db, "C1", ["U_SAME"] * 3, datetime.now(UTC) - timedelta(hours=1))
    await add_sessions(db, "C2", ["U_SAME"] * 3, datetime.now(UTC) - timedelta(hours=1))
    worker = Worker(make_runtime(db), slots=3)
    assert len(await worker.claim(3)) == 2
    assert await worker.claim(3) == []  # the third slot stays for someone else


def test_each_pick_goes_to_the_channel_and_user_holding_the_fewest() -> None:
    held = [Claimable("h1", "A", "u1"), Claimable("h2", "A", "u2")]
    candidates = [Claimable("a3", "A", "u3"), Claimable("b1", "B", "u1"), Claimable("c1", "C", "u4")]
    assert [c.id for c in fair_pick(candidates, 2, held, slots=8)] == ["c1", "b1"]
    assert fair_pick(candidates, 1, [], slots=1) == [candidates[0]]
