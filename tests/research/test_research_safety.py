"""The research sub-agent cannot reach a tool that needs approval, by construction: it is never offered
one, a call to one comes back as an error, and nothing is launched or written."""

from __future__ import annotations

from typing import Any

from intern.agent.events import ToolStarted
from intern.agent.tools.base import ApprovalInfo, Tool, ToolRegistry, ToolResult
from intern.agent.tools.research import can_offer, offered_tools, research_tool
from intern.bot.settings import Settings
from intern.bot.wiring import build_tools
from tests.research.conftest import (
    Env,
    LookupArgs,
    lookup_tool,
    research_requests,
    table,
    tool_names,
    tool_results,
)

APPROVAL_TOOLS = {"hf_jobs", "hf_repo_files", "hf_repo_git"}
SESSION_TOOLS = {"plan", "research"}
JOB_SCRIPT = "from trl import SFTTrainer\nprint('training')\n"


def full_registry() -> ToolRegistry:
    registry = build_tools(Settings())  # type: ignore[call-arg]
    assert APPROVAL_TOOLS | SESSION_TOOLS <= set(registry.names())  # the wiring is what the bot runs
    return registry


async def test_the_full_registry_offers_only_read_only_tools_and_a_job_call_launches_nothing(env: Env) -> None:
    registry = full_registry()
    research = registry.get("research")
    assert research is not None and research.read_only and research.describe is None
    env.llm.enqueue_tool_calls([
        ("hf_jobs", {"operation": "run", "script": JOB_SCRIPT, "hardware_flavor": "a10g-small", "timeout": "2h"}),
        ("hf_repo_files", {"operation": "upload", "repo_id": f"{env.hub.user}/notes", "path": "a.md",
                           "content": "x"}),
        ("plan", {"todos": [{"id": "1", "content": "train", "status": "in_progress"}]}),
    ])
    env.llm.enqueue_text(table("| 1 | P (2401.00001) | 61.2 MMLU | not verified | SFT; lr 2e-5 |"))
    ctx = env.ctx()

    result = await research.handler(ctx, research.args.model_validate({"task": "How to SFT a 1B model?"}))

    first, second = research_requests(env.llm)
    offered = tool_names(first)
    assert offered, "the sub-agent is offered its read-only tools"
    assert offered.isdisjoint(APPROVAL_TOOLS | SESSION_TOOLS)
    assert not any(name.startswith("sandbox_") for name in offered)
    for name in offered:
        tool = registry.get(name)
        assert tool is not None and tool.read_only and tool.describe is None
    assert {"hf_papers", "hf_inspect_dataset"} <= offered
    assert offered == {t for t in registry.names() if can_offer(registry.get(t))}  # type: ignore[arg-type]

    results = tool_results(second)
    for name in ("hf_jobs", "hf_repo_files", "plan"):
        assert results[name].startswith(f"There is no tool named '{name}' here: research is read-only")
    assert env.hub.requests == []  # no job launched, no commit, not even a lookup
    assert ctx.plan.todos == []
    assert not ctx.events.of(ToolStarted)  # type: ignore[attr-defined]
    assert not result.is_error and "| 1 | P (2401.00001) |" in result.content


async def test_a_tool_with_an_approval_path_or_a_write_name_is_never_offered(env: Env) -> None:
    async def describe(ctx: Any, args: Any) -> ApprovalInfo:
        return ApprovalInfo(kind="spend", title="spend")

    flagged_read_only_but_gated = Tool(name="gated_lookup", description="x", args=LookupArgs,
                                       handler=lookup_tool().handler, describe=describe, read_only=True)
    registry = ToolRegistry([
        lookup_tool(),
        flagged_read_only_but_gated,
        lookup_tool(name="sandbox_read"),  # read_only by default, but a sandbox costs money to exist
        lookup_tool(name="hf_jobs"),  # a write tool by name, whatever its flags say
        lookup_tool(name="plan"),
        Tool(name="writer", description="x", args=LookupArgs, handler=lookup_tool().handler, read_only=False),
    ])
    assert offered_tools(registry).names() == ["lookup"]
    assert not can_offer(registry.get("writer"))  # type: ignore[arg-type]
    registry.add(research_tool(registry))
    assert offered_tools(registry).names() == ["lookup"]  # not itself either

    env.llm.enqueue_tool_calls([("gated_lookup", {"key": "a"}), ("writer", {"key": "b"})])
    env.llm.enqueue_text(table("| 1 | P | r | not verified | m |"))
    research = registry.get("research")
    assert research is not None
    await research.handler(env.ctx(), research.args.model_validate({"task": "t"}))
    first, second = research_requests(env.llm)
    assert tool_names(first) == {"lookup"}
    results = tool_results(second)
    assert "There is no tool named 'gated_lookup'" in results["gated_lookup"]
    assert "There is no tool named 'writer'" in results["writer"]


async def test_a_call_whose_policy_asks_for_approval_is_refused_before_it_runs(env: Env) -> None:
    ran: list[str] = []

    async def handler(ctx: Any, args: LookupArgs) -> ToolResult:
        ran.append(args.key)
        return ToolResult("done")

    # a tool mislabelled as read-only whose policy spends for some arguments
    mixed = Tool(name="mixed", description="x", args=LookupArgs, handler=handler,
                 policy=lambda a: "spend" if a.key == "launch" else "none")
    research = research_tool(ToolRegistry([mixed]))
    env.llm.enqueue_tool_calls([("mixed", {"key": "launch"}), ("mixed", {"key": "list"})])
    env.llm.enqueue_text(table("| 1 | P | r | not verified | m |"))

    await research.handler(env.ctx(), research.args.model_validate({"task": "t"}))

    assert ran == ["list"]
    second = research_requests(env.llm)[1]
    contents = [m["content"] for m in second["messages"] if m["role"] == "tool"]
    assert contents == ["mixed with these arguments needs an approval; research cannot run it.", "done"]


def test_research_is_a_free_read_only_tool_with_task_and_context() -> None:
    research = full_registry().get("research")
    assert research is not None
    args = research.args.model_validate({"task": "compare DPO and KTO", "context": "we have 5k pairs"})
    assert research.policy(args) == "none" and research.read_only
    properties = research.schema()["function"]["parameters"]["properties"]
    assert set(properties) == {"task", "context"}


async def test_inner_tools_get_their_own_call_id_and_never_the_sessions_plan(env: Env) -> None:
    seen: list[Any] = []

    async def handler(ctx: Any, args: LookupArgs) -> ToolResult:
        seen.append(ctx)
        return ToolResult("ok")

    probe = lookup_tool()
    probe.handler = handler
    research = research_tool(ToolRegistry([probe]))
    env.llm.enqueue_tool_calls([("lookup", {"key": "a"})])
    env.llm.enqueue_text(table("| 1 | P | r | not verified | m |"))
    ctx = env.ctx(call_id="call_outer")

    await research.handler(ctx, research.args.model_validate({"task": "t"}))

    (inner,) = seen
    assert inner.call_id.startswith("call_") and inner.call_id != "call_outer"
    assert inner.plan is not ctx.plan and inner.session_id == ctx.session_id and inner.hub is ctx.hub
