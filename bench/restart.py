"""Restart with work in flight: 100 sessions wait — 50 on an approval card, 50 on a running job.
The `intern serve` process is stopped (SIGTERM, as a deploy does; or SIGKILL, as a crash does) and
a new one started on the same database. Measured from the moment the new process answers /healthz:

- jobs: until the new process follows all 50 jobs (holds their watcher leases) and has seen a change
  made on the Hub meanwhile (every job moved to COMPLETED → 50 "✅ Job" posts);
- approvals: 50 approve clicks sent at that moment, until all 50 resumed turns launched their jobs.

Target: everything followed again within 5 s. After SIGKILL the jobs' watcher leases of the dead
process must lapse first (INTERN_LEASE_SECONDS, 30 s by default; this bench sets --lease) — that is
the price of never following a job twice. Writes bench/results/restart.json.

    .venv/bin/python bench/restart.py [--database-url postgresql://server/db] [--lease 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

from sessions import machine  # noqa: E402

SESSIONS, WAITING_ON_JOBS = 100, 50


async def until(predicate: Any, timeout: float, what: str, interval: float = 0.02) -> float:
    """Seconds until `predicate()` holds."""
    started = time.monotonic()
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        await asyncio.sleep(interval)


async def scenario(mode: str, url: str, lease: float, tmp: Path) -> dict[str, Any]:
    from tests.e2e.harness import Harness, job_rule

    from intern.bot.store import connect
    from intern.standins.hub import HubStandIn
    from intern.standins.llm import LLMStandIn
    from intern.standins.slack import SlackStandIn

    env = {"INTERN_LEASE_SECONDS": str(lease), "INTERN_JOB_POLL_SECONDS": "2", "INTERN_WORKERS": "50",
           "INTERN_MAX_SESSIONS_PER_USER_HOUR": "1000000"}  # one person starts them all
    db = connect(url)
    async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm:
        llm.rule = job_rule(flavor="a10g-large", timeout="2h")
        node = Harness(url, slack, hub, llm, extra_env=env)  # type: ignore[arg-type]
        try:
            return await drive(mode, node, db, tmp)
        finally:
            await node.kill_child(hard=True)
            await db.dispose()


def click(node: Any, thread: str) -> Any:
    from tests.e2e.harness import APPROVER
    from tests.e2e.test_slack_flow import approval_id_of, cards

    from intern.standins.slack import block_action

    card = cards(node.slack, thread)[0]
    return node.sender.send_interaction(block_action(
        "intern_approve", approval_id_of(card), user=APPROVER, team=node.slack.team_id, channel=card.channel,
        message_ts=card.ts, thread_ts=thread))


def launched(node: Any, threads: list[str]) -> bool:
    return all(any("launched" in t for t in node.slack.texts(thread_ts=th)) for th in threads)


async def prepare(node: Any) -> tuple[list[str], list[str]]:
    """100 sessions: 50 with a running job (approved, launched, followed), 50 with a pending card."""
    from tests.e2e.harness import REQUESTER
    from tests.e2e.test_slack_flow import cards

    from intern.standins.hub_jobs import jobs_state
    from intern.standins.slack import mention_event

    slack, jobs = node.slack, jobs_state(node.hub)
    threads = []
    for i in range(SESSIONS):
        event = mention_event(f"fine-tune model {i}", user=REQUESTER)
        threads.append(event["ts"])
        assert (await node.sender.send_event(event)).status == 200
    await until(lambda: all(cards(slack, t) for t in threads), 120, "cards posted")
    on_jobs, on_cards = threads[:WAITING_ON_JOBS], threads[WAITING_ON_JOBS:]
    await asyncio.gather(*(click(node, t) for t in on_jobs))
    await until(lambda: launched(node, on_jobs), 120, "jobs launched")
    for created in jobs.created:
        jobs.set_stage(created.job_id, "RUNNING")
    await until(lambda: sum(t.startswith("▶️ Job") for t in slack.texts()) >= WAITING_ON_JOBS, 120, "jobs running")
    await until(lambda: sum("I will report" in t for t in slack.texts()) >= WAITING_ON_JOBS, 120, "turns ended")
    return on_jobs, on_cards


async def drive(mode: str, node: Any, db: Any, tmp: Path) -> dict[str, Any]:
    from sqlalchemy import func, select

    from intern.bot.models import Job
    from intern.standins.hub_jobs import jobs_state

    await node.start_child(tmp)
    _, on_cards = await prepare(node)
    assert node.child is not None
    if mode == "sigterm":
        node.child.terminate()
    else:
        node.child.kill()
    await asyncio.to_thread(node.child.wait, 60)
    node.child = None
    jobs = jobs_state(node.hub)
    running = [created.job_id for created in jobs.created]
    for job_id in running:
        jobs.set_stage(job_id, "COMPLETED")  # changed on the Hub while nobody watched
    spawned = time.monotonic()
    await node.start_child(tmp)
    healthy = time.monotonic()
    new_pid = node.child.pid

    async def jobs_followed() -> bool:
        async with db.session() as s:
            n = (await s.execute(select(func.count()).select_from(Job).where(
                Job.hf_job_id.in_(running), Job.watcher_owner.like(f"%:{new_pid}:%")))).scalar_one()
        return int(n) == WAITING_ON_JOBS

    def jobs_noticed() -> bool:
        done = [t for t in node.slack.texts() if t.startswith("✅ Job")]
        return sum(any(j in t for j in running) for t in done) >= WAITING_ON_JOBS

    clicks = asyncio.gather(*(click(node, t) for t in on_cards))
    followed, noticed, resumed = await asyncio.gather(
        until(jobs_followed, 120, "jobs followed"), until(jobs_noticed, 120, "job changes noticed"),
        until(lambda: launched(node, on_cards), 120, "approvals resumed"))
    await clicks
    return {"mode": mode, "startup_s": round(healthy - spawned, 2),
            "after_healthy": {"jobs_followed_s": round(followed, 2), "job_changes_noticed_s": round(noticed, 2),
                              "approvals_resumed_s": round(resumed, 2),
                              "all_followed_again_s": round(max(followed, noticed, resumed), 2)}}


async def main(database_url: str | None, lease: float) -> dict[str, Any]:
    from tests.support.db import create_pg_database, drop_pg_database

    from intern.bot.store import upgrade

    info = machine()
    results = []
    for mode in ("sigterm", "sigkill"):
        tmp = Path(tempfile.mkdtemp(prefix=f"intern-bench-restart-{mode}-"))
        url = await create_pg_database(database_url) if database_url else f"sqlite:///{tmp / 'bench.db'}"
        try:
            await upgrade(url)
            results.append(await scenario(mode, url, lease, tmp))
        finally:
            if database_url:
                await drop_pg_database(database_url, url)
        print(json.dumps(results[-1]), file=sys.stderr)
    return {
        "bench": "restart",
        "machine": info,
        "inputs": {"sessions": SESSIONS, "waiting_on_running_jobs": WAITING_ON_JOBS,
                   "waiting_on_approval_cards": SESSIONS - WAITING_ON_JOBS,
                   "database": "postgresql" if database_url else "sqlite", "lease_seconds": lease,
                   "job_poll_seconds": 2, "bot": "intern serve subprocess, stopped and started again"},
        "runs": results,
        "target": {"all_followed_again_s": 5},
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", help="a PostgreSQL server URL (a database is created and dropped on it)")
    ap.add_argument("--lease", type=float, default=5.0)
    args = ap.parse_args()
    result = asyncio.run(main(args.database_url, args.lease))
    out = ROOT / "bench" / "results" / "restart.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
