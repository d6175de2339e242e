"""Launched jobs: recorded, followed (stage and logs) without blocking any worker, finished once.

Any process may follow any job: a watcher lease on the job row says who does; when a process dies
its leases lapse and another process picks the jobs up. The end of a job is handled exactly once
(compare-and-set on `notified_finished`), which enqueues a `job_finished` work item so the agent
continues.

A launch is recorded twice: as an intent (a row with the approval id and no Hub id, stage
LAUNCHING) before the Hub is asked, and with the Hub's id once it answered. An intent left behind by
a process that died in between is reconciled here with the Hub's job list by the approval label.
The loops outlive a database or Hub outage: they back off and carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from intern.agent.job_streams import LogCursor
from intern.agent.pricing import format_duration
from intern.agent.tools.jobs import TERMINAL, clean_logs
from intern.agent.tools.jobs_hub import launched_with_label
from intern.bot import effects
from intern.bot.cards import StatusState, money
from intern.bot.chat import MessageRef
from intern.bot.job_stages import StageBoard
from intern.bot.models import Approval, Job, Session, WorkItem
from intern.bot.runtime import Runtime
from intern.bot.sessions import conversation_of
from intern.bot.store import Backoff, log_failure, retry_transient
from intern.bot.supervision import Limits, Supervision, chartable

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 15


def now() -> datetime:
    return datetime.now(UTC)


LAUNCHING = "LAUNCHING"
NOT_LAUNCHED = "NOT_LAUNCHED"
CLAIM_JOBS = 200


class Launches:
    """The `LaunchLedger` the jobs tool writes its intent to before asking the Hub."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def intent(self, session_id: str, approval_id: str, namespace: str) -> None:
        async def once() -> None:
            async with self.rt.db.transaction() as db:
                await self._intent(db, session_id, approval_id, namespace)

        try:
            await retry_transient(once, attempts=5)
        except IntegrityError:
            pass  # recorded by a concurrent attempt: the label check covers the rest

    async def _intent(self, db: AsyncSession, session_id: str, approval_id: str, namespace: str) -> None:
        row = (await db.execute(select(Job).where(Job.approval_id == approval_id))).scalar_one_or_none()
        if row is not None:
            if row.hf_job_id is None:
                row.stage, row.message = LAUNCHING, None
            return
        a = await db.get(Approval, approval_id)
        if a is None:
            raise LookupError(f"approval {approval_id} is not recorded")
        card = a.card or {}
        db.add(Job(session_id=session_id, approval_id=approval_id, hf_job_id=None, namespace=namespace,
                   flavor=str(card.get("flavor") or "unknown"), timeout_seconds=int(card.get("timeout_seconds") or 0),
                   hourly_usd=float(card.get("hourly_usd") or 0.0),
                   estimated_cost_usd=float(a.estimated_cost_usd or 0.0), stage=LAUNCHING, requester=a.requester,
                   platform=a.platform, workspace=a.workspace, channel=a.channel))
        await db.flush()

    async def abandon(self, approval_id: str, reason: str) -> None:
        async def once() -> None:
            async with self.rt.db.transaction() as db:
                await db.execute(update(Job).where(Job.approval_id == approval_id, Job.hf_job_id.is_(None))
                                 .values(stage=NOT_LAUNCHED, message=reason[:2000]))

        await retry_transient(once, attempts=5)


