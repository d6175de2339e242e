"""Typed events the agent emits; the bot decides how they look in a chat."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AgentEvent:
    pass


@dataclass(frozen=True)
class TurnStarted(AgentEvent):
    pass


@dataclass(frozen=True)
class AssistantReply(AgentEvent):
    """Text meant for the people in the thread."""

    text: str


@dataclass(frozen=True)
class ToolStarted(AgentEvent):
    call_id: str
    name: str
    summary: str


@dataclass(frozen=True)
class ToolFinished(AgentEvent):
    call_id: str
    name: str
    ok: bool
    summary: str
    artifacts: dict[str, Any] = field(default_factory=dict)
    approval_id: str | None = None  # set when this was an approved spend or Hub write


@dataclass(frozen=True)
class PlanUpdated(AgentEvent):
    todos: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class Notice(AgentEvent):
    """Something the thread should know that is not the model's prose (guard fired, compaction, ...)."""

    text: str
    level: str = "info"


@dataclass(frozen=True)
class ResearchProgress(AgentEvent):
    call_id: str
    step: int
    summary: str


@dataclass(frozen=True)
class UsageRecorded(AgentEvent):
    model: str
    prompt_tokens: int  # all input tokens, cached ones included
    completion_tokens: int
    cost_usd: float
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @classmethod
    def of(cls, model: str, usage: Any) -> UsageRecorded:
        """From the LLM port's `Usage`."""
        return cls(model, usage.prompt_tokens, usage.completion_tokens, usage.cost_usd,
                   usage.cache_read_tokens, usage.cache_write_tokens)
