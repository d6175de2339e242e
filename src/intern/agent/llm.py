"""The LLM port over litellm. Errors are handled by exception type, from one table.

| litellm exception                                   | what happens                                         |
|-----------------------------------------------------|------------------------------------------------------|
| ContextWindowExceededError                          | ContextOverflow: the loop compacts and asks again    |
| AuthenticationError, PermissionDeniedError          | stop; names INTERN_LLM_API_KEY / the provider's key  |
| PaymentRequiredError (402)                          | stop; the provider account has no credit             |
| NotFoundError                                       | stop; names INTERN_MODEL                             |
| ContentPolicyViolationError                         | stop; the provider refused the content               |
| BadRequestError, UnprocessableEntityError, ...      | stop; names INTERN_MODEL and INTERN_LLM_API_BASE     |
| RateLimitError, ServiceUnavailableError,            | retried with exponential backoff and jitter,         |
| InternalServerError, BadGatewayError, Timeout,      | honouring Retry-After; when the attempts run out the |
| APIConnectionError, APIError, response validation   | turn stops and says so                               |

Subclasses come before their parents (ContextWindowExceededError is a BadRequestError). Anything
else is a bug, not a provider answer, and propagates.

litellm is imported lazily (it is slow to import) and in offline mode (no price-map fetch).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from functools import cache
from typing import Any, Literal

from intern.agent.errors import ContextOverflow, LLMConfigError, TurnStopped
from intern.agent.ports import LLMResponse, RetryCallback, ToolCall, Usage
from intern.agent.retry import retry_after_seconds

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 128_000

# Which variable holds the key of a provider, for error messages that name the setting to fix.
PROVIDER_KEYS = {
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    "text-completion-openai": "OPENAI_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "groq": "GROQ_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "huggingface": "HUGGINGFACE_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "xai": "XAI_API_KEY",
    "cohere": "COHERE_API_KEY",
    "cohere_chat": "COHERE_API_KEY",
    "fireworks_ai": "FIREWORKS_AI_API_KEY",
    "perplexity": "PERPLEXITYAI_API_KEY",
    "azure": "AZURE_API_KEY",
    "bedrock": "AWS_ACCESS_KEY_ID",
    "cerebras": "CEREBRAS_API_KEY",
    "nvidia_nim": "NVIDIA_NIM_API_KEY",
}

Action = Literal["compact", "auth", "billing", "model", "content", "request", "retry"]


def litellm_module() -> Any:
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.drop_params = True
    return litellm


@cache
def error_table() -> tuple[tuple[type[BaseException], Action], ...]:
    """litellm exception class -> what we do. Checked in order (subclasses first)."""
    ex = litellm_module().exceptions
    return (
        (ex.ContextWindowExceededError, "compact"),
        (ex.ContentPolicyViolationError, "content"),
        (ex.PaymentRequiredError, "billing"),
        (ex.AuthenticationError, "auth"),
        (ex.PermissionDeniedError, "auth"),
        (ex.NotFoundError, "model"),
        (ex.BadRequestError, "request"),
        (ex.UnprocessableEntityError, "request"),
        (ex.RateLimitError, "retry"),
        (ex.ServiceUnavailableError, "retry"),
        (ex.InternalServerError, "retry"),
        (ex.BadGatewayError, "retry"),
        (ex.Timeout, "retry"),
        (ex.APIConnectionError, "retry"),
        (ex.APIResponseValidationError, "retry"),
        (ex.APIError, "retry"),
    )


def classify(exc: BaseException) -> Action | None:
    return next((action for cls, action in error_table() if isinstance(exc, cls)), None)




class LiteLLM:
    def __init__(self, *, api_base: str | None = None, api_key: str | None = None,
                 max_attempts: int = 6, base_delay: float = 1.0, max_delay: float = 30.0,
                 max_retry_after: float = 120.0, timeout: float = 600.0, prompt_cache: bool = True) -> None:
        self.api_base, self._api_key = api_base, api_key
        self.prompt_cache = prompt_cache
        self.max_attempts, self.base_delay, self.max_delay = max_attempts, base_delay, max_delay
        self.max_retry_after = max_retry_after  # a provider asking for longer is treated as down
        self.timeout = timeout
        self.on_retry: RetryCallback | None = None  # so the thread can be told about a long wait
        self._windows: dict[str, int] = {}

    async def complete(self, *, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                       on_retry: RetryCallback | None = None) -> LLMResponse:
        """`on_retry` (else the port's own `on_retry`) is told before each wait to retry."""
        litellm = litellm_module()
        kwargs = self._request(model, messages, tools)
        started = time.monotonic()
        for attempt in range(1, self.max_attempts + 1):
            try:
                raw = await litellm.acompletion(**kwargs)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                action = classify(exc)
                if action is None:
                    raise
                if action != "retry":
                    raise self._terminal(action, model, exc) from exc
                if attempt == self.max_attempts:
                    raise self._exhausted(model, exc, attempt, time.monotonic() - started) from exc
                await self._wait(attempt, exc, on_retry or self.on_retry)
                continue
            return self._convert(raw, model)
        raise AssertionError("unreachable")

    def _request(self, model: str, messages: list[dict[str, Any]],
                 tools: list[dict[str, Any]] | None) -> dict[str, Any]:
        # Retries are ours (by exception type, with the thread told); litellm and the provider SDK
        # must not retry underneath.
        kwargs: dict[str, Any] = {"model": model, "messages": messages, "timeout": self.timeout,
                                  "num_retries": 0, "max_retries": 0}
        if tools:
            kwargs["tools"] = tools
        if self.prompt_cache and takes_cache_markers(model):
            kwargs["cache_control_injection_points"] = CACHE_POINTS
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self._api_key:
            kwargs["api_key"] = self._api_key
        return kwargs

    async def _wait(self, attempt: int, exc: BaseException, on_retry: RetryCallback | None) -> None:
        delay = self.backoff(attempt, retry_after(exc))
        log.warning("LLM call failed (%s); retry %d in %.1fs", type(exc).__name__, attempt, delay)
        if on_retry is not None:
            await on_retry(attempt, delay, exc)
        await asyncio.sleep(delay)

    def backoff(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Exponential backoff with jitter; a provider's Retry-After wins when it asks for longer."""
        delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
        if retry_after_s is not None:
            delay = min(self.max_retry_after, max(delay, retry_after_s))
        return delay

    def _terminal(self, action: Action, model: str, exc: BaseException) -> Exception:
        if action == "compact":
            return ContextOverflow(str(exc))
        log.error("LLM request refused (%s): %s", type(exc).__name__, exc)
        if action == "auth":
            names = " or ".join(self.key_settings(model))
            return LLMConfigError(
                f"The language model provider rejected the credentials for `{model}`. "
                f"Check {names} (the key is missing, wrong or revoked).", setting=self.key_settings(model)[0])
        if action == "billing":
            return LLMConfigError(
                f"The provider of `{model}` refused the request for lack of credit on the account. Top up the "
                f"account or change {' or '.join(self.key_settings(model))}.", setting=self.key_settings(model)[0])
        if action == "model":
            return LLMConfigError(
                f"The model `{model}` was not found by its provider. Check INTERN_MODEL (a litellm model id "
                "such as `anthropic/claude-sonnet-4-5`) and, for a proxy, INTERN_LLM_API_BASE.",
                setting="INTERN_MODEL")
        if action == "content":
            return TurnStopped(
                "The model provider refused this request under its content policy. Rephrase the task, "
                "or tell me what to leave out.", reason="llm_refused")
        return LLMConfigError(
            f"The model provider refused the request for `{model}` as malformed. Check INTERN_MODEL and "
            "INTERN_LLM_API_BASE; the full error is in the logs.", setting="INTERN_MODEL")

    def _exhausted(self, model: str, exc: BaseException, attempts: int, waited: float) -> TurnStopped:
        if connection_failed(exc):
            return TurnStopped(
                f"I cannot connect to the language model at {self.endpoint(model)}: {connection_reason(exc)} "
                f"after {attempts} attempts over {waited:.0f}s. "
                + ("Check that the server runs there and that INTERN_LLM_API_BASE is right. " if self.api_base else
                   "Check the network or proxy, or set INTERN_LLM_API_BASE to reach the provider another way. ")
                + "Reply in the thread to try again.", reason="llm_unavailable")
        return TurnStopped(
            f"The language model `{model}` is not answering ({type(exc).__name__} after {attempts} attempts "
            f"over {waited:.0f}s). The provider may be down, overloaded or rate-limiting us. Reply in the thread "
            "to try again.", reason="llm_unavailable")

    def endpoint(self, model: str) -> str:
        """Where calls for `model` go, for messages: the configured base, else the provider's API."""
        if self.api_base:
            return f"{self.api_base} (INTERN_LLM_API_BASE)"
        return f"the {provider_of(model)} API"

    def outage(self, model: str, exc: BaseException) -> str:
        """How a failure that is being retried reads in the thread: a refused connection is not a busy
        provider."""
        if connection_failed(exc):
            return f"cannot be reached at {self.endpoint(model)}: {connection_reason(exc)}"
        if isinstance(exc, litellm_module().exceptions.RateLimitError):
            return f"is rate-limiting us ({type(exc).__name__})"
        return f"is not answering ({type(exc).__name__})"

    def key_settings(self, model: str) -> list[str]:
        """The settings that hold the key for `model`, the one actually used first."""
        provider_key = PROVIDER_KEYS.get(provider_of(model))
        if self._api_key or not provider_key:
            return [n for n in ("INTERN_LLM_API_KEY", provider_key) if n]
        return [provider_key, "INTERN_LLM_API_KEY"]

    def _convert(self, raw: Any, model: str) -> LLMResponse:
        choice = raw.choices[0]
        msg = choice.message
        calls = tuple(
            ToolCall(id=c.id or f"call_{i}", name=c.function.name or "", arguments=c.function.arguments or "{}")
            for i, c in enumerate(getattr(msg, "tool_calls", None) or [])
        )
        return LLMResponse(
            content=msg.content,
            tool_calls=calls,
            finish_reason=choice.finish_reason,
            usage=usage_of(raw),
            model=getattr(raw, "model", None) or model,
        )

    def count_tokens(self, model: str, messages: list[dict[str, Any]]) -> int:
        try:
            return int(litellm_module().token_counter(model=model, messages=messages))
        except Exception:
            return sum(len(str(m.get("content") or "")) + len(str(m.get("tool_calls") or "")) for m in messages) // 4

    def context_window(self, model: str) -> int:
        window = self._windows.get(model)
        if window is None:  # asked at every step; litellm's lookup of a model it does not know is slow
            window = self._windows[model] = _context_window(model)
        return window


def _context_window(model: str) -> int:
    try:
        info = litellm_module().get_model_info(model)
    except Exception:
        return DEFAULT_WINDOW  # a model litellm does not know: 128k unless the setting says otherwise
    return int(info.get("max_input_tokens") or info.get("max_tokens") or DEFAULT_WINDOW)


# The end of the system prompt and the latest message: the conversation is re-cached step by step,
# each request reading what the previous one wrote (two of the four breakpoints Anthropic allows).
CACHE_POINTS: list[dict[str, Any]] = [{"location": "message", "role": "system"},
                                      {"location": "message", "index": -1}]
# Providers whose prompt cache needs markers; OpenAI, DeepSeek and others cache a repeated prefix by
# themselves (they report the cached tokens all the same).
_MARKED = ("anthropic", "gemini")
_MARKED_WHEN_CLAUDE = ("bedrock", "bedrock_converse", "vertex_ai", "vertex_ai_beta")


def takes_cache_markers(model: str) -> bool:
    provider = provider_of(model)
    if provider in _MARKED:
        return True
    name = model.lower()
    if provider in _MARKED_WHEN_CLAUDE:
        return "claude" in name or (provider.startswith("vertex_ai") and "gemini" in name)
    return False


def usage_of(raw: Any) -> Usage:
    """Tokens and cost of a response. Cache reads come as OpenAI's `prompt_tokens_details.cached_tokens`
    (litellm maps Anthropic's `cache_read_input_tokens` there too), cache writes as Anthropic's
    `cache_creation_input_tokens`; the prompt count includes both."""
    usage = getattr(raw, "usage", None)
    details = getattr(usage, "prompt_tokens_details", None)
    read = getattr(details, "cached_tokens", None) or getattr(usage, "cache_read_input_tokens", None) or 0
    written = getattr(usage, "cache_creation_input_tokens", None) or \
        getattr(details, "cache_creation_tokens", None) or 0
    return Usage(int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0),
                 _cost(raw), int(read), int(written))


def _cost(raw: Any) -> float:
    """The call's cost in dollars: litellm prices every response it returns (in its hidden params);
    pricing it again is only for a response that came without it."""
    hidden = getattr(raw, "_hidden_params", None) or {}
    if "response_cost" in hidden:  # None: litellm has no price for the model, and asking again won't find one
        return float(hidden["response_cost"] or 0.0)
    try:
        return float(litellm_module().completion_cost(completion_response=raw) or 0.0)
    except Exception:
        return 0.0  # a model without a known price: the tokens are still recorded


def _causes(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(found) < 16:
        e = todo.pop()
        if e is None or any(e is f for f in found):
            continue
        found.append(e)
        todo += [e.__cause__, e.__context__]
    return found


def _connect_errors() -> tuple[type[BaseException], ...]:
    import socket

    import httpx

    kinds: list[type[BaseException]] = [ConnectionRefusedError, ConnectionResetError, socket.gaierror,
                                        httpx.ConnectError, httpx.ConnectTimeout]
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - litellm brings aiohttp
        pass
    else:
        kinds.append(aiohttp.ClientConnectorError)
    return tuple(kinds)


def connection_failed(exc: BaseException) -> bool:
    """The request never reached a server (refused, unresolvable, connect timeout), by the types in the
    exception's chain: litellm wraps the transport's error in its own classes."""
    kinds = _connect_errors()
    return any(isinstance(e, kinds) for e in _causes(exc))


def connection_reason(exc: BaseException) -> str:
    import socket

    causes = _causes(exc)
    if any(isinstance(e, ConnectionRefusedError) for e in causes):
        return "connection refused"
    if any(isinstance(e, socket.gaierror) for e in causes):
        return "the host name does not resolve"
    kinds = _connect_errors()
    innermost = [e for e in causes if isinstance(e, kinds)]
    return type(innermost[-1]).__name__ if innermost else type(exc).__name__


@cache
def provider_of(model: str) -> str:
    try:
        return str(litellm_module().get_llm_provider(model)[1])
    except Exception:
        return model.split("/", 1)[0] if "/" in model else "openai"


def retry_after(exc: BaseException) -> float | None:
    """Seconds the provider asked us to wait (Retry-After in seconds or as a date, or retry-after-ms)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "litellm_response_headers", None)
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    return retry_after_seconds(headers.get("retry-after"))
