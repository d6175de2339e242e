"""Anthropic's Messages API on loopback (`POST /v1/messages`), with its prompt cache.

litellm reaches it as model `anthropic/<name>` with `api_base=<url>`. Replies come from the same
scripts as the OpenAI-compatible stand-in (`Reply`: text and tool calls), answered in Anthropic's
shapes: content blocks, `stop_reason`, and `usage` with `input_tokens`, `cache_creation_input_tokens`,
`cache_read_input_tokens` and `output_tokens`.

The cache follows Anthropic's documentation of prompt caching:
- the prompt is the sequence of blocks `tools`, then `system`, then `messages`, in that order;
- a block carrying `cache_control` is a breakpoint: the prefix up to and including it is written to
  the cache (when it is at least `min_cacheable_tokens` long) and read back by a later request whose
  prompt starts with the same blocks; `cache_control` itself is not part of what is compared;
- a request is served from the longest cached prefix that ends at one of its breakpoints or at one
  of the 20 blocks before each breakpoint;
- an entry lives five minutes after it was last written or read;
- at most four breakpoints per request (more is a 400, as the API answers).
Tokens are counted as one per four characters of each block's JSON: the split between cached and
uncached input is what matters here, not the exact count.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from intern.standins.base import StandIn
from intern.standins.llm import Reply, Script, ScriptedError, text_reply

LOOKBACK_BLOCKS = 20
MAX_BREAKPOINTS = 4
TTL_SECONDS = 300.0


@dataclass
class CacheLedger:
    """Token totals the stand-in billed, as a provider's invoice would show them."""

    requests: int = 0
    input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    output_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    @property
    def read_share(self) -> float:
        return self.cache_read_input_tokens / self.prompt_tokens if self.prompt_tokens else 0.0


@dataclass
class AnthropicStandIn(StandIn):
    api_key: str | None = None  # when set, any other x-api-key gets Anthropic's 401
    min_cacheable_tokens: int = 1024  # Claude Sonnet's minimum (2048 for Haiku)
    rule: Callable[[dict[str, Any]], Script | str | None] | None = None
    queue: deque[Script] = field(default_factory=deque)
    ledger: CacheLedger = field(default_factory=CacheLedger)
    clock: Callable[[], float] = time.monotonic

    def setup(self, app: web.Application) -> None:
        self._cache: dict[str, float] = {}  # prefix hash -> expiry
        app.router.add_post("/v1/messages", self._messages)

    def enqueue(self, item: Script) -> None:
        self.queue.append(item)

    def enqueue_text(self, text: str) -> None:
        self.queue.append(text_reply(text))

    @property
    def message_requests(self) -> list[dict[str, Any]]:
        return [r.json for r in self.calls("/v1/messages", "POST") if isinstance(r.json, dict)]

    # --- serving ---------------------------------------------------------------------------------

    async def _messages(self, request: web.Request) -> web.Response:
        if self.api_key is not None and request.headers.get("x-api-key") != self.api_key:
            return _error(401, "authentication_error", "invalid x-api-key")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error(400, "invalid_request_error", "The request body is not valid JSON.")
        blocks = prompt_blocks(body)
        marks = [i for i, b in enumerate(blocks) if b.get("cache_control")]
        if len(marks) > MAX_BREAKPOINTS:
            return _error(400, "invalid_request_error",
                          f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
                          f"Found {len(marks)}.")
        script = self._next(body)
        if script is None or isinstance(script, ScriptedError):
            return _error(400, "invalid_request_error", "AnthropicStandIn has no scripted reply for this request")
        usage = self._bill(blocks, marks, script)
        return web.json_response(_message(body, script, usage))

    def _next(self, body: dict[str, Any]) -> Script | None:
        if self.queue:
            return self.queue.popleft()
        if self.rule is None:
            return None
        decided = self.rule(body)
        return text_reply(decided) if isinstance(decided, str) else decided

    def _bill(self, blocks: list[dict[str, Any]], marks: list[int], reply: Reply) -> dict[str, int]:
        now = self.clock()
        self._cache = {k: t for k, t in self._cache.items() if t > now}
        sizes = [_tokens(b) for b in blocks]
        hashes = prefix_hashes(blocks)
        read_end = 0  # blocks [0, read_end) come from the cache
        for mark in marks:
            for end in range(mark + 1, max(0, mark + 1 - LOOKBACK_BLOCKS), -1):
                if end > read_end and hashes[end - 1] in self._cache:
                    read_end = end
                    break
        if read_end:
            self._cache[hashes[read_end - 1]] = now + TTL_SECONDS
        write_end = read_end
        for mark in marks:
            if sum(sizes[:mark + 1]) >= self.min_cacheable_tokens:
                self._cache[hashes[mark]] = now + TTL_SECONDS
                write_end = max(write_end, mark + 1)
        usage = {"input_tokens": sum(sizes[write_end:]),
                 "cache_creation_input_tokens": sum(sizes[read_end:write_end]),
                 "cache_read_input_tokens": sum(sizes[:read_end]),
                 "output_tokens": max(1, len(_reply_text(reply)) // 4)}
        ledger = self.ledger
        ledger.requests += 1
        ledger.input_tokens += usage["input_tokens"]
        ledger.cache_creation_input_tokens += usage["cache_creation_input_tokens"]
        ledger.cache_read_input_tokens += usage["cache_read_input_tokens"]
        ledger.output_tokens += usage["output_tokens"]
        return usage


def prompt_blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's prompt as the cache sees it: tools, then system, then each message's blocks."""
    blocks: list[dict[str, Any]] = [dict(t, _part="tool") for t in body.get("tools") or []]
    system = body.get("system")
    if isinstance(system, str):
        system = [{"type": "text", "text": system}]
    blocks += [dict(b, _part="system") for b in system or []]
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        blocks += [dict(b, _part=message.get("role")) for b in content or []]
    return blocks


def prefix_hashes(blocks: list[dict[str, Any]]) -> list[str]:
    """The hash of each prefix [0, i], over the blocks' content without their cache_control."""
    out, h = [], hashlib.sha256()
    for block in blocks:
        h.update(json.dumps({k: v for k, v in block.items() if k != "cache_control"}, sort_keys=True).encode())
        out.append(h.copy().hexdigest())
    return out


def _tokens(block: dict[str, Any]) -> int:
    text = json.dumps({k: v for k, v in block.items() if k not in ("cache_control", "_part")}, ensure_ascii=False)
    return max(1, len(text) // 4)


def _reply_text(reply: Reply) -> str:
    return (reply.text or "") + json.dumps(reply.tool_calls)


def _message(body: dict[str, Any], reply: Reply, usage: dict[str, int]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    for name, args in reply.tool_calls:
        content.append({"type": "tool_use", "id": "toolu_" + secrets.token_hex(12), "name": name,
                        "input": json.loads(args) if isinstance(args, str) else args})
    return {"id": "msg_" + secrets.token_hex(12), "type": "message", "role": "assistant",
            "model": body.get("model"), "content": content,
            "stop_reason": "tool_use" if reply.tool_calls else "end_turn", "stop_sequence": None,
            "usage": usage}


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"type": "error", "error": {"type": kind, "message": message}}, status=status,
                             headers={"request-id": "req_" + secrets.token_hex(12)})
