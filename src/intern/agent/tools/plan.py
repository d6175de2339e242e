"""`plan`: the session's todo list, replaced whole by each call and shown on the status card."""

from __future__ import annotations

from typing import TYPE_CHECKING

from intern.agent.events import PlanUpdated
from intern.agent.plan import PlanArgs
from intern.agent.tools.base import Tool, ToolResult

if TYPE_CHECKING:
    from intern.agent.context_deps import ToolContext


async def _plan(ctx: ToolContext, args: PlanArgs) -> ToolResult:
    ids = [t.id for t in args.todos]
    if len(ids) != len(set(ids)):
        return ToolResult("Todo ids must be unique.", is_error=True)
    if sum(t.status == "in_progress" for t in args.todos) > 1:
        return ToolResult("Only one todo may be in_progress at a time.", is_error=True)
    ctx.plan.todos = list(args.todos)
    await ctx.events.emit(PlanUpdated(tuple(t.model_dump() for t in args.todos)))
    return ToolResult("Plan updated:\n" + ctx.plan.render())


plan_tool = Tool(
    name="plan",
    description=(
        "Keep the session's todo list. Call it with the whole list whenever you start, finish or "
        "change a step; the list is shown to the team on the status card."
    ),
    args=PlanArgs,
    handler=_plan,
)
