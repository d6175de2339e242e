"""Running a repo tool call the way the agent loop does: parse, approval card, replay of the
approved spec, handler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from intern.agent.context_deps import ToolContext
from intern.agent.errors import ToolFeedback
from intern.agent.tools.base import ApprovalInfo, Tool, ToolResult, canonical_spec


@dataclass
class Outcome:
    card: ApprovalInfo | None
    result: ToolResult


async def call(ctx: ToolContext, tool: Tool, **raw: Any) -> Outcome:
    """One call as the agent loop makes it, with the approval granted when the policy asks for one."""
    args = tool.parse(raw)
    card = None
    if tool.policy(args) != "none":
        assert tool.describe is not None
        try:
            card = await tool.describe(ctx, args)
        except ToolFeedback as exc:
            return Outcome(None, ToolResult(str(exc), is_error=True))
        args = tool.args.model_validate(canonical_spec(args))  # the approved spec, as stored
    try:
        result = await tool.handler(ctx, args)
    except ToolFeedback as exc:
        result = ToolResult(str(exc), is_error=True)
    return Outcome(card, result)


async def run(ctx: ToolContext, tool: Tool, **raw: Any) -> ToolResult:
    return (await call(ctx, tool, **raw)).result


async def card(ctx: ToolContext, tool: Tool, **raw: Any) -> ApprovalInfo:
    args = tool.parse(raw)
    assert tool.describe is not None
    return await tool.describe(ctx, args)


def field(info: ApprovalInfo, name: str) -> str:
    return dict(info.fields)[name]
