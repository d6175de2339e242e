"""Prompt caching, through the real agent loop, the real LiteLLM port and litellm, against a loopback
stand-in of Anthropic's Messages API whose prompt cache works as Anthropic documents it."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from intern.agent.context import ContextManager
from intern.agent.context_deps import AgentConfig, ToolContext
from intern.agent.events import UsageRecorded
from intern.agent.guardrails.redaction import Redactor
from intern.agent.hub import HubClient
from intern.agent.llm import LiteLLM, litellm_module, takes_cache_markers, usage_of
from intern.agent.loop import Agent
from intern.agent.plan import PlanState
from intern.agent.ports import GateAnswer
from intern.agent.pricing import PriceTable
from intern.agent.prompts import system_prompt
from intern.agent.tools.base import Tool, ToolRegistry, ToolResult
from intern.standins.anthropic import AnthropicStandIn, prompt_blocks
from intern.standins.llm import tool_calls_reply

MODEL = "anthropic/claude-sonnet-4-5"
KEY = "sk-ant-test-0123456789abcdefghijkl"


class LookArgs(BaseModel):
    what: str


def look_tool(rng: random.Random) -> Tool:
    async def handler(ctx: Any, args: LookArgs) -> ToolResult:
        return ToolResult("\n".join(f"{{'loss': {rng.uniform(0.5, 2):.4f}, 'epoch': {i / 20:.2f}}}"
                                    for i in range(20)))

    return Tool(name="look", description="Look at the run's logs.", args=LookArgs, handler=handler)


class Recorder:
    def __init__(self) -> None:
        self.usage: list[UsageRecorded] = []

    async def emit(self, event: Any) -> None:
        if isinstance(event, UsageRecorded):
            self.usage.append(event)


class Transcript:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def append(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


class Gate:
    async def lookup(self, call_id: str) -> GateAnswer | None:
        return None

    async def request(self, request: Any) -> GateAnswer:
        raise AssertionError("no tool here needs approval")


@pytest.fixture
async def stand() -> AsyncIterator[AnthropicStandIn]:
    async with AnthropicStandIn(api_key=KEY) as s:
        yield s  # type: ignore[misc]


async def run_session(stand: AnthropicStandIn, *, cache: bool, steps: int = 6) -> Recorder:
    rng = random.Random(3)
    for i in range(steps):
        stand.enqueue(tool_calls_reply([("look", {"what": f"step {i}"})], text=f"Checking step {i}."))
    stand.enqueue_text("The run is healthy.")
    llm = LiteLLM(api_base=stand.url, api_key=KEY, prompt_cache=cache, max_attempts=1)
    events, transcript = Recorder(), Transcript()
    async with httpx.AsyncClient() as http:
        hub = HubClient(endpoint="http://127.0.0.1:9", token=None, namespace="acme")
        ctx = ToolContext(session_id="s", config=AgentConfig(model=MODEL, research_model=MODEL), hub=hub,
                          http=http, prices=PriceTable(), plan=PlanState(), events=events)
        agent = Agent(llm=llm, tools=ToolRegistry([look_tool(rng)]), transcript=transcript, gate=Gate(),
                      events=events, ctx=ctx, model=MODEL, context=ContextManager(llm, transcript),
                      system_prompt=system_prompt(today="2026-12-07", namespace="acme"), redactor=Redactor([KEY]))
        outcome = await agent.run([{"role": "user", "content": "Watch the run and tell me how it goes."}])
        hub.close()
    assert outcome.status == "done"
    return events


def marked(block: dict[str, Any]) -> bool:
    return block.get("cache_control") == {"type": "ephemeral"}


def unmarked(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in b.items() if k != "cache_control"} for b in blocks]


async def test_the_system_prompt_and_the_latest_message_are_marked_and_the_cache_is_read(
        stand: AnthropicStandIn) -> None:
    events = await run_session(stand, cache=True)
    requests = stand.message_requests
    assert len(requests) == 7
    for body in requests:
        assert marked(body["system"][-1])
        last = body["messages"][-1]["content"]
        assert marked(last[-1])
        assert sum(marked(b) for b in prompt_blocks(body)) == 2
    reads = [e.cache_read_tokens for e in events.usage]
    assert reads[0] == 0 and all(r > 0 for r in reads[1:])
    # each step reads what the step before wrote: everything but the newest message comes from the cache
    for before, after, event in zip(requests, requests[1:], events.usage[1:], strict=False):
        assert event.cache_read_tokens >= 0.9 * (event.prompt_tokens - event.cache_write_tokens)
        assert len(prompt_blocks(after)) > len(prompt_blocks(before))
    total_in = sum(e.prompt_tokens for e in events.usage)
    assert sum(reads) / total_in > 0.7


async def test_consecutive_requests_share_the_whole_previous_request_as_prefix(stand: AnthropicStandIn) -> None:
    await run_session(stand, cache=True)
    requests = [unmarked(prompt_blocks(body)) for body in stand.message_requests]
    for before, after in itertools.pairwise(requests):
        assert after[:len(before)] == before  # append-only between compactions


async def test_off_sends_no_markers_and_pays_full_price(stand: AnthropicStandIn) -> None:
    cached = await run_session(stand, cache=True)
    stand.requests.clear()
    plain = await run_session(stand, cache=False)
    assert not any(marked(b) for body in stand.message_requests for b in prompt_blocks(body))
    assert all(e.cache_read_tokens == 0 and e.cache_write_tokens == 0 for e in plain.usage)
    assert [e.prompt_tokens for e in plain.usage] == [e.prompt_tokens for e in cached.usage]
    cost_cached, cost_plain = sum(e.cost_usd for e in cached.usage), sum(e.cost_usd for e in plain.usage)
    assert 0 < cost_cached < 0.6 * cost_plain


def test_markers_go_only_to_providers_that_take_them() -> None:
    for model in ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5", "gemini/gemini-2.5-pro",
                  "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0", "vertex_ai/claude-sonnet-4-5"):
        assert takes_cache_markers(model), model
    for model in ("openai/gpt-4.1", "gpt-4.1", "deepseek/deepseek-chat", "ollama/qwen3",
                  "bedrock/meta.llama3-70b-instruct-v1:0", "openai/scripted-model"):
        assert not takes_cache_markers(model), model


def test_cached_input_reported_by_an_openai_style_provider_is_counted_and_priced() -> None:
    litellm = litellm_module()

    def response(cached: int) -> Any:
        return litellm.ModelResponse(**json.loads(json.dumps({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4.1",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": 10_000, "completion_tokens": 100, "total_tokens": 10_100,
                      "prompt_tokens_details": {"cached_tokens": cached}}})))

    hit, miss = usage_of(response(8_000)), usage_of(response(0))
    assert hit.prompt_tokens == miss.prompt_tokens == 10_000
    assert hit.cache_read_tokens == 8_000 and miss.cache_read_tokens == 0
    assert 0 < hit.cost_usd < miss.cost_usd
