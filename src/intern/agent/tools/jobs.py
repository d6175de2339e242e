"""`hf_jobs`: Hugging Face Jobs through huggingface_hub.

Launching (run, rerun, scheduled run, scheduled resume) spends money and needs approval; the card is
built by `describe`. Secrets are injected here at launch from the bot's own token: the model never
sees or chooses them.

An approval launches at most one job, even when a process dies between the Hub's answer and the
database write: the launch carries a label with its approval id, the intent is recorded (through
`ctx.deps.launches`, a `LaunchLedger`) before the Hub is asked, a re-executed launch first looks
the label up, and a launch whose answer was lost (timeout, 5xx, dropped connection) is never sent
again — the label tells whether the Hub started it.

Code from the sandbox (`sandbox_path`): the card is prepared from a snapshot of the files
(`code_snapshot.take`); it lists them, the spec hash covers their sha256 and the bot stores the bytes
with the approval. After approval exactly those bytes are committed and mounted (`jobs_code`); a file
changed in the sandbox after the card does not run under that approval (a new request makes a new
card, which supersedes the old one).
"""

from __future__ import annotations

import base64
import re
import shlex
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from intern.agent.context_deps import ToolContext, required
from intern.agent.errors import ToolArgumentError, ToolFeedback, retryable
from intern.agent.ports import JobKind, JobRegistry, LaunchLedger
from intern.agent.pricing import Flavor, format_duration, max_cost, parse_job_timeout, parse_timeout
from intern.agent.tools.base import ApprovalInfo, Check, Policy, Tool, ToolResult
from intern.agent.tools.code_snapshot import (
    MOUNT,
    CodeSnapshot,
    SnapshotFile,
    entry_of,
    local_modules,
    size_text,
    take,
)
from intern.agent.tools.jobs_code import (
    CODE_LABEL,
    IN_PROJECT,
    CodePin,
    approved_entry,
    code_command,
    code_pin,
    hub_error,
    is_relative_file,
    pin_of,
    runs_repo,
)

DEFAULT_FLAVOR = "cpu-basic"
DEFAULT_TIMEOUT = "30m"  # the Hub's default
UV_IMAGE = "ghcr.io/astral-sh/uv:python3.12-bookworm"
APPROVAL_LABEL = "intern-approval"
SESSION_LABEL = "intern-session"
TERMINAL = {"COMPLETED", "CANCELED", "ERROR", "DELETED"}
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|API_KEY|APIKEY|PRIVATE_KEY)", re.I)
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\r")

Operation = Literal[
    "run", "rerun", "ps", "logs", "inspect", "cancel", "hardware",
    "scheduled run", "scheduled ps", "scheduled inspect", "scheduled delete", "scheduled suspend",
    "scheduled resume",
]
SPEND_OPS = {"run", "rerun", "scheduled run", "scheduled resume"}
# Operations that stop or remove what someone else may have launched: the job's requester, an approver
# or an administrator of its channel, or a turn in that channel (DECISIONS "Whose job is it").
CONTROL_OPS = {"cancel", "scheduled suspend", "scheduled delete"}


