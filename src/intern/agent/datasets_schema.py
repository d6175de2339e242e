"""What a dataset's columns are, read from the dataset viewer's `features` (either notation) and
sample rows, and what the conversations in a column look like turn by turn."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from intern.agent.datasets_labels import (
    CHAT_ROLES,
    MEDIA_TYPES,
    ROLE_KEYS,
    SHAREGPT_KEYS,
    SHAREGPT_ROLES,
    TOOL_ROLES,
)

Kind = Literal["string", "bool", "int", "float", "classlabel", "conversation", "sharegpt", "string_list",
               "list", "struct", "media", "other"]


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
    return ("media" if kind in MEDIA_TYPES else "other", str(kind))


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
        if ROLE_KEYS <= keys:
            return "conversation", tuple(arg)
        if SHAREGPT_KEYS <= keys:
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
            kind: Kind = "conversation" if ROLE_KEYS <= keys else "sharegpt" if SHAREGPT_KEYS <= keys else "list"
            return Column(name, kind, "list of {" + ", ".join(sorted(keys)) + "}", tuple(sorted(keys)))
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return Column(name, "string_list", "list of string")
        if isinstance(value, list) and value and all(isinstance(v, bool) for v in value):
            return Column(name, "list", "list of bool")
        if isinstance(value, list) and value and all(isinstance(v, int | float) for v in value):
            return Column(name, "list", "list of int64" if all(isinstance(v, int) for v in value) else "list of float64")
        return None
    return None


def refine(columns: list[Column], rows: Sequence[Mapping[str, Any]]) -> list[Column]:
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
        return SHAREGPT_ROLES.get(raw, raw)
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
        if role in TOOL_ROLES:
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
        if role not in CHAT_ROLES:
            acc.unknown_roles[role or "(none)"] += 1
        if role in ("system", "developer"):
            system_seen = True
            if i != 0:
                acc.system_not_first += 1
            continue
        tool_call_seen = tool_call_seen or role in TOOL_ROLES or _has_tool_call(message, acc.style)
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
