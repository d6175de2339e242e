"""PostgreSQL "restarts" under load (a loopback proxy between the app and the server drops every
connection and refuses new ones for a few seconds): deliveries that cannot be stored are not acked,
Slack's retries store them once the database is back, turns in flight resume, nothing is lost and
nothing is answered twice. The shared server itself is never touched."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from intern.bot.models import Message, Session, WorkItem
from intern.bot.store import Database
from intern.standins.hub import HubStandIn
from intern.standins.llm import LLMStandIn
from intern.standins.slack import SlackStandIn, mention_event
from tests.faults.cluster import (
    REQUESTER,
    Cluster,
    PgProxy,
    count,
    deliver,
    finals,
    open_db,
    started,
    steps_rule,
    wait_until,
)

BEFORE, DURING = 12, 6
OUTAGE_SECONDS = 3.0


async def health(url: str) -> int:
    try:
        async with aiohttp.ClientSession() as s, s.get(f"{url}/healthz",
                                                       timeout=aiohttp.ClientTimeout(total=10)) as r:
            return r.status
    except (aiohttp.ClientError, OSError, TimeoutError):
        return 0


async def test_database_outage_under_load_loses_no_message(
        pg_url: str, stands: tuple[SlackStandIn, HubStandIn, LLMStandIn], tmp_path: Path) -> None:
    slack, hub, llm = stands
    llm.rule = steps_rule(tool_steps=3, delay=0.4)
    proxy = await PgProxy(pg_url).start()
    cluster = Cluster(proxy.url(), slack, hub, llm, tmp_path, size=2,
                      env={"INTERN_LEASE_SECONDS": "5", "INTERN_WORKERS": "20"})
    db = open_db(pg_url)
    try:
        async with started(cluster):
            threads = []

            async def mention(i: int) -> list[int]:
                event = mention_event(f"please do task {i}", user=REQUESTER)
                threads.append(event["ts"])
                return await deliver(cluster.nodes[i % 2].sender, event, attempts=80)

            await asyncio.gather(*(mention(i) for i in range(BEFORE)))
            await wait_until(lambda: len(llm.chat_requests) >= BEFORE + 2, timeout=30)

            await proxy.cut()
            during = [asyncio.create_task(mention(BEFORE + i)) for i in range(DURING)]
            await asyncio.sleep(OUTAGE_SECONDS / 2)
            assert await health(cluster.nodes[0].url) == 503
            await asyncio.sleep(OUTAGE_SECONDS / 2)
            await proxy.restore()

            statuses = await asyncio.gather(*during)
            assert any(s[0] != 200 for s in statuses), "a delivery was acked while the database was down"
            # Not stored is our failure (503, retried by Slack), never "malformed" (400) or a crash (500).
            assert {x for s in statuses for x in s} <= {0, 200, 503}, statuses
            assert all(s[-1] == 200 for s in statuses)

            try:
                await wait_until(lambda: all(finals(slack, t) for t in threads), timeout=90, interval=0.2)
            except TimeoutError:
                missing = [t for t in threads if not finals(slack, t)]
                raise AssertionError(f"{len(missing)} sessions never finished\n{cluster.logs()}") from None
            await asyncio.sleep(1.5)
            assert all(len(finals(slack, t)) == 1 for t in threads), "a reply was posted twice"
            assert await count(db, Session) == BEFORE + DURING
            assert await count(db, Message, Message.role == "user") == BEFORE + DURING
            assert await count(db, WorkItem, WorkItem.status.in_(("queued", "running", "failed"))) == 0
            assert not any(t.startswith("🛑") for t in slack.texts()), "the outage was reported as a failure"
            assert all(n.child is not None and n.child.poll() is None for n in cluster.nodes)
            assert await health(cluster.nodes[1].url) == 200
    finally:
        await proxy.close()
        await db.dispose()


async def test_database_lost_while_the_reply_is_posted_answers_once(
        pg_url: str, stands: tuple[SlackStandIn, HubStandIn, LLMStandIn], tmp_path: Path) -> None:
    """The database goes away at the moment Slack takes the final reply, before the app hears back:
    the post happened but cannot be recorded. Once the database is back the turn is worked again,
    and the reply is not posted a second time."""
    slack, hub, llm = stands
    llm.rule = steps_rule(tool_steps=1, delay=0.1)
    proxy = await PgProxy(pg_url).start()
    cluster = Cluster(proxy.url(), slack, hub, llm, tmp_path, size=2, env={"INTERN_LEASE_SECONDS": "3"})
    post = slack._post_message
    restores: list[asyncio.Task[None]] = []

    async def restore_later() -> None:
        await asyncio.sleep(OUTAGE_SECONDS)
        await proxy.restore()

    async def cut_then_post(ws: Any, params: Any, request: Any) -> dict[str, Any]:
        answer = post(ws, params, request)  # Slack has it: visible in the thread
        if str(params.get("text") or "").startswith("Finished task") and not restores:
            await proxy.cut()  # before the app hears that the post went through
            restores.append(asyncio.create_task(restore_later()))
        return answer

    slack._post_message = cut_then_post  # type: ignore[method-assign]
    try:
        async with started(cluster):
            event = mention_event("please do task 1", user=REQUESTER)
            await deliver(cluster.nodes[0].sender, event, attempts=80)
            await wait_until(lambda: bool(finals(slack, event["ts"])), timeout=30, interval=0.1)
            assert restores, "the database was never cut at the post"
            db = open_db(pg_url)
            try:
                await wait_until(lambda: _settled(db), timeout=60, interval=0.2)
                await asyncio.sleep(1.5)  # room for a duplicate to show up, if there were one
                assert len(finals(slack, event["ts"])) == 1, f"a reply was posted twice\n{cluster.logs()}"
                assert await count(db, WorkItem, WorkItem.attempts > 1) == 1, "the turn was not worked again"
                assert await count(db, WorkItem, WorkItem.status != "done") == 0
            finally:
                await db.dispose()
    finally:
        for task in restores:
            await task
        await proxy.close()


async def _settled(db: Database) -> bool:
    return await count(db, WorkItem, WorkItem.status.in_(("queued", "running"))) == 0
