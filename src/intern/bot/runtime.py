"""The running application's parts, assembled once by `wiring.py` and passed around explicitly."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from intern.agent.ports import SandboxRegistry

if TYPE_CHECKING:
    import httpx

    from intern.agent.docs.index import DocsIndex
    from intern.agent.guardrails.redaction import Redactor
    from intern.agent.hub import HubClient
    from intern.agent.ports import LLM, Cache
    from intern.agent.pricing import PriceTable
    from intern.agent.tools.base import ToolRegistry
    from intern.agent.tools.mcp import McpConnections
    from intern.bot.chat import ChatAdapter, Mention
    from intern.bot.settings import Settings
    from intern.bot.store import Database


def process_identity() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_gone(owner: str) -> bool:
    """A lease owner (see `process_identity`) that was a process on this host which no longer runs.
    Owners on other hosts, or that cannot be read, are never taken for gone."""
    host, _, rest = owner.partition(":")
    pid, _, _ = rest.partition(":")
    if host != socket.gethostname()[:30] or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it runs, as another user
    return False


class Sandboxes(SandboxRegistry, Protocol):
    """The sandbox registry as the bot uses it besides the tools: ending a session's sandboxes, sweeping."""

    async def end_session(self, session_id: str) -> None: ...

    async def sweep(self) -> None: ...


class JobsFollowed(Protocol):
    """The job watcher, as the rest of the process sees it."""

    def wake(self) -> None:
        """A job was launched or must be looked at: sweep now."""
        ...

    def points_of(self, job_id: str) -> dict[str, Any] | None:
        """The metric points of a job this process follows, as of now (None: not followed here)."""
        ...


@dataclass
class Runtime:
    settings: Settings
    db: Database
    hub: HubClient
    prices: PriceTable
    llm: LLM
    tools: ToolRegistry
    redactor: Redactor
    http: httpx.AsyncClient
    cache: Cache
    adapters: dict[str, ChatAdapter] = field(default_factory=dict)
    owner: str = field(default_factory=process_identity)
    # Optional parts, plugged in by the composition root when this process has them.
    sandboxes: Sandboxes | None = None
    docs_index: DocsIndex | None = None
    mcp: McpConnections | None = None
    s2_api_key: str | None = None
    job_watcher: JobsFollowed | None = None  # woken when a job is launched
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Seconds; kept here so tests can shorten them without touching the environment.
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 5.0
    sweep_seconds: float = 5.0
    status_throttle_base: float = 2.0
    # Status cards are edited at most every `status_throttle_seconds` per session. Beyond
    # `busy_turns` turns at once the interval grows so that the process as a whole edits about
    # `status_edits_per_second` cards a second: Slack rate-limits chat.update per workspace, and each
    # edit also costs a database write.
    # Job supervision: how often a followed job's new log lines are read (alerts, card), and how long
    # a running job's GPUs may stay idle before that is an alert. A 2 s beat reads each stream half as
    # often as 1 s (bench/supervision.py measures following 200 jobs); cards are edited at most once a
    # second per thread either way, and alerts are minutes-scale.
    supervise_seconds: float = 2.0
    gpu_idle_seconds: float = 600.0
    # A followed job's live state (progress, metrics, GPU: what a card or command elsewhere shows) is
    # written at most this often, all jobs' in one transaction a beat; its metric points (only read by
    # `chart` in another process: this one charts from memory) less often, as they grow to thousands.
    live_write_seconds: float = 5.0
    points_write_seconds: float = 30.0
    busy_turns: int = 20
    status_edits_per_second: float = 10.0
    active_turns: int = 0

    def __post_init__(self) -> None:
        from intern.bot.models import attach_redactor

        self.db.before_background_write = self.yield_to_inbound
        attach_redactor(self.db.engine, self.redactor)  # every text column is redacted with it

    @property
    def status_throttle_seconds(self) -> float:
        crowd = max(0, self.active_turns - self.busy_turns) / self.status_edits_per_second
        return max(self.status_throttle_base, crowd)

    @status_throttle_seconds.setter
    def status_throttle_seconds(self, value: float) -> None:
        self.status_throttle_base = value

    def adapter(self, platform: str) -> ChatAdapter:
        try:
            return self.adapters[platform]
        except KeyError:
            raise LookupError(f"no chat adapter for platform {platform!r} in this process") from None

    # Mentions as a platform spells and stores them; without its adapter in this process a person is
    # their bare id and a mention reads as @name.
    def spell(self, platform: str, text: str) -> str:
        """`text` (with mention tokens) as `platform` writes it: for what is stored as the chat said it."""
        from intern.bot.chat import spell_mentions

        adapter = self.adapters.get(platform)
        return adapter.spell(text) if adapter else spell_mentions(text, lambda m: "@" + (m.label or m.id))

    def mention_key(self, platform: str, mention: Mention) -> str:
        adapter = self.adapters.get(platform)
        return adapter.mention_key(mention) if adapter else mention.id

    def mention_of_key(self, platform: str, key: str) -> Mention:
        from intern.bot.chat import Mention

        adapter = self.adapters.get(platform)
        return adapter.mention_of_key(key) if adapter else Mention.user(key)

    last_inbound: float = 0.0
    # When each session's status card was last edited (monotonic): whoever edits it (a turn, the
    # followers of its jobs) waits for its turn, so that a card is edited at most once a second.
    card_edits: dict[str, float] = field(default_factory=dict)

    async def card_turn(self, key: str, interval: float = 1.0) -> None:
        wait = self.card_edits.get(key, 0.0) + interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self.card_edits[key] = time.monotonic()

    def note_inbound(self) -> None:
        self.last_inbound = time.monotonic()

    async def yield_to_inbound(self, quiet: float = 0.05, max_wait: float = 1.0) -> None:
        """Background work waits while deliveries are arriving (up to `max_wait`), so a burst of
        Slack events is acked before the CPU goes to model calls. The platform's deadline is 3 s."""
        deadline = time.monotonic() + max_wait
        while time.monotonic() < deadline:
            idle = time.monotonic() - self.last_inbound
            if idle >= quiet:
                return
            await asyncio.sleep(quiet - idle)

    def poke(self) -> None:
        """Tell this process's workers there is new work (other processes find it by polling)."""
        self.wake.set()
