"""The session's todo list. Rebuilt from the transcript (the last `plan` call), so it survives restarts.
The `plan` tool that changes it is in `tools/plan.py`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

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
