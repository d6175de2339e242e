"""The research sub-agent on the real LiteLLM client against the scripted OpenAI-compatible stand-in,
with its tools on the Hub, dataset-viewer and arXiv stand-ins."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import pytest
from pydantic import BaseModel, Field

from intern.agent.cache import MemoryCache
from intern.agent.context_deps import AgentConfig, ToolContext, ToolDeps
from intern.agent.events import AgentEvent, ResearchProgress, UsageRecorded
from intern.agent.hub import HubClient
from intern.agent.llm import LiteLLM
from intern.agent.plan import PlanState
from intern.agent.pricing import PriceTable
from intern.agent.tools.base import Tool, ToolResult
from intern.standins.arxiv import ArxivStandIn
from intern.standins.datasets_server import DatasetsServerStandIn
from intern.standins.hub import HubStandIn
from intern.standins.llm import LLMStandIn

MAIN_MODEL = "openai/standin-model"
RESEARCH_MODEL = "openai/research-model"


class Recorder:
    """The event sink the bot would be: keeps every event in order."""

    def __init__(self) -> None:
        self.events: list[AgentEvent] = []

    async def emit(self, event: AgentEvent) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def progress(self) -> list[ResearchProgress]:
        return self.of(ResearchProgress)

    @property
    def usage(self) -> list[UsageRecorded]:
        return self.of(UsageRecorded)


@dataclass
class Env:
    llm: LLMStandIn
    hub: HubStandIn
    viewer: DatasetsServerStandIn
    arxiv: ArxivStandIn
    client: LiteLLM
    http: httpx.AsyncClient
    hub_client: HubClient
    made: list[ToolContext] = field(default_factory=list)

    def ctx(self, *, call_id: str = "call_research_1", model: str = MAIN_MODEL,
            research_model: str = RESEARCH_MODEL, window: int | None = None) -> ToolContext:
        config = AgentConfig(model=model, research_model=research_model, context_window_tokens=window,
                             hf_endpoint=self.hub.url, namespace=self.hub.user,
                             datasets_server_url=self.viewer.url, arxiv_url=self.arxiv.url,
                             semantic_scholar_url="http://127.0.0.1:9")
        ctx = ToolContext(session_id="s-research", config=config, hub=self.hub_client, http=self.http,
                          prices=PriceTable(), plan=PlanState(), events=Recorder(), call_id=call_id,
                          deps=ToolDeps(llm=self.client, cache=MemoryCache()))
        self.made.append(ctx)
        return ctx


@pytest.fixture
async def viewer() -> AsyncIterator[DatasetsServerStandIn]:
    async with DatasetsServerStandIn() as stand_in:
        yield cast(DatasetsServerStandIn, stand_in)


@pytest.fixture
async def arxiv() -> AsyncIterator[ArxivStandIn]:
    async with ArxivStandIn() as stand_in:
        yield cast(ArxivStandIn, stand_in)


@pytest.fixture
async def env(llm: LLMStandIn, hub: HubStandIn, viewer: DatasetsServerStandIn,
              arxiv: ArxivStandIn) -> AsyncIterator[Env]:
    client = LiteLLM(api_base=f"{llm.url}/v1", api_key="sk-research-test-0000", max_attempts=1)
    async with httpx.AsyncClient() as http:
        hub_client = HubClient(endpoint=hub.url, token=hub.token, namespace=hub.user)
        try:
            yield Env(llm, hub, viewer, arxiv, client, http, hub_client)
        finally:
            hub_client.close()


# --- a small read-only tool for the loop mechanics (counts, sizes and repetition are set by the test) ---

class LookupArgs(BaseModel):
    key: str = Field(description="What to look up")


def lookup_tool(content: Callable[[str], str] = lambda key: f"entry for {key}", *,
                name: str = "lookup", calls: list[str] | None = None) -> Tool:
    async def handler(ctx: Any, args: LookupArgs) -> ToolResult:
        if calls is not None:
            calls.append(args.key)
        return ToolResult(content(args.key))

    return Tool(name=name, description="Look something up (read-only).", args=LookupArgs, handler=handler)


# --- reading what the LLM stand-in received ---------------------------------------------------------

def tool_names(request: dict[str, Any]) -> set[str]:
    return {t["function"]["name"] for t in request.get("tools") or []}


def tool_results(request: dict[str, Any]) -> dict[str, str]:
    """name -> content of the tool messages in a request (the last one wins for a repeated name)."""
    return {m.get("name") or "?": str(m.get("content")) for m in request["messages"] if m["role"] == "tool"}


def user_texts(request: dict[str, Any]) -> list[str]:
    return [str(m.get("content")) for m in request["messages"] if m["role"] == "user"]


def research_requests(llm: LLMStandIn) -> list[dict[str, Any]]:
    return [r for r in llm.chat_requests if r.get("model") == RESEARCH_MODEL.split("/", 1)[1]]


def table(*rows: str) -> str:
    header = ("| rank | paper | result | dataset (format verified?) | method and hyper-parameters |\n"
              "|---|---|---|---|---|\n")
    return ("**Recipes**\n\n" + header + "\n".join(rows) + "\n\n**Recommendation**: follow recipe 1.\n\n"
            "**Sources**\n- https://arxiv.org/abs/2401.00001")


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
