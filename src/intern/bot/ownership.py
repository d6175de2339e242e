"""Whose job is it: the jobs and schedules Intern launched, per platform and workspace, and who may
control them (the agent's `JobRegistry` port, bound to one turn).

A job id the model passes may come from anywhere — another team's thread, a dataset card, a log
line — so the Hub's namespace is never the measure: only the rows Intern wrote when it launched.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from intern.agent.ports import JobAccess, JobKind
from intern.bot import audit
from intern.bot import policy as policies
from intern.bot.chat import who
from intern.bot.models import Job, Session
from intern.bot.runtime import Runtime

NOT_OURS = "not a job of this workspace"
SCHEDULED = "SCHEDULED"


class TurnJobs:
    """The registry as one turn sees it: its session's workspace and channel, its requester."""

    def __init__(self, rt: Runtime, session: Session, requester: str) -> None:
        self.rt, self.session, self.requester = rt, session, requester

    async def access(self, hub_id: str, kind: JobKind) -> JobAccess:
        s = self.session
        async with self.rt.db.session() as db:
            job = (await db.execute(select(Job).where(
                Job.hf_job_id == hub_id, Job.kind == kind, Job.platform == s.platform,
                Job.workspace == s.workspace))).scalar_one_or_none()
            if job is None:
                return JobAccess(False, refusal=f"{hub_id} is {NOT_OURS}: Intern acts only on the jobs and "
                                                "schedules it launched for this workspace.")
            if job.channel == s.channel or self.requester == job.requester:
                return JobAccess(True, True)
            pol = await policies.effective(db, job.platform, job.workspace, job.channel, self.rt.settings.approvers)
        if await self.administers(pol):
            return JobAccess(True, True)
        return JobAccess(True, False, refusal=self.rt.spell(s.platform, (
            f"{hub_id} was launched from another channel at the request of {who(job.requester)}: only they, an "
            "approver or an administrator of that channel, or a turn in that channel, may cancel, suspend or "
            "delete it.")))

    async def administers(self, pol: policies.EffectivePolicy) -> bool:
        from intern.bot.approvals import Approvals

        user = self.requester
        if user in pol.global_admins or user in pol.admins:
            return True
        return await Approvals(self.rt).is_member(self.session.platform, self.session.workspace, user, pol.approvers)

    async def ours(self, hub_ids: list[str], kind: JobKind) -> set[str]:
        if not hub_ids:
            return set()
        s = self.session
        async with self.rt.db.session() as db:
            rows = (await db.execute(select(Job.hf_job_id).where(
                Job.hf_job_id.in_(hub_ids), Job.kind == kind, Job.platform == s.platform,
                Job.workspace == s.workspace))).scalars().all()
        return {str(r) for r in rows}


async def record_schedule(rt: Runtime, session: Session, requester: str, art: dict[str, Any]) -> None:
    """A schedule Intern created is a row of the jobs table (kind `scheduled`), so that later
    operations on it can tell it is this workspace's. Idempotent by its Hub id."""
    try:
        async with rt.db.transaction() as db:
            if (await db.execute(select(Job.id).where(Job.hf_job_id == art["id"]))).first() is not None:
                return
            db.add(Job(session_id=session.id, approval_id=art.get("approval_id"), hf_job_id=art["id"],
                       namespace=str(art.get("namespace") or ""), kind="scheduled",
                       flavor=str(art.get("flavor") or ""), timeout_seconds=int(art.get("timeout_seconds") or 0),
                       hourly_usd=float(art.get("hourly_usd") or 0.0),
                       estimated_cost_usd=float(art.get("estimated_cost_usd") or 0.0), stage=SCHEDULED,
                       requester=requester, platform=session.platform, workspace=session.workspace,
                       channel=session.channel))
            audit.record(db, "schedule_created", actor=requester, platform=session.platform,
                         workspace=session.workspace, channel=session.channel, session_id=session.id,
                         approval_id=art.get("approval_id"), job_id=art["id"], schedule=art.get("schedule"))
    except IntegrityError:
        pass  # recorded by another delivery of the same result
