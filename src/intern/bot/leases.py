"""Named leases: background work that one process at a time may do, across every process sharing the
database. A lease is taken with a compare-and-set on its row, renewed while the work goes on, and
lapses by itself when its holder dies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from intern.bot.models import Lease
from intern.bot.store import Database


def now() -> datetime:
    return datetime.now(UTC)


class Leases:
    def __init__(self, db: Database, owner: str) -> None:
        self.db, self.owner = db, owner

    async def acquire(self, name: str, seconds: float) -> bool:
        """True when this process now holds `name` (it was free, lapsed, or already ours)."""
        t = now()
        try:
            async with self.db.transaction() as db:
                res = await db.execute(update(Lease).where(
                    Lease.name == name, or_(Lease.owner == self.owner, Lease.expires_at < t)).values(
                    owner=self.owner, expires_at=t + timedelta(seconds=seconds)))
                if res.rowcount == 1:
                    return True
                if (await db.execute(select(Lease.name).where(Lease.name == name))).first() is not None:
                    return False  # held by another process
                db.add(Lease(name=name, owner=self.owner, expires_at=t + timedelta(seconds=seconds)))
        except IntegrityError:
            return False  # another process created it first
        return True

    async def renew(self, name: str, seconds: float) -> bool:
        async with self.db.transaction() as db:
            res = await db.execute(update(Lease).where(Lease.name == name, Lease.owner == self.owner)
                                   .values(expires_at=now() + timedelta(seconds=seconds)))
            return bool(res.rowcount)

    async def release(self, name: str) -> None:
        async with self.db.transaction() as db:
            await db.execute(update(Lease).where(Lease.name == name, Lease.owner == self.owner)
                             .values(expires_at=now()))
