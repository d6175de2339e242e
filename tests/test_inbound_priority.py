"""Inbound deliveries go first: background work waits while they arrive, and a burst of them is
stored in one transaction. Real Runtime, Inbox and database (SQLite, and PostgreSQL when set)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from sqlalchemy import func, select

from intern.agent.cache import MemoryCache
from intern.agent.guardrails.redaction import Redactor
from intern.agent.pricing import PriceTable
from intern.agent.tools.base import ToolRegistry
from intern.bot.chat import Conversation, UserMessage
from intern.bot.inbox import Inbox
from intern.bot.models import Message, Session
from intern.bot.runtime import Runtime
from intern.bot.settings import Settings
from intern.bot.store import Database


def make_runtime(db: Database) -> Runtime:
    settings = Settings(INTERN_DATABASE_URL=db.url)  # type: ignore[call-arg]
    return Runtime(settings=settings, db=db, hub=cast(Any, None), prices=PriceTable(), llm=cast(Any, None),
                   tools=ToolRegistry(), redactor=Redactor(), http=cast(Any, None), cache=MemoryCache())


def mention(i: int) -> UserMessage:
    return UserMessage(Conversation("slack", "T1", "C1", f"1700000000.{i:06d}"), f"U{i:04d}",
                       f"<@UBOT> task number {i}", f"slack:T1:C1:1700000000.{i:06d}", mentioned=True)


async def test_background_work_waits_for_a_quiet_moment_but_not_forever(db: Database) -> None:
    rt = make_runtime(db)
    started = time.monotonic()
    await rt.yield_to_inbound(quiet=0.2)
    assert time.monotonic() - started < 0.1  # nothing arriving: no wait at all

    rt.note_inbound()
    started = time.monotonic()
    await rt.yield_to_inbound(quiet=0.1)
    assert time.monotonic() - started >= 0.09

    async def steady_arrivals() -> None:
        for _ in range(30):
            rt.note_inbound()
            await asyncio.sleep(0.02)

    arrivals = asyncio.create_task(steady_arrivals())
    await asyncio.sleep(0)
    started = time.monotonic()
    await rt.yield_to_inbound(quiet=0.1, max_wait=0.3)
    waited = time.monotonic() - started
    await arrivals
    assert 0.28 <= waited < 0.55  # held back while deliveries kept coming, then let through


async def test_a_burst_arriving_over_several_loop_turns_is_one_transaction(db: Database) -> None:
    rt = make_runtime(db)
    inbox = Inbox(rt)
    batches: list[int] = []
    receive_batch = inbox._receive_batch

    async def recording(session: Any, batch: list[UserMessage]) -> Any:
        batches.append(len(batch))
        return await receive_batch(session, batch)

    inbox._receive_batch = recording  # type: ignore[method-assign]

    async def deliver(i: int) -> Any:
        for _ in range(i % 3):  # requests reach the inbox over a few turns of the loop, as a burst does
            await asyncio.sleep(0)
        return await inbox.receive_message(mention(i))

    results = await asyncio.gather(*(deliver(i) for i in range(30)))
    assert [r.outcome for r in results] == ["queued"] * 30
    assert batches == [30]
    async with db.session() as s:
        assert (await s.execute(select(func.count()).select_from(Session))).scalar_one() == 30
        assert (await s.execute(select(func.count()).select_from(Message))).scalar_one() == 30

    # A lone message afterwards is not held back waiting for company.
    started = time.monotonic()
    lone = await inbox.receive_message(mention(99))
    assert lone.outcome == "queued" and batches == [30, 1]
    assert time.monotonic() - started < 1.0
