"""The LLM error table, driven through the real LiteLLM class and real `litellm.acompletion` against the
OpenAI-compatible loopback stand-in, which answers with OpenAI's own status codes and error JSON."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
import pytest

from intern.agent.context import SUMMARY_HEADER
from intern.agent.errors import ContextOverflow, LLMConfigError, TurnStopped
from intern.agent.events import UsageRecorded
from intern.agent.llm import LiteLLM, classify, error_table, litellm_module, retry_after
from intern.standins.llm import LLMStandIn
from tests.agent.agent_fakes import task

MODEL = "openai/standin-model"
USER = [{"role": "user", "content": "hello"}]


def client(llm: LLMStandIn, **kwargs: Any) -> LiteLLM:
    options: dict[str, Any] = {"api_base": f"{llm.url}/v1", "api_key": "sk-test-key-1234",
                               "max_attempts": 3, "base_delay": 0.01, "max_delay": 0.05}
    options.update(kwargs)
    return LiteLLM(**options)


async def complete(c: LiteLLM, model: str = MODEL) -> Any:
    return await c.complete(model=model, messages=USER, tools=None)


def rounds(n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n):
        out.append({"role": "assistant", "content": "", "tool_calls": [
            {"id": f"c{i}", "type": "function", "function": {"name": "echo", "arguments": json.dumps({"text": f"r{i}"})}}]})
        out.append({"role": "tool", "tool_call_id": f"c{i}", "name": "echo", "content": f"echo: r{i} " + "w" * 300})
    return out


# --- stop with a message naming the setting ---------------------------------------------------------

async def test_authentication_error_stops_and_names_our_key_setting(llm: LLMStandIn) -> None:
    llm.enqueue_error("auth")
    with pytest.raises(LLMConfigError) as err:
        await complete(client(llm))
    assert err.value.setting == "INTERN_LLM_API_KEY"
    assert "INTERN_LLM_API_KEY" in err.value.message and "OPENAI_API_KEY" in err.value.message
    assert err.value.reason == "llm_config"
    assert len(llm.chat_requests) == 1  # never retried


async def test_authentication_error_names_the_provider_variable_when_that_is_the_key_used(
        llm: LLMStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment-000")
    llm.enqueue_error("auth")
    with pytest.raises(LLMConfigError) as err:
        await complete(client(llm, api_key=None))
    assert err.value.setting == "OPENAI_API_KEY"
    assert err.value.message.index("OPENAI_API_KEY") < err.value.message.index("INTERN_LLM_API_KEY")
    assert llm.requests[-1].headers["Authorization"] == "Bearer sk-from-the-environment-000"


async def test_an_authentication_failure_reaches_the_thread_through_the_agent(llm: LLMStandIn, harness: Any) -> None:
    llm.enqueue_error("auth")
    h = harness(client(llm), model=MODEL)
    outcome = await h.agent.run([task()])
    assert outcome.status == "stopped"
    assert "INTERN_LLM_API_KEY" in h.sink.notices[-1].text and h.sink.notices[-1].level == "error"


async def test_unknown_model_stops_and_names_intern_model(llm: LLMStandIn) -> None:
    llm.enqueue_error("not_found")
    with pytest.raises(LLMConfigError) as err:
        await complete(client(llm), model="openai/gpt-9-nonexistent")
    assert err.value.setting == "INTERN_MODEL" and "`openai/gpt-9-nonexistent`" in err.value.message
    assert len(llm.chat_requests) == 1


async def test_a_malformed_request_stops_and_names_model_and_base(llm: LLMStandIn) -> None:
    llm.enqueue_error("bad_request", detail="'messages[1].role' must be one of system, user, assistant, tool")
    with pytest.raises(LLMConfigError) as err:
        await complete(client(llm))
    assert "INTERN_MODEL" in err.value.message and "INTERN_LLM_API_BASE" in err.value.message
    assert len(llm.chat_requests) == 1


async def test_a_content_policy_refusal_stops_without_blaming_a_setting(llm: LLMStandIn) -> None:
    llm.enqueue_error("bad_request", detail="Your request was rejected as a result of the safety system.")
    with pytest.raises(TurnStopped) as err:
        await complete(client(llm))
    assert not isinstance(err.value, LLMConfigError)
    assert err.value.reason == "llm_refused" and "content policy" in err.value.message


# --- compaction ---------------------------------------------------------------------------------------

async def test_context_length_exceeded_becomes_context_overflow(llm: LLMStandIn) -> None:
    llm.enqueue_error("context_length")
    with pytest.raises(ContextOverflow):
        await complete(client(llm))
    assert len(llm.chat_requests) == 1


async def test_the_agent_compacts_after_context_length_exceeded_and_carries_on(llm: LLMStandIn, harness: Any) -> None:
    llm.enqueue_error("context_length")
    llm.enqueue_text("Echoed r0 to r11; nothing failed.")  # the summarisation request
    llm.enqueue_text("Done: everything echoed.")
    h = harness(client(llm), model=MODEL)

    outcome = await h.agent.run([task("TASK: echo twelve things"), *rounds(12)])

    assert outcome.status == "done" and outcome.reply == "Done: everything echoed."
    first, summarise, last = llm.chat_requests
    assert "tools" in first and "tools" not in summarise
    assert "r3" in summarise["messages"][1]["content"]
    assert last["messages"][1]["content"] == "TASK: echo twelve things"
    assert last["messages"][2]["content"] == f"{SUMMARY_HEADER}\nEchoed r0 to r11; nothing failed."
    assert len(json.dumps(last["messages"])) < len(json.dumps(first["messages"])) / 2


# --- retried with backoff -------------------------------------------------------------------------------

async def test_rate_limit_is_retried_after_the_time_the_provider_asks(llm: LLMStandIn) -> None:
    llm.enqueue_error("rate_limit", retry_after=0.4)
    llm.enqueue_text("hi")
    waits: list[float] = []

    async def on_retry(attempt: int, delay: float, exc: BaseException) -> None:
        waits.append(delay)

    c = client(llm)
    c.on_retry = on_retry
    started = time.monotonic()
    response = await complete(c)
    assert response.content == "hi"
    assert time.monotonic() - started >= 0.4
    assert waits and waits[0] >= 0.4
    assert len(llm.chat_requests) == 2


async def test_transient_server_errors_are_retried_until_an_answer(llm: LLMStandIn) -> None:
    llm.enqueue_error("server_error")
    llm.enqueue_error("unavailable")
    llm.enqueue_text("finally")
    response = await complete(client(llm))
    assert response.content == "finally" and len(llm.chat_requests) == 3


async def test_an_overloaded_provider_stops_the_turn_after_the_last_attempt(llm: LLMStandIn) -> None:
    llm.enqueue_error("unavailable", times=3)
    with pytest.raises(TurnStopped) as err:
        await complete(client(llm))
    assert err.value.reason == "llm_unavailable"
    assert "3 attempts" in err.value.message and "Reply in the thread" in err.value.message
    assert len(llm.chat_requests) == 3


async def test_a_provider_that_cannot_be_reached_is_retried_then_reported() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the call: nothing listens there
    c = LiteLLM(api_base=f"http://127.0.0.1:{port}/v1", api_key="sk-x", max_attempts=2, base_delay=0.01)
    with pytest.raises(TurnStopped) as err:
        await complete(c)
    # litellm reports a refused connection to an OpenAI-style endpoint as a server error: retried all the same
    assert err.value.reason == "llm_unavailable" and "after 2 attempts" in err.value.message


async def test_a_provider_that_does_not_answer_in_time_is_retried_as_a_timeout(llm: LLMStandIn) -> None:
    llm.enqueue_text("too late", delay=3.0)
    llm.enqueue_text("in time")
    response = await complete(client(llm, timeout=0.5))
    assert response.content == "in time" and len(llm.chat_requests) == 2


def test_backoff_grows_with_jitter_and_respects_retry_after() -> None:
    c = LiteLLM(base_delay=1.0, max_delay=30.0)
    for attempt in range(1, 8):
        cap = min(30.0, 2 ** (attempt - 1))
        delays = {round(c.backoff(attempt), 6) for _ in range(50)}
        assert all(cap / 2 <= d <= cap for d in delays) and len(delays) > 1
    assert c.backoff(1, retry_after_s=12.0) == 12.0
    assert c.backoff(1, retry_after_s=10_000.0) == 120.0  # a silly Retry-After is capped


def test_retry_after_understands_seconds_milliseconds_and_dates() -> None:
    def exc(headers: dict[str, str]) -> Exception:
        e = Exception("x")
        e.response = httpx.Response(429, headers=headers)  # type: ignore[attr-defined]
        return e

    assert retry_after(exc({"retry-after": "7"})) == 7.0
    assert retry_after(exc({"retry-after-ms": "1500", "retry-after": "2"})) == 1.5
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= (retry_after(exc({"retry-after": date})) or 0) <= 31
    assert retry_after(exc({})) is None and retry_after(Exception("no response")) is None


def _status_error(cls: type, status: int) -> BaseException:
    response = httpx.Response(status, request=httpx.Request("POST", "http://127.0.0.1/v1/chat/completions"))
    return cls(message="x", llm_provider="openai", model="m", response=response)


@pytest.mark.parametrize(("name", "status", "action"), [
    ("ContextWindowExceededError", 400, "compact"),
    ("ContentPolicyViolationError", 400, "content"),
    ("PaymentRequiredError", 402, "billing"),
    ("AuthenticationError", 401, "auth"),
    ("PermissionDeniedError", 403, "auth"),
    ("NotFoundError", 404, "model"),
    ("BadRequestError", 400, "request"),
    ("UnprocessableEntityError", 422, "request"),
    ("RateLimitError", 429, "retry"),
    ("ServiceUnavailableError", 503, "retry"),
    ("InternalServerError", 500, "retry"),
    ("BadGatewayError", 502, "retry"),
])
def test_every_row_of_the_table_is_decided_by_type(name: str, status: int, action: str) -> None:
    cls = getattr(litellm_module().exceptions, name)
    assert classify(_status_error(cls, status)) == action
    assert cls in {c for c, _ in error_table()}


def test_errors_that_are_not_provider_answers_are_not_in_the_table() -> None:
    assert classify(ValueError("a bug of ours")) is None
    assert classify(KeyError("x")) is None


# --- what the model gets back ------------------------------------------------------------------------

async def test_usage_and_cost_of_every_call_are_recorded(llm: LLMStandIn, harness: Any) -> None:
    llm.enqueue_text("hello there", usage=(1000, 200))
    h = harness(client(llm), model="openai/gpt-4o-mini")
    await h.agent.run([task()])
    (usage,) = h.sink.of(UsageRecorded)
    prices = litellm_module().model_cost["gpt-4o-mini"]
    expected = 1000 * prices["input_cost_per_token"] + 200 * prices["output_cost_per_token"]
    assert (usage.prompt_tokens, usage.completion_tokens) == (1000, 200)
    assert usage.cost_usd == pytest.approx(expected) and usage.cost_usd > 0


async def test_malformed_tool_call_json_goes_back_to_the_model_which_corrects_it(llm: LLMStandIn, harness: Any) -> None:
    llm.enqueue_tool_calls([("echo", '{"text": "hi"')])
    llm.enqueue_tool_calls([("echo", {"text": "hi"})])
    llm.enqueue_text("done")
    h = harness(client(llm), model=MODEL)

    outcome = await h.agent.run([task()])

    assert outcome.status == "done"
    second = llm.chat_requests[1]["messages"]
    error = next(m for m in second if m["role"] == "tool")
    assert "not valid JSON" in error["content"] and "Send a single JSON object" in error["content"]
    sent_args = json.loads(next(m for m in second if m.get("tool_calls"))["tool_calls"][0]["function"]["arguments"])
    assert sent_args == {"unparsed_arguments": '{"text": "hi"'}  # a JSON object any provider accepts
    third = llm.chat_requests[2]["messages"]
    assert third[-1]["content"] == "echo: hi"


async def test_arguments_failing_validation_name_the_field_and_the_model_recovers(llm: LLMStandIn, harness: Any) -> None:
    llm.enqueue_tool_calls([("echo", {"txt": "hi"})])
    llm.enqueue_tool_calls([("echo", {"text": "hi"})])
    llm.enqueue_text("done")
    h = harness(client(llm), model=MODEL)

    assert (await h.agent.run([task()])).status == "done"
    error = llm.chat_requests[1]["messages"][-1]
    assert error["role"] == "tool" and "Invalid arguments for echo" in error["content"] and "text" in error["content"]


async def test_a_reply_cut_off_while_writing_a_tool_call_is_asked_again_with_a_hint(
        llm: LLMStandIn, harness: Any) -> None:
    llm.enqueue_tool_calls([("echo", '{"text": "aaaaaaaa')], finish_reason="length")
    llm.enqueue_tool_calls([("echo", {"text": "short"})])
    llm.enqueue_text("done")
    h = harness(client(llm), model=MODEL)

    outcome = await h.agent.run([task()])

    assert outcome.status == "done"
    hint = llm.chat_requests[1]["messages"][-1]
    assert hint["role"] == "user" and "cut off" in hint["content"]
    calls = [m for m in h.transcript.messages if m.get("tool_calls")]
    assert len(calls) == 1 and json.loads(calls[0]["tool_calls"][0]["function"]["arguments"]) == {"text": "short"}
    assert len(h.sink.of(UsageRecorded)) == 3  # the cut-off reply was paid for too


async def test_an_endpoint_that_refuses_connections_is_named_with_its_setting() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}/v1"
    c = LiteLLM(api_base=base, api_key="sk-x", max_attempts=2, base_delay=0.01)
    seen: list[str] = []

    async def told(attempt: int, delay: float, exc: BaseException) -> None:
        seen.append(c.outage(MODEL, exc))

    c.on_retry = told
    with pytest.raises(TurnStopped) as err:
        await complete(c)
    message = err.value.message
    assert base in message and "INTERN_LLM_API_BASE" in message and "connection refused" in message
    assert "provider may be down" not in message
    assert seen == [f"cannot be reached at {base} (INTERN_LLM_API_BASE): connection refused"]


async def test_a_busy_provider_is_still_told_as_not_answering(llm: LLMStandIn) -> None:
    llm.enqueue_error("unavailable", times=2)
    c = client(llm, max_attempts=2)
    seen: list[str] = []

    async def told(attempt: int, delay: float, exc: BaseException) -> None:
        seen.append(c.outage(MODEL, exc))

    c.on_retry = told
    with pytest.raises(TurnStopped) as err:
        await complete(c)
    assert "INTERN_LLM_API_BASE" not in err.value.message and "not answering" in err.value.message
    assert seen and seen[0].startswith("is not answering")
