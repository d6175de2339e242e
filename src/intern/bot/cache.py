"""The Cache port stored in the database, so a restart does not re-fetch what is still fresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from intern.bot.models import CacheEntry
from intern.bot.store import Database

MAX_KEY = 255


def _key(key: str) -> str:
    if len(key) <= MAX_KEY:
        return key
    import hashlib

    return key[:190] + "#" + hashlib.sha256(key.encode()).hexdigest()


class DbCache:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, key: str) -> str | None:
        async with self.db.session() as s:
            row = (await s.execute(select(CacheEntry).where(CacheEntry.key == _key(key)))).scalar_one_or_none()
        if row is None or row.expires_at <= datetime.now(UTC):
            return None
        return row.value

    async def set(self, key: str, value: str, ttl_seconds: float) -> None:
        k = _key(key)
        expires = datetime.now(UTC) + timedelta(seconds=ttl_seconds)
        for _ in range(2):
            try:
                async with self.db.transaction() as s:
                    row = await s.get(CacheEntry, k)
                    if row is None:
                        s.add(CacheEntry(key=k, value=value, expires_at=expires))
                    else:
                        row.value, row.expires_at = value, expires
                return
            except IntegrityError:
                continue  # another writer inserted the same key first: overwrite it

    async def purge(self) -> int:
        async with self.db.transaction() as s:
            res = await s.execute(delete(CacheEntry).where(CacheEntry.expires_at <= datetime.now(UTC)))
        return int(res.rowcount or 0)
