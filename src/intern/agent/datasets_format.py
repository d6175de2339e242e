"""Which training formats a dataset fits, read from the dataset viewer's `features` and sample rows.

The labels follow TRL's dataset types. A label is given only when the data fits it as it is; what a
small transformation would make it fit goes into `conversions`. Sample rows settle what the schema
cannot: whether chosen/rejected share their prompt, and how the conversations are built.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

LABELS = ("sft_messages", "sft_text", "sft_prompt_completion", "sft_sharegpt", "sft_alpaca",
          "dpo_explicit", "dpo_implicit", "kto", "grpo", "reward")

# What each TRL trainer accepts as it is (trainers that convert data themselves list what they convert).
TRAINER_FORMATS: dict[str, frozenset[str]] = {
    "SFTTrainer": frozenset({"sft_messages", "sft_text", "sft_prompt_completion"}),
    "DPOTrainer": frozenset({"dpo_explicit", "dpo_implicit"}),
    "ORPOTrainer": frozenset({"dpo_explicit", "dpo_implicit"}),
    "CPOTrainer": frozenset({"dpo_explicit", "dpo_implicit"}),
    "KTOTrainer": frozenset({"kto", "dpo_explicit", "dpo_implicit"}),  # it unpairs preference data
    "BCOTrainer": frozenset({"kto", "dpo_explicit", "dpo_implicit"}),
    "GRPOTrainer": frozenset({"grpo"}),
    "RLOOTrainer": frozenset({"grpo"}),
    "OnlineDPOTrainer": frozenset({"grpo"}),
    "NashMDTrainer": frozenset({"grpo"}),
    "XPOTrainer": frozenset({"grpo"}),
    "RewardTrainer": frozenset({"reward"}),
    "GKDTrainer": frozenset({"sft_messages", "sft_prompt_completion"}),
}

TRAINERS_BY_LABEL: dict[str, tuple[str, ...]] = {
    "sft_messages": ("SFTTrainer",),
    "sft_text": ("SFTTrainer",),
    "sft_prompt_completion": ("SFTTrainer",),
    "dpo_explicit": ("DPOTrainer", "KTOTrainer (unpairs it)"),
    "dpo_implicit": ("DPOTrainer", "KTOTrainer (unpairs it)"),
    "kto": ("KTOTrainer",),
    "grpo": ("GRPOTrainer", "RLOOTrainer"),
    "reward": ("RewardTrainer",),
}

Kind = Literal["string", "bool", "int", "float", "classlabel", "conversation", "sharegpt", "string_list",
               "list", "struct", "media", "other"]

_MEDIA = {"Image", "Audio", "Video", "Pdf", "Nifti"}
_ROLE_KEYS = {"role", "content"}
_SHAREGPT_KEYS = {"from", "value"}
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "chatgpt": "assistant", "bard": "assistant", "bing": "assistant", "model": "assistant",
                   "system": "system", "function_call": "assistant", "tool_call": "assistant",
                   "observation": "tool", "function_response": "tool", "tool": "tool"}
_CHAT_ROLES = {"system", "developer", "user", "assistant", "tool", "ipython", "function"}
_TOOL_ROLES = {"tool", "ipython", "function"}
_CONVERSATION_NAMES = ("conversations", "conversation", "dialog", "dialogue", "chat", "turns", "messages")
_PROMPT_ALIASES = ("prompt", "question", "problem", "instruction", "query", "input")
_ANSWER_ALIASES = ("completion", "answer", "solution", "response", "output", "answers", "target")
_CONTEXT_ALIASES = ("context", "passage", "document")
_SHARED_PREFIX_CHARS = 16
_EVIDENCE_SHARE = 0.8


# --- schema ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    type_text: str
    fields: tuple[str, ...] = ()  # struct fields, or the fields of a list's items


def parse_features(features: Mapping[str, Any] | Sequence[Any] | None) -> list[Column]:
    """Columns from either viewer form: `{name: type}` (/info) or `[{name, type}]` (/first-rows)."""
    if not features:
        return []
    if isinstance(features, Mapping):
        items = list(features.items())
    else:
        items = [(f["name"], f["type"]) for f in features if isinstance(f, Mapping)]
    return [column_from_type(name, t) for name, t in items]


def _node(t: Any) -> tuple[str, Any]:
    """A small tree: (value, dtype) | (classlabel, names) | (list, node) | (struct, {k: node}) | (media|other, name)."""
    if isinstance(t, list):  # older viewers: a bare list holds a list of structs
        return ("list", _node(t[0]) if t else ("other", "unknown"))
    if not isinstance(t, Mapping):
        return ("other", str(t))
    kind = t.get("_type")
    if kind is None:
        return ("struct", {k: _node(v) for k, v in t.items()})
    if kind == "Value":
        return ("value", str(t.get("dtype", "")))
    if kind == "ClassLabel":
        return ("classlabel", list(t.get("names") or []))
    if kind in ("List", "LargeList"):
        return ("list", _node(t.get("feature")))
    if kind == "Sequence":
        inner = t.get("feature")
        # datasets < 4: a Sequence of a dict is a dict of lists, not a list of dicts.
        if isinstance(inner, Mapping) and "_type" not in inner:
            return ("struct", {k: ("list", _node(v)) for k, v in inner.items()})
        return ("list", _node(inner))
    return ("media" if kind in _MEDIA else "other", str(kind))


def _node_text(node: tuple[str, Any]) -> str:
    tag, arg = node
    if tag == "value":
        return arg
    if tag == "classlabel":
        names = ", ".join(arg[:6]) + (", …" if len(arg) > 6 else "")
        return f"class label ({names})"
    if tag == "list":
        return f"list of {_node_text(arg)}"
    if tag == "struct":
        return "{" + ", ".join(f"{k}: {_node_text(v)}" for k, v in arg.items()) + "}"
    return arg


def _value_kind(dtype: str) -> Kind:
    if dtype in ("string", "large_string"):
        return "string"
    if dtype == "bool":
        return "bool"
    if dtype.startswith(("int", "uint")):
        return "int"
    if dtype.startswith(("float", "double")):
        return "float"
    return "other"


def _list_kind(inner: tuple[str, Any]) -> tuple[Kind, tuple[str, ...]]:
    tag, arg = inner
    if tag == "value" and _value_kind(arg) == "string":
        return "string_list", ()
    if tag == "struct":
        keys = set(arg)
        if _ROLE_KEYS <= keys:
            return "conversation", tuple(arg)
        if _SHAREGPT_KEYS <= keys:
            return "sharegpt", tuple(arg)
        return "list", tuple(arg)
    return "list", ()


def column_from_type(name: str, t: Any) -> Column:
    node = _node(t)
    tag, arg = node
    text = _node_text(node)
    if tag == "value":
        return Column(name, _value_kind(arg), text)
    if tag == "classlabel":
        return Column(name, "classlabel", text)
    if tag == "list":
        kind, fields = _list_kind(arg)
        return Column(name, kind, text, fields)
    if tag == "struct":
        return Column(name, "struct", text, tuple(arg))
    return Column(name, "media" if tag == "media" else "other", text)


def column_from_values(name: str, values: Iterable[Any]) -> Column | None:
    """When the schema says nothing useful (unknown or JSON types), read the kind off the values."""
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool):
            return Column(name, "bool", "bool")
        if isinstance(value, str):
            return Column(name, "string", "string")
        if isinstance(value, int):
            return Column(name, "int", "int64")
        if isinstance(value, float):
            return Column(name, "float", "float64")
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            keys = set().union(*(v.keys() for v in value))
            kind: Kind = "conversation" if _ROLE_KEYS <= keys else "sharegpt" if _SHAREGPT_KEYS <= keys else "list"
            return Column(name, kind, "list of {" + ", ".join(sorted(keys)) + "}", tuple(sorted(keys)))
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return Column(name, "string_list", "list of string")
        return None
    return None


def _refine(columns: list[Column], rows: Sequence[Mapping[str, Any]]) -> list[Column]:
    known = {c.name for c in columns}
    out = []
    for col in columns:
        if col.kind == "other":
            col = column_from_values(col.name, (r.get(col.name) for r in rows)) or col
        out.append(col)
    for name in (rows[0].keys() if rows and not columns else ()):
        if name not in known:
            guessed = column_from_values(name, (r.get(name) for r in rows))
            out.append(guessed or Column(name, "other", "unknown"))
    return out


# --- conversations ------------------------------------------------------------------------------

@dataclass
class MessagesAnalysis:
    """What the conversations in one column look like, over the rows read."""

    column: str
    style: Literal["role/content", "from/value"]
    rows: int = 0
    unreadable: int = 0
    roles: Counter[str] = field(default_factory=Counter)
    rows_with_system: int = 0
    system_not_first: int = 0
    rows_with_tool_calls: int = 0
    alternation_errors: int = 0
    not_starting_with_user: int = 0
    not_ending_with_assistant: int = 0
    empty_turns: int = 0
    unknown_roles: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def summary(self) -> str:
        roles = ", ".join(f"{r} {n}" for r, n in self.roles.most_common()) or "none"
        parts = [f"roles {roles}",
                 f"system turns in {self.rows_with_system} row(s)"
                 + (f" ({self.system_not_first} not first)" if self.system_not_first else ""),
                 f"tool calls in {self.rows_with_tool_calls} row(s)",
                 f"alternation errors in {self.alternation_errors} row(s)"]
        if self.not_starting_with_user:
            parts.append(f"{self.not_starting_with_user} row(s) do not start with a user turn")
        if self.not_ending_with_assistant:
            parts.append(f"{self.not_ending_with_assistant} row(s) do not end with an assistant turn")
        if self.empty_turns:
            parts.append(f"{self.empty_turns} empty turn(s)")
        if self.unknown_roles:
            parts.append("roles no chat template knows: " + ", ".join(sorted(self.unknown_roles)))
        if self.unreadable:
            parts.append(f"{self.unreadable} row(s) unreadable (truncated by the viewer)")
        text = f"Messages '{self.column}' ({self.style}, {self.rows} row(s) read): " + "; ".join(parts)
        if self.examples:
            text += ". E.g. " + "; ".join(self.examples[:3])
        return text


def _role_of(message: Mapping[str, Any], style: str) -> str:
    if style == "from/value":
        raw = str(message.get("from") or "").lower()
        return _SHAREGPT_ROLES.get(raw, raw)
    return str(message.get("role") or "").lower()


def _has_tool_call(message: Mapping[str, Any], style: str) -> bool:
    if style == "from/value":
        return str(message.get("from") or "").lower() in ("function_call", "tool_call")
    return bool(message.get("tool_calls") or message.get("function_call"))


def _is_empty(message: Mapping[str, Any], style: str) -> bool:
    content = message.get("value" if style == "from/value" else "content")
    return content is None or (isinstance(content, str | list) and len(content) == 0)


class _Walk:
    """One conversation, turn by turn: is the order one a chat template accepts?"""

    def __init__(self, style: str) -> None:
        self.style = style
        self.prev: str | None = None  # user, assistant, assistant_call, tool
        self.errors: list[str] = []

    def step(self, index: int, role: str, message: Mapping[str, Any]) -> None:
        if role in _TOOL_ROLES:
            if self.prev not in ("assistant_call", "tool"):
                self.errors.append(f"a {role} turn without a tool call before it at turn {index}")
            self.prev = "tool"
        elif role == "assistant":
            if self.prev in ("assistant", "assistant_call"):
                self.errors.append(f"assistant after assistant at turn {index}")
            self.prev = "assistant_call" if _has_tool_call(message, self.style) else "assistant"
        elif role == "user":
            if self.prev == "user":
                self.errors.append(f"user after user at turn {index}")
            elif self.prev == "assistant_call":
                self.errors.append(f"user turn before the tool result at turn {index}")
            self.prev = "user"


def _analyse_row(acc: MessagesAnalysis, conversation: list[Any], row_index: int, expect_question: bool,
                 expect_answer: bool) -> None:
    walk = _Walk(acc.style)
    first_turn: str | None = None
    last_turn: str | None = None
    system_seen = tool_call_seen = False
    for i, message in enumerate(conversation):
        if not isinstance(message, Mapping):
            acc.unreadable += 1
            return
        role = _role_of(message, acc.style)
        acc.roles[role or "(none)"] += 1
        if role not in _CHAT_ROLES:
            acc.unknown_roles[role or "(none)"] += 1
        if role in ("system", "developer"):
            system_seen = True
            if i != 0:
                acc.system_not_first += 1
            continue
        tool_call_seen = tool_call_seen or role in _TOOL_ROLES or _has_tool_call(message, acc.style)
        if _is_empty(message, acc.style) and not _has_tool_call(message, acc.style):
            acc.empty_turns += 1
        first_turn = first_turn or role
        last_turn = role
        walk.step(i, role, message)
    acc.rows_with_system += system_seen
    acc.rows_with_tool_calls += tool_call_seen
    if walk.errors:
        acc.alternation_errors += 1
        acc.examples.append(f"row {row_index}: {walk.errors[0]}")
    if expect_question and first_turn is not None and first_turn != "user":
        acc.not_starting_with_user += 1
    if expect_answer and last_turn != "assistant":
        acc.not_ending_with_assistant += 1


def analyse_messages(column: str, conversations: Iterable[Any], *, style: Literal["role/content", "from/value"]
                     = "role/content", expect_question: bool = True, expect_answer: bool = True) -> MessagesAnalysis:
    """Roles, system turns, tool calls and turn-order errors over the conversations of one column.

    A whole conversation starts with a user turn (after any system turn) and ends with an assistant
    turn; a prompt column need not end with an answer, a completion column need not start with a question.
    """
    acc = MessagesAnalysis(column, style)
    for index, conversation in enumerate(conversations):
        if conversation is None:
            continue
        acc.rows += 1
        if not isinstance(conversation, list):
            acc.unreadable += 1
            continue
        _analyse_row(acc, conversation, index, expect_question, expect_answer)
    return acc


# --- classification -------------------------------------------------------------------------------

@dataclass
class FormatReport:
    columns: list[Column]
    fits: list[str]
    conversions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    messages: list[MessagesAnalysis] = field(default_factory=list)

    def fits_line(self) -> str:
        return "Fits: " + (", ".join(self.fits) if self.fits else "none")

    def trainers_line(self) -> str | None:
        names: list[str] = []
        for label in self.fits:
            for trainer in TRAINERS_BY_LABEL.get(label, ()):
                if trainer not in names:
                    names.append(trainer)
        return ("Trainers (as it is): " + ", ".join(names)) if names else None


@dataclass
class _Schema:
    cols: dict[str, Column]
    rows: Sequence[Mapping[str, Any]]

    def kind(self, name: str) -> Kind | None:
        col = self.cols.get(name)
        return col.kind if col else None

    def textual(self, name: str) -> bool:
        return self.kind(name) in ("string", "conversation")

    def values(self, name: str) -> list[Any]:
        return [r.get(name) for r in self.rows if r.get(name) is not None]

    def first_of(self, names: Iterable[str], kinds: Iterable[str] = ("string",)) -> str | None:
        wanted = set(kinds)
        return next((n for n in names if self.kind(n) in wanted), None)


def _is_classification(s: _Schema) -> str | None:
    for col in s.cols.values():
        if col.kind == "classlabel" or (col.name in ("label", "labels") and col.kind == "int"):
            return col.name
    return None


def _is_message_tree(s: _Schema) -> bool:
    return "parent_id" in s.cols and "role" in s.cols and ("message_id" in s.cols or "message_tree_id" in s.cols)


def _shared_prefix(chosen: Any, rejected: Any) -> bool | None:
    if isinstance(chosen, str) and isinstance(rejected, str):
        n = 0
        for a, b in zip(chosen, rejected, strict=False):
            if a != b:
                break
            n += 1
        return n >= _SHARED_PREFIX_CHARS
    if isinstance(chosen, list) and isinstance(rejected, list):
        if not chosen or not rejected or not isinstance(chosen[0], Mapping):
            return False
        return chosen[0] == rejected[0] and str(chosen[0].get("role")) != "assistant"
    return None


def _implicit_prompt(s: _Schema) -> tuple[bool, bool]:
    """(chosen and rejected carry a shared prompt, that was seen on rows rather than assumed)."""
    pairs = [(r.get("chosen"), r.get("rejected")) for r in s.rows
             if r.get("chosen") is not None and r.get("rejected") is not None]
    verdicts = [v for v in (_shared_prefix(c, r) for c, r in pairs) if v is not None]
    if not verdicts:
        return True, False
    return sum(verdicts) >= _EVIDENCE_SHARE * len(verdicts), True


def _preference_labels(s: _Schema, notes: list[str]) -> set[str]:
    chosen, rejected, prompt = s.kind("chosen"), s.kind("rejected"), s.kind("prompt")
    if chosen not in ("string", "conversation") or chosen != rejected:
        return set()
    out: set[str] = set()
    if prompt == chosen:
        out.add("dpo_explicit")
    else:
        shared, seen = _implicit_prompt(s)
        if shared:
            out.add("dpo_implicit")
            if not seen:
                notes.append("chosen/rejected were assumed to include the prompt (no rows to verify it)")
    if out:
        out.add("reward")
    return out


def _sft_labels(s: _Schema) -> set[str]:
    out: set[str] = set()
    if s.kind("messages") == "conversation":
        out.add("sft_messages")
    if s.kind("text") == "string" and not _is_classification(s) and not _is_message_tree(s):
        out.add("sft_text")
    pair = s.kind("prompt"), s.kind("completion")
    if pair[0] in ("string", "conversation") and pair[0] == pair[1] and s.kind("label") != "bool":
        out.add("sft_prompt_completion")
    if any(c.kind == "sharegpt" for c in s.cols.values()):
        out.add("sft_sharegpt")
    alpaca_input = s.kind("input")
    if s.kind("instruction") == "string" and s.kind("output") == "string" and alpaca_input in (None, "string"):
        out.add("sft_alpaca")
    return out


def _other_labels(s: _Schema) -> set[str]:
    out: set[str] = set()
    prompt, completion = s.kind("prompt"), s.kind("completion")
    if prompt in ("string", "conversation") and prompt == completion and s.kind("label") == "bool":
        out.add("kto")
    if prompt in ("string", "conversation"):
        out.add("grpo")
    return out


def classify(features: Mapping[str, Any] | Sequence[Any] | None,
             rows: Sequence[Mapping[str, Any]] = ()) -> FormatReport:
    """Every label the data fits as it is, the conversions that would make it fit others, and notes."""
    columns = _refine(parse_features(features), rows)
    s = _Schema({c.name: c for c in columns}, rows)
    notes: list[str] = []
    fits = _sft_labels(s) | _preference_labels(s, notes) | _other_labels(s)
    report = FormatReport(columns, [label for label in LABELS if label in fits], notes=notes)
    report.conversions = _conversions(s, fits)
    report.notes.extend(_notes(s))
    report.messages = _analyse_conversations(s)
    return report


# --- conversions and notes -------------------------------------------------------------------------

def _sharegpt_conversion(s: _Schema, col: Column) -> str:
    seen = Counter(str(m.get("from")) for conv in s.values(col.name) if isinstance(conv, list)
                   for m in conv if isinstance(m, Mapping))
    mapping = ", ".join(f"{raw} → {_SHAREGPT_ROLES[raw.lower()]}" for raw in seen
                        if raw.lower() in _SHAREGPT_ROLES) or "human → user, gpt → assistant, system → system"
    unknown = sorted(raw for raw in seen if raw.lower() not in _SHAREGPT_ROLES)
    text = (f"Convert: sft_sharegpt -> sft_messages by mapping from/value to role/content ({mapping}) "
            f"and naming the column 'messages' instead of '{col.name}'")
    return text + (f"; decide what to do with 'from' values {', '.join(unknown)}" if unknown else "")


def _json_conversation(text: Any) -> bool:
    if not isinstance(text, str) or not text.lstrip().startswith("["):
        return False
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, list) and bool(value) and all(
        isinstance(v, Mapping) and (_ROLE_KEYS <= v.keys() or _SHAREGPT_KEYS <= v.keys()) for v in value)


def _conversation_rename(s: _Schema, fits: set[str]) -> list[str]:
    if "sft_messages" in fits:
        return []
    for name in _CONVERSATION_NAMES:
        values = s.values(name)
        if s.kind(name) == "string" and values and all(_json_conversation(v) for v in values):
            return [f"Convert: column '{name}' -> sft_messages by parsing its JSON text (json.loads) into a list "
                    "of messages" + ("" if name == "messages" else " named 'messages'")]
    reserved = {"prompt", "completion", "chosen", "rejected"}
    for name in _CONVERSATION_NAMES:
        col = s.cols.get(name)
        if col and col.kind == "conversation" and name not in reserved and name != "messages":
            return [f"Convert: column '{name}' -> sft_messages by renaming it to 'messages'"]
    return []


def _alpaca_conversions(s: _Schema) -> list[str]:
    with_input = " (+ \"\\n\\n\" + input when input is not empty)" if "input" in s.cols else ""
    return [f"Convert: sft_alpaca -> sft_prompt_completion by prompt = instruction{with_input}, completion = output",
            f"Convert: sft_alpaca -> sft_messages by a user turn = instruction{with_input} and an assistant "
            "turn = output"]


def _answer_source(s: _Schema, name: str) -> str:
    col = s.cols[name]
    if col.kind == "struct" and "text" in col.fields:
        return f"{name}['text'][0]"
    if col.kind == "string_list":
        return f"{name}[0]"
    return f"'{name}'"


def _qa_conversions(s: _Schema, fits: set[str]) -> list[str]:
    """Question/answer-style columns under other names (gsm8k, squad, dolly, HelpSteer...)."""
    out: list[str] = []
    prompt_col = s.first_of(_PROMPT_ALIASES)
    answer_col = next((n for n in _ANSWER_ALIASES if n in s.cols and n != prompt_col
                       and s.kind(n) in ("string", "struct", "string_list")), None)
    if prompt_col is None:
        return out
    context_col = s.first_of(_CONTEXT_ALIASES)
    context = f" with '{context_col}' put before it" if context_col else ""
    if answer_col and not fits & {"sft_prompt_completion", "sft_alpaca", "sft_messages"}:
        out.append(f"Convert: {prompt_col}/{answer_col} -> sft_prompt_completion by making '{prompt_col}'{context} "
                   f"the prompt and {_answer_source(s, answer_col)} the completion")
    if "grpo" not in fits:
        keep = f" (keep {_answer_source(s, answer_col)} for the reward function)" if answer_col else ""
        out.append(f"Convert: {prompt_col} -> grpo by making '{prompt_col}'{context} the 'prompt' column{keep}")
    return out


def _preference_conversions(s: _Schema, fits: set[str]) -> list[str]:
    out: list[str] = []
    if "dpo_implicit" in fits and "dpo_explicit" not in fits:
        out.append("Convert: dpo_implicit -> dpo_explicit by splitting the shared start of chosen/rejected "
                   "off as 'prompt' (trl's extract_prompt; DPOTrainer does it itself)")
    paired = next((label for label in ("dpo_explicit", "dpo_implicit") if label in fits), None)
    if paired and "kto" not in fits:
        out.append(f"Convert: {paired} -> kto by unpairing each pair into a label=true and a label=false "
                   "row (trl's unpair_preference_dataset; KTOTrainer does it itself)")
    pref = s.kind("chosen") in ("string", "conversation") and s.kind("chosen") == s.kind("rejected")
    if pref and not fits & {"dpo_explicit", "dpo_implicit"}:
        out.append(_unprompted_preference(s))
    return out


def _unprompted_preference(s: _Schema) -> str:
    prompt_col = s.first_of(_PROMPT_ALIASES, ("string", "conversation"))
    if prompt_col == "prompt" and s.kind("chosen") == "conversation":
        return ("Convert: prompt/chosen/rejected -> dpo_explicit by making 'prompt' a conversation "
                "([{'role': 'user', 'content': prompt}]) like chosen/rejected")
    if prompt_col == "prompt":
        return ("Convert: prompt/chosen/rejected -> dpo_explicit by making 'prompt', 'chosen' and 'rejected' "
                "the same kind (all text)")
    if prompt_col:
        system = " (and 'system' as a system turn)" if "system" in s.cols else ""
        return (f"Convert: {prompt_col}/chosen/rejected -> dpo_explicit by renaming '{prompt_col}' to "
                f"'prompt'{system}; chosen/rejected hold only the answers")
    return "Convert: chosen/rejected -> dpo_explicit needs a prompt column: chosen/rejected hold only the answers"


def _conversions(s: _Schema, fits: set[str]) -> list[str]:
    out: list[str] = []
    for col in s.cols.values():
        if col.kind == "sharegpt" and "sft_messages" not in fits:
            out.append(_sharegpt_conversion(s, col))
    out += _conversation_rename(s, fits)
    if "sft_alpaca" in fits and "sft_prompt_completion" not in fits:
        out += _alpaca_conversions(s)
    if "kto" in fits and "sft_prompt_completion" not in fits:
        out.append("Convert: kto -> sft_prompt_completion by keeping the rows with label = true")
    out += _preference_conversions(s, fits)
    label = _is_classification(s)
    if label and s.kind("text") == "string":
        out.append(f"Convert: text/{label} -> sft_prompt_completion by making 'text' the prompt and the name of '{label}' "
                   "the completion (as it is, this is classification data: AutoModelForSequenceClassification "
                   "with transformers' Trainer fits it)")
    if _is_message_tree(s):
        out.append("Convert: message tree -> sft_messages by rebuilding each thread from message_id/parent_id "
                   "(role prompter → user)")
    if "sft_alpaca" not in fits and not fits & {"kto", "dpo_explicit", "dpo_implicit"}:
        out += _qa_conversions(s, fits)
    return out


def _notes(s: _Schema) -> list[str]:
    notes = []
    if "tools" in s.cols:
        notes.append("Tool definitions in column 'tools': the chat template must accept tools")
    if s.kind("prompt") and s.kind("completion") and s.kind("prompt") != s.kind("completion"):
        notes.append("'prompt' and 'completion' are not the same kind (text vs conversation)")
    if s.kind("chosen") and s.kind("chosen") != s.kind("rejected"):
        notes.append("'chosen' and 'rejected' are not the same kind (text vs conversation)")
    if "completions" in s.cols and "labels" in s.cols and "completion" not in s.cols:
        notes.append("'completions' with 'labels' looks like stepwise supervision (PRMTrainer)")
    media = [c.name for c in s.cols.values() if c.kind == "media"]
    if media:
        notes.append("Media columns (" + ", ".join(media) + "): a vision/audio model and its processor are needed")
    return notes


def _analyse_conversations(s: _Schema) -> list[MessagesAnalysis]:
    explicit = s.kind("prompt") is not None and s.kind("prompt") == s.kind("chosen")
    out = []
    for col in s.cols.values():
        if col.kind not in ("conversation", "sharegpt"):
            continue
        style: Literal["role/content", "from/value"] = "from/value" if col.kind == "sharegpt" else "role/content"
        answers_only = col.name == "completion" or (col.name in ("chosen", "rejected") and explicit)
        values = [r.get(col.name) for r in s.rows if col.name in r]
        if values:
            out.append(analyse_messages(col.name, values, style=style, expect_question=not answers_only,
                                        expect_answer=col.name != "prompt"))
    return out


def clip_row(row: Mapping[str, Any], limit: int = 300) -> str:
    """A row as one line of JSON with long strings and long lists cut, for the tool's sample."""
    def cut(value: Any) -> Any:
        if isinstance(value, str):
            return value if len(value) <= limit else value[:limit] + f"… (+{len(value) - limit} chars)"
        if isinstance(value, list):
            head = [cut(v) for v in value[:6]]
            return head + ([f"… (+{len(value) - 6} items)"] if len(value) > 6 else [])
        if isinstance(value, Mapping):
            return {k: cut(v) for k, v in value.items()}
        return value
    return json.dumps(cut(dict(row)), ensure_ascii=False)
