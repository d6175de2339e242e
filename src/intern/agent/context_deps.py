"""What a tool receives: its dependencies, passed in, never global."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from intern.agent.hub import HubClient
    from intern.agent.plan import PlanState
    from intern.agent.ports import EventSink
    from intern.agent.pricing import PriceTable


@dataclass
class AgentConfig:
    model: str
    research_model: str
    max_iterations: int = 300
    context_window_tokens: int | None = None
    hf_endpoint: str = "https://huggingface.co"
    namespace: str | None = None
    datasets_server_url: str = "https://datasets-server.huggingface.co"
    semantic_scholar_url: str = "https://api.semanticscholar.org"
    arxiv_url: str = "https://arxiv.org"


@dataclass
class ToolContext:
    session_id: str
    config: AgentConfig
    hub: HubClient
    http: httpx.AsyncClient
    prices: PriceTable
    plan: PlanState
    events: EventSink
    call_id: str = ""
    approval_id: str | None = None  # set while executing an approved call
    extras: dict[str, Any] = field(default_factory=dict)  # docs index, caches, sandbox manager, llm

    def for_call(self, call_id: str, approval_id: str | None = None) -> ToolContext:
        return ToolContext(
            session_id=self.session_id, config=self.config, hub=self.hub, http=self.http,
            prices=self.prices, plan=self.plan, events=self.events, call_id=call_id,
            approval_id=approval_id, extras=self.extras,
        )
