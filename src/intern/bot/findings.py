"""What `intern doctor` reports, and the port through which each chat adapter offers its own checks:
the doctor knows no platform's client library and none of an adapter's tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from intern.bot.settings import Settings
    from intern.bot.store import Database

Status = Literal["ok", "warn", "fail"]
NETWORK_TIMEOUT = 15.0  # seconds for one network check


@dataclass(frozen=True)
class Finding:
    area: str
    status: Status
    text: str
    fix: str = ""


class PlatformChecks(Protocol):
    """One chat platform's part of `intern doctor`. Each method says nothing (an empty list) when the
    platform is not configured."""

    area: str  # how the report names the platform, e.g. "Slack"

    def settings(self, s: Settings) -> list[Finding]:
        """The platform's settings on their own (no network, no database)."""
        ...

    async def stored(self, db: Database, s: Settings) -> list[Finding]:
        """What the adapter keeps in the database (e.g. workspace installs), read with `db`."""
        ...

    async def connection(self, s: Settings) -> list[Finding]:
        """Whether the configured credentials work, asked of the platform's API."""
        ...
