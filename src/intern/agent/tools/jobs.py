"""`hf_jobs`: Hugging Face Jobs through huggingface_hub.

Launching (run, rerun, scheduled run, scheduled resume) spends money and needs approval: the card is
drawn by `jobs_card.describe`, what was approved is launched by `jobs_launch` (at most one job per
approval, secrets injected by the bot). The arguments are checked in `jobs_args`; what the Hub and the
bot's records say about a job (its price, its state, whose it is) is read through `jobs_hub`. This
module dispatches an operation and runs the ones that read or stop what exists: ps, logs, inspect,
cancel, hardware and the scheduled ps|inspect|delete|suspend|resume.
"""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime
from typing import Any

from intern.agent.context_deps import ToolContext
from intern.agent.errors import ToolFeedback
from intern.agent.ports import JobKind
from intern.agent.tools.base import Tool, ToolResult
from intern.agent.tools.jobs_args import CONTROL_OPS, JobsArgs, policy
from intern.agent.tools.jobs_card import describe
from intern.agent.tools.jobs_code import hub_error
from intern.agent.tools.jobs_hub import check_ours, inspect_job, inspect_schedule, registry
from intern.agent.tools.jobs_launch import create_schedule, launch

TERMINAL = {"COMPLETED", "CANCELED", "ERROR", "DELETED"}
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\r")


def _target(args: JobsArgs) -> tuple[str, JobKind] | None:
    if args.operation in ("rerun", "logs", "inspect", "cancel"):
        return args.job_id or "", "job"
    if args.operation.startswith("scheduled ") and args.operation not in ("scheduled run", "scheduled ps"):
        return args.scheduled_job_id or "", "scheduled"
    return None


# --- execution --------------------------------------------------------------------------------------

async def handle(ctx: ToolContext, args: JobsArgs) -> ToolResult:
    op = args.operation
    target = _target(args)
    if target is not None:
        await check_ours(ctx, *target, control=op in CONTROL_OPS)
    if op in ("run", "rerun"):
        return await launch(ctx, args)
    if op == "scheduled run":
        return await create_schedule(ctx, args)
    handler = {
        "ps": _ps, "logs": _logs, "inspect": _inspect_op, "cancel": _cancel, "hardware": _hardware,
        "scheduled ps": _scheduled_ps, "scheduled inspect": _scheduled_inspect,
        "scheduled delete": _scheduled_simple, "scheduled suspend": _scheduled_simple,
        "scheduled resume": _scheduled_simple,
    }[op]
    return await handler(ctx, args)


def describe_job(job: Any) -> str:
    lines = [f"Job {job.id}: {job.status.stage}" + (f" ({job.status.message})" if job.status.message else ""),
             f"Flavor: {job.flavor}", f"Image: {job.docker_image or job.space_id}",
             f"Command: {shlex.join(job.command or [])[:500]}",
             f"Created: {job.created_at}", f"URL: {job.url}"]
    if job.labels:
        lines.append("Labels: " + ", ".join(f"{k}={v}" for k, v in job.labels.items()))
    return "\n".join(lines)


async def _inspect_op(ctx: ToolContext, args: JobsArgs) -> ToolResult:
    return ToolResult(describe_job(await inspect_job(ctx, args.job_id or "")))


async def _ps(ctx: ToolContext, args: JobsArgs) -> ToolResult:
    ns = await ctx.hub.namespace()
    listed = await ctx.hub.read(lambda: list(ctx.hub.api.list_jobs(namespace=ns)))
    mine = await registry(ctx).ours([str(j.id) for j in listed], "job")
    jobs = [j for j in listed if str(j.id) in mine]
    if not jobs:
        return ToolResult(f"No jobs of this workspace in namespace {ns}.")
    jobs.sort(key=lambda j: j.created_at or datetime.min.replace(tzinfo=UTC), reverse=True)
    rows = [f"{j.id}  {j.status.stage:<10} {j.flavor or '':<14} {j.created_at:%Y-%m-%d %H:%M}" if j.created_at
            else f"{j.id}  {j.status.stage:<10} {j.flavor or ''}" for j in jobs[:30]]
    return ToolResult(f"Jobs of this workspace in {ns} (newest first, {len(jobs)} total):\n" + "\n".join(rows))


def clean_log_line(line: str) -> str:
    return ANSI.sub("", line).rstrip()


NOISE = re.compile(r"^(Downloading|Downloaded|Installed \d+ packages|Prepared \d+ packages|Resolved \d+ packages|"
                   r"Building|Built|Uninstalled|Audited|\s*[+-] \S+==)", re.I)


def clean_logs(lines: list[str]) -> list[str]:
    out = [clean_log_line(x) for x in lines]
    return [x for x in out if x and not NOISE.match(x)]