class JobsArgs(BaseModel):
    """Run and manage Hugging Face Jobs (cloud CPU/GPU containers billed per minute)."""

    operation: Operation = Field(description="What to do")
    script: str | None = Field(None, description="Python code to run with `uv run`, inline or an https URL")
    command: list[str] | None = Field(None, description="Command to run in `image` instead of a script")
    image: str | None = Field(None, description="Docker image for `command` (default: a uv + Python 3.12 image)")
    dependencies: list[str] | None = Field(None, description="pip requirements for script mode (uv --with)")
    hardware_flavor: str | None = Field(None, description="Hardware flavor, e.g. cpu-basic, a10g-large, a100-large")
    timeout: str | int | None = Field(None, description='Maximum run time: a string with a unit ("30m", "2h", "1d") '
                                      'or a whole number of seconds (default 30m)')
    env: dict[str, str] | None = Field(None, description="Environment variables (no secrets: HF_TOKEN is injected)")
    job_id: str | None = Field(None, description="Job id for logs, inspect, cancel, rerun")
    schedule: str | None = Field(None, description='Cron expression or @hourly/@daily/@weekly/@monthly for scheduled run')
    scheduled_job_id: str | None = Field(None, description="Scheduled job id for the scheduled operations")
    sandbox_path: str | None = Field(None, max_length=1000, description=(
        "run / scheduled run: a file or folder in this session's sandbox to run as the job's code (text files, at "
        "most 200 files and 20 MB). It is read when the card is prepared and mounted read-only at /project. With "
        "a folder, `script` names the entry file relative to it (or `command` runs in /project); with a file, "
        "that file is the entry"))

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: object) -> str | None:
        """Whole seconds are kept as their digits, so a spec (and its hash) reads the same whichever
        form the model sent, and a timeout given with a unit is kept exactly as written."""
        if v is None:
            return None
        try:
            seconds = parse_job_timeout(v)
        except ToolArgumentError as exc:
            raise ValueError(str(exc)) from None
        return v if isinstance(v, str) and not v.strip().isdigit() else str(seconds)

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        for key in v or {}:
            if SECRET_NAME.search(key):
                raise ValueError(f"env {key!r} looks like a secret; secrets are injected by Intern at launch "
                                 "(HF_TOKEN is always available inside the job) and must not be passed in env")
        return v

    @model_validator(mode="after")
    def _per_operation(self) -> JobsArgs:
        op = self.operation
        if self.sandbox_path is not None and op not in ("run", "scheduled run"):
            raise ValueError("`sandbox_path` goes with run and scheduled run")
        if op in ("run", "scheduled run") and self.sandbox_path is not None:
            if not self.sandbox_path.strip() or "\x00" in self.sandbox_path:
                raise ValueError("`sandbox_path` must name a file or folder in the sandbox")
            if self.script and self.command:
                raise ValueError("with `sandbox_path`, give `script` (the entry file in it) or `command`, not both")
            if self.script and not is_relative_file(self.script):
                raise ValueError("with `sandbox_path`, `script` names the entry file relative to it (e.g. "
                                 "\"train.py\"), not code, a URL or a path outside it")
        elif op in ("run", "scheduled run"):
            if bool(self.script) == bool(self.command):
                raise ValueError(f"{op} needs exactly one of `script` (Python code or URL) or `command`")
            if self.image and self.script:
                raise ValueError("`image` goes with `command`; script mode uses the uv image")
            if self.dependencies and self.command:
                raise ValueError("`dependencies` apply to script mode; install them in your image or command")
        if op in ("rerun", "logs", "inspect", "cancel") and not self.job_id:
            raise ValueError(f"{op} needs `job_id`")
        if op == "scheduled run" and not self.schedule:
            raise ValueError("scheduled run needs `schedule` (cron, e.g. \"0 3 * * *\", or @daily)")
        if op in ("scheduled inspect", "scheduled delete", "scheduled suspend", "scheduled resume") \
                and not self.scheduled_job_id:
            raise ValueError(f"{op} needs `scheduled_job_id`")
        if self.schedule is not None:
            runs_per_month(self.schedule)  # raises ValueError on a bad expression
        return self


def policy(args: JobsArgs) -> Policy:
    if args.operation in SPEND_OPS:
        return "spend"
    # Deleting a schedule cannot be undone: a card, though it spends nothing.
    return "hub_write" if args.operation == "scheduled delete" else "none"


def runs_per_month(schedule: str) -> int:
    from croniter import croniter

    aliases = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0",
               "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}
    expr = aliases.get(schedule.strip(), schedule.strip())
    if not croniter.is_valid(expr):
        raise ValueError(f"schedule {schedule!r} is not a valid cron expression")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    it = croniter(expr, start)
    end = start + timedelta(days=30)
    count = 0
    while it.get_next(datetime) <= end:
        count += 1
        if count > 50_000:
            break
    return count


