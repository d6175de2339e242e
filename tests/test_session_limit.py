"""INTERN_MAX_SESSIONS_PER_USER_HOUR holds across processes: three inboxes, each with its own
connection pool on one database (as three `intern serve` processes are), receive one person's
mentions at the same moment, and together start no more sessions than the limit."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from sqlalchemy import func, select

from intern.agent.cache import MemoryCache
from intern.agent.guardrails.redaction import Redactor
from intern.agent.pricing import PriceTable
from intern.agent.tools.base import ToolRegistry
from intern.bot.chat import Conversation, UserMessage
from intern.bot.inbox import Inbox
from intern.bot.models import Session, WorkItem
from intern.bot.runtime import Runtime
from intern.bot.settings import Settings
from intern.bot.store import Database, connect

LIMIT = 5
PROCESSES = 3
MENTIONS = 24


def runtime(db: Database) -> Runtime:
    settings = Settings(INTERN_DATABASE_URL=db.url, INTERN_MAX_SESSIONS_PER_USER_HOUR=LIMIT)  # type: ignore[call-arg]
    return Runtime(settings=settings, db=db, hub=cast(Any, None), prices=PriceTable(), llm=cast(Any, None),
                   tools=ToolRegistry(), redactor=Redactor(), http=cast(Any, None), cache=MemoryCache())


def mention(i: int, user: str) -> UserMessage:
    thread = f"1700000000.{i:06d}"
    return UserMessage(Conversation("slack", "T1", "C1", thread), user, f"<@UBOT> question {i}",
                       f"slack:T1:C1:{thread}", mentioned=True)


async def test_processes_receiving_one_persons_mentions_at_once_start_at_most_the_limit(
        migrated_url: str) -> None:
    pools = [connect(migrated_url) for _ in range(PROCESSES)]
    inboxes = [Inbox(runtime(db)) for db in pools]
    try:
        results = await asyncio.gather(*(inboxes[i % PROCESSES].receive_message(mention(i, "U0ALICE"))
                                         for i in range(MENTIONS)))
        other = await inboxes[0].receive_message(mention(MENTIONS, "U0BOB"))
        outcomes = [r.outcome for r in results]
        assert outcomes.count("queued") == LIMIT, outcomes
        assert outcomes.count("refused") == MENTIONS - LIMIT
        assert all(f"{LIMIT} sessions in the last hour" in (r.message or "")
                   for r in results if r.outcome == "refused")
        assert other.outcome == "queued"  # the limit is per person
        async with pools[0].session() as s:
            started = (await s.execute(select(Session.started_by, func.count()).group_by(
                Session.started_by))).all()
            queued = (await s.execute(select(func.count()).select_from(WorkItem))).scalar_one()
        assert dict(started) == {"U0ALICE": LIMIT, "U0BOB": 1}
        assert queued == LIMIT + 1  # a refused mention leaves nothing behind to be worked
    finally:
        for db in pools:
            await db.dispose()
