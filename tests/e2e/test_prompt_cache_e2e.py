"""A Slack session on a Claude model through `intern serve`'s real stack: requests carry cache markers,
the session's cached input is stored, priced at the cache's price in the budget, and shown by
`intern sessions show`."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from intern.bot.export import show_session
from intern.bot.models import Session, SpendEntry
from intern.bot.settings import Settings
from intern.standins.anthropic import AnthropicStandIn, prompt_blocks
from intern.standins.hub import HubStandIn
from intern.standins.llm import LLMStandIn, text_reply, tool_calls_reply
from intern.standins.slack import SlackStandIn, mention_event, message_event
from tests.e2e.harness import REQUESTER, Harness, wait_until

KEY = "sk-ant-e2e-0123456789abcdefghijklmn"


@pytest.fixture
async def claude() -> AsyncIterator[AnthropicStandIn]:
    async with AnthropicStandIn(api_key=KEY) as stand:
        yield stand  # type: ignore[misc]


async def run_one_session(migrated_url: str, claude: AnthropicStandIn, cache: str) -> tuple[Harness, str]:
    steps = [tool_calls_reply([("plan", {"todos": [{"content": f"step {i}", "status": "in_progress"}]})],
                              text=f"Planning step {i}.") for i in range(3)]
    for reply in [*steps, text_reply("Here is the plan for your fine-tune.")]:
        claude.enqueue(reply)
    slack, hub, llm = SlackStandIn(), HubStandIn(), LLMStandIn()
    for stand in (slack, hub, llm):
        await stand.start()
    h = Harness(migrated_url, slack, hub, llm, extra_env={
        "INTERN_MODEL": "anthropic/claude-sonnet-4-5", "INTERN_LLM_API_BASE": claude.url,
        "INTERN_LLM_API_KEY": KEY, "INTERN_PROMPT_CACHE": cache})
    await h.start()
    event = mention_event("plan a LoRA fine-tune of Qwen2.5-7B", user=REQUESTER)
    assert (await h.sender.send_event(event)).status == 200
    await wait_until(lambda: "Here is the plan for your fine-tune." in slack.texts(thread_ts=event["ts"]),
                     timeout=60)
    return h, event["ts"]


async def stop(h: Harness) -> None:
    await h.stop()
    for stand in (h.slack, h.hub, h.llm):
        await stand.stop()


async def test_a_claude_session_is_cached_stored_priced_and_shown(migrated_url: str,
                                                                 claude: AnthropicStandIn) -> None:
    h, _ = await run_one_session(migrated_url, claude, "on")
    try:
        assert len(claude.message_requests) == 4
        assert all(any(b.get("cache_control") for b in prompt_blocks(body)) for body in claude.message_requests)
        async with h.proc.rt.db.session() as db:  # type: ignore[union-attr]
            s = (await db.execute(select(Session))).scalar_one()
            spent = (await db.execute(select(func.sum(SpendEntry.amount_usd)).where(
                SpendEntry.kind == "llm"))).scalar_one()
        ledger = claude.ledger
        assert s.cache_read_tokens == ledger.cache_read_input_tokens > 0
        assert s.cache_write_tokens == ledger.cache_creation_input_tokens > 0
        assert s.prompt_tokens == ledger.prompt_tokens
        # Claude Sonnet 4.5: $3/M input, $3.75/M cache writes, $0.30/M cache reads, $15/M output
        expected = (ledger.input_tokens * 3 + ledger.cache_creation_input_tokens * 3.75
                    + ledger.cache_read_input_tokens * 0.30 + ledger.output_tokens * 15) / 1e6
        assert s.llm_cost_usd == pytest.approx(expected, rel=1e-3)
        assert spent == pytest.approx(expected, rel=1e-3)  # the budget counts the cache's price
        out = io.StringIO()
        settings = Settings(**h.env())  # type: ignore[arg-type]
        assert await show_session(settings, s.id, out) == 0
        shown = out.getvalue()
        assert f"input {s.prompt_tokens:,} tokens, of which cached input {s.cache_read_tokens:,}" in shown
        assert f"output {s.completion_tokens:,} tokens" in shown and f"cost ${expected:.4f}" in shown
    finally:
        await stop(h)


async def test_the_next_turn_in_the_thread_extends_the_previous_request(migrated_url: str,
                                                                       claude: AnthropicStandIn) -> None:
    h, thread = await run_one_session(migrated_url, claude, "on")
    try:
        claude.enqueue_text("Yes, LoRA rank 16 is fine.")
        before = claude.message_requests[-1]
        event = message_event("is rank 16 enough?", user=REQUESTER, thread_ts=thread)
        assert (await h.sender.send_event(event)).status == 200
        await wait_until(lambda: "Yes, LoRA rank 16 is fine." in h.slack.texts(thread_ts=thread), timeout=60)
        after = claude.message_requests[-1]

        def content(body: dict) -> list[dict]:
            return [{k: v for k, v in b.items() if k != "cache_control"} for b in prompt_blocks(body)]

        assert content(after)[:len(content(before))] == content(before)  # the system prompt did not change
        assert claude.ledger.cache_read_input_tokens > 0
    finally:
        await stop(h)


async def test_prompt_cache_off_sends_no_markers(migrated_url: str, claude: AnthropicStandIn) -> None:
    h, _ = await run_one_session(migrated_url, claude, "off")
    try:
        assert not any(b.get("cache_control") for body in claude.message_requests for b in prompt_blocks(body))
        async with h.proc.rt.db.session() as db:  # type: ignore[union-attr]
            s = (await db.execute(select(Session))).scalar_one()
        assert s.cache_read_tokens == 0 and s.prompt_tokens == claude.ledger.input_tokens
    finally:
        await stop(h)