def timeout_seconds(args: JobsArgs) -> int:
    return parse_job_timeout(args.timeout or DEFAULT_TIMEOUT)


def inline_command(script: str, dependencies: list[str] | None) -> list[str]:
    """Inline code travels base64-encoded in the command (no upload, nothing on our disk)."""
    encoded = base64.b64encode(script.encode("utf-8")).decode("ascii")
    withs = " ".join(f"--with {shlex.quote(d)}" for d in dependencies or [])
    return ["bash", "-c", f"echo {encoded} | base64 -d > /tmp/intern_job.py && uv run {withs} /tmp/intern_job.py"]


def is_url(script: str) -> bool:
    return script.startswith("https://") or script.startswith("http://")


async def _flavor(ctx: ToolContext, name: str | None) -> Flavor:
    return await ctx.prices.get(name or DEFAULT_FLAVOR)


async def describe(ctx: ToolContext, args: JobsArgs) -> ApprovalInfo:
    if args.operation == "rerun":
        return await _describe_rerun(ctx, args)
    if args.operation == "scheduled resume":
        return await _describe_resume(ctx, args)
    if args.operation == "scheduled delete":
        return await _describe_delete(ctx, args)
    flavor = await _flavor(ctx, args.hardware_flavor)
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
    await _check_ours(ctx, args.job_id or "", "job", control=False)
    job = await _inspect(ctx, args.job_id or "")
    flavor = await _flavor(ctx, args.hardware_flavor or str(job.flavor or DEFAULT_FLAVOR))
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
    await _check_ours(ctx, args.scheduled_job_id or "", "scheduled", control=False)
    sj = await _inspect_schedule(ctx, args)
    spec = sj.job_spec
    flavor = await _flavor(ctx, str(getattr(spec, "flavor", None) or DEFAULT_FLAVOR))
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
    await _check_ours(ctx, args.scheduled_job_id or "", "scheduled", control=True)
    sj = await _inspect_schedule(ctx, args)
    spec = sj.job_spec
    return ApprovalInfo(
        kind="hub_write", title="hf_jobs scheduled delete", schedule=sj.schedule, auto_approvable=False,
        fields=[("Scheduled job", sj.id), ("Schedule", str(sj.schedule)),
                ("Hardware flavor", str(getattr(spec, "flavor", "") or "")),
                ("Effect", "the schedule is deleted for good (suspend it instead to keep it)")],
        body=shlex.join(getattr(spec, "command", None) or []), body_label="Command",
    )


# --- whose job is it -------------------------------------------------------------------------------

def _registry(ctx: ToolContext) -> JobRegistry:
    # Without the bot's record nothing tells this workspace's jobs from anyone else's.
    return required(ctx.deps.jobs, "Intern cannot tell here which jobs belong to this workspace, so it does not "
                                   "act on job ids.")


async def _check_ours(ctx: ToolContext, hub_id: str, kind: JobKind, control: bool) -> None:
    access = await _registry(ctx).access(hub_id, kind)
    if not access.ours or (control and not access.may_control):
        raise ToolFeedback(f"Refused: {access.refusal or hub_id + ' is not a job of this workspace'}")


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
        await _check_ours(ctx, *target, control=op in CONTROL_OPS)
    if op in ("run", "rerun"):
        return await _launch(ctx, args)
    if op == "scheduled run":
        return await _schedule(ctx, args)
    handler = {
        "ps": _ps, "logs": _logs, "inspect": _inspect_op, "cancel": _cancel, "hardware": _hardware,
        "scheduled ps": _scheduled_ps, "scheduled inspect": _scheduled_inspect,
        "scheduled delete": _scheduled_simple, "scheduled suspend": _scheduled_simple,
        "scheduled resume": _scheduled_simple,
    }[op]
    return await handler(ctx, args)


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


def labelled(jobs: list[Any], approval_id: str) -> list[Any]:
    """The jobs that really carry this approval's label: the list is asked for them by a label
    filter, but a Hub or proxy that drops the filter must not make a launch adopt another's job."""
    return [j for j in jobs if (getattr(j, "labels", None) or {}).get(APPROVAL_LABEL) == approval_id]


