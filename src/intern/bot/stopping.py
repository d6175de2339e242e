"""Stopping a session: its pending cards closed, its running jobs and its sandboxes cancelled, the rest
of its queue dropped, and the thread told."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import or_, select, update

from intern.bot import audit
from intern.bot.approvals import Approvals
from intern.bot.chat import who
from intern.bot.effects import card_saver
from intern.bot.jobs import LAUNCHING, launches_of
from intern.bot.models import Job, Session, WorkItem
from intern.bot.progress import ProgressSink
from intern.bot.runtime import Runtime
from intern.bot.sessions import conversation_of

log = logging.getLogger(__name__)

TERMINAL = ("COMPLETED", "CANCELED", "ERROR", "DELETED")


def now() -> datetime:
    return datetime.now(UTC)


class Stopping:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def run(self, sid: str, item: WorkItem) -> None:
        user = str(item.payload.get("user", "intern"))
        approvals = Approvals(self.rt)
        cancelled_cards = await approvals.cancel_pending(sid, user)
        async with self.rt.db.session() as db:
            s = await db.get(Session, sid)
            jobs = (await db.execute(select(Job).where(
                Job.session_id == sid, Job.kind == "job",
                or_(Job.hf_job_id.is_not(None), Job.stage == LAUNCHING),
                Job.stage.not_in(TERMINAL)))).scalars().all()
        assert s is not None
        cancelled_jobs = []
        for job in jobs:
            hf_job_id = job.hf_job_id or await self.launched_as(job)
            if hf_job_id is None:
                continue
            try:
                await self.rt.hub.call(self.rt.hub.api.cancel_job, job_id=hf_job_id, namespace=job.namespace)
                cancelled_jobs.append(hf_job_id)
            except Exception as exc:
                log.warning("could not cancel job %s: %s", hf_job_id, exc)
        if self.rt.sandboxes is not None:
            await self.rt.sandboxes.end_session(sid)
        async with self.rt.db.transaction() as db:
            await db.execute(update(Session).where(Session.id == sid).values(stop_requested=False, status="active"))
            for jid in cancelled_jobs:
                audit.record(db, "job_cancel_requested", actor=user, platform=s.platform, workspace=s.workspace,
                             channel=s.channel, session_id=sid, job_id=jid, by="stop")
            audit.record(db, "session_stopped", actor=user, platform=s.platform, workspace=s.workspace,
                         channel=s.channel, session_id=sid, jobs=cancelled_jobs, cards=cancelled_cards)
            # the rest of the queue is dropped: the people asked to stop
            await db.execute(update(WorkItem).where(WorkItem.session_id == sid, WorkItem.status == "queued",
                                                    WorkItem.id > item.id, WorkItem.kind != "stop")
                             .values(status="done", error="dropped by stop", finished_at=now()))
        parts = [f"⏹️ Stopped by {who(user)}."]
        if cancelled_jobs:
            parts.append("Cancelled job(s): " + ", ".join(f"`{j}`" for j in cancelled_jobs) + ".")
        if cancelled_cards:
            parts.append(f"Closed {len(cancelled_cards)} pending approval card(s).")
        parts.append("Reply in this thread to continue.")
        await self.rt.adapter(s.platform).post(conversation_of(s), " ".join(parts))
        await ProgressSink(self.rt, s, card_saver(self.rt)).finish("Stopped")


    async def launched_as(self, job: Job) -> str | None:
        """The Hub id of a launch recorded only as an intent (its process died mid-launch)."""
        try:
            found = await launches_of(self.rt, job)
        except Exception as exc:
            log.warning("could not look up the launch of approval %s: %s", job.approval_id, exc)
            return None
        return str(found[0].id) if found else None
