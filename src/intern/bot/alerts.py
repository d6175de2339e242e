"""Alerts about running jobs, and the Cancel button they carry.

An alert is raised once per job and kind, whichever process sees it first: the row in `job_alerts`
(unique by job and kind), the audit event and the work item that wakes the agent are written in one
transaction; only the process that wrote them posts the alert in the thread.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from intern.agent.tools.jobs import TERMINAL
from intern.bot import audit
from intern.bot import policy as policies
from intern.bot.chat import Button, Card, JobCancelClick, Reply, who
from intern.bot.inbox import claim_event, enqueue
from intern.bot.models import InboundEvent, Job, JobAlert, Session
from intern.bot.runtime import Runtime
from intern.bot.sessions import conversation_of
from intern.bot.supervision import Alert

log = logging.getLogger(__name__)

TITLES = {"nan": "training diverged (NaN/inf)", "stall": "no log output", "gpu_idle": "GPU idle",
          "timeout": "will not finish before its timeout"}
NOT_OURS = "This Cancel button does not belong to a job of this workspace; nothing was changed."


async def raised_kinds(rt: Runtime, job_id: str) -> set[str]:
    async with rt.db.session() as db:
        return set((await db.execute(select(JobAlert.kind).where(JobAlert.job_id == job_id))).scalars().all())


async def raise_alert(rt: Runtime, job: Job, alert: Alert) -> bool:
    """Record, wake the agent and post; False when this job already had an alert of this kind."""
    try:
        async with rt.db.transaction() as db:
            db.add(JobAlert(job_id=job.id, kind=alert.kind, text=alert.text[:2000]))
            await db.flush()
            audit.record(db, "job_alert", platform=job.platform, workspace=job.workspace, channel=job.channel,
                         session_id=job.session_id, approval_id=job.approval_id, job_id=job.hf_job_id,
                         alert=alert.kind, reason=alert.text[:500])
            enqueue(db, job.session_id, "job_alert", {"job_id": job.hf_job_id, "kind": alert.kind,
                                                      "text": alert.text, "flavor": job.flavor,
                                                      "requester": job.requester})
    except IntegrityError:
        return False
    rt.poke()
    try:
        async with rt.db.session() as db:
            session = await db.get(Session, job.session_id)
        assert session is not None
        await rt.adapter(job.platform).post_card(conversation_of(session), alert_card(job, alert))
    except Exception:
        log.exception("could not post the %s alert of job %s", alert.kind, job.hf_job_id)
    return True


def alert_card(job: Job, alert: Alert) -> Card:
    return Card(title=f"⚠️ Job {job.hf_job_id}: {TITLES.get(alert.kind, alert.kind)}",
                lines=[alert.text, f"Requested by {who(job.requester)} · {job.flavor}. Intern is looking into it; "
                                   "the requester, an approver or an administrator may cancel the job now."],
                buttons=[Button("cancel_job", job.hf_job_id or "", "Cancel job")], state="error",
                footer=f"Job {job.hf_job_id} · alert {alert.kind}")


def alert_report(p: dict[str, Any]) -> str:
    """What the agent is told (as a user-role message) when an alert is raised."""
    return (f"[job alert] Job {p.get('job_id')} (still running on {p.get('flavor')}): {p.get('text')}\n"
            "The thread has been shown this alert with a Cancel button. Tell the team, briefly, what you would "
            "change to fix it (for example a lower learning rate, a longer timeout, a smaller batch) and whether "
            "the job should be cancelled; do not launch anything new without being asked.")


async def cancel_from_click(rt: Runtime, click: JobCancelClick, is_member: Any) -> Reply:
    """The Cancel button of an alert: the job's requester, an approver or an administrator of its
    channel may cancel it; anyone else is refused privately (and the refusal audited)."""
    async with rt.db.session() as db:
        job = (await db.execute(select(Job).where(Job.hf_job_id == click.job_id[:64]))).scalar_one_or_none()
        if job is None or job.platform != click.platform or job.workspace != click.workspace:
            return Reply(NOT_OURS, ok=False)
        pol = await policies.effective(db, job.platform, job.workspace, job.channel, rt.settings.approvers)
    allowed = click.user == job.requester or click.user in pol.global_admins or click.user in pol.admins \
        or await is_member(job.platform, job.workspace, click.user, pol.approvers, click.user_groups)
    if not allowed:
        async with rt.db.transaction() as db:
            audit.record(db, "job_cancel_refused", actor=click.user, platform=job.platform, workspace=job.workspace,
                         channel=job.channel, session_id=job.session_id, job_id=job.hf_job_id)
        return Reply("Only the person who asked for this job, an approver or an administrator can cancel it. "
                     "Nothing was changed.", ok=False)
    if job.stage in TERMINAL:
        return Reply(f"Job `{job.hf_job_id}` already ended ({job.stage.lower()}); nothing to cancel.")
    async with rt.db.transaction() as db:
        if not await claim_event(db, f"cancel_job:{job.hf_job_id}:{click.user}", "cancel_job"):
            return Reply(f"Cancellation of job `{job.hf_job_id}` already requested.")
        audit.record(db, "job_cancel_requested", actor=click.user, platform=job.platform, workspace=job.workspace,
                     channel=job.channel, session_id=job.session_id, job_id=job.hf_job_id, by="alert button")
    try:
        await rt.hub.call(rt.hub.api.cancel_job, job_id=job.hf_job_id, namespace=job.namespace)
    except Exception as exc:
        log.warning("cancel of job %s failed: %s", job.hf_job_id, exc)
        async with rt.db.transaction() as db:  # let a second click try again
            row = await db.get(InboundEvent, f"cancel_job:{job.hf_job_id}:{click.user}")
            if row is not None:
                await db.delete(row)
        return Reply(f"The Hub did not cancel job `{job.hf_job_id}` ({type(exc).__name__}); try again.", ok=False)
    if rt.job_watcher is not None:
        rt.job_watcher.wake()
    return Reply(f"Cancelling job `{job.hf_job_id}`: the thread is told when it has stopped.")
