"""The agent loop: ask the model, run the tools, repeat.

A turn ends with a reply without tool calls, a suspension for approval, a stop, or the iteration cap.
Nothing is held in memory across a suspension: the transcript and the approval gate are durable,
and a resumed turn picks up the calls that have no result yet.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from intern.agent.context import ContextManager
from intern.agent.context_deps import ToolContext
from intern.agent.errors import ContextOverflow, ToolFeedback, TurnStopped
from intern.agent.events import AssistantReply, Notice, ToolFinished, ToolStarted, TurnStarted, UsageRecorded
from intern.agent.guardrails.doom_loop import RepetitionGuard
from intern.agent.guardrails.redaction import Redactor
from intern.agent.ports import LLM, ApprovalGate, EventSink, GateAnswer, LLMResponse, SpendGuard, Transcript
from intern.agent.tools.base import (
    ApprovalRequest,
    ToolRegistry,
    ToolResult,
    canonical_spec,
    run_tool,
    spec_hash,
)

log = logging.getLogger(__name__)

PLAN_NUDGES = 2
TRUNCATION_RETRIES = 2


@dataclass
class TurnOutcome:
    status: Literal["done", "suspended", "stopped", "limit"]
    reply: str | None = None
    message: str | None = None
    pending_calls: list[str] = field(default_factory=list)


@dataclass
class _Call:
    id: str
    name: str
    arguments: str


class Agent:
    def __init__(
        self,
        *,
        llm: LLM,
        tools: ToolRegistry,
        transcript: Transcript,
        gate: ApprovalGate,
        events: EventSink,
        ctx: ToolContext,
        system_prompt: str,
        model: str,
        context: ContextManager,
        redactor: Redactor,
        max_iterations: int = 300,
        budget: SpendGuard | None = None,
    ) -> None:
        self.llm, self.tools, self.transcript, self.gate = llm, tools, transcript, gate
        self.events, self.ctx, self.system_prompt, self.model = events, ctx, system_prompt, model
        self.context, self.redactor, self.max_iterations = context, redactor, max_iterations
        self.budget = budget
        # The estimate of a step's cost: the last step's. Each request carries the one before it and
        # more, so the next step costs at least about as much.
        self.step_cost = 0.0
        context.attach(events=events, redactor=redactor)
        self.schemas = tools.schemas()  # pydantic builds them in milliseconds: once per turn, not per step
        self.schemas_text = tools.schemas_text()
        self.guard = RepetitionGuard()
        self.messages: list[dict[str, Any]] = []
        self._plan_nudges = 0

    async def run(self, messages: list[dict[str, Any]]) -> TurnOutcome:
        self.messages = messages
        await self.events.emit(TurnStarted())
        try:
            for _ in range(self.max_iterations):
                outcome = await self.step()
                if outcome is not None:
                    return outcome
        except TurnStopped as stop:
            await self.events.emit(Notice(stop.message, level="error"))
            return TurnOutcome("stopped", message=stop.message)
        msg = f"I stopped after {self.max_iterations} steps in one turn (INTERN_MAX_ITERATIONS). Reply to continue."
        await self.events.emit(Notice(msg, level="warn"))
        return TurnOutcome("limit", message=msg)

    async def step(self) -> TurnOutcome | None:
        pending = unanswered_calls(self.messages)
        if pending:
            return await self.run_tools(pending)
        response = await self.ask_model()
        message = assistant_message(response, self.redactor)
        await self.add(message)
        if response.tool_calls:
            return None
        text = message["content"].strip()
        if text:
            await self.events.emit(AssistantReply(text))
        if self.ctx.plan.pending and self._plan_nudges < PLAN_NUDGES:
            self._plan_nudges += 1
            todo = "\n".join(f"- {t.content}" for t in self.ctx.plan.pending)
            await self.add(guard_message(
                "Your plan still has open items:\n" + todo + "\nContinue with the next one, or update the "
                "plan (mark items completed, or remove them and say why) before you finish.", "plan_nudge"))
            return None
        return TurnOutcome("done", reply=text)

    async def ask_model(self) -> LLMResponse:
        hint: str | None = None
        for attempt in range(TRUNCATION_RETRIES + 1):
            view = await self.prepared_view(extra=hint)
            await self.check_budget()
            try:
                response = await self.llm.complete(model=self.model, messages=view, tools=self.schemas)
            except ContextOverflow:
                if attempt == TRUNCATION_RETRIES:
                    raise TurnStopped(self.context.overflow_message(), reason="context") from None
                await self.context.compact(self.messages, self.model, force=True)
                continue
            await self.events.emit(UsageRecorded.of(response.model or self.model, response.usage))
            self.step_cost = response.usage.cost_usd
            if response.finish_reason == "length" and response.tool_calls and attempt < TRUNCATION_RETRIES:
                hint = ("Your previous reply was cut off by the output length limit while writing a tool call. "
                        "Send shorter arguments (split large files into several writes) or fewer calls at once.")
                continue
            return response
        return response

    async def check_budget(self) -> None:
        """Before every model call: a spent budget stops the turn (spend on the model counts too)."""
        if self.budget is None:
            return
        refusal = await self.budget.refusal(self.step_cost)
        if refusal:
            raise TurnStopped(refusal, reason="budget")

    async def prepared_view(self, extra: str | None = None) -> list[dict[str, Any]]:
        view = await self.context.view(self.system_prompt, self.messages, self.model, self.schemas,
                                       tools_text=self.schemas_text)
        if extra:
            view.append({"role": "user", "content": extra})
        return view

    async def run_tools(self, calls: list[_Call]) -> TurnOutcome | None:
        free, gated = [], []
        for call in calls:
            tool = self.tools.get(call.name)
            if tool is None:
                free.append((call, None, None))
                continue
            try:
                args = tool.parse(call.arguments)
            except ToolFeedback as exc:
                free.append((call, None, exc))
                continue
            (gated if tool.policy(args) != "none" else free).append((call, args, None))

        results = await asyncio.gather(*(self.run_free(c, a, e) for c, a, e in free))
        for (call, _, _), result in zip(free, results, strict=True):
            await self.add_result(call, result)

        answers: list[tuple[_Call, Any, GateAnswer | ToolResult]] = []
        for call, args, _ in gated:
            answers.append((call, args, await self.consult_gate(call, args)))
        waiting = [c.id for c, _, a in answers if isinstance(a, GateAnswer) and a.status == "pending"]
        if waiting:
            return TurnOutcome("suspended", pending_calls=waiting)
        for call, args, answer in answers:
            result = answer if isinstance(answer, ToolResult) else await self.run_decided(call, args, answer)
            await self.add_result(call, result)

        verdict = self.guard.observe([(c.name, c.arguments, self.result_text(c.id)) for c in calls])
        if verdict == "stop":
            raise TurnStopped(self.guard.stop_message(), reason="repetition")
        if verdict == "warn":
            await self.add(guard_message(self.guard.message(), "repetition_guard"))
        return None

    async def run_free(self, call: _Call, args: Any, error: Exception | None) -> ToolResult:
        if args is None and error is None:
            known = ", ".join(self.tools.names())
            return ToolResult(f"There is no tool named {call.name!r} here. Available tools: {known}", is_error=True)
        if error is not None:
            return ToolResult(str(error), is_error=True)
        return await self.execute(call, args, approval_id=None)

    async def consult_gate(self, call: _Call, args: Any) -> GateAnswer | ToolResult:
        answer = await self.gate.lookup(call.id)
        if answer is not None:
            return answer
        tool = self.tools.get(call.name)
        assert tool is not None and tool.describe is not None, f"{call.name} needs a describe() for approval"
        try:
            info = await tool.describe(self.ctx.for_call(call.id), args)
        except ToolFeedback as exc:
            return ToolResult(str(exc), is_error=True)
        except (asyncio.CancelledError, TurnStopped):
            raise
        except Exception as exc:
            log.exception("preparing the approval for %s failed", call.name)
            return ToolResult(f"Could not prepare this request for approval: {type(exc).__name__}: {exc}",
                              is_error=True)
        spec = canonical_spec(args)
        if info.snapshot is not None:
            spec["sandbox_code"] = info.snapshot.manifest()  # the hash covers the files' content
        request = ApprovalRequest(call.id, call.name, spec, spec_hash(call.name, spec), info)
        return await self.gate.request(request)

    async def run_decided(self, call: _Call, args: Any, answer: GateAnswer) -> ToolResult:
        if answer.status == "approved":
            tool = self.tools.get(call.name)
            assert tool is not None and answer.spec is not None
            approved_args = tool.args.model_validate(answer.spec)  # exactly what was approved
            return await self.execute(call, approved_args, approval_id=answer.approval_id)
        if answer.status == "denied":
            who = f" by {answer.by}" if answer.by else ""
            why = f": {answer.reason}" if answer.reason else ""
            return ToolResult(f"Not run: denied{who}{why}. Do not retry the same request unchanged; "
                              "ask in the thread what to change.", is_error=True)
        if answer.status == "expired":
            return ToolResult("Not run: the approval expired without a decision. Ask in the thread "
                              "whether it is still wanted before requesting it again.", is_error=True)
        return ToolResult("Not run: the request was cancelled (the session was stopped).", is_error=True)

    async def execute(self, call: _Call, args: Any, approval_id: str | None) -> ToolResult:
        tool = self.tools.get(call.name)
        assert tool is not None
        await self.events.emit(ToolStarted(call.id, call.name, self.redactor.redact(short_args(call.arguments))))
        result = await run_tool(tool, self.ctx.for_call(call.id, approval_id), args)
        # the content is redacted once, in add_result; the event carries only its first line
        summary = first_line(self.redactor.redact(first_line(result.content, 2000)))
        await self.events.emit(ToolFinished(call.id, call.name, not result.is_error, summary,
                                            self.redactor.redact_obj(result.artifacts), approval_id))
        return result

    async def add_result(self, call: _Call, result: ToolResult) -> None:
        if "job" in result.artifacts:
            # Waiting on a job is a legitimate end of turn: its end starts the next one.
            self._plan_nudges = PLAN_NUDGES
        content = self.context.clip_tool_output(self.redactor.redact(result.content), self.model)
        await self.add({"role": "tool", "tool_call_id": call.id, "name": call.name, "content": content})

    async def add(self, message: dict[str, Any]) -> None:
        await self.transcript.append(message)
        self.messages.append(message)

    def result_text(self, call_id: str) -> str:
        for m in reversed(self.messages):
            if m.get("role") == "tool" and m.get("tool_call_id") == call_id:
                return str(m.get("content", ""))
        return ""


def assistant_message(response: LLMResponse, redactor: Redactor | None = None) -> dict[str, Any]:
    # The text is redacted; the arguments are kept as sent, because they are what gets executed.
    text = response.content or ""
    msg: dict[str, Any] = {"role": "assistant", "content": redactor.redact(text) if redactor else text}
    if response.tool_calls:
        msg["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in response.tool_calls
        ]
    return msg


def guard_message(text: str, kind: str) -> dict[str, Any]:
    return {"role": "user", "content": f"[intern guard] {text}", "meta": {"kind": kind}}


def unanswered_calls(messages: list[dict[str, Any]]) -> list[_Call]:
    """Tool calls of the last assistant message that have no result yet (after a restart or approval).

    People may have written in the thread meanwhile; their messages wait in the transcript and the
    context view moves them after the tool results.
    """
    for i in range(len(messages) - 1, -1, -1):
        msg = messages[i]
        if msg.get("role") == "assistant":
            answered = {m.get("tool_call_id") for m in messages[i + 1:] if m.get("role") == "tool"}
            return [
                _Call(c["id"], c["function"]["name"], c["function"].get("arguments") or "{}")
                for c in msg.get("tool_calls") or []
                if c["id"] not in answered
            ]
    return []


def short_args(arguments: str, limit: int = 120) -> str:
    try:
        data = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return arguments[:limit]
    parts = []
    for k, v in data.items() if isinstance(data, dict) else []:
        s = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        s = s.replace("\n", " ")
        parts.append(f"{k}={s[:40]}{'…' if len(s) > 40 else ''}")
    out = ", ".join(parts)
    return out[:limit]


def first_line(text: str, limit: int = 160) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line[:limit]
