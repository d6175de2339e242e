"""What the model sees: the system prompt, then the conversation with compaction summaries applied.

The full history stays in the transcript; compaction appends a summary message that stands in for
a middle range of it (`meta.replaces = [first, last]`, raw indices, inclusive). The first task
message and the recent turns stay verbatim.

Speed: messages are append-only and never edited, so each one is converted to its provider form,
redacted and counted once, and remembered by identity. A step then costs one pass over the
history plus the tokenizer on the new messages only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from intern.agent import prompts
from intern.agent.errors import ContextOverflow, TurnStopped
from intern.agent.events import Notice, UsageRecorded
from intern.agent.ports import LLM, EventSink, Transcript

if TYPE_CHECKING:
    from intern.agent.guardrails.redaction import Redactor

log = logging.getLogger(__name__)

COMPACT_AT = 0.90  # share of the window at which the middle is summarised
KEEP_RECENT_FRACTION = 0.30  # share of the window the verbatim recent tail may use
FORCED_KEEP_FRACTION = 0.10  # the same when the provider said the prompt does not fit
MIN_RECENT_MESSAGES = 6
MIN_GAIN_FRACTION = 0.05  # a compaction that frees less than this is not worth a model call
TOOL_OUTPUT_MAX_CHARS = 30_000
TOOL_OUTPUT_WINDOW_SHARE = 0.25  # one tool output may fill at most this share of the window
CHARS_PER_TOKEN = 3  # conservative: code and JSON tokenise densely
SUMMARY_INPUT_SHARE = 0.75  # the summariser's input may fill this share of the window
SUMMARY_TOOL_CHARS = 2000
SUMMARY_HEADER = "[Summary of the earlier conversation]"


def clip(text: str, limit: int, what: str = "output") -> str:
    """Cut the middle out of a long text, keeping head and tail (at line breaks when close), and say so."""
    if len(text) <= limit:
        return text
    head = int(limit * 0.6)
    tail = limit - head
    nl = text.rfind("\n", int(head * 0.9), head)
    head = nl if nl != -1 else head
    nl = text.find("\n", len(text) - tail, len(text) - int(tail * 0.9))
    tail_start = nl + 1 if nl != -1 else len(text) - tail
    cut = tail_start - head
    return f"{text[:head]}\n\n[… {cut} characters of {what} cut here …]\n\n{text[tail_start:]}"


def is_summary(msg: dict[str, Any]) -> bool:
    meta = msg.get("meta")
    return meta is not None and meta.get("kind") == "summary"


def wire(msg: dict[str, Any], redactor: Redactor | None = None) -> dict[str, Any]:
    """The message as a provider accepts it: our bookkeeping keys removed, secrets masked, and tool-call
    arguments that are not a JSON object wrapped into one (some providers refuse to forward them)."""
    out = {k: v for k, v in msg.items() if k in ("role", "content", "tool_calls", "tool_call_id", "name")}
    if out.get("role") != "tool":
        out.pop("name", None)
    if out.get("tool_calls"):
        out["tool_calls"] = [_wire_call(c, redactor) for c in out["tool_calls"]]
    if redactor is not None and isinstance(out.get("content"), str):
        out["content"] = redactor.redact(out["content"])
    return out


def _wire_call(call: dict[str, Any], redactor: Redactor | None) -> dict[str, Any]:
    """Only the arguments change (ids must keep matching their results)."""
    fn = call.get("function") or {}
    raw = fn.get("arguments") or "{}"
    try:
        ok = isinstance(json.loads(raw), dict)
    except (json.JSONDecodeError, TypeError):
        ok = False
    args = raw if ok else json.dumps({"unparsed_arguments": str(raw)[:4000]})
    if redactor is not None:
        args = redactor.redact(args)
    return call if args is raw else {**call, "function": {**fn, "arguments": args}}


@dataclass
class _Entry:
    msg: dict[str, Any]  # the raw message: holding it keeps its id() from being reused
    wire: dict[str, Any]
    tokens: int
    model: str


class _Item(NamedTuple):
    raw: int  # index in the full message list
    entry: _Entry

    @property
    def msg(self) -> dict[str, Any]:
        return self.entry.msg


class ContextManager:
    def __init__(self, llm: LLM, transcript: Transcript, *, window_override: int | None = None,
                 tool_output_max_chars: int = TOOL_OUTPUT_MAX_CHARS, redactor: Redactor | None = None,
                 events: EventSink | None = None) -> None:
        self.llm, self.transcript = llm, transcript
        self.window_override = window_override
        self.tool_output_max_chars = tool_output_max_chars
        self.redactor, self.events = redactor, events
        self.last_summary: str | None = None
        self._cache: dict[int, _Entry] = {}
        self._fixed: dict[tuple[str, str], tuple[Any, int]] = {}

    def attach(self, *, events: EventSink | None = None, redactor: Redactor | None = None) -> None:
        """Fill in the event sink and redactor when the composition root did not pass them."""
        self.events = self.events or events
        self.redactor = self.redactor or redactor

    def window(self, model: str) -> int:
        return self.window_override or self.llm.context_window(model)

    def clip_tool_output(self, text: str, model: str | None = None) -> str:
        limit = self.tool_output_max_chars
        if model:
            limit = min(limit, int(self.window(model) * TOOL_OUTPUT_WINDOW_SHARE * CHARS_PER_TOKEN))
        return clip(text, limit, "tool output")

    def overflow_message(self) -> str:
        seed = ("Say `continue in a new session` and I will start a fresh session in this thread, seeded with "
                "the summary so far." if self.last_summary else
                "Say `continue in a new session` to start a fresh session in this thread.")
        return ("This conversation no longer fits in the model's context window, even after summarising its "
                f"middle. The full history is kept. {seed}")

    # --- the view --------------------------------------------------------------------------------

    async def view(self, system_prompt: str, messages: list[dict[str, Any]], model: str,
                   tools: list[dict[str, Any]] | None = None, *, tools_text: str | None = None,
                   ) -> list[dict[str, Any]]:
        """`tools_text`, when given, is `tools` as JSON (what is counted; saves serialising them)."""
        items = self.items(messages, model)
        fixed = self._fixed_tokens(model, system_prompt, tools, tools_text)
        window = self.window(model)
        if fixed + tokens_of(items) > COMPACT_AT * window:
            await self.compact(messages, model)
            items = self.items(messages, model)
            if fixed + tokens_of(items) > window:
                raise self._overflow(messages)
        return [{"role": "system", "content": system_prompt}, *order_tool_results([i.entry.wire for i in items])]

    def build(self, system_prompt: str, messages: list[dict[str, Any]], model: str = "") -> list[dict[str, Any]]:
        """The view without any compaction (for exports and tests)."""
        items = self.items(messages, model)
        return [{"role": "system", "content": system_prompt}, *order_tool_results([i.entry.wire for i in items])]

    def tokens(self, system_prompt: str, messages: list[dict[str, Any]], model: str,
               tools: list[dict[str, Any]] | None = None) -> int:
        return self._fixed_tokens(model, system_prompt, tools) + tokens_of(self.items(messages, model))

    def items(self, messages: list[dict[str, Any]], model: str) -> list[_Item]:
        """The messages the model sees, in order: the latest summary stands in for the range it replaces."""
        found = latest_summary(messages)
        if found is None:
            indices: list[int] | range = range(len(messages))
        else:
            idx, (a, b) = found
            indices = [*(i for i in range(a) if not is_summary(messages[i])), idx,
                       *(i for i in range(b + 1, len(messages)) if i != idx and not is_summary(messages[i]))]
            if self.last_summary is None:
                self.last_summary = summary_text(messages[idx])
        cache: dict[int, _Entry] = {}
        old = self._cache
        items = []
        for i in indices:
            m = messages[i]
            e = old.get(id(m))
            if e is None or e.msg is not m or e.model != model:
                e = self._entry(m, model)
            cache[id(m)] = e
            items.append(_Item(i, e))
        self._cache = cache  # only what is in view stays remembered
        return items

    def _entry(self, msg: dict[str, Any], model: str) -> _Entry:
        w = wire(msg, self.redactor)
        tokens = self.llm.count_tokens(model, [w]) if model else 0
        return _Entry(msg, w, tokens, model)

    def _fixed_tokens(self, model: str, system_prompt: str, tools: list[dict[str, Any]] | None,
                      tools_text: str | None = None) -> int:
        total = 0
        for key, obj in (("system", system_prompt), ("tools", tools)):
            if not obj:
                continue
            hit = self._fixed.get((model, key))
            if hit is None or hit[0] is not obj:  # callers pass the same objects every step
                text = obj if isinstance(obj, str) else tools_text or json.dumps(obj)
                hit = (obj, self.llm.count_tokens(model, [{"role": "system", "content": text}]))
                self._fixed[(model, key)] = hit
            total += hit[1]
        return total

    # --- compaction ------------------------------------------------------------------------------

    async def compact(self, messages: list[dict[str, Any]], model: str, force: bool = False) -> bool:
        """Summarise the middle of the view. False when there is nothing worth summarising; when forced
        (the provider refused the prompt as too long) that is a stop instead."""
        items = self.items(messages, model)
        cuts = self.cuts(items, model, force)
        if cuts is None:
            if force:
                raise self._overflow(messages)
            return False
        head, cut = cuts
        middle = items[head:cut]
        summary = await self.summarise([i.msg for i in middle], model, messages,
                                       limit=self.summary_input_chars(middle, model))
        first = items[head - 1].raw + 1 if head else 0
        last = items[cut].raw - 1 if cut < len(items) else len(messages) - 1
        msg = {"role": "user", "content": f"{SUMMARY_HEADER}\n{summary}",
               "meta": {"kind": "summary", "replaces": [first, last]}}
        await self.transcript.append(msg)
        messages.append(msg)
        self.last_summary = summary
        log.info("compacted messages %d..%d into a summary of %d characters", first, last, len(summary))
        if self.events is not None:
            await self.events.emit(Notice("I summarised the earlier part of this conversation to stay within the "
                                          "model's context window; the full history is kept.", level="info"))
        return True

    def cuts(self, items: list[_Item], model: str, force: bool) -> tuple[int, int] | None:
        """(head, cut): items[:head] and items[cut:] stay verbatim, items[head:cut] is summarised."""
        head = kept_head(items)
        lo = head + 1 if head < len(items) and is_summary(items[head].msg) else head
        window = self.window(model)
        budget = int(window * KEEP_RECENT_FRACTION)
        if force:
            # The provider counts more than we do, so our estimate cannot be trusted: keep a small tail
            # relative to what is there, not to the window.
            budget = min(int(window * FORCED_KEEP_FRACTION), int(tokens_of(items) * KEEP_RECENT_FRACTION))
        cut = clean_cut(items, lo, tail_start(items, lo, budget, 2 if force else MIN_RECENT_MESSAGES))
        if cut is None:
            return None
        gain = sum(i.entry.tokens for i in items[head:cut] if not is_summary(i.msg))
        if not force and gain < MIN_GAIN_FRACTION * window:
            return None
        return head, cut

    def summary_input_chars(self, middle: list[_Item], model: str) -> int:
        """How many characters of the middle the summariser can take, at the middle's own density."""
        tokens = sum(i.entry.tokens for i in middle)
        chars = sum(len(str(i.entry.wire.get("content") or "")) + len(json.dumps(i.entry.wire.get("tool_calls") or ""))
                    for i in middle)
        per_token = chars / tokens if tokens else CHARS_PER_TOKEN
        return int(self.window(model) * SUMMARY_INPUT_SHARE * max(1.0, min(per_token, 6.0)))

    async def summarise(self, middle: list[dict[str, Any]], model: str,
                        messages: list[dict[str, Any]] | None = None, limit: int | None = None) -> str:
        limit = limit or int(self.window(model) * SUMMARY_INPUT_SHARE * CHARS_PER_TOKEN)
        rendered = render_middle(middle, limit)
        for attempt in (1, 2):
            try:
                response = await self.llm.complete(
                    model=model,
                    messages=[{"role": "system", "content": prompts.compaction_prompt()},
                              {"role": "user", "content": rendered}],
                    tools=None)
            except ContextOverflow:
                if attempt == 2:
                    raise self._overflow(messages or middle) from None
                rendered = clip(rendered, len(rendered) // 2, "conversation")
                continue
            if self.events is not None:
                await self.events.emit(UsageRecorded.of(response.model or model, response.usage))
            text = (response.content or "").strip()
            if text:
                return self.redactor.redact(text) if self.redactor is not None else text
            break
        raise self._overflow(messages or middle)

    def _overflow(self, messages: list[dict[str, Any]]) -> TurnStopped:
        if self.last_summary is None:
            self.last_summary = fallback_summary(messages)
        return TurnStopped(self.overflow_message(), reason="context")


def tokens_of(items: list[_Item]) -> int:
    return sum(i.entry.tokens for i in items)


def kept_head(items: list[_Item]) -> int:
    """How many leading items stay verbatim: up to and including the first task message."""
    for n, item in enumerate(items):
        m = item.msg
        if m.get("role") == "user" and not (m.get("meta") or {}).get("kind"):
            return n + 1
    return 0


def tail_start(items: list[_Item], lo: int, budget: int, min_recent: int) -> int:
    """First item of the recent tail: as many recent items as fit in `budget`, at least `min_recent`."""
    used, cut = 0, len(items)
    for n in range(len(items) - 1, lo - 1, -1):
        cost = items[n].entry.tokens
        if used + cost > budget and len(items) - cut >= min_recent:
            break
        used += cost
        cut = n
    return cut


def clean_cut(items: list[_Item], lo: int, cut: int) -> int | None:
    """Move the cut to where no tool call is waiting for its result, so a call and its results stay on
    the same side: back (keeping a little more) when possible, else forward. None: no useful cut."""
    clean = clean_positions(items)
    first_real = next((p for p in range(lo, len(items)) if not is_summary(items[p].msg)), len(items))

    def useful(p: int) -> bool:
        return clean[p] and p > first_real

    for p in range(min(cut, len(items)), lo, -1):
        if useful(p):
            return p
    for p in range(cut + 1, len(items) + 1):
        if useful(p):
            return p
    return None


def clean_positions(items: list[_Item]) -> list[bool]:
    clean = [False] * (len(items) + 1)
    open_calls: set[str] = set()
    for p in range(len(items) + 1):
        role = items[p].msg.get("role") if p < len(items) else None
        clean[p] = not open_calls and role != "tool"
        if p == len(items):
            break
        m = items[p].msg
        if role == "assistant":
            open_calls = {c["id"] for c in m.get("tool_calls") or []}
        elif role == "tool":
            open_calls.discard(m.get("tool_call_id"))
    return clean


def latest_summary(messages: list[dict[str, Any]]) -> tuple[int, list[int]] | None:
    for i in range(len(messages) - 1, -1, -1):
        if is_summary(messages[i]):
            return i, list(messages[i]["meta"]["replaces"])
    return None


def summary_text(msg: dict[str, Any]) -> str:
    content = str(msg.get("content") or "")
    return content[len(SUMMARY_HEADER):].strip() if content.startswith(SUMMARY_HEADER) else content


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

    People may write while approvals are pending; their messages move after the results. Results whose
    call was summarised away are dropped; a call that never got a result (an interrupted turn) gets a
    stand-in result, because providers refuse a call without one.
    """
    out: list[dict[str, Any]] = []
    open_calls: dict[str, str] = {}
    deferred: list[dict[str, Any]] = []
    for m in messages:
        role = m.get("role")
        if role == "assistant":
            _close(out, open_calls)
            out.extend(deferred)
            deferred = []
            out.append(m)
            open_calls = {c["id"]: c["function"]["name"] for c in m.get("tool_calls") or []}
        elif role == "tool":
            if m.get("tool_call_id") in open_calls:
                out.append(m)
                del open_calls[m["tool_call_id"]]
                if not open_calls:
                    out.extend(deferred)
                    deferred = []
        elif open_calls:
            deferred.append(m)
        else:
            out.append(m)
    _close(out, open_calls)
    out.extend(deferred)
    return out


def _close(out: list[dict[str, Any]], open_calls: dict[str, str]) -> None:
    for call_id, name in open_calls.items():
        out.append({"role": "tool", "tool_call_id": call_id, "name": name,
                    "content": "(no result: this call was interrupted before it finished)"})
    open_calls.clear()


def render_middle(middle: list[dict[str, Any]], limit: int) -> str:
    """The summariser's input: every message, tool outputs shortened so the whole fits in `limit`."""
    cap = SUMMARY_TOOL_CHARS
    rendered = "\n\n".join(render_for_summary(m, cap) for m in middle)
    if len(rendered) > limit:
        tools = sum(1 for m in middle if m.get("role") == "tool") or 1
        cap = max(300, cap - (len(rendered) - limit) // tools)
        rendered = "\n\n".join(render_for_summary(m, cap) for m in middle)
    return clip(rendered, limit, "conversation")


def render_for_summary(msg: dict[str, Any], tool_chars: int = SUMMARY_TOOL_CHARS) -> str:
    role = msg.get("role", "?")
    content = msg.get("content") or ""
    if not isinstance(content, str):
        content = json.dumps(content)
    if is_summary(msg):
        return f"[summary of an earlier part]\n{summary_text(msg)}"
    if msg.get("tool_calls"):
        calls = "; ".join(f"{c['function']['name']}({(c['function'].get('arguments') or '')[:500]})"
                          for c in msg["tool_calls"])
        content = f"{content}\n[calls: {calls}]".strip()
    if role == "tool":
        return f"[tool result {msg.get('name', '')}]\n{clip(content, tool_chars, 'tool output')}"
    return f"[{role}]\n{content}"


def fallback_summary(messages: list[dict[str, Any]]) -> str:
    """A summary made without the model (when summarising failed): the task, the plan, the last words."""
    from intern.agent.plan import PlanState

    task = next((m for m in messages if m.get("role") == "user" and not (m.get("meta") or {}).get("kind")), None)
    parts = [f"Task: {clip(str(task.get('content') or ''), 2000, 'task')}" if task else "Task: (not found)"]
    plan = PlanState.from_messages(messages)
    if plan.todos:
        parts.append("Plan:\n" + plan.render())
    recent = [m for m in messages if m.get("role") in ("user", "assistant") and m.get("content")][-6:]
    parts.extend(f"{m['role']}: {clip(str(m['content']), 600, 'message')}" for m in recent)
    return "(Summary made without the model: the task, the plan and the last messages.)\n" + "\n\n".join(parts)
