"""What the model sees: the system prompt, then the conversation with compaction summaries applied.

The full history stays in the transcript; compaction appends a summary message that stands in for
a middle range of it (the first task message and the recent turns are kept verbatim).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from intern.agent import prompts
from intern.agent.errors import TurnStopped
from intern.agent.ports import LLM, Transcript

log = logging.getLogger(__name__)

COMPACT_AT = 0.90
KEEP_RECENT_FRACTION = 0.30
MIN_RECENT_MESSAGES = 6
TOOL_OUTPUT_MAX_CHARS = 30_000


def clip(text: str, limit: int, what: str = "output") -> str:
    """Cut the middle out of a long text, keeping head and tail, and say so."""
    if len(text) <= limit:
        return text
    head = int(limit * 0.6)
    tail = limit - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n\n[… {cut} characters of {what} cut here …]\n\n{text[-tail:]}"


def is_summary(msg: dict[str, Any]) -> bool:
    return (msg.get("meta") or {}).get("kind") == "summary"


def wire(msg: dict[str, Any]) -> dict[str, Any]:
    """The message as a provider accepts it (our bookkeeping keys removed)."""
    out = {k: v for k, v in msg.items() if k in ("role", "content", "tool_calls", "tool_call_id", "name")}
    if out.get("role") != "tool":
        out.pop("name", None)
    return out


class ContextManager:
    def __init__(self, llm: LLM, transcript: Transcript, *, window_override: int | None = None,
                 tool_output_max_chars: int = TOOL_OUTPUT_MAX_CHARS) -> None:
        self.llm, self.transcript = llm, transcript
        self.window_override = window_override
        self.tool_output_max_chars = tool_output_max_chars
        self.last_summary: str | None = None

    def window(self, model: str) -> int:
        return self.window_override or self.llm.context_window(model)

    def clip_tool_output(self, text: str) -> str:
        return clip(text, self.tool_output_max_chars, "tool output")

    def overflow_message(self) -> str:
        return ("This conversation no longer fits in the model's context, even after summarising it. "
                "The full history is kept. Say `continue in a new session` to start a fresh session in this "
                "thread seeded with the summary so far.")

    async def view(self, system_prompt: str, messages: list[dict[str, Any]], model: str) -> list[dict[str, Any]]:
        out = self.build(system_prompt, messages)
        if self.llm.count_tokens(model, out) > COMPACT_AT * self.window(model):
            await self.compact(messages, model)
            out = self.build(system_prompt, messages)
            if self.llm.count_tokens(model, out) > self.window(model):
                raise TurnStopped(self.overflow_message(), reason="context")
        return out

    def build(self, system_prompt: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = apply_summary(messages)
        return [{"role": "system", "content": system_prompt}, *order_tool_results([wire(m) for m in body])]

    async def compact(self, messages: list[dict[str, Any]], model: str, force: bool = False) -> bool:
        start, end = self.middle_range(messages, model)
        if end < start:
            if force:
                raise TurnStopped(self.overflow_message(), reason="context")
            return False
        view_middle = apply_summary(messages[: end + 1])[self.kept_head(messages):]
        summary = await self.summarise(view_middle, model)
        self.last_summary = summary
        msg = {"role": "user", "content": f"[Summary of the earlier conversation]\n{summary}",
               "meta": {"kind": "summary", "replaces": [start, end]}}
        await self.transcript.append(msg)
        messages.append(msg)
        return True

    def kept_head(self, messages: list[dict[str, Any]]) -> int:
        """How many leading messages of the view stay verbatim: up to and including the first task."""
        for i, m in enumerate(messages):
            if m.get("role") == "user" and not (m.get("meta") or {}).get("kind"):
                return i + 1
        return 0

    def middle_range(self, messages: list[dict[str, Any]], model: str) -> tuple[int, int]:
        start = self.kept_head(messages)
        budget = int(self.window(model) * KEEP_RECENT_FRACTION)
        end = len(messages)  # first index of the kept recent tail
        used = 0
        candidates = [i for i, m in enumerate(messages) if not is_summary(m)]
        for i in reversed(candidates):
            cost = self.llm.count_tokens(model, [wire(messages[i])])
            kept = len(messages) - i
            if used + cost > budget and kept >= MIN_RECENT_MESSAGES:
                break
            used += cost
            end = i
        # never split an assistant tool call from its results: move the cut back to a user/assistant boundary
        while end < len(messages) and messages[end].get("role") == "tool":
            end += 1
        return start, end - 1

    async def summarise(self, middle: list[dict[str, Any]], model: str) -> str:
        rendered = "\n\n".join(render_for_summary(m) for m in middle)
        limit = int(self.window(model) * 0.6) * 3  # characters, leaves room for the answer
        rendered = clip(rendered, limit, "conversation")
        response = await self.llm.complete(
            model=model,
            messages=[
                {"role": "system", "content": prompts.render("compaction.md")},
                {"role": "user", "content": rendered},
            ],
            tools=None,
        )
        text = (response.content or "").strip()
        if not text:
            raise TurnStopped(self.overflow_message(), reason="context")
        return text


def latest_summary(messages: list[dict[str, Any]]) -> tuple[int, list[int]] | None:
    for i in range(len(messages) - 1, -1, -1):
        if is_summary(messages[i]):
            return i, list(messages[i]["meta"]["replaces"])
    return None


def apply_summary(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = latest_summary(messages)
    if found is None:
        return list(messages)
    idx, (a, b) = found
    head = [m for m in messages[:a] if not is_summary(m)]
    tail = [m for m in messages[b + 1:] if not is_summary(m)]
    return [*head, messages[idx], *tail]


def order_tool_results(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Providers want each tool result right after the assistant message that asked for it.

    People may write while approvals are pending; their messages move after the results.
    Results whose call was summarised away are dropped.
    """
    out: list[dict[str, Any]] = []
    i = 0
    open_calls: set[str] = set()
    deferred: list[dict[str, Any]] = []
    while i < len(messages):
        m = messages[i]
        if m.get("role") == "assistant":
            out.extend(deferred)
            deferred = []
            out.append(m)
            open_calls = {c["id"] for c in m.get("tool_calls") or []}
        elif m.get("role") == "tool":
            if m.get("tool_call_id") in open_calls:
                out.append(m)
                open_calls.discard(m["tool_call_id"])
                if not open_calls:
                    out.extend(deferred)
                    deferred = []
        elif open_calls:
            deferred.append(m)
        else:
            out.append(m)
        i += 1
    out.extend(deferred)
    return out


def render_for_summary(msg: dict[str, Any]) -> str:
    role = msg.get("role", "?")
    content = msg.get("content") or ""
    if msg.get("tool_calls"):
        calls = "; ".join(f"{c['function']['name']}({c['function'].get('arguments', '')[:500]})"
                          for c in msg["tool_calls"])
        content = f"{content}\n[calls: {calls}]".strip()
    if role == "tool":
        content = clip(str(content), 2000, "tool output")
        return f"[tool result {msg.get('name', '')}]\n{content}"
    return f"[{role}]\n{content if isinstance(content, str) else json.dumps(content)}"
