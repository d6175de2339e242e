"""The scripted OpenAI-compatible server, exercised through the real litellm client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import httpx
import pytest

from intern.standins.llm import LLMStandIn, error_reply, last_message, text_reply, tool_calls_reply

# litellm's stream handler makes pydantic warn (a `ReadOnly` TypedDict notice, with backticks the
# project-wide filter does not match, and 2.11 deprecations): library notices that `filterwarnings =
# error` would turn into a failed stream, not faults of the code under test.
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*`ReadOnly` qualifier"),
    pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince211"),
]

TOOLS = [{"type": "function", "function": {"name": "hf_papers", "description": "search papers",
                                           "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}]


@pytest.fixture(scope="module")
def litellm() -> Any:
    import litellm as module  # the plugin set LITELLM_OFFLINE_MODE before this import

    module.suppress_debug_info = True
    return module


def call_args(llm: LLMStandIn, **extra: Any) -> dict[str, Any]:
    # max_retries=0: the OpenAI SDK inside litellm would otherwise retry 429/5xx on its own.
    return {"model": "openai/standin-model", "api_base": f"{llm.url}/v1", "api_key": "sk-test",
            "messages": [{"role": "user", "content": "find papers on DPO"}], "max_retries": 0, **extra}


async def test_text_reply_with_usage(llm: LLMStandIn, litellm: Any) -> None:
    llm.enqueue_text("Here is what I found.")
    response = await litellm.acompletion(**call_args(llm))
    choice = response.choices[0]
    assert choice.message.content == "Here is what I found."
    assert choice.finish_reason == "stop"
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


async def test_tool_calls_parse(llm: LLMStandIn, litellm: Any) -> None:
    llm.enqueue_tool_calls([("hf_papers", {"query": "DPO"}), ("plan", {"steps": ["a", "b"]})],
                           usage=(120, 30))
    response = await litellm.acompletion(**call_args(llm, tools=TOOLS))
    choice = response.choices[0]
    calls = choice.message.tool_calls
    assert choice.finish_reason == "tool_calls"
    assert [c.function.name for c in calls] == ["hf_papers", "plan"]
    assert [json.loads(c.function.arguments) for c in calls] == [{"query": "DPO"}, {"steps": ["a", "b"]}]
    assert len({c.id for c in calls}) == 2 and all(c.id.startswith("call_") for c in calls)
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (120, 30)


async def test_streamed_text_and_tool_calls_reassemble(llm: LLMStandIn, litellm: Any) -> None:
    llm.enqueue_tool_calls([("hf_papers", {"query": "direct preference optimisation, 2023 onwards"})],
                           text="Let me look that up.")
    stream = await litellm.acompletion(**call_args(llm, tools=TOOLS, stream=True,
                                                   stream_options={"include_usage": True}))
    chunks = [chunk async for chunk in stream]
    assert len(chunks) > 5  # really streamed in pieces
    built = litellm.stream_chunk_builder(chunks)
    message = built.choices[0].message
    assert message.content == "Let me look that up."
    assert json.loads(message.tool_calls[0].function.arguments) == {
        "query": "direct preference optimisation, 2023 onwards"}
    assert message.tool_calls[0].function.name == "hf_papers"
    assert built.choices[0].finish_reason == "tool_calls"
    assert built.usage.prompt_tokens > 0


async def test_stream_wire_format(llm: LLMStandIn) -> None:
    llm.enqueue_tool_calls([("a", {"x": 1}), ("b", {"y": "zzzzzzzzzzzzzzzzzzzz"})])
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{llm.url}/v1/chat/completions",
                                     json={"model": "m", "messages": [], "stream": True})
    lines = [line for line in response.text.split("\n\n") if line]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[len("data: "):]) for line in lines[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    tool_deltas = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    heads = [d for d in tool_deltas if "id" in d]
    assert [(h["index"], h["function"]["name"], h["function"]["arguments"]) for h in heads] == [
        (0, "a", ""), (1, "b", "")]
    fragments = [d for d in tool_deltas if "id" not in d]
    assert all(set(d) == {"index", "function"} for d in fragments)
    second = "".join(d["function"]["arguments"] for d in fragments if d["index"] == 1)
    assert json.loads(second) == {"y": "zzzzzzzzzzzzzzzzzzzz"}
    assert sum(1 for d in fragments if d["index"] == 1) > 1
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)


ERROR_CASES = [
    ("auth", "AuthenticationError", 401),
    ("not_found", "NotFoundError", 404),
    ("rate_limit", "RateLimitError", 429),
    ("server_error", "InternalServerError", 500),
    ("unavailable", "ServiceUnavailableError", 503),
    ("context_length", "ContextWindowExceededError", 400),
]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(("kind", "exception", "status"), ERROR_CASES)
async def test_errors_map_to_litellm_exceptions(llm: LLMStandIn, litellm: Any, kind: str, exception: str,
                                                status: int, stream: bool) -> None:
    llm.enqueue_error(kind)
    with pytest.raises(getattr(litellm.exceptions, exception)) as raised:
        response = await litellm.acompletion(**call_args(llm, stream=stream))
        async for _ in response:
            pass
    assert raised.value.status_code == status
    assert len(llm.chat_requests) == 1  # one request: nothing retried behind the test's back


async def test_error_bodies_are_openai_shaped(llm: LLMStandIn) -> None:
    llm.enqueue_error("rate_limit", retry_after=7)
    llm.enqueue_error("context_length")
    async with httpx.AsyncClient() as client:
        limited = await client.post(f"{llm.url}/v1/chat/completions", json={"model": "m", "messages": []})
        too_long = await client.post(f"{llm.url}/v1/chat/completions", json={"model": "m", "messages": []})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert too_long.json()["error"] == {
        "message": too_long.json()["error"]["message"], "type": "invalid_request_error", "param": "messages",
        "code": "context_length_exceeded"}


async def test_rate_limit_exception_carries_retry_after(llm: LLMStandIn, litellm: Any) -> None:
    llm.enqueue_error("rate_limit", retry_after=3)
    with pytest.raises(litellm.exceptions.RateLimitError) as raised:
        await litellm.acompletion(**call_args(llm))
    assert raised.value.response.headers["retry-after"] == "3"


async def test_wrong_api_key_is_refused(llm: LLMStandIn, litellm: Any) -> None:
    llm.api_key = "sk-right"
    llm.enqueue_text("kept for the right key")
    with pytest.raises(litellm.exceptions.AuthenticationError):
        await litellm.acompletion(**call_args(llm))
    response = await litellm.acompletion(**call_args(llm, api_key="sk-right"))
    assert response.choices[0].message.content == "kept for the right key"


async def test_rule_decides_from_the_request_and_queue_comes_first(llm: LLMStandIn, litellm: Any) -> None:
    def rule(request: dict[str, Any]) -> Any:
        last = last_message(request)
        if last.get("role") == "tool":
            return text_reply(f"tool said: {last['content']}")
        return tool_calls_reply([("hf_papers", {"query": "DPO"})])

    llm.rule = rule
    llm.enqueue(error_reply("server_error"))
    with pytest.raises(litellm.exceptions.InternalServerError):
        await litellm.acompletion(**call_args(llm))
    first = await litellm.acompletion(**call_args(llm, tools=TOOLS))
    call = first.choices[0].message.tool_calls[0]
    messages = [{"role": "user", "content": "find papers"},
                {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                {"role": "tool", "tool_call_id": call.id, "content": "3 papers"}]
    second = await litellm.acompletion(**call_args(llm, tools=TOOLS, messages=messages))
    assert second.choices[0].message.content == "tool said: 3 papers"
    assert llm.chat_requests[-1]["messages"][-1]["tool_call_id"] == call.id


async def test_unscripted_request_fails_loudly(llm: LLMStandIn, litellm: Any) -> None:
    with pytest.raises(litellm.exceptions.BadRequestError, match="no scripted reply"):
        await litellm.acompletion(**call_args(llm))
    assert len(llm.unscripted) == 1


async def test_delay_lets_a_client_time_out(llm: LLMStandIn, litellm: Any) -> None:
    llm.enqueue_text("too late", delay=2.0)
    with pytest.raises(litellm.exceptions.Timeout):
        await litellm.acompletion(**call_args(llm, timeout=0.3))


async def test_requests_are_recorded_and_models_listed(llm: LLMStandIn, litellm: Any) -> None:
    llm.enqueue_text("ok", finish_reason="length")
    response = await litellm.acompletion(**call_args(llm, tools=TOOLS))
    assert response.choices[0].finish_reason == "length"
    recorded = llm.chat_requests[0]
    assert recorded["model"] == "standin-model"
    assert recorded["messages"] == [{"role": "user", "content": "find papers on DPO"}]
    assert recorded["tools"][0]["function"]["name"] == "hf_papers"
    async with httpx.AsyncClient() as client:
        models = (await client.get(f"{llm.url}/v1/models")).json()
    assert models["object"] == "list" and models["data"][0]["id"] == "standin-model"


async def test_shutdown_does_not_wait_for_a_scripted_delay() -> None:
    llm = LLMStandIn()
    await llm.start()
    try:
        llm.enqueue_text("slow", delay=30)
        async with httpx.AsyncClient(timeout=60) as client:
            pending = asyncio.create_task(client.post(f"{llm.url}/v1/chat/completions",
                                                      json={"model": "m", "messages": []}))
            await llm.wait_for(lambda: bool(llm.chat_requests))
            started = time.monotonic()
            await llm.stop()
            assert time.monotonic() - started < 2
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pending, 5)
    finally:
        await llm.stop()
