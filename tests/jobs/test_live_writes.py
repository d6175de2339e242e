"""What following many jobs writes and edits: every followed job's live state in one transaction a
beat (metric points at most every 30 s; an ended job keeps what its end wrote; text in it is redacted
like every stored column), and
card edits within each platform's limits (Slack: chat.update is a Tier 3 method, about 50 a minute per
workspace; every platform: one edit a second per thread, and the process's own budget)."""

from __future__ import annotations

import collections
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import select, update

from intern.agent.cache import MemoryCache
from intern.agent.guardrails.redaction import Redactor
from intern.agent.pricing import PriceTable
from intern.agent.tools.base import ToolRegistry
from intern.bot import effects
from intern.bot.job_follower import JobFollower
from intern.bot.jobs import JobWatcher
from intern.bot.models import Job
from intern.bot.runtime import Runtime
from intern.bot.settings import Settings
from intern.bot.store import Database
from tests.runs.helpers import launched_job

SECRET = "hf_abcdefghijklmnopqrstuvwxyz0123"


def runtime(db: Database) -> Runtime:
    settings = Settings(INTERN_DATABASE_URL=db.url)  # type: ignore[call-arg]
    return Runtime(settings=settings, db=db, hub=cast(Any, None), prices=PriceTable(), llm=cast(Any, None),
                   tools=ToolRegistry(), redactor=Redactor(), http=cast(Any, None), cache=MemoryCache())


async def test_live_states_are_written_together_and_an_ended_job_keeps_its_end(db: Database) -> None:
    rt = runtime(db)
    a, b, ended = [await launched_job(db) for _ in range(3)]
    async with db.transaction() as s:
        await s.execute(update(Job).where(Job.id == ended.id).values(notified_finished=True, live={"final": 1},
                                                                      metric_points={"loss": [[1, 2.0]]}))
    await effects.jobs_live(rt, [
        effects.LiveRow(a.id, {"step": 10, "metrics": {"loss": 1.5}}),
        effects.LiveRow(b.id, {"step": 20, "metrics": {f"loss {SECRET}": 1.2}}, {"loss": [[10, 1.5], [20, 1.2]]}),
        effects.LiveRow(ended.id, {"step": 99}, {"loss": [[99, 0.1]]}),
    ])
    async with db.session() as s:
        rows = {j.id: j for j in (await s.execute(select(Job))).scalars()}
    assert rows[a.id].live == {"step": 10, "metrics": {"loss": 1.5}} and rows[a.id].metric_points is None
    assert rows[b.id].live["step"] == 20 and rows[b.id].metric_points == {"loss": [[10, 1.5], [20, 1.2]]}
    assert SECRET not in str(rows[b.id].live)  # stored columns are redacted, whichever statement writes them
    assert rows[ended.id].live == {"final": 1} and rows[ended.id].metric_points == {"loss": [[1, 2.0]]}


def watcher(adapters: dict[str, Any], following: int) -> JobWatcher:
    rt = SimpleNamespace(adapters=adapters, status_edits_per_second=10.0, supervise_seconds=2.0,
                         status_throttle_seconds=2.0, adapter=lambda platform: adapters[platform])
    w = JobWatcher(cast(Any, rt))
    w.following = {str(i): cast(Any, None) for i in range(following)}
    return w


def edits_in(w: JobWatcher, jobs: list[Any], seconds: int, start: float = 1000.0, beat: float = 2.0) -> int:
    """Every job asks for an edit at every beat from `start`; how many get one."""
    done, t = 0, start
    while t < start + seconds:
        done += sum(w.take_edit(job, now=t) for job in jobs)
        t += beat
    return done


def test_a_slack_workspace_gets_about_fifty_card_edits_a_minute_and_discord_the_process_budget() -> None:
    adapters = {"slack": SimpleNamespace(card_edits_per_second=50 / 60),
                "discord": SimpleNamespace(card_edits_per_second=None)}
    slack_jobs = [SimpleNamespace(platform="slack", workspace="T1", session_id=f"s{i}") for i in range(200)]
    w = watcher(adapters, following=200)
    assert 48 <= edits_in(w, slack_jobs, 60) <= 52
    w._crowds = collections.Counter({("slack", "T1"): 200})
    assert w.card_interval(cast(Any, slack_jobs[0])) == 240.0  # each of 200 cards: every 4 minutes

    other = [SimpleNamespace(platform="slack", workspace="T2", session_id="x")]  # another workspace's own budget
    assert edits_in(w, other, 10, start=1060.0) == 5

    discord_jobs = [SimpleNamespace(platform="discord", workspace="G1", session_id=f"d{i}") for i in range(200)]
    w = watcher(adapters, following=200)
    assert 580 <= edits_in(w, discord_jobs, 60) <= 621  # the process's 10 a second, on a 2 s beat
    w._crowds = collections.Counter({("discord", "G1"): 200})
    assert w.card_interval(cast(Any, discord_jobs[0])) == 20.0
    assert w.card_interval(None) == 20.0


def test_metric_points_go_out_with_the_live_state_at_most_every_thirty_seconds_and_only_when_changed() -> None:
    rt = SimpleNamespace(points_write_seconds=30.0, live_write_seconds=5.0)
    follower = JobFollower(cast(Any, rt), "job-row")
    follower.sup.feed_lines(["step 10 loss 2.0", "step 20 loss 1.8"], 100.0)
    first = follower.live_row(100.0)
    assert first.points == {"loss": [[10.0, 2.0], [20.0, 1.8]]} and first.live["step"] == 20
    follower.sup.feed_lines(["step 30 loss 1.6"], 110.0)
    assert follower.live_row(110.0).points is None  # the live state alone: points wait their turn
    later = follower.live_row(131.0)
    assert later.points is not None and later.points["loss"][-1] == [30.0, 1.6]
    assert follower.live_row(170.0).points is None  # nothing new to chart
    follower.unwritten(later)  # that write failed: its points are due again
    assert follower.live_row(171.0).points == later.points and follower.sup.changed is False
