"""Outbound faults, with the bot in this process (so its retry timings can be shortened): the LLM
rate-limiting us for a while (the thread is told, once, and the turn carries on), the Hub answering
5xx to the job watcher (it keeps following), Slack answering 429 (Retry-After is honoured)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from intern.standins.hub import HubStandIn
from intern.standins.hub_jobs import jobs_state
from intern.standins.llm import LLMStandIn
from intern.standins.slack import SlackStandIn, mention_event
from tests.e2e.harness import APPROVER, REQUESTER, Harness, job_rule, wait_until
from tests.e2e.test_slack_flow import approval_id_of, cards, click
from tests.faults.cluster import finals, steps_rule


@pytest.fixture
async def bot(pg_url: str, stands: tuple[SlackStandIn, HubStandIn, LLMStandIn]) -> AsyncIterator[Harness]:
    slack, hub, llm = stands
    h = Harness(pg_url, slack, hub, llm)
    proc = await h.start()
    proc.rt.llm.base_delay, proc.rt.llm.max_delay = 0.05, 0.3
    try:
        yield h
    finally:
        await h.stop()


async def test_a_lasting_llm_rate_limit_is_told_in_the_thread_once_and_the_turn_goes_on(bot: Harness) -> None:
    bot.llm.rule = steps_rule(tool_steps=1, delay=0.0)
    bot.llm.enqueue_error("rate_limit", times=4, retry_after=0.1)
    event = mention_event("please do task 5", user=REQUESTER)
    assert (await bot.sender.send_event(event)).status == 200
    thread = event["ts"]
    await wait_until(lambda: finals(bot.slack, thread), timeout=30)
    told = [t for t in bot.slack.texts(thread_ts=thread) if t.startswith("⏳")]
    assert len(told) == 1 and "rate-limiting" in told[0] and "RateLimitError" in told[0]
    assert finals(bot.slack, thread) == ["Finished task 5."]
    assert not any(t.startswith("🛑") for t in bot.slack.texts(thread_ts=thread))


async def test_a_brief_llm_blip_is_not_reported(bot: Harness) -> None:
    bot.llm.rule = steps_rule(tool_steps=1, delay=0.0)
    bot.llm.enqueue_error("unavailable", times=1)
    event = mention_event("please do task 6", user=REQUESTER)
    assert (await bot.sender.send_event(event)).status == 200
    await wait_until(lambda: finals(bot.slack, event["ts"]), timeout=30)
    assert not any(t.startswith("⏳") for t in bot.slack.texts(thread_ts=event["ts"]))


async def test_the_job_watcher_rides_out_hub_5xx_and_slack_429(bot: Harness) -> None:
    bot.llm.rule = job_rule()
    event = mention_event("fine-tune please", user=REQUESTER)
    await bot.sender.send_event(event)
    thread = event["ts"]
    await wait_until(lambda: cards(bot.slack, thread), timeout=20)
    approval = approval_id_of(cards(bot.slack, thread)[0])
    await bot.sender.send_interaction(click(bot, "intern_approve", approval, APPROVER, thread))
    jobs = jobs_state(bot.hub)
    await wait_until(lambda: len(jobs.created) == 1, timeout=20)
    job_id = jobs.created[0].job_id
    await wait_until(lambda: any("launched" in t for t in bot.slack.texts(thread_ts=thread)), timeout=20)

    # The watcher polls the stages of the jobs it follows with one listing per namespace.
    listing = f"/api/jobs/{jobs.created[0].namespace}"
    polls = len(bot.hub.calls(listing, "GET"))
    jobs.fail_next(6, status=503, path_contains=listing, method="GET")
    jobs.fail_next(2, status=502, path_contains=listing, method="GET")
    await wait_until(lambda: len(bot.hub.calls(listing, "GET")) >= polls + 8, timeout=30)
    bot.slack.inject_rate_limit("chat.postMessage", times=2, retry_after=1)
    jobs.set_stage(job_id, "RUNNING")
    jobs.set_stage(job_id, "COMPLETED")
    await wait_until(lambda: any("All done" in t for t in bot.slack.texts(thread_ts=thread))
                     and any(t.startswith("✅ Job") for t in bot.slack.texts(thread_ts=thread)), timeout=30)
    texts = bot.slack.texts(thread_ts=thread)
    assert sum(t.startswith("✅ Job") for t in texts) == 1
    refused = len(bot.slack.calls("/api/chat.postMessage", "POST")) - len(bot.slack.posted())
    assert refused == 2, "the two 429 answers were not met (or a post was lost)"
    assert sum("All done" in t for t in texts) == 1
    assert len(jobs.created) == 1
