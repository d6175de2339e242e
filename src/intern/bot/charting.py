"""A job's chart in its thread: when the job ends, and on `@intern chart` / `/intern chart`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import select

from intern.bot.chat import Command, Reply
from intern.bot.models import Approval, Job, Session
from intern.bot.runtime import Runtime
from intern.bot.sessions import active_session, conversation_of
from intern.bot.supervision import chartable

log = logging.getLogger(__name__)


async def model_of(rt: Runtime, job: Job) -> str | None:
    """The base model the approved script names (the card's script), when it names one."""
    if not job.approval_id:
        return None
    async with rt.db.session() as db:
        approval = await db.get(Approval, job.approval_id)
    card = (approval.card if approval is not None else None) or {}
    if card.get("body_label") != "Script" or not card.get("body"):
        return None
    from intern.agent.guardrails.ml_checks import read_script

    try:
        facts = read_script(str(card["body"]))
    except Exception:
        return None
    return facts.models[0] if facts.models else None


async def post_chart(rt: Runtime, job: Job, session: Session, points: dict[str, Any], *, final: bool) -> bool:
    """Render the chart off the event loop and post it in the session's thread."""
    from intern.bot.charts import render_chart

    model = await model_of(rt, job)
    png = await asyncio.to_thread(render_chart, points, job_id=job.hf_job_id or job.id, model=model)
    steps = max((len(p) for p in points.values()), default=0)
    comment = (f"📈 Metrics of job `{job.hf_job_id}`" + (f" ({model})" if model else "")
               + (f" over its {steps} logged points." if final else f" so far ({steps} logged points)."))
    try:
        await rt.adapter(job.platform).post_file(conversation_of(session), f"job-{job.hf_job_id}-metrics.png", png,
                                                 title=f"Job {job.hf_job_id} metrics", comment=comment)
    except Exception:
        log.exception("could not post the chart of job %s", job.hf_job_id)
        return False
    return True


async def chart_command(rt: Runtime, cmd: Command) -> Reply:
    """The chart of the latest job of this thread's session, as far as it has gone."""
    async with rt.db.session() as db:
        session = await active_session(db, cmd.conversation)
        if session is None:
            return Reply("`chart` works in a session's thread: there is no session here.", ok=False)
        job = (await db.execute(select(Job).where(Job.session_id == session.id, Job.hf_job_id.is_not(None))
                                .order_by(Job.created_at.desc()).limit(1))).scalar_one_or_none()
    if job is None:
        return Reply("This session has not launched a job yet, so there is nothing to chart.", ok=False)
    # A job this process follows is charted from memory; one followed elsewhere (or whose log this
    # process is still reading again after a restart) from its stored points, written every
    # `points_write_seconds` while it runs.
    followed = rt.job_watcher.points_of(job.id) if rt.job_watcher is not None and not job.notified_finished else None
    points = followed if followed is not None and chartable(followed) else job.metric_points or {}
    if not chartable(points):
        return Reply(f"Job `{job.hf_job_id}` ({job.stage.lower()}) has not logged three points of any metric yet; "
                     "there is nothing to chart so far.", ok=False)
    if not await post_chart(rt, job, session, points, final=job.notified_finished):
        return Reply("The chart could not be posted in the thread; try again in a moment.", ok=False)
    return Reply(f"Posted the chart of job `{job.hf_job_id}` in the thread.", said=True)
