"""Three `intern serve` processes share 50 sessions; one is killed with SIGKILL in the middle of its
turns. Its leases lapse, the others resume its sessions from the durable transcript: every session
completes, and no final reply is posted twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from intern.bot.models import Session, WorkItem
from intern.standins.hub import HubStandIn
from intern.standins.llm import LLMStandIn
from intern.standins.slack import SlackStandIn, mention_event
from tests.faults.cluster import (
    REQUESTER,
    Cluster,
    count,
    deliver,
    finals,
    open_db,
    started,
    steps_rule,
    wait_until,
)

SESSIONS = 50


async def test_sigkill_mid_turn_every_session_completes_once(
        pg_url: str, stands: tuple[SlackStandIn, HubStandIn, LLMStandIn], tmp_path: Path) -> None:
    slack, hub, llm = stands
    llm.rule = steps_rule(tool_steps=3, delay=0.4)
    cluster = Cluster(pg_url, slack, hub, llm, tmp_path, size=3,
                      env={"INTERN_LEASE_SECONDS": "2", "INTERN_WORKERS": "17",  # two alone cannot take all 50
                           "INTERN_MAX_SESSIONS_PER_USER_HOUR": str(SESSIONS)})  # one person starts them all
    db = open_db(pg_url)
    async with started(cluster):
        threads = []
        sends = []
        for i in range(SESSIONS):
            event = mention_event(f"please do task {i}", user=REQUESTER)
            threads.append(event["ts"])
            sends.append(deliver(cluster.nodes[i % 3].sender, event))
        await asyncio.gather(*sends)

        victim = cluster.pid(0)

        async def victim_mid_turn() -> bool:
            async with db.session() as s:
                held = (await s.execute(select(Session.id).where(
                    Session.lease_owner.like(f"%:{victim}:%")))).scalars().all()
            return len(held) >= 3 and len(llm.chat_requests) >= SESSIONS

        await wait_until(victim_mid_turn, timeout=60)
        cluster.kill9(0)
        async with db.session() as s:
            orphaned = (await s.execute(select(Session.id).where(
                Session.lease_owner.like(f"%:{victim}:%")))).scalars().all()
        assert orphaned, "the killed process held no session: the test proved nothing"

        try:
            await wait_until(lambda: all(finals(slack, t) for t in threads), timeout=90, interval=0.2)
        except TimeoutError:
            missing = [t for t in threads if not finals(slack, t)]
            raise AssertionError(f"{len(missing)} sessions never finished\n{cluster.logs()}") from None
        await asyncio.sleep(1.5)  # room for a duplicate to show up, if there were one

        twice = {t: finals(slack, t) for t in threads if len(finals(slack, t)) != 1}
        assert not twice, f"final replies posted more than once: {twice}"
        for i, t in enumerate(threads):
            assert finals(slack, t) == [f"Finished task {i}."]
        assert await count(db, WorkItem, WorkItem.status.in_(("queued", "running", "failed"))) == 0
        assert await count(db, WorkItem, WorkItem.attempts > 1) >= len(orphaned), "orphaned turns were not resumed"
        assert "Traceback" not in cluster.logs()
        assert await count(db, Session) == SESSIONS
        resumed = [t for t in threads if any(m.startswith("🛑") for m in slack.texts(thread_ts=t))]
        assert not resumed, "a resumed session told its thread something went wrong"
    await db.dispose()
