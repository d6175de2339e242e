"""The approval card of a `hf_jobs` launch (run, rerun, scheduled run, scheduled resume) or of a
schedule's deletion: what it will cost, run and change, and the checks computed by code.

Code from the sandbox (`sandbox_path`): the card is prepared from a snapshot of the files
(`code_snapshot.take`); it lists them, the spec hash covers their sha256 and the bot stores the bytes
with the approval (see `jobs_launch` for what happens after approval).
"""

from __future__ import annotations

import shlex

from intern.agent.context_deps import ToolContext
from intern.agent.pricing import Flavor, format_duration, max_cost, parse_timeout
from intern.agent.tools.base import ApprovalInfo, Check
from intern.agent.tools.code_snapshot import (
    MOUNT,
    CodeSnapshot,
    SnapshotFile,
    entry_of,
    local_modules,
    size_text,
    take,
)
from intern.agent.tools.jobs_args import (
    DEFAULT_FLAVOR,
    DEFAULT_TIMEOUT,
    UV_IMAGE,
    JobsArgs,
    is_url,
    runs_per_month,
    timeout_seconds,
)
from intern.agent.tools.jobs_code import IN_PROJECT, code_command, pin_of, runs_repo
from intern.agent.tools.jobs_hub import check_ours, flavor_of, inspect_job, inspect_schedule


async def describe(ctx: ToolContext, args: JobsArgs) -> ApprovalInfo:
    if args.operation == "rerun":
        return await _describe_rerun(ctx, args)
    if args.operation == "scheduled resume":
        return await _describe_resume(ctx, args)
    if args.operation == "scheduled delete":
        return await _describe_delete(ctx, args)
    flavor = await flavor_of(ctx, args.hardware_flavor)
    secs = timeout_seconds(args)
    info = ApprovalInfo(kind="spend", title=f"hf_jobs {args.operation}", flavor=flavor.name, timeout_seconds=secs,
                        hourly_usd=flavor.hourly_usd, estimated_cost_usd=max_cost(flavor, secs))
    info.fields = _fields(ctx, flavor, secs, args)
    if args.sandbox_path is not None:
        code = await take(ctx, args.sandbox_path)
        entry = entry_of(code, args.script, args.command)
        info.snapshot = code
        info.fields[2:2] = await _code_fields(ctx, args, code, entry)
        info.body = code.listing() + (f"\n\n--- {entry.path} ---\n{entry.text}" if entry is not None else "")
        info.body_label = "Files"
        info.checks = await _checks(ctx, args, flavor, secs, code, entry)
    else:
        info.body, info.body_label = _body(args)
        info.checks = await _checks(ctx, args, flavor, secs)
    if args.operation == "scheduled run":
        assert args.schedule is not None
        info.schedule, info.runs_per_month, info.auto_approvable = args.schedule, runs_per_month(args.schedule), False
    return info


def _fields(ctx: ToolContext, flavor: Flavor, secs: int, args: JobsArgs) -> list[tuple[str, str]]:
    hw = flavor.name + (f" ({flavor.gpu_text()})" if flavor.gpus else "")
    fields = [("Hardware flavor", hw),
              ("Timeout", format_duration(secs) + ("" if args.timeout else " (Hub default)"))]
    if args.command:
        fields.append(("Image", args.image or UV_IMAGE))
    if args.dependencies:
        fields.append(("Dependencies", ", ".join(args.dependencies)))
    if args.env:
        fields.append(("Env", ", ".join(f"{k}={v}" for k, v in sorted(args.env.items()))))
    fields.append(("Secrets", "HF_TOKEN (injected by Intern)"))
    if ctx.config.namespace:
        fields.append(("Namespace", ctx.config.namespace))
    return fields


async def _code_fields(ctx: ToolContext, args: JobsArgs, code: CodeSnapshot,
                       entry: SnapshotFile | None) -> list[tuple[str, str]]:
    repo = runs_repo(ctx, await ctx.hub.namespace())
    return [("Code", f"{len(code.files)} file{'s' if len(code.files) != 1 else ''} ({size_text(code.total_bytes)}) "
                     f"from the sandbox {code.kind} {code.root}, committed after approval to {repo} under "
                     f"runs/<approval id>/ and mounted read-only at {MOUNT}"),
            ("Runs", f"{shlex.join(code_command(args.command, args.dependencies, entry)[len(IN_PROJECT):])} (in {MOUNT})")]


def _body(args: JobsArgs) -> tuple[str | None, str]:
    if args.script:
        return args.script, "Script URL" if is_url(args.script) else "Script"
    return shlex.join(args.command or []), "Command"


