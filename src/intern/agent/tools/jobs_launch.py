"""Launching what a card approved: a job (run, rerun) or a schedule (scheduled run).

Secrets are injected here at launch from the bot's own token: the model never sees or chooses them.

An approval launches at most one job, even when a process dies between the Hub's answer and the
database write: the launch carries a label with its approval id, the intent is recorded (through
`ctx.deps.launches`, a `LaunchLedger`) before the Hub is asked, a re-executed launch first looks
the label up, and a launch whose answer was lost (timeout, 5xx, dropped connection) is never sent
again — the label tells whether the Hub started it.

Code from the sandbox: after approval exactly the bytes the card listed are committed and mounted
(`jobs_code`); a file changed in the sandbox after the card does not run under that approval (a new
request makes a new card, which supersedes the old one).
"""

from __future__ import annotations

import base64
import shlex
from typing import Any

from intern.agent.context_deps import ToolContext
from intern.agent.errors import ToolFeedback, retryable
from intern.agent.ports import LaunchLedger
from intern.agent.pricing import format_duration, max_cost
from intern.agent.tools.base import ToolResult
from intern.agent.tools.code_snapshot import MOUNT
from intern.agent.tools.jobs_args import DEFAULT_FLAVOR, UV_IMAGE, JobsArgs, is_url, timeout_seconds
from intern.agent.tools.jobs_code import (
    CODE_LABEL,
    CodePin,
    approved_entry,
    code_command,
    code_pin,
    hub_error,
    pin_of,
)
from intern.agent.tools.jobs_hub import (
    APPROVAL_LABEL,
    SESSION_LABEL,
    flavor_of,
    inspect_job,
    launched_with_label,
)


def inline_command(script: str, dependencies: list[str] | None) -> list[str]:
    """Inline code travels base64-encoded in the command (no upload, nothing on our disk)."""
    encoded = base64.b64encode(script.encode("utf-8")).decode("ascii")
    withs = " ".join(f"--with {shlex.quote(d)}" for d in dependencies or [])
    return ["bash", "-c", f"echo {encoded} | base64 -d > /tmp/intern_job.py && uv run {withs} /tmp/intern_job.py"]


def _labels(ctx: ToolContext, pin: CodePin | None = None) -> dict[str, str]:
    labels = {SESSION_LABEL: ctx.session_id}
    if ctx.approval_id:
        labels[APPROVAL_LABEL] = ctx.approval_id
    if pin is not None:
        labels[CODE_LABEL] = pin.label()
    return labels


def _secrets(ctx: ToolContext) -> dict[str, str]:
    token = ctx.hub.token_for_job_secrets()
    return {"HF_TOKEN": token} if token else {}


async def _already_launched(ctx: ToolContext, ns: str) -> Any | None:
    if not ctx.approval_id:
        return None
    jobs = await launched_with_label(ctx.hub, ctx.approval_id, ns)
    return jobs[0] if jobs else None


async def _find_launched(ctx: ToolContext, ns: str) -> Any | None:
    try:
        return await _already_launched(ctx, ns)
    except Exception as exc:
        raise ToolFeedback("Could not ask the Hub whether this approved job was already started ("
                           + hub_error(exc, "the job list") + "), so nothing was launched. Try again in a "
                           "moment: the approval still holds.") from exc


async def launch(ctx: ToolContext, args: JobsArgs) -> ToolResult:
    ns = await ctx.hub.namespace()
    secs = timeout_seconds(args)
    job = await _find_launched(ctx, ns)
    pin = None
    if job is None:
        pin = await code_pin(ctx, args.sandbox_path, ns)
        ledger = ctx.deps.launches
        if ledger is not None and ctx.approval_id:
            await ledger.intent(ctx.session_id, ctx.approval_id, ns)
        job = await _submit_once(ctx, args, ns, secs, ledger, pin)
    flavor = await flavor_of(ctx, str(job.flavor or args.hardware_flavor or DEFAULT_FLAVOR))
    artifact = {
        "kind": "job", "hf_job_id": job.id, "namespace": ns, "flavor": flavor.name, "timeout_seconds": secs,
        "hourly_usd": flavor.hourly_usd, "estimated_cost_usd": max_cost(flavor, secs), "url": job.url,
        "approval_id": ctx.approval_id, "stage": job.status.stage, "labels": dict(job.labels or {}),
    }
    code = pin or pin_of(job)
    if code is not None:
        artifact["code"] = str(code)
    text = (f"Job {job.id} submitted on {flavor.name} (timeout {format_duration(secs)}, at most "
            f"${artifact['estimated_cost_usd']:.2f}). Stage: {job.status.stage}. URL: {job.url}\n"
            + (f"Code: {code.repo} at commit {code.commit} ({code.folder}/), mounted read-only at {MOUNT}.\n"
               if code is not None else "")
            + "Intern follows it and tells you in this conversation when it ends; use `logs` to read its "
            "output so far.")
    return ToolResult(text, artifacts={"job": artifact})


