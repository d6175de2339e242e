"""SIGTERM: the process stops taking work, finishes the turns in hand, releases its leases and exits
0 — so another process takes the sessions over at once, not when the leases would have lapsed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy import select

from intern.bot.models import Job, Session
from intern.standins.hub import HubStandIn
from intern.standins.llm import LLMStandIn
from intern.standins.slack import SlackStandIn, mention_event, message_event
from tests.faults.cluster import REQUESTER, Cluster, deliver, finals, open_db, started, steps_rule, wait_until

LEASE = 30.0


async def test_sigterm_finishes_turns_in_hand_and_hands_queued_work_over_at_once(
        pg_url: str, stands: tuple[SlackStandIn, HubStandIn, LLMStandIn], tmp_path: Path) -> None:
    slack, hub, llm = stands
    llm.rule = steps_rule(tool_steps=2, delay=1.0)
    cluster = Cluster(pg_url, slack, hub, llm, tmp_path, size=2, env={"INTERN_LEASE_SECONDS": str(int(LEASE))})
    db = open_db(pg_url)
    async with started(cluster):
        first, second = cluster.nodes
        victim = cluster.pid(0)
        threads = []
        for i in range(3):
            event = mention_event(f"please do task {i}", user=REQUESTER)
            threads.append(event["ts"])
            await deliver(first.sender, event)

        async def held_by_victim() -> list[str]:
            async with db.session() as s:
                return list((await s.execute(select(Session.thread).where(
                    Session.lease_owner.like(f"%:{victim}:%")))).scalars().all())

        await wait_until(held_by_victim, timeout=30)
        await wait_until(lambda: len(llm.chat_requests) >= len(threads), timeout=30)
        in_hand = await held_by_victim()
        assert first.child is not None
        first.child.terminate()
        for i, t in enumerate(threads):
            await deliver(second.sender, message_event(f"now task {100 + i}", user=REQUESTER, thread_ts=t))

        rc = await asyncio.to_thread(first.child.wait, 30)
        exited = time.monotonic()
        first.child = None
        assert rc == 0, first.child_log()[-3000:]
        for t in in_hand:
            assert finals(slack, t), "a turn in hand was abandoned instead of finished"
        assert not await held_by_victim(), "the stopped process kept a lease"
        async with db.session() as s:
            assert not (await s.execute(select(Job).where(Job.watcher_owner.like(f"%:{victim}:%")))).first()

        await wait_until(lambda: all(len(finals(slack, t)) == 2 for t in threads), timeout=LEASE / 2)
        took = time.monotonic() - exited
        assert took < LEASE / 3, f"the queued work waited {took:.1f}s: the leases were not released"
        for i, t in enumerate(threads):
            assert finals(slack, t) == [f"Finished task {i}.", f"Finished task {100 + i}."]
    await db.dispose()
