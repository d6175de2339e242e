"""The sub-agent's limits: 60 steps, a wrap-up warning at 85% of its context and a forced answer at 95%,
its own repetition guard, tool outputs cut to 8k characters. None of them stops the main turn: each
ends in a final call without tools that asks for the answer."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from intern.agent.llm import LiteLLM
from intern.agent.tools.base import ToolRegistry
from intern.agent.tools.research import (
    MAX_ITERATIONS,
    TOOL_OUTPUT_CHARS,
    WRAP_UP,
    research_tool,
    research_window,
)
from intern.standins.llm import Reply, text_reply, tool_calls_reply
from tests.research.conftest import (
    MAIN_MODEL,
    Env,
    lookup_tool,
    research_requests,
    table,
    tool_results,
    user_texts,
)

SUMMARY = table("| 1 | Summary paper (2401.00001) | 70.1 GSM8K | not verified | GRPO; lr 1e-6 |")


def scripted(calls: Any) -> Any:
    """A rule: a tool call (from `calls(n)`) while tools are offered, the summary once they are not."""
    seen = [0]

    def rule(body: dict[str, Any]) -> Reply:
        if not body.get("tools"):
            return text_reply(SUMMARY)
        seen[0] += 1
        return tool_calls_reply([calls(seen[0])], text=f"note {seen[0]}")

    return rule


def words(key: str, n: int) -> str:
    """Text that tokenises like prose and differs per key."""
    seed = hashlib.sha256(key.encode()).hexdigest()
    return " ".join(f"{w}{seed[i % 60:i % 60 + 4]}" for i, w in enumerate(["alpha", "beta", "gamma", "delta"] * n))


async def run(env: Env, registry: ToolRegistry, **ctx_kwargs: Any) -> Any:
    research = research_tool(registry)
    ctx = env.ctx(**ctx_kwargs)
    result = await research.handler(ctx, research.args.model_validate({"task": "Best GRPO recipe for math?"}))
    return result, ctx


async def test_the_sub_agent_stops_at_sixty_model_calls_with_a_summary(env: Env) -> None:
    looked_up: list[str] = []
    env.llm.rule = scripted(lambda n: ("lookup", {"key": f"k{n}"}))

    result, ctx = await run(env, ToolRegistry([lookup_tool(calls=looked_up)]))

    requests = research_requests(env.llm)
    assert len(requests) == MAX_ITERATIONS == 60
    assert all(r.get("tools") for r in requests[:-1]) and "tools" not in requests[-1]
    assert len(looked_up) == MAX_ITERATIONS - 1
    assert "reached its limit of 60 steps" in user_texts(requests[-1])[-1]
    assert "Do not call tools" in user_texts(requests[-1])[-1]
    assert not result.is_error and result.artifacts["steps"] == 60
    assert "ended early because it reached its limit of 60 steps" in result.content.splitlines()[0]
    assert "| 1 | Summary paper (2401.00001) |" in result.content
    steps = [p.step for p in ctx.events.progress]
    assert steps == [*range(1, 60), 60, 60]  # each tool step, then "writing the answer" and "done"
    assert ctx.events.progress[-2].summary.startswith("writing the answer")
    assert len(ctx.events.usage) == 60  # every call counts toward spend


async def test_wrap_up_warning_at_85_percent_then_a_forced_answer_at_95(env: Env) -> None:
    window = 9_000
    env.llm.rule = scripted(lambda n: ("lookup", {"key": f"k{n}"}))
    registry = ToolRegistry([lookup_tool(lambda key: words(key, 25))])

    result, _ = await run(env, registry, research_model=MAIN_MODEL, window=window)

    requests = env.llm.chat_requests
    final, with_tools = requests[-1], requests[:-1]
    assert "tools" not in final and all(r.get("tools") for r in with_tools)
    assert "its context window was nearly full" in user_texts(final)[-1]
    warned = [i for i, r in enumerate(with_tools) if any(WRAP_UP in t for t in user_texts(r))]
    assert warned, "the wrap-up warning was sent"
    first = warned[0]
    # what the sub-agent had used before each call (the warning it adds is not part of it), counted
    # the way it counts: each message, the system prompt and the tool schemas
    share = [used(env.client, r) / window for r in with_tools]
    assert all(s < 0.85 for s in share[:first]) and 0.85 <= share[first]
    assert len(with_tools) - first >= 2, "the sub-agent keeps working between the warning and the forced answer"
    assert all(s < 0.95 for s in share)
    assert used(env.client, {**final, "tools": with_tools[-1]["tools"]}) / window >= 0.95
    assert sum(WRAP_UP in t for t in user_texts(final)) == 1  # warned once
    assert not result.is_error and "| 1 | Summary paper" in result.content
    assert "its context window was nearly full" in result.content.splitlines()[0]


def used(client: LiteLLM, request: dict[str, Any]) -> int:
    messages = [m for m in request["messages"]
                if not str(m.get("content") or "").startswith(("[intern guard] You have used", "[intern] Stop"))]
    total = sum(client.count_tokens(MAIN_MODEL, [m]) for m in messages)
    return total + client.count_tokens(MAIN_MODEL, [{"role": "system", "content": json.dumps(request["tools"])}])


async def test_research_uses_the_window_override_for_its_own_model() -> None:
    client = LiteLLM()
    from intern.agent.context_deps import AgentConfig

    same = AgentConfig(model="openai/gpt-4o", research_model="openai/gpt-4o", context_window_tokens=500_000)
    assert research_window(client, same, "openai/gpt-4o") == 500_000
    other = AgentConfig(model="openai/big", research_model="openai/gpt-4o", context_window_tokens=500_000)
    assert research_window(client, other, "openai/gpt-4o") == client.context_window("openai/gpt-4o") < 500_000
    small = AgentConfig(model="openai/big", research_model="openai/gpt-4o", context_window_tokens=20_000)
    assert research_window(client, small, "openai/gpt-4o") == 20_000
    unset = AgentConfig(model="openai/big", research_model="openai/gpt-4o")
    assert research_window(client, unset, "openai/gpt-4o") == client.context_window("openai/gpt-4o")


async def test_its_own_repetition_guard_warns_then_ends_the_research_not_the_turn(env: Env) -> None:
    env.llm.rule = scripted(lambda n: ("lookup", {"key": "same"}))

    result, _ = await run(env, ToolRegistry([lookup_tool()]))

    requests = research_requests(env.llm)
    assert len(requests) == 7  # three identical calls, warning, three more, then the summary
    guard = "[intern guard] You are repeating yourself: the same call with the same result 3 times in a row"
    assert not any(guard in t for r in requests[:3] for t in user_texts(r))
    assert any(t.startswith(guard) for t in user_texts(requests[3]))
    assert "tools" not in requests[6]
    assert "going round in circles" in user_texts(requests[6])[-1]
    assert not result.is_error and "going round in circles" in result.content.splitlines()[0]


async def test_each_research_call_has_a_fresh_guard(env: Env) -> None:
    registry = ToolRegistry([lookup_tool()])
    research = research_tool(registry)
    for _ in range(2):  # two identical calls in a row, each repeating twice: no guard fires in either
        env.llm.enqueue_tool_calls([("lookup", {"key": "same"})])
        env.llm.enqueue_tool_calls([("lookup", {"key": "same"})])
        env.llm.enqueue_text(SUMMARY)
        await research.handler(env.ctx(), research.args.model_validate({"task": "t"}))
    assert not any("repeating" in t for r in env.llm.chat_requests for t in user_texts(r))


async def test_tool_outputs_over_8k_characters_are_cut_head_and_tail(env: Env) -> None:
    body = "HEAD-MARK\n" + "\n".join(f"line {i} " + "x" * 60 for i in range(400)) + "\nTAIL-MARK"
    assert len(body) > 20_000
    env.llm.enqueue_tool_calls([("lookup", {"key": "big"}), ("lookup", {"key": "small"})])
    env.llm.enqueue_text(SUMMARY)

    await run(env, ToolRegistry([lookup_tool(lambda key: body if key == "big" else "short answer")]))

    outputs = [m["content"] for m in research_requests(env.llm)[1]["messages"] if m["role"] == "tool"]
    big, small = outputs
    assert len(big) <= TOOL_OUTPUT_CHARS + 100 and len(big) < len(body)
    assert big.startswith("HEAD-MARK") and big.endswith("TAIL-MARK")
    assert "characters of tool output cut here" in big and "line 200 " not in big
    assert small == "short answer"
    assert tool_results(research_requests(env.llm)[1])  # the calls stay paired with their results
