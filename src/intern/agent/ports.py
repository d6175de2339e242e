"""The agent's only doors to the outside. The bot (or a test) plugs in the implementations."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from intern.agent.events import AgentEvent

if TYPE_CHECKING:
    from intern.agent.code_files import CodeSnapshot


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text as the model produced it


@dataclass(frozen=True)
class Usage:
    """`prompt_tokens` counts every input token, those read from and written to the provider's prompt
    cache included; `cost_usd` is priced with the provider's cache prices."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(frozen=True)
class LLMResponse:
    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    model: str = ""


# Told before the LLM port waits to retry a failed call: (attempt, seconds until the next, the error).
RetryCallback = Callable[[int, float, BaseException], Awaitable[None]]


class LLM(Protocol):
    async def complete(
        self, *, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
        on_retry: RetryCallback | None = None,
    ) -> LLMResponse: ...

    def count_tokens(self, model: str, messages: list[dict[str, Any]]) -> int: ...

    def context_window(self, model: str) -> int: ...


class EventSink(Protocol):
    async def emit(self, event: AgentEvent) -> None: ...


class Transcript(Protocol):
    """Durable, append-only conversation storage. `append` returns only once the message is stored."""

    async def append(self, message: dict[str, Any]) -> None: ...


GateStatus = Literal["pending", "approved", "denied", "expired", "cancelled"]


@dataclass(frozen=True)
class GateAnswer:
    status: GateStatus
    approval_id: str | None = None
    spec: dict[str, Any] | None = None  # the exact approved arguments (status == approved)
    by: str | None = None
    reason: str | None = None
    auto: bool = False


class ApprovalGate(Protocol):
    """Decides whether a call that spends money or writes to the Hub may run.

    `lookup` answers from the stored decision for a call already requested (None if never asked).
    `request` creates the approval (posting the card, or auto-approving within policy) and answers.
    Nothing is held in memory: a resumed turn asks again and gets the stored answer.
    """

    async def lookup(self, call_id: str) -> GateAnswer | None: ...

    async def request(self, request: Any) -> GateAnswer: ...


class Cache(Protocol):
    """A durable key/value cache with a time to live (the bot stores it in the database)."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl_seconds: float) -> None: ...


@dataclass(frozen=True)
class RunSummary:
    """One earlier run of the workspace, as the team's memory gives it."""

    hf_job_id: str
    launched_at: str  # ISO time, UTC
    requester: str  # the person's id on the platform
    task: str
    outcome: str  # running|completed|failed|cancelled|timed_out
    flavor: str
    timeout_seconds: int
    method: str | None = None
    base_model: str | None = None
    datasets: tuple[str, ...] = ()  # "id (config/split)"
    hyperparams: dict[str, Any] = field(default_factory=dict)
    runtime_seconds: float | None = None
    cost_usd: float | None = None
    error_signature: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    output_repo: str | None = None
    code_pin: str | None = None
    url: str | None = None


class TeamHistory(Protocol):
    """The runs of the workspace the turn belongs to (never another workspace's)."""

    async def runs(self, query: str, status: str | None, limit: int) -> list[RunSummary]:
        """Matching runs, newest first; ValueError for a `status` that names no outcome."""
        ...

    async def similar(self, base_model: str, dataset: str) -> tuple[RunSummary | None, RunSummary | None]:
        """The latest failed (or timed out) and the latest completed run on this model and dataset."""
        ...

    def mention(self, user: str) -> str:
        """A person as the conversation writes them (a mention the model can write back)."""
        ...


JobKind = Literal["job", "scheduled"]


@dataclass(frozen=True)
class JobAccess:
    """What the bot knows of a Hub job or schedule id, for the turn that asks."""

    ours: bool  # launched by Intern for the session's platform and workspace
    may_control: bool = False  # the turn may cancel, suspend or delete it
    refusal: str | None = None  # why not, in words for the model and the thread


class JobRegistry(Protocol):
    """The jobs and schedules Intern launched, as the bot records them. Bound to one turn: its
    session's workspace and channel, and the requester of the turn."""

    async def access(self, hub_id: str, kind: JobKind) -> JobAccess: ...

    async def ours(self, hub_ids: list[str], kind: JobKind) -> set[str]:
        """The subset of `hub_ids` that are this workspace's."""
        ...


class ApprovedCodeStore(Protocol):
    """The code from a sandbox that each approval covers, stored with it when its card was prepared."""

    async def load(self, approval_id: str) -> CodeSnapshot | None:
        """The approval's files, exactly as listed on its card; None when it covers no code."""
        ...


class LaunchLedger(Protocol):
    """The bot's record of launches: an approval's launch is written down before the Hub is asked."""

    async def intent(self, session_id: str, approval_id: str, namespace: str) -> None:
        """Store that this approval is about to be launched; returns once it is durable."""
        ...

    async def abandon(self, approval_id: str, reason: str) -> None:
        """The launch did not happen (the Hub refused it, or said nothing and has no such job)."""
        ...


@dataclass(frozen=True)
class SandboxRecord:
    id: str
    session_id: str
    space_id: str
    hardware: str
    hourly_usd: float
    url: str | None
    token: str


class SandboxRegistry(Protocol):
    """Durable record of every sandbox, and the deleting of them. Implemented by `bot/sandboxes.py`."""

    poll_seconds: float  # between two looks at a starting Space's stage
    start_timeout_seconds: float  # longest wait for a Space to build and start
    idle_ttl_seconds: float  # a sandbox unused this long is deleted

    def session_lock(self, session_id: str) -> asyncio.Lock:
        """Held while looking up or creating the session's sandbox (parallel calls share one)."""
        ...

    async def record(self, *, session_id: str, space_id: str, hardware: str, hourly_usd: float,
                     token: str) -> str:
        """Store a sandbox about to be created (status creating); the token is stored encrypted."""
        ...

    async def mark_running(self, sandbox_id: str, url: str) -> bool:
        """creating → running. False when it was ended meanwhile (the caller then discards it)."""
        ...

    async def starting(self, sandbox_id: str) -> bool:
        """Still wanted: recorded as creating, not ended meanwhile."""
        ...

    async def live(self, session_id: str) -> SandboxRecord | None:
        """The session's running sandbox, with its token decrypted; None if there is none usable."""
        ...

    async def touch(self, sandbox_id: str) -> None: ...

    async def discard(self, sandbox_id: str, reason: str) -> bool:
        """Delete the sandbox's Space now (True when it is gone); if the Hub refuses, keep retrying later."""
        ...


class TextRedactor(Protocol):
    """Takes known secrets and secret-shaped strings out of text before it is stored or shown."""

    def redact(self, text: str) -> str: ...

    def redact_obj(self, obj: Any) -> Any: ...


class SpendGuard(Protocol):
    """Whether the turn may spend `estimate_usd` more on the model (the channel's and the workspace's
    budgets). Returns None when it may, else what to tell the thread."""

    async def refusal(self, estimate_usd: float) -> str | None: ...
