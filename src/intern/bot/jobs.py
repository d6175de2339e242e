"""Launched jobs: recorded, followed (stage and logs) without blocking any worker, finished once.

Any process may follow any job: a watcher lease on the job row says who does; when a process dies
its leases lapse and another process picks the jobs up. The end of a job is handled exactly once
(compare-and-set on `notified_finished`), which enqueues a `job_finished` work item so the agent
continues.

A launch is recorded twice: as an intent (a row with the approval id and no Hub id, stage
LAUNCHING) before the Hub is asked, and with the Hub's id once it answered. An intent left behind by
a process that died in between is reconciled here with the Hub's job list by the approval label.
The loops outlive a database or Hub outage: they back off and carry on.

The watcher keeps one beat for all the jobs it follows (each one a `job_follower.JobFollower`): their
live states are written together once a beat, and their card edits are spent from the process's
budget and, on Slack, their workspace's.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from intern.agent.tools.jobs_hub import launched_with_label
from intern.bot import effects
from intern.bot.job_follower import JobFollower
from intern.bot.job_stages import StageBoard
from intern.bot.models import Approval, Job, Session, WorkItem
from intern.bot.runtime import Runtime
from intern.bot.store import Backoff, log_failure, retry_transient

log = logging.getLogger(__name__)


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


class EditBudget:
    """A token bucket of card edits: `rate` a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst = max(rate, 0.01), max(burst, 1.0)
        self.tokens, self.at = 1.0, now

    def ready(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return self.tokens >= 1.0

    def take(self) -> None:
        self.tokens -= 1.0


class JobWatcher:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.following: dict[str, asyncio.Task[None]] = {}
        self.followers: dict[str, JobFollower] = {}
        self._budgets: dict[tuple[str, str], EditBudget] = {}
        self._crowds: collections.Counter[tuple[str, str]] = collections.Counter()
        self._writes: dict[str, JobFollower] = {}
        self._writing: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self.stages = StageBoard(rt)

    def _workspace_rate(self, job: Job) -> float | None:
        try:
            return self.rt.adapter(job.platform).card_edits_per_second
        except LookupError:
            return None

    def _budget(self, key: tuple[str, str], rate: float, now: float) -> EditBudget:
        budget = self._budgets.get(key)
        if budget is None or budget.rate != max(rate, 0.01):
            # a beat's worth (and the fraction left over) may be saved up: the rate holds whatever the beat
            budget = self._budgets[key] = EditBudget(rate, rate * self.rt.supervise_seconds + 1.0, now)
        return budget

    def take_edit(self, job: Job, now: float | None = None) -> bool:
        """A token of each budget a card edit of `job` spends: the process's (`status_edits_per_second`)
        and, where the platform limits edits per workspace, its workspace's (Slack: chat.update is a
        Tier 3 method, about 50 a minute per workspace). The followed jobs' edits are spread out
        instead of all falling due together."""
        now = time.monotonic() if now is None else now
        budgets = [self._budget(("", ""), self.rt.status_edits_per_second, now)]
        rate = self._workspace_rate(job)
        if rate is not None:
            budgets.append(self._budget((job.platform, job.workspace), rate, now))
        if not all(b.ready(now) for b in budgets):
            return False
        for b in budgets:
            b.take()
        return True

    def card_interval(self, job: Job | None = None) -> float:
        """Seconds between two edits of one card: at least one, more when many jobs are followed so
        that the whole process, and each workspace, stays within its edit budget."""
        crowd = len(self.following) / max(self.rt.status_edits_per_second, 0.1)
        rate = self._workspace_rate(job) if job is not None else None
        if job is not None and rate is not None:
            crowd = max(crowd, self._crowds[(job.platform, job.workspace)] / max(rate, 0.01))
        return max(1.0, self.rt.status_throttle_seconds, crowd)

    def wake(self) -> None:
        self._wake.set()

    def points_of(self, job_id: str) -> dict[str, Any] | None:
        follower = self.followers.get(job_id)
        return None if follower is None else follower.sup.points()

    def queue_write(self, follower: JobFollower) -> None:
        self._writes[follower.jid] = follower

    def flush_writes(self, now: float) -> None:
        """The live states due this beat, written together (one transaction, one statement per shape)
        unless the last beat's write is still under way: then they wait for the next beat."""
        if not self._writes or (self._writing is not None and not self._writing.done()):
            return
        batch, self._writes = list(self._writes.values()), {}
        rows = [f.live_row(now) for f in batch]
        self._writing = asyncio.create_task(self._write(batch, rows), name="job-live-write")

    async def _write(self, batch: list[JobFollower], rows: list[effects.LiveRow]) -> None:
        try:
            await effects.jobs_live(self.rt, rows)
        except Exception as exc:
            log_failure(log, exc, f"writing the live state of {len(rows)} job(s)", "trying again at the next beat")
            for follower, row in zip(batch, rows, strict=True):
                follower.unwritten(row)

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
            followers = list(self.followers.values())
            self._crowds = collections.Counter((f.job.platform, f.job.workspace) for f in followers
                                               if f.job is not None)
            for follower in followers:
                work = follower.observe(now)
                if work is not None:
                    task = asyncio.create_task(work)
                    acting.add(task)
                    task.add_done_callback(acting.discard)
            self.flush_writes(now)

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


async def launches_of(rt: Runtime, job: Job) -> list[Any]:
    """The Hub's jobs carrying the approval label of `job`: how a launch recorded only as an intent
    (its process died between the Hub's answer and the database write) is found."""
    if not job.approval_id:
        return []
    return await launched_with_label(rt.hub, job.approval_id, job.namespace)
