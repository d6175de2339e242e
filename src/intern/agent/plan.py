"""The session's todo list. Rebuilt from the transcript (the last `plan` call), so it survives restarts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from intern.agent.events import PlanUpdated
from intern.agent.tools.base import Tool, ToolResult

Status = Literal["pending", "in_progress", "completed"]


class Todo(BaseModel):
    id: str = Field(description="Short stable id, e.g. '1'")
    content: str = Field(min_length=1, description="What to do")
    status: Status = "pending"


class PlanArgs(BaseModel):
    """Replace the session's todo list. Send the whole list every time."""

    todos: list[Todo] = Field(description="The full todo list, in order")


@dataclass
class PlanState:
    todos: list[Todo] = field(default_factory=list)

    @property
    def pending(self) -> list[Todo]:
        return [t for t in self.todos if t.status != "completed"]

    @classmethod
    def from_messages(cls, messages: list[dict[str, Any]]) -> PlanState:
        for msg in reversed(messages):
            for call in msg.get("tool_calls") or []:
                fn = call.get("function", {})
                if fn.get("name") != "plan":
                    continue
                try:
                    args = PlanArgs.model_validate(json.loads(fn.get("arguments") or "{}"))
                except Exception:
                    continue
                return cls(list(args.todos))
        return cls()

    def render(self) -> str:
        if not self.todos:
            return "(empty plan)"
        marks = {"pending": "[ ]", "in_progress": "[~]", "completed": "[x]"}
        return "\n".join(f"{marks[t.status]} {t.id}. {t.content}" for t in self.todos)


async def _plan(ctx: Any, args: PlanArgs) -> ToolResult:
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
