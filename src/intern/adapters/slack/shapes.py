"""The shape a Slack request body must have before anything reads it.

Slack sends objects whose fields have fixed types. A signed body that parses to something else — a
JSON array, a string, a number, an `event` that is a list, a user id that is an object — is the
sender's mistake: it is answered 400 and never reaches bolt's routing or the translators (which
would otherwise fail on it, or worse, store a user id that is not a string). Only the fields that
bolt and `inbound.py` read are checked; anything else Slack adds is left alone.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

NULL = type(None)
STR = (str,)
OPT_STR = (str, NULL)
OPT_OBJ = (dict, NULL)
OPT_LIST = (list, NULL)

# field → (allowed types, the shape of its content: a dict for an object, ("items", shape) for a list)
Shape = dict[str, tuple[tuple[type, ...], Any]]

REQUIRED = "required"  # the fields a body of that kind cannot be without

AUTHORIZATION: Shape = {"team_id": (OPT_STR, None), "user_id": (OPT_STR, None), "enterprise_id": (OPT_STR, None)}
# The events Intern reads (others — tokens_revoked, app_uninstalled — only need a string type).
READ_EVENTS = ("app_mention", "message", "app_home_opened")
EVENT: Shape = {REQUIRED: ((), ("type",)), "type": (STR, None)}
READ_EVENT: Shape = {
    "type": (STR, None), "user": (STR, None), "channel": (STR, None), "ts": (STR, None), "text": (OPT_STR, None),
    "thread_ts": (STR, None), "subtype": (OPT_STR, None), "bot_id": (OPT_STR, None), "team": (OPT_STR, None),
    "channel_type": (STR, None), "tab": (STR, None), "event_ts": (STR, None), "message": (OPT_OBJ, None),
}
ENVELOPE: Shape = {
    REQUIRED: ((), ("type",)),
    "type": (STR, None), "team_id": (OPT_STR, None), "api_app_id": (OPT_STR, None), "event_id": (STR, None),
    "enterprise_id": (OPT_STR, None), "is_enterprise_install": ((bool, NULL), None), "challenge": (STR, None),
    "authorizations": (OPT_LIST, ("items", AUTHORIZATION)), "event": ((dict,), EVENT),
}
ACTION: Shape = {
    REQUIRED: ((), ("action_id",)),
    "action_id": (STR, None), "value": (STR, None), "action_ts": (STR, None), "block_id": (STR, None),
    "type": (STR, None),
}
INTERACTION: Shape = {
    REQUIRED: ((), ("type", "user")),
    "type": (STR, None), "trigger_id": (STR, None), "api_app_id": (OPT_STR, None), "response_url": (STR, None),
    "is_enterprise_install": ((bool, NULL), None),
    "user": ((dict,), {REQUIRED: ((), ("id",)), "id": (STR, None), "team_id": (OPT_STR, None)}),
    "team": (OPT_OBJ, {"id": (STR, None)}), "enterprise": (OPT_OBJ, {"id": (STR, None)}),
    "channel": (OPT_OBJ, {"id": (STR, None)}),
    "container": (OPT_OBJ, {"channel_id": (STR, None), "message_ts": (STR, None), "thread_ts": (STR, None)}),
    "message": (OPT_OBJ, {"ts": (STR, None), "thread_ts": (STR, None)}),
    "actions": ((list,), ("items", ACTION)), "view": (OPT_OBJ, None),
}


def body_problem(body: bytes, content_type: str) -> str | None:
    """Why this request body is not one Slack sends (None when it is)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json":
        return json_problem(text, ENVELOPE, "the body") or event_problem(json.loads(text))
    if kind == "application/x-www-form-urlencoded":
        return form_problem(text)
    return f"unexpected content type {kind or '(none)'}"


def form_problem(text: str) -> str | None:
    try:
        fields = urllib.parse.parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
    except ValueError:
        return "the form body cannot be parsed"
    repeated = sorted(k for k, v in fields.items() if len(v) != 1)
    if repeated:
        return f"the form field {repeated[0]} is given more than once"
    if "payload" in fields:
        return json_problem(fields["payload"][0], INTERACTION, "the payload")
    if "command" not in fields:
        return "a form body is either an interaction (payload=) or a slash command (command=)"
    return None


def event_problem(envelope: dict[str, Any]) -> str | None:
    event = envelope.get("event")
    if isinstance(event, dict) and event.get("type") in READ_EVENTS:
        return object_problem(event, READ_EVENT, "the body.event")
    return None


def json_problem(text: str, shape: Shape, where: str) -> str | None:
    try:
        value = json.loads(text)
    except ValueError:
        return f"{where} is not JSON"
    return shape_problem(value, (dict,), shape, where)


def shape_problem(value: Any, types: tuple[type, ...], content: Any, where: str) -> str | None:
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        return f"{where} is {kind_of(value)}, not {' or '.join(kind_of_type(t) for t in types)}"
    if isinstance(value, dict) and isinstance(content, dict):
        return object_problem(value, content, where)
    if isinstance(value, list) and isinstance(content, tuple) and content[0] == "items":
        for i, item in enumerate(value):
            if (problem := shape_problem(item, (dict,), content[1], f"{where}[{i}]")) is not None:
                return problem
    return None


def object_problem(value: dict[str, Any], shape: Shape, where: str) -> str | None:
    for key in shape.get(REQUIRED, ((), ()))[1]:
        if key not in value:
            return f"{where} has no {key}"
    for key, (types, content) in shape.items():
        if key == REQUIRED or key not in value:
            continue
        if (problem := shape_problem(value[key], types, content, f"{where}.{key}")) is not None:
            return problem
    return None


def kind_of(value: Any) -> str:
    return kind_of_type(type(value))


def kind_of_type(t: type) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", NULL: "null"}
    return names.get(t, t.__name__)