async def _logs(ctx: ToolContext, args: JobsArgs) -> ToolResult:
    ns = await ctx.hub.namespace()
    job = await inspect_job(ctx, args.job_id or "")
    try:
        lines = await ctx.hub.read(lambda: list(ctx.hub.api.fetch_job_logs(job_id=job.id, namespace=ns,
                                                                            follow=False)))
    except Exception as exc:
        raise ToolFeedback(hub_error(exc, f"the logs of job {job.id}")) from exc
    clean = clean_logs(lines)
    tail = clean[-200:]
    head = f"Job {job.id} is {job.status.stage}. " + (f"Last {len(tail)} of {len(clean)} log lines:" if clean
                                                       else "No log output yet.")
    return ToolResult(head + ("\n" + "\n".join(tail) if tail else ""))


async def _cancel(ctx: ToolContext, args: JobsArgs) -> ToolResult:
    ns = await ctx.hub.namespace()
    job = await inspect_job(ctx, args.job_id or "")
    if job.status.stage in TERMINAL:
        return ToolResult(f"Job {job.id} already ended ({job.status.stage}); nothing to cancel.")
    await ctx.hub.call(ctx.hub.api.cancel_job, job_id=job.id, namespace=ns)
    return ToolResult(f"Job {job.id} cancelled.", artifacts={"cancelled_job": job.id})


async def _hardware(ctx: ToolContext, args: JobsArgs) -> ToolResult:
    await ctx.prices.refresh()
    rows = []
    for f in ctx.prices.all():
        gpu = f.gpu_text() if f.gpus else (f.cpu or "CPU")
        rows.append(f"{f.name:<16} {gpu:<28} ${f.hourly_usd:.2f}/h")
    return ToolResult(f"Hardware flavors (prices from the {ctx.prices.source} table):\n" + "\n".join(rows))


async def _scheduled_ps(ctx: ToolContext, args: JobsArgs) -> ToolResult:
    ns = await ctx.hub.namespace()
    listed = await ctx.hub.read(ctx.hub.api.list_scheduled_jobs, namespace=ns)
    mine = await registry(ctx).ours([str(s.id) for s in listed], "scheduled")
    items = [s for s in listed if str(s.id) in mine]
    if not items:
        return ToolResult(f"No scheduled jobs of this workspace in {ns}.")
    rows = [f"{s.id}  {s.schedule:<14} {'suspended' if s.suspend else 'active':<9} "
            f"{getattr(s.job_spec, 'flavor', '')}" for s in items]
    return ToolResult("Scheduled jobs:\n" + "\n".join(rows))


async def _scheduled_inspect(ctx: ToolContext, args: JobsArgs) -> ToolResult:
    s = await inspect_schedule(ctx, args)
    spec = s.job_spec
    return ToolResult("\n".join([
        f"Scheduled job {s.id}: schedule {s.schedule!r}, {'suspended' if s.suspend else 'active'}",
        f"Flavor: {getattr(spec, 'flavor', '')}", f"Image: {getattr(spec, 'docker_image', '')}",
        f"Command: {shlex.join(getattr(spec, 'command', None) or [])[:500]}",
        f"Last job: {s.status.last_job}", f"Next run: {s.status.next_job_run_at}",
    ]))


async def _scheduled_simple(ctx: ToolContext, args: JobsArgs) -> ToolResult:
    ns = await ctx.hub.namespace()
    fn = {"scheduled delete": ctx.hub.api.delete_scheduled_job, "scheduled suspend": ctx.hub.api.suspend_scheduled_job,
          "scheduled resume": ctx.hub.api.resume_scheduled_job}[args.operation]
    try:
        await ctx.hub.call(fn, scheduled_job_id=args.scheduled_job_id, namespace=ns)
    except Exception as exc:
        raise ToolFeedback(hub_error(exc, f"scheduled job {args.scheduled_job_id}")) from exc
    verb = args.operation.split()[1] + ("d" if args.operation.endswith("e") else "ed")
    return ToolResult(f"Scheduled job {args.scheduled_job_id} {verb}.")


jobs_tool = Tool(
    name="hf_jobs",
    description=(
        "Run and manage Hugging Face Jobs: containers on CPU/GPU hardware billed per minute. `run` takes a Python "
        "`script` (inline code or an https URL, run with uv; list pip packages in `dependencies`) or a `command` "
        "with an `image`, or code from this session's sandbox: `sandbox_path` (a folder with `script` naming the "
        "entry file, or one file; mounted read-only at /project, where the job runs); set `hardware_flavor` and a "
        "`timeout` that fits the work (\"2h\"; default 30m kills "
        "most training). Launches need a teammate's approval: the call returns once the card is decided. "
        "`logs` returns the output so far without waiting; `ps`, `inspect`, `cancel`, `hardware` (prices), and "
        "`scheduled run|ps|inspect|delete|suspend|resume` for cron schedules. HF_TOKEN is injected as a secret."
    ),
    args=JobsArgs,
    handler=handle,
    policy=policy,
    describe=describe,
    read_only=False,
)
