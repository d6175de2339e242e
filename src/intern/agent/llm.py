"""The LLM port over litellm. Errors are handled by exception type, from one table.

litellm is imported lazily (it is slow to import) and in offline mode (no price-map fetch).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from dataclasses import dataclass
from typing import Any

from intern.agent.errors import ContextOverflow, LLMConfigError
from intern.agent.ports import LLMResponse, ToolCall, Usage

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 128_000

# Which provider key variable a model id needs, for error messages that name the setting to fix.
PROVIDER_KEYS = {
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "groq": "GROQ_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "huggingface": "HF_TOKEN",
    "together_ai": "TOGETHERAI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
}


def litellm_module() -> Any:
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.drop_params = True
    return litellm


@dataclass(frozen=True)
class RetryRule:
    retry: bool
    max_attempts: int = 1


def error_table() -> dict[type[BaseException], str]:
    """litellm exception class -> what we do. Checked in order (subclasses first)."""
    ex = litellm_module().exceptions
    return {
        ex.ContextWindowExceededError: "compact",
        ex.AuthenticationError: "config_auth",
        ex.PermissionDeniedError: "config_auth",
        ex.NotFoundError: "config_model",
        ex.BadRequestError: "config_request",
        ex.UnsupportedParamsError: "config_request",
        ex.RateLimitError: "retry",
        ex.ServiceUnavailableError: "retry",
        ex.InternalServerError: "retry",
        ex.BadGatewayError: "retry",
        ex.Timeout: "retry",
        ex.APIConnectionError: "retry",
        ex.APIError: "retry",
    }


class LiteLLM:
    def __init__(self, *, api_base: str | None = None, api_key: str | None = None,
                 max_attempts: int = 6, base_delay: float = 1.0, max_delay: float = 30.0,
                 timeout: float = 600.0) -> None:
        self.api_base, self._api_key = api_base, api_key
        self.max_attempts, self.base_delay, self.max_delay = max_attempts, base_delay, max_delay
        self.timeout = timeout
        self.on_retry: Any = None  # async callback(attempt, delay, error) so the thread can be told

    async def complete(self, *, model: str, messages: list[dict[str, Any]],
                       tools: list[dict[str, Any]] | None) -> LLMResponse:
        litellm = litellm_module()
        table = error_table()
        kwargs: dict[str, Any] = {"model": model, "messages": messages, "timeout": self.timeout,
                                  "num_retries": 0}
        if tools:
            kwargs["tools"] = tools
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self._api_key:
            kwargs["api_key"] = self._api_key
        for attempt in range(1, self.max_attempts + 1):
            try:
                raw = await litellm.acompletion(**kwargs)
                return self._convert(raw, model)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                action = next((a for cls, a in table.items() if isinstance(exc, cls)), None)
                if action == "compact":
                    raise ContextOverflow(str(exc)) from exc
                if action and action.startswith("config"):
                    raise self._config_error(action, model) from exc
                if action != "retry" or attempt == self.max_attempts:
                    raise
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
                retry_after = _retry_after(exc)
                if retry_after is not None:
                    delay = min(self.max_delay * 4, max(delay, retry_after))
                log.warning("LLM call failed (%s); retry %d in %.1fs", type(exc).__name__, attempt, delay)
                if self.on_retry is not None:
                    await self.on_retry(attempt, delay, exc)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _config_error(self, action: str, model: str) -> LLMConfigError:
        provider = model.split("/", 1)[0] if "/" in model else "openai"
        key_var = PROVIDER_KEYS.get(provider)
        if action == "config_auth":
            names = " or ".join(n for n in ("INTERN_LLM_API_KEY", key_var) if n)
            return LLMConfigError(
                f"The language model rejected our credentials for `{model}`. Check {names}.",
                setting="INTERN_LLM_API_KEY" if self._api_key or not key_var else key_var)
        if action == "config_model":
            return LLMConfigError(
                f"The model `{model}` was not found by its provider. Check INTERN_MODEL "
                "(a litellm model id such as `anthropic/claude-sonnet-4-5`).", setting="INTERN_MODEL")
        return LLMConfigError(
            f"The model provider refused the request for `{model}` as malformed. Check INTERN_MODEL and "
            "INTERN_LLM_API_BASE; the full error is in the logs.", setting="INTERN_MODEL")

    def _convert(self, raw: Any, model: str) -> LLMResponse:
        choice = raw.choices[0]
        msg = choice.message
        calls = tuple(
            ToolCall(id=c.id or f"call_{i}", name=c.function.name or "", arguments=c.function.arguments or "{}")
            for i, c in enumerate(getattr(msg, "tool_calls", None) or [])
        )
        usage = getattr(raw, "usage", None)
        cost = 0.0
        try:
            cost = float(litellm_module().completion_cost(completion_response=raw) or 0.0)
        except Exception:
            cost = 0.0  # unknown model price: the tokens are still recorded
        return LLMResponse(
            content=msg.content,
            tool_calls=calls,
            finish_reason=choice.finish_reason,
            usage=Usage(getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0, cost),
            model=getattr(raw, "model", None) or model,
        )

    def count_tokens(self, model: str, messages: list[dict[str, Any]]) -> int:
        try:
            return int(litellm_module().token_counter(model=model, messages=messages))
        except Exception:
            return sum(len(str(m.get("content") or "")) + len(str(m.get("tool_calls") or "")) for m in messages) // 4

    def context_window(self, model: str) -> int:
        try:
            info = litellm_module().get_model_info(model)
        except Exception:
            return DEFAULT_WINDOW  # a model litellm does not know: 128k unless the setting says otherwise
        return int(info.get("max_input_tokens") or info.get("max_tokens") or DEFAULT_WINDOW)


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
