"""Launched jobs: recorded, followed (stage and logs) without blocking any worker, finished once.

Any process may follow any job: a watcher lease on the job row says who does; when a process dies
its leases lapse and another process picks the jobs up. The end of a job is handled exactly once
(compare-and-set on `notified_finished`), which enqueues a `job_finished` work item so the agent
continues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from intern.agent.pricing import format_duration
from intern.agent.tools.jobs import TERMINAL, clean_logs
from intern.bot import audit
from intern.bot.cards import StatusState, money
from intern.bot.chat import MessageRef
from intern.bot.inbox import enqueue
from intern.bot.models import Job, Session, SpendEntry
from intern.bot.policy import month_of
from intern.bot.runtime import Runtime
from intern.bot.sessions import conversation_of

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 15


def now() -> datetime:
    return datetime.now(UTC)


async def record_launch(rt: Runtime, session: Session, requester: str, art: dict[str, Any]) -> None:
    """Store the launched job (idempotent by its Hub id) and say so in the thread."""
    created = False
    try:
        async with rt.db.transaction() as db:
            existing = (await db.execute(select(Job).where(Job.hf_job_id == art["hf_job_id"]))).scalar_one_or_none()
            if existing is None:
                db.add(Job(session_id=session.id, approval_id=art.get("approval_id"), hf_job_id=art["hf_job_id"],
                           namespace=art["namespace"], flavor=art["flavor"], timeout_seconds=art["timeout_seconds"],
                           hourly_usd=art["hourly_usd"], estimated_cost_usd=art["estimated_cost_usd"],
                           stage=art.get("stage") or "SCHEDULING", url=art.get("url"), requester=requester,
                           platform=session.platform, workspace=session.workspace, channel=session.channel))
                if not art.get("approval_id"):
                    db.add(SpendEntry(platform=session.platform, workspace=session.workspace,
                                      channel=session.channel, session_id=session.id, user_id=requester, kind="job",
                                      ref=art["hf_job_id"], amount_usd=art["estimated_cost_usd"], month=month_of()))
                audit.record(db, "job_launched", actor=requester, platform=session.platform,
                             workspace=session.workspace, channel=session.channel, session_id=session.id,
                             approval_id=art.get("approval_id"), job_id=art["hf_job_id"], flavor=art["flavor"],
                             timeout_seconds=art["timeout_seconds"], cost=art["estimated_cost_usd"])
                created = True
    except IntegrityError:
        created = False  # another delivery recorded it first
    if created:
        await rt.adapter(session.platform).post(
            conversation_of(session),
            f"🚀 Job `{art['hf_job_id']}` launched on {art['flavor']} (timeout "
            f"{format_duration(art['timeout_seconds'])}, at most {money(art['estimated_cost_usd'])}). {art.get('url') or ''}")
        watcher = rt.extras.get("job_watcher")
        if watcher is not None:
            watcher.wake()


class JobWatcher:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.following: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self.claim_and_follow()
            except Exception:
                log.exception("job watcher sweep failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.rt.sweep_seconds)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in list(self.following.values()):
            task.cancel()
        for task in list(self.following.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # let another process take over at once
        async with self.rt.db.transaction() as db:
            await db.execute(update(Job).where(Job.watcher_owner == self.rt.owner)
                             .values(watcher_owner=None, watcher_expires_at=None))

    async def claim_and_follow(self) -> None:
        async with self.rt.db.session() as db:
            ids = (await db.execute(select(Job.id).where(
                Job.notified_finished.is_(False), Job.hf_job_id.is_not(None),
                or_(Job.watcher_owner.is_(None), Job.watcher_expires_at < now())))).scalars().all()
        for jid in ids:
            if jid in self.following:
                continue
            async with self.rt.db.transaction() as db:
                res = await db.execute(update(Job).where(
                    Job.id == jid, or_(Job.watcher_owner.is_(None), Job.watcher_expires_at < now()))
                    .values(watcher_owner=self.rt.owner,
                            watcher_expires_at=now() + timedelta(seconds=self.rt.lease_seconds)))
            if res.rowcount == 1:
                self.following[jid] = asyncio.create_task(self.follow(jid), name=f"follow-job-{jid}")

    async def follow(self, jid: str) -> None:
        follower = JobFollower(self.rt, jid)
        try:
            await follower.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("following job %s failed; another sweep will retry", jid)
            async with self.rt.db.transaction() as db:
                await db.execute(update(Job).where(Job.id == jid, Job.watcher_owner == self.rt.owner)
                                 .values(watcher_owner=None, watcher_expires_at=None))
        finally:
            follower.close()
            self.following.pop(jid, None)


class JobFollower:
    def __init__(self, rt: Runtime, jid: str) -> None:
        self.rt, self.jid = rt, jid
        self.lines: deque[str] = deque(maxlen=400)
        self._closed = threading.Event()
        self._log_task: asyncio.Task[None] | None = None
        self._last_card = 0.0
        self._raw_seen = 0

    def close(self) -> None:
        self._closed.set()
        if self._log_task is not None:
            self._log_task.cancel()

    async def run(self) -> None:
        async with self.rt.db.session() as db:
            job = await db.get(Job, self.jid)
        assert job is not None and job.hf_job_id
        self._log_task = asyncio.create_task(self.follow_logs(job.hf_job_id, job.namespace))
        stage = job.stage
        announced_running = job.started_at is not None
        while True:
            if not await self.heartbeat():
                return  # lost the lease: someone else follows it now
            try:
                info = await self.rt.hub.call(self.rt.hub.api.inspect_job, job_id=job.hf_job_id,
                                              namespace=job.namespace)
            except Exception as exc:
                log.warning("inspect of job %s failed: %s", job.hf_job_id, exc)
                await asyncio.sleep(min(self.rt.settings.job_poll_seconds, 30))
                continue
            new_stage = info.status.stage
            if new_stage != stage or not announced_running:
                stage = new_stage
                await self.stage_changed(job, info, announce=new_stage == "RUNNING" and not announced_running)
                announced_running = announced_running or new_stage == "RUNNING"
            if new_stage in TERMINAL:
                await asyncio.sleep(0.2)  # let the log stream deliver its last lines
                await self.finish(job, info)
                return
            await self.progress(job, stage)
            await asyncio.sleep(self.rt.settings.job_poll_seconds)

    async def heartbeat(self) -> bool:
        async with self.rt.db.transaction() as db:
            res = await db.execute(update(Job).where(Job.id == self.jid, Job.watcher_owner == self.rt.owner)
                                   .values(watcher_expires_at=now() + timedelta(seconds=self.rt.lease_seconds)))
        return res.rowcount == 1

    async def follow_logs(self, hf_job_id: str, namespace: str) -> None:
        """Follow the log stream; reconnect with backoff when it drops, until the job ends."""
        delay = 1.0
        while not self._closed.is_set():
            try:
                await self.rt.hub.call_streaming(self._pump, hf_job_id, namespace)
                delay = 1.0
            except Exception as exc:
                log.info("log stream for %s dropped (%s); reconnecting in %.0fs", hf_job_id, type(exc).__name__, delay)
            if self._closed.is_set():
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    def _pump(self, hf_job_id: str, namespace: str) -> None:
        # A reconnect replays the stream from its start: skip the lines already taken.
        count = 0
        for line in self.rt.hub.api.fetch_job_logs(job_id=hf_job_id, namespace=namespace, follow=True):
            count += 1
            if count > self._raw_seen:
                self._raw_seen = count
                self.lines.extend(clean_logs([line]))
            if self._closed.is_set():
                break

    def tail(self, n: int = LOG_TAIL_LINES) -> list[str]:
        return list(self.lines)[-n:]

    async def stage_changed(self, job: Job, info: Any, announce: bool) -> None:
        async with self.rt.db.transaction() as db:
            values: dict[str, Any] = {"stage": info.status.stage, "message": info.status.message}
            if info.status.stage == "RUNNING" and job.started_at is None:
                values["started_at"] = info.started_at or now()
                job.started_at = values["started_at"]
            await db.execute(update(Job).where(Job.id == job.id).values(**values))
        await self.update_status_card(job, info.status.stage)
        if announce:
            session = await self.session(job)
            await self.rt.adapter(job.platform).post(conversation_of(session),
                                                     f"▶️ Job `{job.hf_job_id}` is running on {job.flavor}.")

    async def progress(self, job: Job, stage: str) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_card < max(self.rt.status_throttle_seconds, 3.0):
            return
        self._last_card = loop.time()
        await self.update_status_card(job, stage)

    async def update_status_card(self, job: Job, stage: str) -> None:
        session = await self.session(job)
        snap = session.status_card or {}
        if not snap.get("ref"):
            return
        state = StatusState.from_json(snap.get("state"))
        last = self.tail(1)
        state.jobs[job.hf_job_id or job.id] = stage + (f" — {last[0][:120]}" if last else "")
        try:
            await self.rt.adapter(job.platform).update_card(MessageRef.from_json(snap["ref"]),
                                                            state.card(session.id, done=False))
        except Exception:
            log.warning("could not update status card for job %s", job.hf_job_id)
            return
        async with self.rt.db.transaction() as db:
            await db.execute(update(Session).where(Session.id == session.id).values(
                status_card={"ref": snap["ref"], "state": state.to_json()}))

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
        async with self.rt.db.transaction() as db:
            res = await db.execute(update(Job).where(Job.id == job.id, Job.notified_finished.is_(False)).values(
                notified_finished=True, stage=stage, message=info.status.message, finished_at=info.finished_at or now(),
                runtime_seconds=runtime, actual_cost_usd=actual, log_tail="\n".join(tail),
                watcher_owner=None, watcher_expires_at=None))
            if res.rowcount != 1:
                return
            ref = job.approval_id or job.hf_job_id
            await db.execute(update(SpendEntry).where(SpendEntry.ref == ref).values(amount_usd=actual, final=True))
            audit.record(db, "job_cancelled" if stage == "CANCELED" else "job_finished", platform=job.platform,
                         workspace=job.workspace, channel=job.channel, session_id=job.session_id,
                         approval_id=job.approval_id, job_id=job.hf_job_id, stage=stage,
                         runtime_seconds=runtime, cost=actual)
            enqueue(db, job.session_id, "job_finished", {
                "job_id": job.hf_job_id, "stage": stage, "message": info.status.message,
                "runtime_seconds": runtime, "cost_usd": actual, "log_tail": tail, "requester": job.requester})
        icon = {"COMPLETED": "✅", "CANCELED": "⏹️"}.get(stage, "❌")
        text = (f"{icon} Job `{job.hf_job_id}` {stage.lower()} after {format_duration(runtime)} "
                f"(cost {money(actual)}).")
        if info.status.message:
            text += f" {info.status.message}"
        if tail:
            text += "\n```\n" + self.rt.redactor.redact("\n".join(tail[-10:]))[-2500:] + "\n```"
        session = await self.session(job)
        await self.update_status_card(job, stage)
        await self.rt.adapter(job.platform).post(conversation_of(session), text)
        self.rt.poke()


def runtime_seconds(info: Any, job: Job) -> float:
    d = getattr(info, "durations", None)
    if d is not None and getattr(d, "running_secs", None) is not None:
        return float(d.running_secs)
    start = info.started_at or job.started_at
    end = info.finished_at or now()
    if start is None:
        return 0.0
    return max(0.0, (end - start).total_seconds())
