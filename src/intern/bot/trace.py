"""A session as agent-trace JSONL, the format the Hub's trace viewer reads: one event a line, `type`
`user` or `assistant`, `message` with content blocks (`text`, `tool_use`, `tool_result`), `uuid`,
`parentUuid` (the event before it: one unbroken chain), `sessionId` and `timestamp`.

The stored transcript is in the model's (OpenAI-style) shape: an assistant message carries its tool
calls, and each result is a `tool` message naming its call. Here a call becomes a `tool_use` block
with the call's id, and its result a `tool_result` block in a `user` event with the same id. Event
ids are derived from the session and the message, so exporting twice gives the same file.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

NAMESPACE = uuid.UUID("8a4bb7a6-5f2c-4f55-9d84-2f1f5e0c1a77")
Redact = Callable[[Any], Any]


def event_id(session_id: str, seq: int, part: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{session_id}:{seq}:{part}"))


def _time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # provider-style content parts
        return "\n".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return json.dumps(content, ensure_ascii=False)


def _input(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = json.loads(arguments or "{}")
    except (TypeError, json.JSONDecodeError):
        return {"arguments": str(arguments)}  # as the model wrote it, unparsed
    return parsed if isinstance(parsed, dict) else {"arguments": parsed}


def blocks_of(payload: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The event type and content blocks of one stored message."""
    role = payload.get("role")
    if role == "tool":
        return "user", [{"type": "tool_result", "tool_use_id": str(payload.get("tool_call_id") or ""),
                         "content": _text(payload.get("content")), "is_error": bool(payload.get("is_error"))}]
    text = _text(payload.get("content"))
    kind = (payload.get("meta") or {}).get("kind")
    if kind == "summary":
        text = "[Summary of the conversation so far]\n" + text
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    if role == "assistant":
        for call in payload.get("tool_calls") or []:
            fn = call.get("function") or {}
            blocks.append({"type": "tool_use", "id": str(call.get("id") or ""), "name": str(fn.get("name") or ""),
                           "input": _input(fn.get("arguments"))})
        return "assistant", blocks
    return "user", blocks


def trace_events(session: Any, messages: list[Any], redact: Redact) -> Iterator[dict[str, Any]]:
    """The events of one session, in order, each the child of the one before."""
    parent: str | None = None
    for m in messages:
        payload = redact(m.payload)
        if payload.get("role") == "system":
            continue
        kind, blocks = blocks_of(payload)
        if not blocks:
            continue
        message: dict[str, Any] = {"role": kind, "content": blocks}
        if kind == "assistant" and session.model:
            message["model"] = session.model
        uid = event_id(session.id, m.seq, 0)
        yield {"type": kind, "message": message, "uuid": uid, "parentUuid": parent, "sessionId": session.id,
               "timestamp": _time(m.created_at)}
        parent = uid


def write_trace(session: Any, messages: list[Any], redact: Redact, out: Any) -> int:
    count = 0
    for event in trace_events(session, messages, redact):
        out.write(json.dumps(event, ensure_ascii=False) + "\n")
        count += 1
    return count
