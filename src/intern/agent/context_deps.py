"""What a tool receives: its dependencies, passed in, never global.

`ToolContext` carries what every tool call has (the session, the Hub, the HTTP client, the price table,
the plan, the event sink); `ToolDeps` the services that only some tools use and that a process may
not provide. Each is a named, typed field; a tool that cannot do without one asks for it with
`required`, which tells the model plainly what this process lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from intern.agent.errors import ToolFeedback

if TYPE_CHECKING:
    import httpx

    from intern.agent.docs.index import DocsIndex
    from intern.agent.hub import HubClient
    from intern.agent.plan import PlanState
    from intern.agent.ports import (
        LLM,
        ApprovedCodeStore,
        Cache,
        EventSink,
        JobRegistry,
        LaunchLedger,
        SandboxRegistry,
        SpendGuard,
        TeamHistory,
        TextRedactor,
    )
    from intern.agent.pricing import PriceTable
    from intern.agent.retry import RetryPolicy

T = TypeVar("T")


@dataclass
class AgentConfig:
    model: str
    research_model: str
    max_iterations: int = 300
    context_window_tokens: int | None = None
    hf_endpoint: str = "https://huggingface.co"
    namespace: str | None = None
    runs_repo: str | None = None  # INTERN_RUNS_REPO; default <namespace>/intern-runs
    datasets_server_url: str = "https://datasets-server.huggingface.co"
    semantic_scholar_url: str = "https://api.semanticscholar.org"
    arxiv_url: str = "https://arxiv.org"


@dataclass
class ToolDeps:
    """The services tools use beyond the Hub; the composition root (or a test) fills in what it has."""

    llm: LLM | None = None  # the research sub-agent's model calls
    cache: Cache | None = None  # durable answers of slow lookups (viewer, price lists, paper sources)
    redactor: TextRedactor | None = None
    launches: LaunchLedger | None = None  # hf_jobs writes its launch intent here first
    sandboxes: SandboxRegistry | None = None
    docs_index: DocsIndex | None = None
    docs_stale: bool = False  # the index is overdue for a refresh
    s2_api_key: str | None = None  # Semantic Scholar's key, when the operator has one
    s2_retry: RetryPolicy | None = None  # how long paper sources wait out rate limits
    team_history: TeamHistory | None = None  # the runs of the turn's own workspace
    jobs: JobRegistry | None = None  # which Hub jobs are this workspace's, and who may control them
    budget: SpendGuard | None = None  # asked before every model call of the research sub-agent
    approved_code: ApprovedCodeStore | None = None  # the sandbox files each approval covers


class MissingDependency(ToolFeedback):
    """A tool needs a service this process was not given; the message says which and what to do."""


def required(dep: T | None, message: str) -> T:
    """`dep`, or a MissingDependency with `message` (it goes back to the model as the tool result)."""
    if dep is None:
        raise MissingDependency(message)
    return dep


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
    deps: ToolDeps = field(default_factory=ToolDeps)

    def for_call(self, call_id: str, approval_id: str | None = None) -> ToolContext:
        return ToolContext(
            session_id=self.session_id, config=self.config, hub=self.hub, http=self.http,
            prices=self.prices, plan=self.plan, events=self.events, call_id=call_id,
            approval_id=approval_id, deps=self.deps,
        )
