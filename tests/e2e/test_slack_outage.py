"""Slack's Web API away: `intern serve` still stores and acknowledges every correctly signed event
(persist, then ack; nothing in the handler waits on the Web API), and the replies go out once Slack
answers again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from intern.bot.models import InboundEvent, Message, Session
from intern.bot.store import connect
from intern.standins.hub import HubStandIn
from intern.standins.llm import LLMStandIn, text_reply
from intern.standins.slack import SlackStandIn, mention_event, message_event
from tests.e2e.harness import REQUESTER, Harness, wait_until


@pytest.fixture
async def serve(migrated_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm:
        llm.rule = lambda request: text_reply("Noted: I am on it.")
        h = Harness(migrated_url, slack, hub, llm)  # type: ignore[arg-type]
        try:
            yield h
        finally:
            await h.kill_child()


async def counts(url: str) -> tuple[int, int, int]:
    db = connect(url)
    try:
        async with db.session() as s:
            return tuple([int((await s.execute(select(func.count()).select_from(m))).scalar_one())  # type: ignore[return-value]
                          for m in (Session, Message, InboundEvent)])
    finally:
        await db.dispose()


async def test_mentions_are_stored_and_acked_while_the_web_api_is_down_and_answered_when_it_is_back(
        serve: Harness, tmp_path: Path) -> None:
    slack = serve.slack
    await slack.stop()  # down before the first request: nothing about the bot is known yet
    await serve.start_child(tmp_path)
    first = mention_event("fine-tune a small model", user=REQUESTER)
    r = await serve.sender.send_event(first)
    assert r.status == 200, (r.status, r.text)
    second = mention_event("and evaluate it", user=REQUESTER)
    assert (await serve.sender.send_event(second)).status == 200
    reply = message_event("also push it to the Hub", user=REQUESTER, thread_ts=first["ts"])
    assert (await serve.sender.send_event(reply)).status == 200
    sessions, messages, deliveries = await counts(serve.database_url)
    assert sessions == 2 and messages >= 3 and deliveries >= 3

    # Meanwhile the turns are tried and put back (who the bot token belongs to is not known yet).
    await asyncio.sleep(3.0)
    assert not slack.posted()
    await slack.start()  # the same address answers again
    for event in (first, second):
        await wait_until(lambda e=event: "Noted: I am on it." in slack.texts(thread_ts=e["ts"]), timeout=60)


async def test_a_reply_that_could_not_be_posted_goes_out_once_when_slack_is_back(
        serve: Harness, tmp_path: Path) -> None:
    slack, llm = serve.slack, serve.llm
    await serve.start_child(tmp_path)
    warm = mention_event("hello", user=REQUESTER)
    assert (await serve.sender.send_event(warm)).status == 200
    await wait_until(lambda: "Noted: I am on it." in slack.texts(thread_ts=warm["ts"]), timeout=60)

    await slack.stop()
    asked = len(llm.chat_requests)
    event = mention_event("fine-tune a small model", user=REQUESTER)
    assert (await serve.sender.send_event(event)).status == 200
    await wait_until(lambda: len(llm.chat_requests) > asked, timeout=60)  # the turn ran; its answer is stuck
    await asyncio.sleep(2.0)
    await slack.start()
    await wait_until(lambda: "Noted: I am on it." in slack.texts(thread_ts=event["ts"]), timeout=90)
    await asyncio.sleep(2.0)
    assert slack.texts(thread_ts=event["ts"]).count("Noted: I am on it.") == 1
    assert len(llm.chat_requests) == asked + 1  # posted from the stored answer, the model not asked again
