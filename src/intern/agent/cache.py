"""An in-process implementation of the Cache port (used by `intern demo` and the research sub-agent's
short-lived lookups; the bot plugs in the database-backed one)."""

from __future__ import annotations

import time


class MemoryCache:
    def __init__(self) -> None:
        self._data: dict[str, tuple[float, str]] = {}

    async def get(self, key: str) -> str | None:
        hit = self._data.get(key)
        if hit is None or hit[0] < time.time():
            self._data.pop(key, None)
            return None
        return hit[1]

    async def set(self, key: str, value: str, ttl_seconds: float) -> None:
        self._data[key] = (time.time() + ttl_seconds, value)
