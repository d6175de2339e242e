"""Tool definitions, the registry and the approval description a spend or Hub-write tool gives."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

from intern.agent.errors import ToolArgumentError, ToolFeedback, TurnStopped

if TYPE_CHECKING:
    from intern.agent.code_files import CodeSnapshot
    from intern.agent.context_deps import ToolContext

log = logging.getLogger(__name__)

Policy = Literal["none", "spend", "hub_write"]


@dataclass(frozen=True)
class Check:
    """One ML or policy check computed by code, shown one per line on the approval card."""

    level: Literal["ok", "warn", "error"]
    text: str


@dataclass
class ApprovalInfo:
    """What an approval card shows about one call."""

    kind: Policy
    title: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    body: str | None = None  # full script / diff (the card may show head and tail only)
    body_label: str = "Script"
    estimated_cost_usd: float | None = None
    hourly_usd: float | None = None
    flavor: str | None = None
    timeout_seconds: int | None = None
    schedule: str | None = None
    runs_per_month: int | None = None
    checks: list[Check] = field(default_factory=list)
    auto_approvable: bool = True  # scheduled runs and Hub writes are never auto-approved
    # Files read for this call when the card was prepared: stored with the approval, covered by the spec
    # hash (through their sha256), and exactly what runs once approved. Never part of the card's JSON.
    snapshot: CodeSnapshot | None = None


@dataclass(frozen=True)
class ApprovalRequest:
    call_id: str
    tool: str
    spec: dict[str, Any]
    spec_sha256: str
    info: ApprovalInfo


@dataclass
class ToolResult:
    content: str
    is_error: bool = False
    artifacts: dict[str, Any] = field(default_factory=dict)


Handler = Callable[["ToolContext", Any], Awaitable[ToolResult]]
PolicyFn = Callable[[Any], Policy]
DescribeFn = Callable[["ToolContext", Any], Awaitable[ApprovalInfo]]


@dataclass
class Tool:
    name: str
    description: str
    args: type[BaseModel]
    handler: Handler
    policy: PolicyFn = lambda _args: "none"
    describe: DescribeFn | None = None
    read_only: bool = True  # offered to the research sub-agent only when True

    def schema(self) -> dict[str, Any]:
        params = self.args.model_json_schema()
        params.pop("title", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": params},
        }

    def parse(self, raw: str | dict[str, Any]) -> BaseModel:
        try:
            data = json.loads(raw or "{}") if isinstance(raw, str) else raw
        except json.JSONDecodeError as exc:
            raise ToolArgumentError(
                f"The arguments for {self.name} are not valid JSON ({exc.msg} at position {exc.pos}). "
                "Send a single JSON object."
            ) from exc
        if not isinstance(data, dict):
            raise ToolArgumentError(f"The arguments for {self.name} must be a JSON object.")
        try:
            return self.args.model_validate(data)
        except ValidationError as exc:
            raise ToolArgumentError(format_validation_error(self.name, exc)) from exc


async def run_tool(tool: Tool, ctx: ToolContext, args: BaseModel, *, who: str = "agent") -> ToolResult:
    """The one way a tool call is run, for the agent and the research sub-agent alike: feedback
    (ToolFeedback) comes back as an error result the model can act on; a stop or a cancellation goes
    on up; any other failure becomes an error result that names it, with the traceback in the log."""
    try:
        return await tool.handler(ctx, args)
    except ToolFeedback as exc:
        return ToolResult(str(exc), is_error=True)
    except (asyncio.CancelledError, TurnStopped):
        raise
    except Exception as exc:
        log.exception("%s: tool %s failed", who, tool.name)
        return ToolResult(f"{tool.name} failed: {type(exc).__name__}: {exc}", is_error=True)


def format_validation_error(tool: str, exc: ValidationError) -> str:
    lines = [f"Invalid arguments for {tool}:"]
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        lines.append(f"- {loc}: {err['msg']}")
    return "\n".join(lines)


def canonical_spec(args: BaseModel) -> dict[str, Any]:
    return args.model_dump(mode="json", exclude_none=True)


def spec_hash(tool: str, spec: dict[str, Any]) -> str:
    blob = json.dumps({"tool": tool, "args": spec}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ToolRegistry:
    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        self._schemas_json: str | None = None
        for t in tools or []:
            self.add(t)

    def add(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"duplicate tool {tool.name}")
        self._tools[tool.name] = tool
        self._schemas_json = None

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        # pydantic takes ~10 ms to build them all and every turn asks: built once, handed out as fresh
        # copies (callers, litellm included, may change what they get).
        return list(json.loads(self.schemas_text()))

    def schemas_text(self) -> str:
        """The schemas as one JSON text, the same object until the registry changes (for token counts)."""
        if self._schemas_json is None:
            self._schemas_json = json.dumps([t.schema() for t in self._tools.values()])
        return self._schemas_json

    def read_only(self) -> ToolRegistry:
        return ToolRegistry([t for t in self._tools.values() if t.read_only])

    def without(self, *names: str) -> ToolRegistry:
        return ToolRegistry([t for t in self._tools.values() if t.name not in names])
