"""`research`: a read-only sub-agent that surveys papers, datasets and docs and returns ranked recipes.

It cannot reach a tool that needs approval, by construction: it is offered only tools flagged
`read_only` that have no approval path (no `describe`), minus the session's own tools (`plan`,
`research`) and every tool that can write (`hf_jobs`, `hf_repo_*`, `sandbox_*`), whatever their
flags say. A call to anything else comes back as an error and runs nothing; a tool whose policy asks
for approval for some arguments is refused at run time too.

Its limits never stop the main turn (a TurnStopped would): running out of steps or of context, or
going round in circles, ends in a final call without tools that asks for the answer from what was
found. Every call builds its own state (messages, guard, context manager, plan), so several research
calls run side by side.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from intern.agent.context import (
    CHARS_PER_TOKEN,
    SUMMARY_INPUT_SHARE,
    ContextManager,
    render_middle,
)
from intern.agent.context_deps import required
from intern.agent.errors import ContextOverflow, ToolFeedback, TurnStopped
from intern.agent.events import ResearchProgress, UsageRecorded
from intern.agent.guardrails.doom_loop import RepetitionGuard
from intern.agent.loop import assistant_message, guard_message, short_args
from intern.agent.plan import PlanState
from intern.agent.prompts import research_prompt
from intern.agent.tools.base import Tool, ToolRegistry, ToolResult, run_tool

if TYPE_CHECKING:
    from intern.agent.context_deps import AgentConfig, ToolContext
    from intern.agent.ports import LLM, LLMResponse, SpendGuard, ToolCall

log = logging.getLogger(__name__)

MAX_ITERATIONS = 60  # model calls, the final summary included
WARN_AT = 0.85  # share of the context window at which the sub-agent is told to wrap up
SUMMARY_AT = 0.95  # ... and at which it must answer now, without tools
TOOL_OUTPUT_CHARS = 8_000
NEVER_OFFERED = frozenset({"hf_jobs", "hf_repo_files", "hf_repo_git", "plan", "research"})
NEVER_OFFERED_PREFIXES = ("sandbox_",)
RECIPE_TABLE = re.compile(r"^\s*\|\s*rank\s*\|\s*paper\s*\|", re.IGNORECASE | re.MULTILINE)
RECIPE_ROW = re.compile(r"^\s*\|\s*\d+\s*\|", re.MULTILINE)

WRAP_UP = ("You have used most of your context window. Stop opening new leads: at most one or two more "
           "look-ups that your table really needs, then write your answer in the required format.")
FORMAT_NUDGE = ("Your answer must start with the Recipes table, header row exactly "
                "`| rank | paper | result | dataset (format verified?) | method and hyper-parameters |`, "
                "then the Recommendation and the Sources. Write it again in that format (no more tool calls "
                "unless the table cannot be filled without one).")

DESCRIPTION = (
    "Hand a literature and Hub survey to a read-only research sub-agent (its own context, a cheaper model). "
    "`task`: the ML question (e.g. 'best recipe to fine-tune a 1B model for Python code generation'); "
    "`context`: what is known already (the team's data, constraints, budget, what was ruled out). It searches "
    "and reads papers, follows citations, inspects candidate datasets and checks the docs, then returns a "
    "ranked table of recipes (paper, result, dataset and whether its format was verified, method and "
    "hyper-parameters) with its sources, followed by what the tools actually checked. It cannot run jobs, "
    "sandboxes or write anything. Independent questions can go to several research calls at once."
)


class ResearchArgs(BaseModel):
    task: str = Field(min_length=1, description="The question to research, as one self-contained task")
    context: str = Field("", description="What is already known: data, model, constraints, budget, dead ends")


def can_offer(tool: Tool) -> bool:
    return (tool.read_only and tool.describe is None and tool.name not in NEVER_OFFERED
            and not tool.name.startswith(NEVER_OFFERED_PREFIXES))


def offered_tools(registry: ToolRegistry) -> ToolRegistry:
    candidates = registry.read_only()
    return ToolRegistry([t for t in (candidates.get(n) for n in candidates.names()) if t and can_offer(t)])


def research_tool(registry: ToolRegistry) -> Tool:
    """The `research` tool over the read-only part of `registry`, chosen now (add it after the others)."""
    offered = offered_tools(registry)

    async def handle(ctx: ToolContext, args: ResearchArgs) -> ToolResult:
        return await Research(ctx, offered, args).run()

    return Tool(name="research", description=DESCRIPTION, args=ResearchArgs, handler=handle, read_only=True)


def research_window(llm: LLM, config: AgentConfig, model: str) -> int:
    """INTERN_CONTEXT_WINDOW_TOKENS describes INTERN_MODEL: a different research model keeps its own
    window when that is smaller."""
    override = config.context_window_tokens
    if not override:
        return llm.context_window(model)
    return override if model == config.model else min(override, llm.context_window(model))


class _Scratch:
    """The sub-agent's messages live only for the call; ContextManager wants a transcript only to
    store compaction summaries, which research never makes."""

    async def append(self, message: dict[str, Any]) -> None:
        return None


@dataclass
class Ledger:
    """What the tools checked, recorded from their results rather than from the model's words."""

    hub: str
    datasets: dict[str, str] = field(default_factory=dict)  # "id (config/split)" -> Fits labels
    papers: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)

    def record(self, name: str, args: Any, result: ToolResult) -> None:
        if result.is_error:
            return
        a = result.artifacts
        if name == "hf_inspect_dataset" and a.get("dataset"):
            self.datasets[f"{a['dataset']} ({a.get('config')}/{a.get('split')})"] = ", ".join(a.get("fits") or [])
        for value, seen in ((getattr(args, "arxiv_id", None), self.papers), (getattr(args, "url", None), self.pages)):
            if isinstance(value, str) and value and value not in seen:
                seen.append(value)

    def render(self) -> str:
        lines = ["**Checked by the tools during this research** (from the tool results, not the model's words):"]
        if self.datasets:
            lines += [f"- dataset `{d}` inspected, Fits: {fits or 'none'}" for d, fits in self.datasets.items()]
        else:
            lines.append("- no dataset was inspected: every dataset format above is unverified")
        lines += [f"- paper {self.hub}/papers/{p}" for p in self.papers]
        lines += [f"- page {u}" for u in self.pages]
        return "\n".join(lines)