async def _checks(ctx: ToolContext, args: JobsArgs, flavor: Flavor, secs: int, code: CodeSnapshot | None = None,
                  entry: SnapshotFile | None = None) -> list[Check]:
    from intern.agent.guardrails.ml_checks import job_checks

    script = args.script if args.script and not is_url(args.script) else None
    modules: dict[str, str] | None = None
    if code is not None:
        python = entry is not None and entry.path.endswith(".py")
        script = entry.text if python and entry is not None else None
        modules = local_modules(code, entry) if python and entry is not None else None
    checks = await job_checks(ctx, script=script, command=args.command, flavor=flavor, timeout_seconds=secs,
                              timeout_given=args.timeout is not None, modules=modules)
    if args.script and is_url(args.script):
        checks.insert(0, Check("warn", "Script is a URL: its code was not read by the checks; what runs is "
                                       "whatever that URL serves at launch time"))
    from intern.agent.tools.history import similar_run_checks

    return checks + await similar_run_checks(ctx, args.model_dump(exclude_none=True))


async def _describe_rerun(ctx: ToolContext, args: JobsArgs) -> ApprovalInfo:
    await check_ours(ctx, args.job_id or "", "job", control=False)
    job = await inspect_job(ctx, args.job_id or "")
    flavor = await flavor_of(ctx, args.hardware_flavor or str(job.flavor or DEFAULT_FLAVOR))
    secs = timeout_seconds(args)
    cmd = shlex.join(job.command or [])
    pin = pin_of(job)
    code = [("Code", f"{pin} ({pin.folder}/), read-only at {MOUNT}, as the first run had it")] if pin else []
    return ApprovalInfo(
        kind="spend", title="hf_jobs rerun", flavor=flavor.name, timeout_seconds=secs, hourly_usd=flavor.hourly_usd,
        estimated_cost_usd=max_cost(flavor, secs),
        fields=[("Rerun of", str(job.id)), ("Hardware flavor", flavor.name), ("Timeout", format_duration(secs)),
                ("Image", str(job.docker_image or job.space_id or "")), *code],
        body=cmd, body_label="Command",
        checks=await _command_checks(ctx, list(job.command or []), flavor, secs, args.timeout is not None),
    )


async def _command_checks(ctx: ToolContext, command: list[str], flavor: Flavor, secs: int,
                          timeout_given: bool) -> list[Check]:
    """A rerun or a resumed schedule runs a known command: the same checks as `run` read it."""
    from intern.agent.guardrails.ml_checks import job_checks

    return await job_checks(ctx, script=None, command=command, flavor=flavor, timeout_seconds=secs,
                            timeout_given=timeout_given)


async def _describe_resume(ctx: ToolContext, args: JobsArgs) -> ApprovalInfo:
    await check_ours(ctx, args.scheduled_job_id or "", "scheduled", control=False)
    sj = await inspect_schedule(ctx, args)
    spec = sj.job_spec
    flavor = await flavor_of(ctx, str(getattr(spec, "flavor", None) or DEFAULT_FLAVOR))
    secs = int(getattr(spec, "timeout", None) or parse_timeout(DEFAULT_TIMEOUT))
    return ApprovalInfo(
        kind="spend", title="hf_jobs scheduled resume", flavor=flavor.name, timeout_seconds=secs,
        hourly_usd=flavor.hourly_usd, estimated_cost_usd=max_cost(flavor, secs), schedule=sj.schedule,
        runs_per_month=runs_per_month(sj.schedule) if sj.schedule else None, auto_approvable=False,
        fields=[("Scheduled job", sj.id), ("Hardware flavor", flavor.name), ("Timeout", format_duration(secs))],
        body=shlex.join(getattr(spec, "command", None) or []), body_label="Command",
        checks=await _command_checks(ctx, list(getattr(spec, "command", None) or []), flavor, secs,
                                     getattr(spec, "timeout", None) is not None),
    )


async def _describe_delete(ctx: ToolContext, args: JobsArgs) -> ApprovalInfo:
    await check_ours(ctx, args.scheduled_job_id or "", "scheduled", control=True)
    sj = await inspect_schedule(ctx, args)
    spec = sj.job_spec
    return ApprovalInfo(
        kind="hub_write", title="hf_jobs scheduled delete", schedule=sj.schedule, auto_approvable=False,
        fields=[("Scheduled job", sj.id), ("Schedule", str(sj.schedule)),
                ("Hardware flavor", str(getattr(spec, "flavor", "") or "")),
                ("Effect", "the schedule is deleted for good (suspend it instead to keep it)")],
        body=shlex.join(getattr(spec, "command", None) or []), body_label="Command",
    )
