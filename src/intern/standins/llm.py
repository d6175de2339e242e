"""A scripted, OpenAI-compatible chat completions server on loopback.

litellm reaches it as model `openai/<name>` with `api_base=<url>/v1`. Replies come from a queue
(`enqueue_text`, `enqueue_tool_calls`, `enqueue_error`), then from an optional rule callable that
decides from the request (for long scripted runs), in that order. Errors use OpenAI's own status
codes, headers and error JSON, so the client library maps them to its real exception classes.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from intern.standins.base import StandIn


@dataclass(frozen=True)
class Reply:
    """One assistant message: text, tool calls, or both."""

    text: str | None = None
    tool_calls: tuple[tuple[str, dict[str, Any] | str], ...] = ()
    finish_reason: str | None = None
    delay: float = 0.0
    usage: tuple[int, int] | None = None  # (prompt, completion) tokens; estimated when None


@dataclass(frozen=True)
class ErrorSpec:
    status: int
    message: str
    type: str
    code: str | None
    param: str | None = None


ERRORS: dict[str, ErrorSpec] = {
    "auth": ErrorSpec(401, "Incorrect API key provided: sk-wrong***. You can find your API key at "
                           "https://platform.openai.com/account/api-keys.", "invalid_request_error", "invalid_api_key"),
    "not_found": ErrorSpec(404, "The model `{model}` does not exist or you do not have access to it.",
                           "invalid_request_error", "model_not_found"),
    "rate_limit": ErrorSpec(429, "Rate limit reached for {model} in organization org-standin on tokens per min "
                                 "(TPM): Limit 30000, Used 29000, Requested 2000. Please try again in {retry_after}s.",
                            "tokens", "rate_limit_exceeded"),
    "server_error": ErrorSpec(500, "The server had an error while processing your request. Sorry about that!",
                              "server_error", None),
    "unavailable": ErrorSpec(503, "The engine is currently overloaded, please try again later.",
                             "server_error", None),
    "context_length": ErrorSpec(400, "This model's maximum context length is 128000 tokens. However, your messages "
                                     "resulted in 131072 tokens. Please reduce the length of the messages.",
                                "invalid_request_error", "context_length_exceeded", "messages"),
    "bad_request": ErrorSpec(400, "Invalid request: {detail}", "invalid_request_error", None),
}


@dataclass(frozen=True)
class ScriptedError:
    kind: str  # a key of ERRORS
    retry_after: float | None = None
    delay: float = 0.0
    detail: str = ""


Script = Reply | ScriptedError
Rule = Callable[[dict[str, Any]], "Script | str | None"]


def text_reply(text: str, *, finish_reason: str | None = None, delay: float = 0.0,
               usage: tuple[int, int] | None = None) -> Reply:
    return Reply(text=text, finish_reason=finish_reason, delay=delay, usage=usage)


def tool_calls_reply(calls: list[tuple[str, dict[str, Any] | str]], *, text: str | None = None,
                     finish_reason: str | None = None, delay: float = 0.0,
                     usage: tuple[int, int] | None = None) -> Reply:
    """`calls` are (tool name, arguments); a str argument is sent as is, so a test can send broken JSON."""
    return Reply(text=text, tool_calls=tuple(calls), finish_reason=finish_reason, delay=delay, usage=usage)


def error_reply(kind: str, *, retry_after: float | None = None, delay: float = 0.0, detail: str = "") -> ScriptedError:
    if kind not in ERRORS:
        raise ValueError(f"unknown error kind {kind!r}; one of {sorted(ERRORS)}")
    return ScriptedError(kind, retry_after, delay, detail)


def last_user_text(request: dict[str, Any]) -> str:
    """The text of the last user message of a chat request (for rules)."""
    for message in reversed(request.get("messages") or []):
        if message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def last_message(request: dict[str, Any]) -> dict[str, Any]:
    messages = request.get("messages") or [{}]
    return dict(messages[-1])


def _content_text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def _estimate_tokens(value: Any) -> int:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return max(1, len(text) // 4)


def _new_id(prefix: str, length: int = 24) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass
class LLMStandIn(StandIn):
    api_key: str | None = None  # when set, any other key gets OpenAI's 401
    models: tuple[str, ...] = ("standin-model",)
    rule: Rule | None = None
    stream_piece_chars: int = 12
    queue: deque[Script] = field(default_factory=deque)
    unscripted: list[dict[str, Any]] = field(default_factory=list)

    def setup(self, app: web.Application) -> None:
        self._closing = False
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.on_shutdown.append(self._on_shutdown)

    async def _on_shutdown(self, app: web.Application) -> None:
        self._closing = True  # scripted delays end now rather than holding the server's shutdown

    # --- scripting -------------------------------------------------------------------------

    def enqueue(self, item: Script) -> None:
        self.queue.append(item)

    def enqueue_text(self, text: str, *, finish_reason: str | None = None, delay: float = 0.0,
                     usage: tuple[int, int] | None = None) -> None:
        self.enqueue(text_reply(text, finish_reason=finish_reason, delay=delay, usage=usage))

    def enqueue_tool_calls(self, calls: list[tuple[str, dict[str, Any] | str]], *, text: str | None = None,
                           finish_reason: str | None = None, delay: float = 0.0,
                           usage: tuple[int, int] | None = None) -> None:
        self.enqueue(tool_calls_reply(calls, text=text, finish_reason=finish_reason, delay=delay, usage=usage))

    def enqueue_error(self, kind: str, *, times: int = 1, retry_after: float | None = None,
                      delay: float = 0.0, detail: str = "") -> None:
        for _ in range(times):
            self.enqueue(error_reply(kind, retry_after=retry_after, delay=delay, detail=detail))

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of every chat completion request received, in order."""
        return [r.json for r in self.calls("/v1/chat/completions", "POST") if isinstance(r.json, dict)]

    # --- serving ---------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        if (denied := self._check_key(request, self.models[0])) is not None:
            return denied
        created = int(time.time())
        data = [{"id": m, "object": "model", "created": created, "owned_by": "standin"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._error_response(error_reply("bad_request", detail="body is not JSON"), "unknown")
        model = str(body.get("model", ""))
        if (denied := self._check_key(request, model)) is not None:
            return denied
        script = self._next_script(body)
        if script is None:
            self.unscripted.append(body)
            detail = "LLMStandIn has no scripted reply left for this request"
            return self._error_response(error_reply("bad_request", detail=detail), model)
        if script.delay:
            await _pause(request, script.delay, lambda: self._closing)
        if isinstance(script, ScriptedError):
            return self._error_response(script, model)
        if body.get("stream"):
            return await self._stream(request, body, script)
        return web.json_response(self._completion(body, script))

    def _next_script(self, body: dict[str, Any]) -> Script | None:
        if self.queue:
            return self.queue.popleft()
        if self.rule is None:
            return None
        decided = self.rule(body)
        return text_reply(decided) if isinstance(decided, str) else decided

    def _check_key(self, request: web.Request, model: str) -> web.Response | None:
        if self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        return self._error_response(error_reply("auth"), model)

    def _error_response(self, error: ScriptedError, model: str) -> web.Response:
        spec = ERRORS[error.kind]
        retry_after = error.retry_after if error.retry_after is not None else 1.0
        message = spec.message.format(model=model, retry_after=retry_after, detail=error.detail)
        payload = {"error": {"message": message, "type": spec.type, "param": spec.param, "code": spec.code}}
        headers = {"x-request-id": _new_id("req_", 32)}
        if error.kind == "rate_limit" or error.retry_after is not None:
            headers["retry-after"] = _format_seconds(retry_after)
            headers["retry-after-ms"] = str(int(retry_after * 1000))
        return web.json_response(payload, status=spec.status, headers=headers)

    # --- reply bodies ----------------------------------------------------------------------

    def _usage(self, body: dict[str, Any], reply: Reply, calls: list[dict[str, Any]]) -> dict[str, int]:
        if reply.usage is not None:
            prompt, completion = reply.usage
        else:
            prompt = _estimate_tokens([body.get("messages"), body.get("tools")])
            completion = _estimate_tokens((reply.text or "") + json.dumps(calls))
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        calls = _tool_call_objects(reply)
        message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
        if calls:
            message["tool_calls"] = calls
        return {
            "id": _new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": _finish_reason(reply)}],
            "usage": self._usage(body, reply, calls),
            "system_fingerprint": "fp_standin",
        }

    async def _stream(self, request: web.Request, body: dict[str, Any], reply: Reply) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        calls = _tool_call_objects(reply)
        base = {"id": _new_id("chatcmpl-"), "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body.get("model"), "system_fingerprint": "fp_standin"}
        for choice in self._stream_choices(reply, calls):
            await response.write(_sse({**base, "choices": [choice]}))
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(_sse({**base, "choices": [], "usage": self._usage(body, reply, calls)}))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _stream_choices(self, reply: Reply, calls: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

        yield choice({"role": "assistant", "content": "", "refusal": None})
        for piece in _pieces(reply.text or "", self.stream_piece_chars):
            yield choice({"content": piece})
        for index, call in enumerate(calls):
            head = {"index": index, "id": call["id"], "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""}}
            yield choice({"tool_calls": [head]})
            for piece in _pieces(call["function"]["arguments"], self.stream_piece_chars):
                yield choice({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield choice({}, _finish_reason(reply))


async def _pause(request: web.Request, seconds: float, closing: Callable[[], bool]) -> None:
    """Sleep, but stop early once the client has hung up or the server shuts down (a timed-out client
    leaves nobody to answer, and the shutdown would otherwise wait for the full delay)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if closing() or request.transport is None or request.transport.is_closing():
            return
        await asyncio.sleep(min(0.05, left))


def _tool_call_objects(reply: Reply) -> list[dict[str, Any]]:
    return [
        {"id": _new_id("call_"), "type": "function",
         "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
        for name, args in reply.tool_calls
    ]


def _finish_reason(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _pieces(text: str, size: int) -> Iterator[str]:
    for start in range(0, len(text), max(1, size)):
        yield text[start:start + size]


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _format_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
