"""Following one job: its stage (from the watcher's listings), its log and GPU metrics streams (read
on the event loop, see `agent/job_streams.py`), and at every beat of the watcher what they say — alerts,
the status card's line, the live state to write — and its end, recorded and announced once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select

from intern.agent.job_streams import LogCursor
from intern.agent.pricing import format_duration
from intern.agent.tools.jobs import TERMINAL, clean_logs
from intern.bot import effects
from intern.bot.cards import StatusState, money
from intern.bot.chat import MessageRef
from intern.bot.job_stages import StageBoard
from intern.bot.models import Job, Session
from intern.bot.runtime import Runtime
from intern.bot.sessions import conversation_of
from intern.bot.store import Backoff, log_failure
from intern.bot.supervision import Limits, Supervision, chartable

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 15


def now() -> datetime:
    return datetime.now(UTC)


class Watching(Protocol):
    """What a follower asks of the watcher that beats for it (`jobs.JobWatcher`)."""

    stages: StageBoard

    def card_interval(self, job: Job | None = None) -> float: ...

    def take_edit(self, job: Job, now: float | None = None) -> bool: ...

    def queue_write(self, follower: JobFollower) -> None: ...


class JobFollower:
    """Follows one job: its stage (polled), its log stream and its GPU metrics (read on the event
    loop, see `agent/job_streams.py`), and once a second reads the new lines into its `Supervision`,
    raises the alerts due, edits the status card when its line changed and writes the job's live
    state and metric points."""

    def __init__(self, rt: Runtime, jid: str, watcher: Watching | None = None) -> None:
        self.rt, self.jid, self.watcher = rt, jid, watcher
        self.lines: deque[str] = deque(maxlen=400)
        self.fresh: deque[str] = deque()  # appended by the log stream, taken by `observe`
        self.gpu_sample: dict[str, Any] | None = None  # the latest, set by the metrics stream
        self.sup = Supervision()
        self.stage = ""
        self.raised: set[str] = set()
        self._closed = False
        self._hurry = asyncio.Event()  # the job ended: its streams are read without pausing
        self._tasks: list[asyncio.Task[None]] = []
        self._cursor = LogCursor()
        self._shown = ""  # the job's line as last put on the card
        self._shown_version = -1
        self._written = 0.0  # when the live state was last taken for a write
        self._points_written, self._points_version = 0.0, 0
        self.job: Job | None = None  # once `run` has loaded it
        self._acting = False

    def close(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()

    async def run(self) -> None:
        async with self.rt.db.session() as db:
            job = await db.get(Job, self.jid)
        assert job is not None and job.hf_job_id
        from intern.bot.alerts import raised_kinds

        self.raised = await raised_kinds(self.rt, job.id)
        self.sup = Supervision(flavor=job.flavor, hourly_usd=job.hourly_usd, timeout_seconds=job.timeout_seconds)
        self.sup.resume(job.live)
        self.stage = job.stage
        self._tasks = [asyncio.create_task(self.follow_stream(self._read_logs, job.hf_job_id, job.namespace, "log")),
                       asyncio.create_task(self.follow_stream(self._read_metrics, job.hf_job_id, job.namespace,
                                                              "metrics"))]
        if self.watcher is None:
            self._tasks.append(asyncio.create_task(self.supervise_alone()))
        self.job = job
        announced_running = job.started_at is not None
        hub_backoff = Backoff(first=min(self.rt.settings.job_poll_seconds, 2.0), cap=30.0)
        first = True
        while True:
            try:
                info = await self.next_info(job, first)
            except Exception as exc:
                log.warning("inspect of job %s failed: %s", job.hf_job_id, exc)
                await hub_backoff.pause()
                continue
            first = False
            hub_backoff.reset()
            new_stage = info.status.stage
            if new_stage != self.stage or not announced_running:
                self.stage = new_stage
                await self.stage_changed(job, info, announce=new_stage == "RUNNING" and not announced_running)
                announced_running = announced_running or new_stage == "RUNNING"
            if new_stage in TERMINAL:
                self._hurry.set()
                await asyncio.sleep(0.2)  # let the log stream deliver its last lines
                self.take_lines(time.time())
                await self.finish(job, info)
                return

    async def next_info(self, job: Job, first: bool) -> Any:
        """The job's info: its own inspect at first, then the watcher's next listing of its namespace
        (an inspect only when the listing leaves it out: it ended); followed alone, an inspect a poll."""
        if not first:
            if self.watcher is not None:
                info = await self.watcher.stages.next(job.namespace, job.hf_job_id or "")
                if info is not None:
                    return info
            else:
                await asyncio.sleep(self.rt.settings.job_poll_seconds)
        return await self.rt.hub.read(self.rt.hub.api.inspect_job, job_id=job.hf_job_id, namespace=job.namespace)

    async def follow_stream(self, read: Any, hf_job_id: str, namespace: str, what: str) -> None:
        """Follow a stream; reconnect with backoff when it drops, until the job ends."""
        delay = 1.0
        while not self._closed:
            try:
                await read(hf_job_id, namespace)
                delay = 1.0
            except Exception as exc:
                log.info("%s stream for %s dropped (%s); reconnecting in %.0fs", what, hf_job_id,
                         type(exc).__name__, delay)
            if self._closed:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _read_logs(self, hf_job_id: str, namespace: str) -> None:
        # A reconnect replays the log from its start: the cursor skips the lines already taken.
        await self.rt.hub.streams.read_logs(namespace, hf_job_id, self._cursor,
                                            lambda lines: self.fresh.extend(clean_logs(lines)),
                                            pace=self.rt.supervise_seconds, hurry=self._hurry)

    async def _read_metrics(self, hf_job_id: str, namespace: str) -> None:
        await self.rt.hub.streams.read_metrics(namespace, hf_job_id, self._take_gpu_sample,
                                               pace=self.rt.supervise_seconds, hurry=self._hurry)

    def _take_gpu_sample(self, sample: dict[str, Any]) -> None:
        self.gpu_sample = sample

    def tail(self, n: int = LOG_TAIL_LINES) -> list[str]:
        return list(self.lines)[-n:]

    # --- supervision -------------------------------------------------------------------------

    def take_lines(self, now: float) -> int:
        batch = []
        while self.fresh:
            batch.append(self.fresh.popleft())
        if batch:
            self.lines.extend(batch)
            self.sup.feed_lines(batch, now, logged_at=self._cursor.logged_at)
        return len(batch)

    def running_since(self, job: Job) -> float | None:
        if self.stage != "RUNNING" or job.started_at is None:
            return None
        return job.started_at.timestamp()

    async def supervise_alone(self) -> None:
        while True:
            await asyncio.sleep(self.rt.supervise_seconds)
            work = self.observe(time.time())
            if work is not None:
                await work

    def observe(self, now: float) -> Any:
        """Take the new lines and GPU sample; the work now due (alerts, a card edit, a write), if any,
        as one coroutine. Cheap when nothing happened: most beats of most jobs."""
        job = self.job
        if job is None or self._acting:
            return None
        self.take_lines(now)
        sample, self.gpu_sample = self.gpu_sample, None
        if sample is not None:
            self.sup.feed_gpu(sample, now, running=self.stage == "RUNNING")
        limits = Limits(stall_seconds=self.rt.settings.job_stall_minutes * 60.0,
                        gpu_idle_seconds=self.rt.gpu_idle_seconds)
        alerts = [a for a in self.sup.alerts(now, running_since=self.running_since(job), limits=limits)
                  if a.kind not in self.raised]
        card = self._card_due(job)
        write = self.sup.changed and now - self._written >= self.rt.live_write_seconds
        if write and self.watcher is not None:
            self.watcher.queue_write(self)  # written with the other jobs' at the end of the beat
            write = False
        if not (alerts or card or write):
            return None
        self._acting = True  # until `act` ends: one piece of work at a time per job
        return self.act(job, now, alerts, card, write)

    def _card_due(self, job: Job) -> bool:
        """Something worth showing changed (elapsed time and cost alone are not a reason to edit),
        and this card's slot is free."""
        if self.sup.version == self._shown_version:
            return False
        interval = self.watcher.card_interval(job) if self.watcher is not None else 1.0
        if self.rt.card_edits.get(job.session_id, 0.0) + interval > time.monotonic():
            return False
        return self.watcher is None or self.watcher.take_edit(job)

    async def act(self, job: Job, now: float, alerts: list[Any], card: bool, write: bool) -> None:
        from intern.bot.alerts import raise_alert

        try:
            for alert in alerts:
                self.raised.add(alert.kind)
                await raise_alert(self.rt, job, alert)
            if card:
                await self.update_status_card(job, self.stage, now=now)
            if write:
                await self.write_live(job, now)
        except Exception as exc:
            log_failure(log, exc, f"supervising job {job.hf_job_id}", "trying again at the next beat")
        finally:
            self._acting = False

    def live_row(self, now: float) -> effects.LiveRow:
        """The live state to write now, with the metric points when they are due too."""
        self._written, self.sup.changed = now, False
        points = None
        if self.sup.series_version != self._points_version and now - self._points_written >= \
                self.rt.points_write_seconds:
            points, self._points_version, self._points_written = self.sup.points(), self.sup.series_version, now
        return effects.LiveRow(self.jid, self.sup.live(now), points)

    def unwritten(self, row: effects.LiveRow) -> None:
        """`row` could not be written: it is due again."""
        self.sup.changed, self._written = True, 0.0
        if row.points is not None:
            self._points_version, self._points_written = -1, 0.0

    async def write_live(self, job: Job, now: float) -> None:
        row = self.live_row(now)
        try:
            await effects.jobs_live(self.rt, [row])
        except Exception:
            self.unwritten(row)
            raise

    async def stage_changed(self, job: Job, info: Any, announce: bool) -> None:
        started = None
        if info.status.stage == "RUNNING" and job.started_at is None:
            started = job.started_at = info.started_at or now()
        await effects.job_stage_changed(self.rt, job, info.status.stage, info.status.message, started)
        await self.update_status_card(job, info.status.stage, force=True)
        if announce:
            session = await self.session(job)
            await self.rt.adapter(job.platform).post(conversation_of(session),
                                                     f"▶️ Job `{job.hf_job_id}` is running on {job.flavor}.")

    async def update_status_card(self, job: Job, stage: str, *, now: float | None = None,
                                 force: bool = False) -> None:
        """Edit the session's card when the job's line changed: at most once a second per card (a
        stage change waits for its slot, a progress update skips it)."""
        now = now or time.time()
        version = self.sup.version
        line = self.sup.card_line(stage, now, self.running_since(job) if stage == "RUNNING" else None)
        if line == self._shown:
            return
        interval = self.watcher.card_interval(job) if self.watcher is not None else 1.0
        if not force and self.rt.card_edits.get(job.session_id, 0.0) + interval > time.monotonic():
            return
        await self.rt.card_turn(job.session_id, interval)
        async with self.rt.db.session() as db:  # the card alone, not the whole session row
            snap = (await db.execute(select(Session.status_card).where(Session.id == job.session_id))).scalar() or {}
        if not snap.get("ref"):
            return
        state = StatusState.from_json(snap.get("state"))
        state.jobs[job.hf_job_id or job.id] = line
        try:
            await self.rt.adapter(job.platform).update_card(MessageRef.from_json(snap["ref"]),
                                                            state.card(job.session_id, done=False))
        except Exception:
            log.warning("could not update status card for job %s", job.hf_job_id)
            return
        self._shown, self._shown_version = line, version
        await effects.save_card(self.rt, job.session_id, {"ref": snap["ref"], "state": state.to_json()})

    async def session(self, job: Job) -> Session:
        async with self.rt.db.session() as db:
            s = await db.get(Session, job.session_id)
        assert s is not None
        return s

    async def finish(self, job: Job, info: Any) -> None:
        stage = info.status.stage
        runtime = runtime_seconds(info, job)
        actual = round(job.hourly_usd * runtime / 3600.0, 4)
        tail = self.tail()
        points = self.sup.points()
        # The watcher lease stays until this follower ends: the lease keeper would otherwise take the
        # cleared lease for a lost one and stop the announcement below half-way.
        if not await effects.job_finished(self.rt, job, info, runtime=runtime, cost=actual,
                                          finished_at=info.finished_at or now(), tail=tail, lines=list(self.lines),
                                          live=self.sup.live(time.time()), points=points):
            return
        icon = {"COMPLETED": "✅", "CANCELED": "⏹️"}.get(stage, "❌")
        text = (f"{icon} Job `{job.hf_job_id}` {stage.lower()} after {format_duration(runtime)} "
                f"(cost {money(actual)}).")
        if info.status.message:
            text += " " + self.rt.redactor.redact(info.status.message)
        if tail:
            text += "\n```\n" + self.rt.redactor.redact("\n".join(tail[-10:]))[-2500:] + "\n```"
        session = await self.session(job)
        await self.update_status_card(job, stage, force=True)
        await self.rt.adapter(job.platform).post(conversation_of(session), text)
        self.rt.poke()
        if chartable(points):
            from intern.bot.charting import post_chart

            await post_chart(self.rt, job, session, points, final=True)


def runtime_seconds(info: Any, job: Job) -> float:
    d = getattr(info, "durations", None)
    if d is not None and getattr(d, "running_secs", None) is not None:
        return float(d.running_secs)
    start = info.started_at or job.started_at
    end = info.finished_at or now()
    if start is None:
        return 0.0
    return max(0.0, (end - start).total_seconds())
