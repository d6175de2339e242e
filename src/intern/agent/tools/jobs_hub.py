"""What the Hub and the bot's records say about the jobs `hf_jobs` names: their price, whose they are,
their state, and which were launched for an approval."""

from __future__ import annotations

from typing import Any

from intern.agent.context_deps import ToolContext, required
from intern.agent.errors import ToolFeedback
from intern.agent.ports import JobKind, JobRegistry
from intern.agent.pricing import Flavor
from intern.agent.tools.jobs_args import DEFAULT_FLAVOR, JobsArgs
from intern.agent.tools.jobs_code import hub_error

APPROVAL_LABEL = "intern-approval"
SESSION_LABEL = "intern-session"


async def flavor_of(ctx: ToolContext, name: str | None) -> Flavor:
    return await ctx.prices.get(name or DEFAULT_FLAVOR)


async def inspect_job(ctx: ToolContext, job_id: str) -> Any:
    ns = await ctx.hub.namespace()
    try:
        return await ctx.hub.read(ctx.hub.api.inspect_job, job_id=job_id, namespace=ns)
    except Exception as exc:
        raise ToolFeedback(hub_error(exc, f"job {job_id}")) from exc


async def inspect_schedule(ctx: ToolContext, args: JobsArgs) -> Any:
    ns = await ctx.hub.namespace()
    try:
        return await ctx.hub.read(ctx.hub.api.inspect_scheduled_job, scheduled_job_id=args.scheduled_job_id,
                                  namespace=ns)
    except Exception as exc:
        raise ToolFeedback(hub_error(exc, f"scheduled job {args.scheduled_job_id}")) from exc


# --- whose job is it -------------------------------------------------------------------------------

def registry(ctx: ToolContext) -> JobRegistry:
    # Without the bot's record nothing tells this workspace's jobs from anyone else's.
    return required(ctx.deps.jobs, "Intern cannot tell here which jobs belong to this workspace, so it does not "
                                   "act on job ids.")


async def check_ours(ctx: ToolContext, hub_id: str, kind: JobKind, control: bool) -> None:
    access = await registry(ctx).access(hub_id, kind)
    if not access.ours or (control and not access.may_control):
        raise ToolFeedback(f"Refused: {access.refusal or hub_id + ' is not a job of this workspace'}")


# --- launched for an approval ----------------------------------------------------------------------

def labelled(jobs: list[Any], approval_id: str) -> list[Any]:
    """The jobs that really carry this approval's label: the list is asked for them by a label
    filter, but a Hub or proxy that drops the filter must not make a launch adopt another's job."""
    return [j for j in jobs if (getattr(j, "labels", None) or {}).get(APPROVAL_LABEL) == approval_id]


async def launched_with_label(hub: Any, approval_id: str, namespace: str) -> list[Any]:
    """The Hub's jobs of `namespace` launched for `approval_id`."""
    label = {APPROVAL_LABEL: approval_id}
    jobs = await hub.read(lambda: list(hub.api.list_jobs(labels=label, namespace=namespace)))
    return labelled(jobs, approval_id)
