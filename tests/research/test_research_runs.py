"""Research runs end to end: real read-only tools on the stand-ins, the answer's format and what the code
appends to it, progress and spend events, parallel calls from the main loop, and the failure paths."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from intern.agent.context import ContextManager
from intern.agent.errors import LLMConfigError
from intern.agent.events import ToolFinished, ToolStarted
from intern.agent.guardrails.redaction import Redactor
from intern.agent.loop import Agent
from intern.agent.ports import GateAnswer
from intern.agent.prompts import research_prompt
from intern.agent.tools.base import ToolRegistry, ToolResult
from intern.agent.tools.research import FORMAT_NUDGE, research_tool
from intern.bot.settings import Settings
from intern.bot.wiring import build_tools
from intern.standins.arxiv import PageSection, PaperPage
from intern.standins.llm import Reply, text_reply, tool_calls_reply
from tests.research.conftest import (
    MAIN_MODEL,
    Env,
    LookupArgs,
    Recorder,
    lookup_tool,
    research_requests,
    table,
    tool_names,
    tool_results,
    user_texts,
)

PAPER = "2402.03300"
DATASET = "acme/math-chats"
ROW = f"| 1 | DeepSeekMath (2402.03300) | 51.7 MATH | {DATASET}, default/train — `Fits: sft_messages` (verified) " \
      "| GRPO; lr 1e-6, batch 1024, 1 epoch |"


def seed(env: Env) -> None:
    env.arxiv.add(PaperPage(
        arxiv_id=PAPER, title="DeepSeekMath: Pushing the Limits of Mathematical Reasoning", authors=["Z. Shao"],
        abstract="We introduce GRPO, a variant of PPO.",
        sections=[PageSection("Introduction", ["Math reasoning is hard."]),
                  PageSection("Experiments", ["We train with GRPO at learning rate 1e-6 and batch size 1024.",
                                              "The policy reaches 51.7% on MATH."])],
    ))
    messages = {"feature": {"content": {"dtype": "string", "_type": "Value"},
                            "role": {"dtype": "string", "_type": "Value"}}, "_type": "List"}
    rows = [{"messages": [{"role": "user", "content": f"What is {i} + {i}?"},
                          {"role": "assistant", "content": f"{2 * i}"}]} for i in range(5)]
    env.viewer.add_dataset(DATASET, features={"messages": messages}, rows={"train": rows})


async def test_a_research_run_with_real_tools_returns_the_table_and_what_the_tools_checked(env: Env) -> None:
    seed(env)
    registry = build_tools(Settings())  # type: ignore[call-arg]
    research = registry.get("research")
    assert research is not None
    env.llm.enqueue_tool_calls([
        ("hf_papers", {"operation": "read_paper", "arxiv_id": PAPER, "section": "Experiments"}),
        ("hf_inspect_dataset", {"dataset": DATASET}),
    ], text="Reading the GRPO paper and checking the candidate dataset.", usage=(1200, 40))
    env.llm.enqueue_text(table(ROW), usage=(2500, 300))
    ctx = env.ctx()

    result = await research.handler(ctx, research.args.model_validate(
        {"task": "Best recipe to teach a 1B model grade-school math", "context": "We have acme/math-chats."}))

    first, second = research_requests(env.llm)
    assert first["messages"][0] == {"role": "system", "content": research_prompt(today=today(first))}
    assert first["messages"][1]["content"] == ("Task: Best recipe to teach a 1B model grade-school math\n\n"
                                               "What the team knows already:\nWe have acme/math-chats.")
    assert {"hf_papers", "hf_inspect_dataset"} <= tool_names(first)
    results = tool_results(second)
    assert "learning rate 1e-6 and batch size 1024" in results["hf_papers"]
    assert "Fits: sft_messages" in results["hf_inspect_dataset"]

    lines = result.content.splitlines()
    assert lines[0] == "Research: 1 recipe(s) in 2 step(s), 1 dataset(s) inspected."
    assert ROW in lines
    assert lines.index("**Checked by the tools during this research** (from the tool results, not the model's "
                       "words):") > lines.index(ROW)
    assert f"- dataset `{DATASET} (default/train)` inspected, Fits: sft_messages" in lines
    assert f"- paper {env.hub.url}/papers/{PAPER}" in lines
    assert result.artifacts == {"steps": 2, "ended": "answered", "recipes": 1,
                                "datasets_inspected": [f"{DATASET} (default/train)"]}

    events: Recorder = ctx.events  # type: ignore[assignment]
    assert [(p.call_id, p.step) for p in events.progress] == [("call_research_1", 1), ("call_research_1", 2)]
    assert "hf_papers operation=read_paper" in events.progress[0].summary
    assert "hf_inspect_dataset dataset=acme/math-chats" in events.progress[0].summary
    assert events.progress[1].summary == "done: 1 recipe(s)"
    assert [(u.model, u.prompt_tokens, u.completion_tokens) for u in events.usage] == [
        ("research-model", 1200, 40), ("research-model", 2500, 300)]


def today(request: dict[str, Any]) -> str:
    system = request["messages"][0]["content"]
    return system.split("Today is ", 1)[1].split(".", 1)[0]


async def test_an_answer_without_the_table_is_sent_back_once(env: Env) -> None:
    registry = ToolRegistry([lookup_tool()])
    research = research_tool(registry)
    env.llm.enqueue_text("GRPO works well; use lr 1e-6. Dataset verified.")
    env.llm.enqueue_text(table("| 1 | P (2401.00001) | 40.0 GSM8K | x/y — not verified | SFT |",
                               "| 2 | Q (2401.00002) | 38.0 GSM8K | not verified | DPO |"))

    result = await research.handler(env.ctx(), research.args.model_validate({"task": "t"}))

    _, second = research_requests(env.llm)
    assert user_texts(second)[-1] == f"[intern guard] {FORMAT_NUDGE}"
    assert result.content.splitlines()[0] == "Research: 2 recipe(s) in 2 step(s), 0 dataset(s) inspected."
    assert result.content.endswith("- no dataset was inspected: every dataset format above is unverified")

    env.llm.requests.clear()
    env.llm.enqueue_text("Still prose.")
    env.llm.enqueue_text("Prose again.")
    result = await research.handler(env.ctx(), research.args.model_validate({"task": "t"}))
    assert len(research_requests(env.llm)) == 2  # one reminder, then the answer is taken as it is
    assert "Prose again." in result.content and result.artifacts["recipes"] == 0


async def test_when_the_provider_refuses_the_context_the_answer_comes_from_a_shortened_rendering(env: Env) -> None:
    research = research_tool(ToolRegistry([lookup_tool(lambda key: f"finding about {key}")]))
    env.llm.enqueue_tool_calls([("lookup", {"key": "grpo"})], text="note: looking up grpo")
    env.llm.enqueue_error("context_length")
    env.llm.enqueue_text(table(ROW))

    result = await research.handler(env.ctx(), research.args.model_validate({"task": "t"}))

    last = research_requests(env.llm)[-1]
    assert "tools" not in last and [m["role"] for m in last["messages"]] == ["system", "user"]
    text = last["messages"][1]["content"]
    assert text.startswith("Task: t\n\n[Your research so far]\n")
    assert "finding about grpo" in text and "note: looking up grpo" in text
    assert "Stop researching: the model refused the context as too long" in text
    assert not result.is_error and ROW in result.content


async def test_a_summary_without_text_is_an_error_result_with_what_was_checked(env: Env) -> None:
    research = research_tool(ToolRegistry([lookup_tool()]))
    env.llm.rule = lambda body: (tool_calls_reply([("lookup", {"key": "same"})]) if body.get("tools")
                                 else text_reply(""))
    result = await research.handler(env.ctx(), research.args.model_validate({"task": "t"}))
    assert result.is_error
    assert result.content.startswith("The research sub-agent stopped (it was going round in circles")
    assert "no dataset was inspected" in result.content


async def test_a_provider_configuration_error_stops_the_turn_naming_the_setting(env: Env) -> None:
    research = research_tool(ToolRegistry([lookup_tool()]))
    env.llm.enqueue_error("auth")
    with pytest.raises(LLMConfigError) as err:
        await research.handler(env.ctx(), research.args.model_validate({"task": "t"}))
    assert "INTERN_LLM_API_KEY" in err.value.message


# --- two research calls in parallel from the main loop -----------------------------------------------

class Transcript:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def append(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


class RefusingGate:
    async def lookup(self, call_id: str) -> GateAnswer | None:
        return None

    async def request(self, request: Any) -> GateAnswer:
        raise AssertionError(f"nothing here needs an approval, yet {request.tool} asked for one")


def main_and_research_rule(body: dict[str, Any]) -> Reply:
    tools_done = [m for m in body["messages"] if m["role"] == "tool"]
    if body["model"] == MAIN_MODEL.split("/", 1)[1]:
        if not tools_done:
            return tool_calls_reply([("research", {"task": "topic A"}), ("research", {"task": "topic B"})])
        return text_reply("Both surveys are in.")
    topic = body["messages"][1]["content"].removeprefix("Task: topic ")
    if not tools_done:
        return tool_calls_reply([("lookup", {"key": topic})])
    return text_reply(table(f"| 1 | Paper {topic} | r | not verified | m |"))


async def test_two_research_calls_run_in_parallel_each_with_its_own_progress(env: Env) -> None:
    both_inside = asyncio.Barrier(2)

    async def meet(ctx: Any, args: LookupArgs) -> ToolResult:
        # each sub-agent's lookup waits for the other's: run one after the other, they would time out
        await asyncio.wait_for(both_inside.wait(), timeout=5)
        return ToolResult(f"entry for {args.key}")

    lookup = lookup_tool()
    lookup.handler = meet
    registry = ToolRegistry([lookup])
    registry.add(research_tool(registry))
    env.llm.rule = main_and_research_rule
    ctx = env.ctx(call_id="")
    sink: Recorder = ctx.events  # type: ignore[assignment]
    agent = Agent(llm=env.client, tools=registry, transcript=Transcript(), gate=RefusingGate(), events=sink,
                  ctx=ctx, system_prompt="You are the main agent.", model=MAIN_MODEL,
                  context=ContextManager(env.client, Transcript()), redactor=Redactor(()))

    outcome = await agent.run([{"role": "user", "content": "Survey topics A and B."}])

    assert outcome.status == "done" and outcome.reply == "Both surveys are in."
    started = {e.call_id: e.summary for e in sink.of(ToolStarted) if e.name == "research"}
    assert len(started) == 2
    by_call = {cid: [(p.step, p.summary) for p in sink.progress if p.call_id == cid] for cid in started}
    topics = {cid: ("A" if "topic A" in summary else "B") for cid, summary in started.items()}
    for cid, topic in topics.items():
        assert by_call[cid] == [(1, f"lookup key={topic}"), (2, "done: 1 recipe(s)")]
    assert {e.call_id for e in sink.progress} == set(started)
    finished = [e for e in sink.of(ToolFinished) if e.name == "research"]
    assert len(finished) == 2 and all(e.ok for e in finished)

    for request in research_requests(env.llm):  # each sub-agent saw only its own task
        text = str(request["messages"])
        assert ("topic A" in text) != ("topic B" in text)
    main_final = env.llm.chat_requests[-1]
    assert {m["content"].splitlines()[0] for m in main_final["messages"] if m["role"] == "tool"} == {
        "Research: 1 recipe(s) in 2 step(s), 0 dataset(s) inspected."}
    assert len(sink.usage) == 2 + 4  # the main model's two calls and each sub-agent's two