async def _submit_once(ctx: ToolContext, args: JobsArgs, ns: str, secs: int, ledger: LaunchLedger | None,
                       pin: CodePin | None = None) -> Any:
    try:
        return await _submit(ctx, args, ns, secs, pin)
    except ToolFeedback as exc:
        await _abandon(ctx, ledger, str(exc))
        raise
    except Exception as exc:
        if not (retryable(exc) and ctx.approval_id):
            await _abandon(ctx, ledger, hub_error(exc, "the job launch"))
            raise ToolFeedback("The Hub refused to start the job: " + hub_error(exc, "the job launch")
                               + " Nothing was launched.") from exc
        failure = exc
    # The answer was lost, not necessarily the launch: the label says whether the Hub started it.
    try:
        found = await _already_launched(ctx, ns)
    except Exception as exc:
        raise ToolFeedback("The Hub did not confirm the launch (" + hub_error(failure, "the job launch")
                           + ") and could not be asked whether it started it. Intern keeps looking for the job "
                           "by its approval label and follows it if it appears; do not launch it again.") from exc
    if found is not None:
        return found
    await _abandon(ctx, ledger, hub_error(failure, "the job launch"))
    raise ToolFeedback("The Hub did not start the job: " + hub_error(failure, "the job launch")
                       + " It has no job with this approval's label, so nothing was launched.") from failure


async def _abandon(ctx: ToolContext, ledger: LaunchLedger | None, reason: str) -> None:
    if ledger is not None and ctx.approval_id:
        await ledger.abandon(ctx.approval_id, reason[:500])


async def _submit(ctx: ToolContext, args: JobsArgs, ns: str, secs: int, pin: CodePin | None = None) -> Any:
    api = ctx.hub.api
    common: dict[str, Any] = dict(env=args.env or None, secrets=_secrets(ctx) or None, timeout=secs,
                                  labels=_labels(ctx, pin), namespace=ns)
    if args.operation == "rerun":
        old = await inspect_job(ctx, args.job_id or "")
        flavor = args.hardware_flavor or old.flavor or DEFAULT_FLAVOR
        env = {**(old.environment or {}), **(args.env or {})}
        old_pin = pin_of(old)  # a rerun keeps the code it ran, pinned to the same commit
        return await ctx.hub.call(api.run_job, image=old.docker_image or old.space_id or UV_IMAGE,
                                  command=list(old.command or []), flavor=flavor, volumes=old.volumes or None,
                                  **{**common, "env": env or None, "labels": _labels(ctx, old_pin)})
    flavor = args.hardware_flavor or DEFAULT_FLAVOR
    if pin is not None:
        entry = await approved_entry(ctx, args.script, args.command)
        return await ctx.hub.call(api.run_job, image=args.image or UV_IMAGE, command=code_command(args.command, args.dependencies, entry),
                                  flavor=flavor, volumes=[pin.volume()], **common)
    if args.command:
        return await ctx.hub.call(api.run_job, image=args.image or UV_IMAGE, command=args.command, flavor=flavor,
                                  **common)
    assert args.script is not None
    if is_url(args.script):
        return await ctx.hub.call(api.run_uv_job, args.script, dependencies=args.dependencies, flavor=flavor,
                                  **common)
    return await ctx.hub.call(api.run_job, image=UV_IMAGE, command=inline_command(args.script, args.dependencies),
                              flavor=flavor, **common)


async def create_schedule(ctx: ToolContext, args: JobsArgs) -> ToolResult:
    ns = await ctx.hub.namespace()
    api = ctx.hub.api
    assert args.schedule is not None
    pin = await code_pin(ctx, args.sandbox_path, ns)
    common: dict[str, Any] = dict(schedule=args.schedule, env=args.env or None, secrets=_secrets(ctx) or None,
                                  timeout=timeout_seconds(args), flavor=args.hardware_flavor or DEFAULT_FLAVOR,
                                  labels=_labels(ctx, pin), namespace=ns)
    if pin is not None:
        sj = await ctx.hub.call(api.create_scheduled_job, image=args.image or UV_IMAGE,
                                command=code_command(args.command, args.dependencies, await approved_entry(ctx, args.script, args.command)), volumes=[pin.volume()],
                                **common)
    elif args.command:
        sj = await ctx.hub.call(api.create_scheduled_job, image=args.image or UV_IMAGE, command=args.command, **common)
    elif args.script and is_url(args.script):
        sj = await ctx.hub.call(api.create_scheduled_uv_job, args.script, dependencies=args.dependencies, **common)
    else:
        assert args.script is not None
        sj = await ctx.hub.call(api.create_scheduled_job, image=UV_IMAGE,
                                command=inline_command(args.script, args.dependencies), **common)
    flavor = await flavor_of(ctx, common["flavor"])
    secs = common["timeout"]
    return ToolResult(f"Scheduled job {sj.id} created with schedule {sj.schedule!r}.", artifacts={"scheduled_job": {
        "id": sj.id, "schedule": sj.schedule, "namespace": ns, "flavor": flavor.name, "timeout_seconds": secs,
        "hourly_usd": flavor.hourly_usd, "estimated_cost_usd": max_cost(flavor, secs),
        "approval_id": ctx.approval_id}})