class Research:
    def __init__(self, ctx: ToolContext, tools: ToolRegistry, args: ResearchArgs) -> None:
        llm = required(ctx.deps.llm, "Research is not available in this process: it was given no language model.")
        self.llm: LLM = llm
        self.budget: SpendGuard | None = ctx.deps.budget
        self.step_cost = 0.0
        self.tools, self.call_id, self.events = tools, ctx.call_id, ctx.events
        self.model = ctx.config.research_model or ctx.config.model
        self.context = ContextManager(llm, _Scratch(), window_override=research_window(llm, ctx.config, self.model),
                                      tool_output_max_chars=TOOL_OUTPUT_CHARS, redactor=ctx.deps.redactor)
        # inner tools share the session's connections and caches, never its plan
        self.inner = ctx.for_call(ctx.call_id)
        self.inner.plan = PlanState()
        self.system = research_prompt(today=datetime.now(UTC).date().isoformat())
        self.schemas = tools.schemas()
        self.task = task_message(args)
        self.messages: list[dict[str, Any]] = [{"role": "user", "content": self.task}]
        self.guard = RepetitionGuard()
        self.ledger = Ledger(ctx.config.hf_endpoint)
        self.warned = self.nudged = False

    async def run(self) -> ToolResult:
        for step in range(1, MAX_ITERATIONS):
            used = self.context.tokens(self.system, self.messages, self.model, self.schemas)
            share = used / self.context.window(self.model)
            if share >= SUMMARY_AT:
                return await self.finish(step, "its context window was nearly full")
            if share >= WARN_AT and not self.warned:
                self.warned = True
                self.messages.append(guard_message(WRAP_UP, "research_budget"))
            try:
                response = await self.ask(self.view(), self.schemas)
            except ContextOverflow:
                return await self.finish(step, "the model refused the context as too long", native=False)
            self.messages.append(assistant_message(response))
            if not response.tool_calls:
                if self.accept(response.content or ""):
                    return await self.done((response.content or "").strip(), step, None)
                continue
            await self.progress(step, "; ".join(f"{c.name} {short_args(c.arguments, 60)}" for c in response.tool_calls))
            verdict = await self.run_calls(response.tool_calls)
            if verdict == "stop":
                return await self.finish(step + 1, f"it was going round in circles ({self.guard.reason})")
            if verdict == "warn":
                self.messages.append(guard_message(
                    f"You are repeating yourself: {self.guard.reason}. The same call will give the same result; "
                    "try another source or query, or write your answer. Repeating again ends the research.",
                    "repetition_guard"))
        return await self.finish(MAX_ITERATIONS, f"it reached its limit of {MAX_ITERATIONS} steps")

    def view(self) -> list[dict[str, Any]]:
        return self.context.build(self.system, self.messages, self.model)

    async def ask(self, view: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> LLMResponse:
        if self.budget is not None:
            refusal = await self.budget.refusal(self.step_cost)
            if refusal:
                raise TurnStopped(refusal, reason="budget")  # ends the session's turn, not only the research
        response = await self.llm.complete(model=self.model, messages=view, tools=tools)
        self.step_cost = response.usage.cost_usd
        await self.events.emit(UsageRecorded.of(response.model or self.model, response.usage))
        return response

    def accept(self, text: str) -> bool:
        """A final answer without the recipe table gets one reminder of the format."""
        if RECIPE_TABLE.search(text) or self.nudged:
            return True
        self.nudged = True
        self.messages.append(guard_message(FORMAT_NUDGE, "research_format"))
        return False

    async def progress(self, step: int, summary: str) -> None:
        await self.events.emit(ResearchProgress(call_id=self.call_id, step=step, summary=summary[:140]))

    async def run_calls(self, calls: tuple[ToolCall, ...]) -> str:
        results = await asyncio.gather(*(self.run_call(c) for c in calls))
        observed = []
        for call, result in zip(calls, results, strict=True):
            content = self.context.clip_tool_output(result.content, self.model)
            self.messages.append({"role": "tool", "tool_call_id": call.id, "name": call.name, "content": content})
            observed.append((call.name, call.arguments, content))
        return self.guard.observe(observed)

    async def run_call(self, call: ToolCall) -> ToolResult:
        tool = self.tools.get(call.name)
        if tool is None:
            return ToolResult(f"There is no tool named {call.name!r} here: research is read-only and has only "
                              f"{', '.join(self.tools.names())}. Note in your answer what you could not check.",
                              is_error=True)
        try:
            args = tool.parse(call.arguments)
        except ToolFeedback as exc:
            return ToolResult(str(exc), is_error=True)
        if tool.policy(args) != "none":
            return ToolResult(f"{call.name} with these arguments needs an approval; research cannot run it.",
                              is_error=True)
        result = await run_tool(tool, self.inner.for_call(call.id), args, who="research")
        self.ledger.record(call.name, args, result)
        return result

    async def finish(self, step: int, reason: str, native: bool = True) -> ToolResult:
        """One call without tools for the answer: on the conversation itself when it fits, else on a
        shortened rendering of it."""
        await self.progress(step, f"writing the answer ({reason})")
        ask = (f"[intern] Stop researching: {reason}. Do not call tools. Write your final answer now, in the "
               "required format, from what you found; write 'not reported' or 'not verified' for the gaps.")
        for use_native in (True, False) if native else (False,):
            try:
                response = await self.ask(self.summary_view(ask, use_native), None)
            except ContextOverflow:
                continue
            text = (response.content or "").strip()
            if text:
                return await self.done(text, step, reason)
            break
        return ToolResult(f"The research sub-agent stopped ({reason}) without writing an answer.\n\n"
                          + self.ledger.render(), is_error=True, artifacts={"steps": step, "ended": reason})

    def summary_view(self, ask: str, native: bool) -> list[dict[str, Any]]:
        if native:
            return [*self.view(), {"role": "user", "content": ask}]
        limit = int(self.context.window(self.model) * SUMMARY_INPUT_SHARE * CHARS_PER_TOKEN) - len(self.task)
        found = render_middle(self.view()[2:], max(limit, 2_000))
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": f"{self.task}\n\n[Your research so far]\n{found}\n\n{ask}"}]

    async def done(self, answer: str, steps: int, ended: str | None) -> ToolResult:
        recipes = len(RECIPE_ROW.findall(answer))
        await self.progress(steps, f"done: {recipes} recipe(s)")
        head = (f"Research: {recipes} recipe(s) in {steps} step(s), {len(self.ledger.datasets)} dataset(s) "
                "inspected" + (f"; ended early because {ended}, so the answer is from what was found by then."
                               if ended else "."))
        return ToolResult(f"{head}\n\n{answer}\n\n{self.ledger.render()}",
                          artifacts={"steps": steps, "ended": ended or "answered", "recipes": recipes,
                                     "datasets_inspected": list(self.ledger.datasets)})


def task_message(args: ResearchArgs) -> str:
    context = args.context.strip()
    return f"Task: {args.task.strip()}" + (f"\n\nWhat the team knows already:\n{context}" if context else "")