async def launched_with_label(hub: Any, approval_id: str, namespace: str) -> list[Any]:
    """The Hub's jobs of `namespace` launched for `approval_id`."""
    label = {APPROVAL_LABEL: approval_id}
    jobs = await hub.read(lambda: list(hub.api.list_jobs(labels=label, namespace=namespace)))
    return labelled(jobs, approval_id)


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


async def _launch(ctx: ToolContext, args: JobsArgs) -> ToolResult:
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
    flavor = await _flavor(ctx, str(job.flavor or args.hardware_flavor or DEFAULT_FLAVOR))
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
        old = await _inspect(ctx, args.job_id or "")
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


async def _schedule(ctx: ToolContext, args: JobsArgs) -> ToolResult:
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
    flavor = await _flavor(ctx, common["flavor"])
    secs = common["timeout"]
    return ToolResult(f"Scheduled job {sj.id} created with schedule {sj.schedule!r}.", artifacts={"scheduled_job": {
        "id": sj.id, "schedule": sj.schedule, "namespace": ns, "flavor": flavor.name, "timeout_seconds": secs,
        "hourly_usd": flavor.hourly_usd, "estimated_cost_usd": max_cost(flavor, secs),
        "approval_id": ctx.approval_id}})


async def _inspect(ctx: ToolContext, job_id: str) -> Any:
    ns = await ctx.hub.namespace()
    try:
        return await ctx.hub.read(ctx.hub.api.inspect_job, job_id=job_id, namespace=ns)
    except Exception as exc:
        raise ToolFeedback(hub_error(exc, f"job {job_id}")) from exc




def describe_job(job: Any) -> str:
    lines = [f"Job {job.id}: {job.status.stage}" + (f" ({job.status.message})" if job.status.message else ""),
             f"Flavor: {job.flavor}", f"Image: {job.docker_image or job.space_id}",
             f"Command: {shlex.join(job.command or [])[:500]}",
             f"Created: {job.created_at}", f"URL: {job.url}"]
    if job.labels:
        lines.append("Labels: " + ", ".join(f"{k}={v}" for k, v in job.labels.items()))
    return "\n".join(lines)


async def _inspect_op(ctx: ToolContext, args: JobsArgs) -> ToolResult:
    return ToolResult(describe_job(await _inspect(ctx, args.job_id or "")))


async def _ps(ctx: ToolContext, args: JobsArgs) -> ToolResult:
    ns = await ctx.hub.namespace()
    listed = await ctx.hub.read(lambda: list(ctx.hub.api.list_jobs(namespace=ns)))
    mine = await _registry(ctx).ours([str(j.id) for j in listed], "job")
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
    job = await _inspect(ctx, args.job_id or "")
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
    job = await _inspect(ctx, args.job_id or "")
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
    mine = await _registry(ctx).ours([str(s.id) for s in listed], "scheduled")
    items = [s for s in listed if str(s.id) in mine]
    if not items:
        return ToolResult(f"No scheduled jobs of this workspace in {ns}.")
    rows = [f"{s.id}  {s.schedule:<14} {'suspended' if s.suspend else 'active':<9} "
            f"{getattr(s.job_spec, 'flavor', '')}" for s in items]
    return ToolResult("Scheduled jobs:\n" + "\n".join(rows))


async def _inspect_schedule(ctx: ToolContext, args: JobsArgs) -> Any:
    ns = await ctx.hub.namespace()
    try:
        return await ctx.hub.read(ctx.hub.api.inspect_scheduled_job, scheduled_job_id=args.scheduled_job_id,
                                  namespace=ns)
    except Exception as exc:
        raise ToolFeedback(hub_error(exc, f"scheduled job {args.scheduled_job_id}")) from exc


async def _scheduled_inspect(ctx: ToolContext, args: JobsArgs) -> ToolResult:
    s = await _inspect_schedule(ctx, args)
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