class JobWatcher:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.following: dict[str, asyncio.Task[None]] = {}
        self.followers: dict[str, JobFollower] = {}
        self._edit_tokens, self._edit_refill = 0.0, time.monotonic()
        self._wake = asyncio.Event()
        self._stopping = False
        self.stages = StageBoard(rt)

    def take_edit(self) -> bool:
        """A token of the process's card-edit budget (`status_edits_per_second`): the followed jobs'
        edits are spread out instead of all falling due together."""
        now = time.monotonic()
        rate = max(self.rt.status_edits_per_second, 0.1)
        self._edit_tokens = min(rate, self._edit_tokens + (now - self._edit_refill) * rate)
        self._edit_refill = now
        if self._edit_tokens < 1.0:
            return False
        self._edit_tokens -= 1.0
        return True

    def card_interval(self) -> float:
        """Seconds between two edits of one card: at least one, more when many jobs are followed so
        that the whole process stays near `status_edits_per_second` edits a second."""
        crowd = len(self.following) / max(self.rt.status_edits_per_second, 0.1)
        return max(1.0, self.rt.status_throttle_seconds, crowd)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        keeper = asyncio.create_task(self.keep_leases(), name="job-lease-keeper")
        supervisor = asyncio.create_task(self.supervise(), name="job-supervisor")
        stages = asyncio.create_task(self.stages.run(), name="job-stages")
        try:
            await self.sweep_loop()
        finally:
            for task in (keeper, supervisor, stages):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def supervise(self) -> None:
        """One beat for every followed job (not a timer per job): read their new lines, and start
        whatever is due — alerts, card edits, writes — only for the jobs that have some."""
        acting: set[asyncio.Task[None]] = set()  # a slow Slack call delays its job, not the beat
        while True:
            await asyncio.sleep(self.rt.supervise_seconds)
            now = time.time()
            for follower in list(self.followers.values()):
                work = follower.observe(now)
                if work is not None:
                    task = asyncio.create_task(work)
                    acting.add(task)
                    task.add_done_callback(acting.discard)

    async def sweep_loop(self) -> None:
        backoff = Backoff(first=0.5, cap=10.0)
        while not self._stopping:
            wait = self.rt.sweep_seconds
            try:
                due = await self.claim_and_follow()
                await self.reconcile_intents()
                backoff.reset()
                if due is not None:
                    wait = min(wait, due + 0.05)
            except Exception as exc:
                if log_failure(log, exc, "job watcher sweep", "trying again"):
                    await backoff.pause()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in list(self.following.values()):
            task.cancel()
        for task in list(self.following.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # let another process take over at once (if the database is away, the leases lapse instead)
        with contextlib.suppress(Exception):
            async with self.rt.db.transaction() as db:
                await db.execute(update(Job).where(Job.watcher_owner == self.rt.owner)
                                 .values(watcher_owner=None, watcher_expires_at=None))

    async def keep_leases(self) -> None:
        """One heartbeat for every job this process follows (not one per job per poll, so a lease
        can be shorter than the poll interval). A follower whose lease was lost is stopped; while
        the database is away the leases are kept as long as they are surely still ours, then given
        up, so that two processes never follow (and announce) the same job."""
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while True:
            await asyncio.sleep(self.rt.heartbeat_seconds)  # a quarter of the lease (5 s of 30)
            following = dict(self.following)
            if not following:
                renewed = loop.time()
                continue
            try:
                kept = await self.renew(list(following))
            except Exception as exc:
                if loop.time() - renewed > self.rt.lease_seconds * 0.75:
                    log.warning("job leases not renewed (%s); letting %d job(s) go", type(exc).__name__,
                                len(following))
                    for task in following.values():
                        task.cancel()
                continue
            renewed = loop.time()
            for jid, task in following.items():
                if jid not in kept:
                    log.info("job %s: watcher lease lost; another process follows it now", jid)
                    task.cancel()

    async def renew(self, jids: list[str]) -> set[str]:
        async with self.rt.db.transaction() as db:
            res = await db.execute(update(Job).where(Job.id.in_(jids), Job.watcher_owner == self.rt.owner)
                                   .values(watcher_expires_at=now() + timedelta(seconds=self.rt.lease_seconds))
                                   .returning(Job.id))
            return set(res.scalars().all())

    async def claim_and_follow(self) -> float | None:
        """Lease the jobs nobody follows (a batch in one statement: after a restart there may be many).
        Returns the seconds until another process's lease on an unfinished job lapses, if any, so
        that a dead process's jobs are taken over as soon as that happens."""
        if self._stopping:
            return None
        t = now()
        free = or_(Job.watcher_owner.is_(None), Job.watcher_expires_at < t)
        # A schedule's row is its record of ownership, not a run to follow.
        pick = select(Job.id).where(Job.kind == "job", Job.notified_finished.is_(False), Job.hf_job_id.is_not(None),
                                    free)
        if self.following:
            pick = pick.where(Job.id.not_in(list(self.following)))
        async with self.rt.db.transaction() as db:
            ids = list((await db.execute(pick.limit(CLAIM_JOBS))).scalars().all())
            claimed: list[str] = []
            if ids:
                res = await db.execute(update(Job).where(Job.id.in_(ids), free).values(
                    watcher_owner=self.rt.owner, watcher_expires_at=t + timedelta(seconds=self.rt.lease_seconds))
                    .returning(Job.id))
                claimed = list(res.scalars().all())
            due = (await db.execute(select(func.min(Job.watcher_expires_at)).where(
                Job.kind == "job", Job.notified_finished.is_(False), Job.hf_job_id.is_not(None),
                Job.watcher_owner != self.rt.owner, Job.watcher_expires_at >= t))).scalar()
        for jid in claimed:
            self.following[jid] = asyncio.create_task(self.follow(jid), name=f"follow-job-{jid}")
        return None if due is None else max(0.0, (due - t).total_seconds())

    async def reconcile_intents(self) -> None:
        """Launch intents nobody is working on: the Hub's job list, by approval label, says whether
        the launch happened. Found → recorded and followed; absent with no turn left to retry it →
        marked not launched."""
        t = now()
        session_free = or_(Session.lease_owner.is_(None), Session.lease_expires_at < t)
        async with self.rt.db.session() as db:
            rows = (await db.execute(select(Job, Session).join(Session, Session.id == Job.session_id).where(
                Job.hf_job_id.is_(None), Job.stage == LAUNCHING, Job.approval_id.is_not(None),
                Job.updated_at < t - timedelta(seconds=self.rt.lease_seconds), session_free))).all()
        for job, session in rows:
            await self.reconcile(job, session)

    async def reconcile(self, job: Job, session: Session) -> None:
        try:
            found = await launches_of(self.rt, job)
        except Exception as exc:
            log.warning("could not reconcile launch of approval %s: %s", job.approval_id, exc)
            return
        if found:
            info = found[0]
            log.info("launch of approval %s found on the Hub as %s", job.approval_id, info.id)
            await effects.record_launch(self.rt, session, job.requester, {
                "hf_job_id": info.id, "namespace": job.namespace, "flavor": str(info.flavor or job.flavor),
                "timeout_seconds": job.timeout_seconds, "hourly_usd": job.hourly_usd,
                "estimated_cost_usd": job.estimated_cost_usd, "url": info.url, "approval_id": job.approval_id,
                "stage": info.status.stage})
            return
        async with self.rt.db.transaction() as db:
            pending = (await db.execute(select(exists().where(
                WorkItem.session_id == job.session_id, WorkItem.status.in_(("queued", "running")))))).scalar()
            if not pending:
                await db.execute(update(Job).where(and_(Job.id == job.id, Job.hf_job_id.is_(None))).values(
                    stage=NOT_LAUNCHED, message="the launch never reached the Hub"))

    async def follow(self, jid: str) -> None:
        follower = self.followers[jid] = JobFollower(self.rt, jid, self)
        try:
            await follower.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log_failure(log, exc, f"following job {jid}", "another sweep picks it up again")
            with contextlib.suppress(Exception):
                async with self.rt.db.transaction() as db:
                    await db.execute(update(Job).where(Job.id == jid, Job.watcher_owner == self.rt.owner)
                                     .values(watcher_owner=None, watcher_expires_at=None))
        finally:
            follower.close()
            self.following.pop(jid, None)
            self.followers.pop(jid, None)


class JobFollower:
    """Follows one job: its stage (polled), its log stream and its GPU metrics (read on the event
    loop, see `agent/job_streams.py`), and once a second reads the new lines into its `Supervision`,
    raises the alerts due, edits the status card when its line changed and writes the job's live
    state and metric points."""

    def __init__(self, rt: Runtime, jid: str, watcher: JobWatcher | None = None) -> None:
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
        self._written = 0.0
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
            self.sup.feed_lines(batch, now)
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
        write = self.sup.changed and now - self._written >= max(1.0, self.rt.settings.job_poll_seconds)
        if not (alerts or card or write):
            return None
        self._acting = True  # until `act` ends: one piece of work at a time per job
        return self.act(job, now, alerts, card, write)

    def _card_due(self, job: Job) -> bool:
        """Something worth showing changed (elapsed time and cost alone are not a reason to edit),
        and this card's slot is free."""
        if self.sup.version == self._shown_version:
            return False
        interval = self.watcher.card_interval() if self.watcher is not None else 1.0
        if self.rt.card_edits.get(job.session_id, 0.0) + interval > time.monotonic():
            return False
        return self.watcher is None or self.watcher.take_edit()

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

    async def write_live(self, job: Job, now: float) -> None:
        self._written, self.sup.changed = now, False
        await effects.job_live(self.rt, job, self.sup.live(now), self.sup.points())

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
        interval = self.watcher.card_interval() if self.watcher is not None else 1.0
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


async def launches_of(rt: Runtime, job: Job) -> list[Any]:
    """The Hub's jobs carrying the approval label of `job`: how a launch recorded only as an intent
    (its process died between the Hub's answer and the database write) is found."""
    if not job.approval_id:
        return []
    return await launched_with_label(rt.hub, job.approval_id, job.namespace)
