"""In-test implementations of the agent's ports, for unit-level loop tests (the full stack, with the
real LiteLLM against the loopback LLM stand-in, is exercised in test_agent_llm_errors.py)."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel, Field

from intern.agent.context import ContextManager
from intern.agent.context_deps import AgentConfig, ToolContext
from intern.agent.events import AgentEvent, Notice
from intern.agent.guardrails.redaction import Redactor
from intern.agent.hub import HubClient
from intern.agent.loop import Agent
from intern.agent.plan import PlanState
from intern.agent.ports import LLM, GateAnswer, GateStatus, LLMResponse, ToolCall, Usage
from intern.agent.pricing import PriceTable
from intern.agent.tools.base import ApprovalRequest, Tool, ToolRegistry, ToolResult
from intern.agent.tools.plan import plan_tool

MODEL = "scripted/model"


def char_tokens(messages: list[dict[str, Any]]) -> int:
    """A deterministic stand-in for a tokenizer: four characters a token, plus a little per message."""
    total = 0
    for m in messages:
        total += 4 + len(str(m.get("content") or "")) // 4
        for c in m.get("tool_calls") or []:
            total += len(c["function"].get("arguments") or "") // 4
    return total


def reply(text: str | None = None, *calls: tuple[str, dict[str, Any] | str], finish: str | None = None,
          usage: Usage | None = None) -> LLMResponse:
    tool_calls = tuple(
        ToolCall(id=f"call_{next(_ids)}", name=name, arguments=args if isinstance(args, str) else json.dumps(args))
        for name, args in calls
    )
    return LLMResponse(content=text, tool_calls=tool_calls,
                       finish_reason=finish or ("tool_calls" if tool_calls else "stop"),
                       usage=usage or Usage(10, 5, 0.001), model=MODEL)


def _counter() -> Any:
    n = 0
    while True:
        n += 1
        yield n


_ids = _counter()


@dataclass
class ScriptedLLM:
    """The LLM port with queued answers (an exception in the queue is raised). Records every request."""

    window: int = 100_000
    script: deque[LLMResponse | BaseException] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)  # answers for summarisation requests
    count_calls: int = 0
    counted_messages: int = 0

    def queue(self, *items: LLMResponse | BaseException) -> ScriptedLLM:
        self.script.extend(items)
        return self

    async def complete(self, *, model: str, messages: list[dict[str, Any]],
                       tools: list[dict[str, Any]] | None) -> LLMResponse:
        self.requests.append({"model": model, "messages": messages, "tools": tools})
        if tools is None and self.summaries:  # the compaction call is the one without tools
            return LLMResponse(content=self.summaries.pop(0), usage=Usage(100, 50, 0.01), model=model)
        if not self.script:
            raise AssertionError(f"ScriptedLLM has no answer left (request {len(self.requests)})")
        item = self.script.popleft()
        if isinstance(item, BaseException):
            raise item
        return item

    def count_tokens(self, model: str, messages: list[dict[str, Any]]) -> int:
        self.count_calls += 1
        self.counted_messages += len(messages)
        return char_tokens(messages)

    def context_window(self, model: str) -> int:
        return self.window

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["tools"] is not None]


class MemoryTranscript:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def append(self, message: dict[str, Any]) -> None:
        self.messages.append(json.loads(json.dumps(message)))  # stored as data, like the database does


class MemoryGate:
    """Answers approvals from a dict of call id -> answer; anything else stays pending."""

    def __init__(self, default: GateStatus = "pending") -> None:
        self.default = default
        self.requests: list[ApprovalRequest] = []
        self.answers: dict[str, GateAnswer] = {}

    async def lookup(self, call_id: str) -> GateAnswer | None:
        return self.answers.get(call_id)

    async def request(self, request: ApprovalRequest) -> GateAnswer:
        self.requests.append(request)
        answer = GateAnswer(self.default, approval_id=f"ap-{len(self.requests)}", spec=request.spec)
        self.answers[request.call_id] = answer
        return answer


class RecordingSink:
    def __init__(self) -> None:
        self.events: list[AgentEvent] = []

    async def emit(self, event: AgentEvent) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def notices(self) -> list[Notice]:
        return self.of(Notice)


class EchoArgs(BaseModel):
    text: str = Field(description="What to echo")


class PollArgs(BaseModel):
    job_id: str


def echo_tool() -> Tool:
    async def handler(ctx: Any, args: EchoArgs) -> ToolResult:
        return ToolResult(f"echo: {args.text}")

    return Tool(name="echo", description="Echo the text back.", args=EchoArgs, handler=handler)


def poll_tool(results: list[str]) -> Tool:
    """A job-status tool whose answers come from `results`, one per call (the last one repeats)."""
    seen = iter(results)
    last: list[str] = [results[-1]]

    async def handler(ctx: Any, args: PollArgs) -> ToolResult:
        last[0] = next(seen, last[0])
        return ToolResult(last[0])

    return Tool(name="job_status", description="Status of a job.", args=PollArgs, handler=handler)


def text_tool(name: str, content: str) -> Tool:
    async def handler(ctx: Any, args: EchoArgs) -> ToolResult:
        return ToolResult(content)

    return Tool(name=name, description=f"Returns fixed text ({name}).", args=EchoArgs, handler=handler)


@dataclass
class Harness:
    agent: Agent
    llm: LLM
    transcript: MemoryTranscript
    gate: MemoryGate
    sink: RecordingSink
    context: ContextManager
    ctx: ToolContext


def make_harness(llm: LLM, tools: list[Tool] | None = None, *, model: str = MODEL,
                 window_override: int | None = None, known_secrets: tuple[str, ...] = (),
                 system_prompt: str = "You are a test agent.", max_iterations: int = 50,
                 http: httpx.AsyncClient | None = None, hub: HubClient | None = None) -> Harness:
    transcript, gate, sink = MemoryTranscript(), MemoryGate(), RecordingSink()
    config = AgentConfig(model=model, research_model=model, namespace="acme")
    ctx = ToolContext(session_id="s-1", config=config,
                      hub=hub or HubClient(endpoint="http://127.0.0.1:9", token=None, namespace="acme"),
                      http=http or httpx.AsyncClient(), prices=PriceTable(), plan=PlanState(), events=sink)
    context = ContextManager(llm, transcript, window_override=window_override)
    agent = Agent(llm=llm, tools=ToolRegistry([plan_tool, *(tools or [echo_tool()])]), transcript=transcript,
                  gate=gate, events=sink, ctx=ctx, system_prompt=system_prompt, model=model, context=context,
                  redactor=Redactor(known_secrets), max_iterations=max_iterations)
    return Harness(agent, llm, transcript, gate, sink, context, ctx)


async def close(h: Harness) -> None:
    await h.ctx.http.aclose()
    h.ctx.hub.close()


def task(text: str = "Fine-tune a small model on our data.") -> dict[str, Any]:
    return {"role": "user", "content": text}
