"""The agent's only doors to the outside. The bot (or a test) plugs in the implementations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from intern.agent.events import AgentEvent


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text as the model produced it


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class LLMResponse:
    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    model: str = ""


class LLM(Protocol):
    async def complete(
        self, *, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
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
    requester: str
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
