"""`sandbox_create`, `sandbox_bash`, `sandbox_read`, `sandbox_write`, `sandbox_edit`: a private Hub Space per
session where the agent tries code, running the exec server Intern ships (`intern.sandbox`).

Lifecycle. A sandbox is created lazily (the first sandbox call of a session starts one on free
cpu-basic hardware) or with `sandbox_create` on the requested hardware, which needs a spend approval
when that hardware is not free. The bot's registry (`SandboxRegistry`, in `ctx.deps.sandboxes`)
records it BEFORE the Space exists, so a crash at any point leaves a row its sweeper deletes; it also
deletes sandboxes of ended sessions and idle ones. Creating a Space uses the bot's own Hub token
(through `ctx.hub`); the Space receives a random token of its own, as a Space secret, which the
registry stores encrypted, and the read-only Hub token (INTERN_HF_READ_TOKEN) as its HF_TOKEN when one
is configured. The bot's write token never reaches a sandbox: code running there is chosen by the
model, or by text injected into what it reads. A Space that fails to build is deleted at once and the failure comes back
as the tool result.

Reaching the server. The Hub's runtime names the Space's domains (`<owner>-<name>.hf.space`); the
server is called over https there, and over plain http only when the domain is a loopback address
(the Hub stand-in in tests), where traffic never leaves the machine. A private Space only answers
requests that carry a token allowed to read it: the read-only token is sent to `*.hf.space` hosts and
nowhere else (without one, a private Space cannot be reached: `intern doctor` says so); the sandbox
token travels in its own header.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, Field, field_validator

from intern.agent.context_deps import ToolContext, required
from intern.agent.errors import ToolArgumentError, ToolFeedback, retryable
from intern.agent.ports import SandboxRecord, SandboxRegistry
from intern.agent.pricing import flavor_from_hub, format_duration, parse_timeout
from intern.agent.tools.base import ApprovalInfo, Check, Policy, Tool, ToolResult
from intern.sandbox import TOKEN_ENV, TOKEN_HEADER, space_files

DEFAULT_HARDWARE = "cpu-basic"
FREE_HARDWARE = frozenset({"cpu-basic"})  # the Hub's free Space tier
NOT_FOR_DOCKER = frozenset({"zero-a10g"})  # ZeroGPU serves Gradio Spaces only
PAID_SLEEP_SECONDS = 3600  # paid hardware sleeps after an idle hour even if the sweeper is down
SPACES_DOMAIN = ".hf.space"
DEFAULT_BASH_TIMEOUT = 120
MAX_BASH_TIMEOUT = 1800
FAILED_STAGES = frozenset({"BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "PAUSED", "STOPPED", "DELETING"})
PRICE_CACHE_SECONDS = 3600.0
ENDED_WHILE_STARTING = "The session ended while its sandbox was starting."
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


class SandboxFailed(ToolFeedback):
    """The sandbox could not be started or reached; the message says what happened and what to do."""


# ---------------------------------------------------------------- arguments

def space_hardware_names() -> tuple[str, ...]:
    from huggingface_hub import SpaceHardware

    return tuple(h.value for h in SpaceHardware if h.value not in NOT_FOR_DOCKER)


class CreateArgs(BaseModel):
    hardware: str = Field(DEFAULT_HARDWARE, description="Space hardware: cpu-basic (free), cpu-upgrade, t4-small, "
                                                         "t4-medium, l4x1, a10g-small, a10g-large, l40sx1, a100-large, …")

    @field_validator("hardware")
    @classmethod
    def _known(cls, v: str) -> str:
        v = v.strip()
        names = space_hardware_names()
        if v not in names:
            raise ValueError(f"unknown Space hardware {v!r}; choose one of: {', '.join(names)}")
        return v


class BashArgs(BaseModel):
    command: str = Field(..., min_length=1, description="Shell command, run with bash in the sandbox's work folder")
    timeout: int | str | None = Field(None, description='Seconds, or a duration such as "90s" or "10m" (default 2m, '
                                                        'at most 30m). Longer work: run it in the background '
                                                        '(nohup … > log 2>&1 &) and look at the log.')

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: int | str | None) -> int | str | None:
        if v is not None:
            bash_timeout(v)
        return v


class ReadArgs(BaseModel):
    path: str = Field(..., min_length=1, description="File path, absolute or relative to the work folder")
    offset: int = Field(1, ge=1, description="First line to show (1-based)")
    limit: int = Field(2000, ge=1, le=5000, description="Most lines to show")


class WriteArgs(BaseModel):
    path: str = Field(..., min_length=1, description="File path, absolute or relative to the work folder")
    content: str = Field(..., description="The whole new content of the file")


class EditArgs(BaseModel):
    path: str = Field(..., min_length=1, description="File path, absolute or relative to the work folder")
    old_str: str = Field(..., min_length=1, description="Text to replace, copied from the file")
    new_str: str = Field(..., description="Replacement text")
    replace_all: bool = Field(False, description="Replace every match instead of requiring exactly one")


def bash_timeout(value: int | str | None) -> int:
    if value is None:
        return DEFAULT_BASH_TIMEOUT
    try:
        seconds = value if isinstance(value, int) else parse_timeout(value)
    except ToolArgumentError as exc:
        raise ValueError(str(exc)) from None
    if not 0 < seconds <= MAX_BASH_TIMEOUT:
        raise ValueError(f"timeout must be between 1 s and {format_duration(MAX_BASH_TIMEOUT)}; run longer work "
                         "in the background and check on it")
    return seconds


def create_policy(args: CreateArgs) -> Policy:
    return "none" if args.hardware in FREE_HARDWARE else "spend"


# ---------------------------------------------------------------- prices and the approval card

async def space_hourly_usd(ctx: ToolContext, hardware: str) -> float:
    """The Hub's Spaces hardware list (cached), else the one price table; cpu-basic is free."""
    if hardware in FREE_HARDWARE:
        return 0.0
    live = await _space_prices(ctx)
    if hardware in live:
        return live[hardware]
    return (await ctx.prices.get(hardware)).hourly_usd


async def _space_prices(ctx: ToolContext) -> dict[str, float]:
    cache = ctx.deps.cache
    key = f"hub:spaces-hardware:{ctx.hub.endpoint}"
    if cache is not None and (hit := await cache.get(key)):
        return {k: float(v) for k, v in json.loads(hit).items()}
    try:
        items = await ctx.hub.call(ctx.hub.api.list_spaces_hardware)
    except Exception:
        return {}
    prices = {item.name: round(flavor_from_hub(item).hourly_usd, 4) for item in items}
    if cache is not None:
        await cache.set(key, json.dumps(prices), PRICE_CACHE_SECONDS)
    return prices


async def describe_create(ctx: ToolContext, args: CreateArgs) -> ApprovalInfo:
    hourly = await space_hourly_usd(ctx, args.hardware)
    namespace = ctx.config.namespace or await ctx.hub.namespace()
    reg = ctx.deps.sandboxes
    ttl = format_duration(reg.idle_ttl_seconds) if reg is not None else "a while"
    info = ApprovalInfo(kind="spend", title=f"sandbox_create on {args.hardware}", flavor=args.hardware,
                        hourly_usd=hourly, estimated_cost_usd=round(hourly, 4))
    info.fields = [("Hardware", args.hardware), ("Price", f"${hourly:.2f} per hour, reserved one hour at a time"),
                   ("Space", f"private, in {namespace}"),
                   ("Ends", f"when the session ends, or after {ttl} without use")]
    current = await reg.live(ctx.session_id) if reg is not None else None
    if current is not None and current.hardware != args.hardware:
        info.checks.append(Check("warn", f"Replaces this session's sandbox on {current.hardware}: files there are "
                                         "lost"))
    return info


# ---------------------------------------------------------------- creating

_starting: set[asyncio.Task[Any]] = set()  # strong references: a start outlives a cancelled turn


def registry(ctx: ToolContext) -> SandboxRegistry:
    reg = required(ctx.deps.sandboxes, "Sandboxes are not available here: this process has no sandbox registry.")
    if not ctx.hub.has_token:
        raise ToolFeedback("Sandboxes need a Hub token: set HF_TOKEN for Intern.")
    return reg


async def ensure(ctx: ToolContext) -> tuple[SandboxRecord, str]:
    """The session's sandbox, started on free hardware when there is none; and a note for a new one."""
    reg = registry(ctx)
    async with reg.session_lock(ctx.session_id):
        rec = await reg.live(ctx.session_id)
        if rec is not None:
            return rec, ""
        rec = await start(ctx, reg, DEFAULT_HARDWARE)
    return rec, (f"[Started a new sandbox on {DEFAULT_HARDWARE} ({rec.space_id}); files of any earlier sandbox "
                 "are not in it.]\n")


async def existing(ctx: ToolContext) -> SandboxRecord:
    reg = registry(ctx)
    async with reg.session_lock(ctx.session_id):
        rec = await reg.live(ctx.session_id)
    if rec is None:
        raise ToolArgumentError("This session has no running sandbox, so there are no files to send (a sandbox "
                                "ends with its session or after a while without use). Write and test the code with "
                                "sandbox_write and sandbox_bash, then pass its path as sandbox_path.")
    return rec


async def start(ctx: ToolContext, reg: SandboxRegistry, hardware: str) -> SandboxRecord:
    namespace = ctx.config.namespace or await ctx.hub.namespace()
    space_id = f"{namespace}/intern-sandbox-{secrets.token_hex(6)}"
    token = secrets.token_urlsafe(32)
    hourly = await space_hourly_usd(ctx, hardware)
    sid = await reg.record(session_id=ctx.session_id, space_id=space_id, hardware=hardware, hourly_usd=hourly,
                           token=token)
    task = asyncio.ensure_future(_bring_up(ctx, reg, SandboxRecord(sid, ctx.session_id, space_id, hardware,
                                                                    hourly, None, token)))
    _starting.add(task)
    task.add_done_callback(_settled)
    return await asyncio.shield(task)


def _settled(task: asyncio.Task[Any]) -> None:
    _starting.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: nobody may be awaiting it after a stop


async def _bring_up(ctx: ToolContext, reg: SandboxRegistry, rec: SandboxRecord) -> SandboxRecord:
    deadline = asyncio.get_running_loop().time() + reg.start_timeout_seconds
    try:
        await _create_space(ctx, rec)
        url = await _wait_running(ctx, reg, rec, deadline)
        if not await reg.mark_running(rec.id, url):
            raise SandboxFailed(ENDED_WHILE_STARTING)
        await _wait_healthy(ctx, url, rec.token, deadline)
    except Exception as exc:
        known = isinstance(exc, SandboxFailed)
        reason = str(exc) if known else f"{type(exc).__name__}: {exc}"
        # a Space deleted under a start means the session was stopped meanwhile
        ended = not known and not await reg.starting(rec.id)
        gone = await reg.discard(rec.id, reason)
        why = reason if known else ENDED_WHILE_STARTING if ended else f"Could not start a sandbox: {reason}."
        raise SandboxFailed(why + cleanup_note(gone)) from exc
    return SandboxRecord(rec.id, rec.session_id, rec.space_id, rec.hardware, rec.hourly_usd, url, rec.token)


async def _create_space(ctx: ToolContext, rec: SandboxRecord) -> None:
    from huggingface_hub import CommitOperationAdd

    api = ctx.hub.api
    sleep = None if rec.hardware in FREE_HARDWARE else PAID_SLEEP_SECONDS
    await ctx.hub.call(api.create_repo, rec.space_id, repo_type="space", space_sdk="docker", private=True,
                       space_hardware=rec.hardware, space_sleep_time=sleep)
    await ctx.hub.call(api.add_space_secret, rec.space_id, TOKEN_ENV, rec.token,
                       description="Intern sandbox token (random, for this sandbox only)")
    read = ctx.hub.token_for_sandboxes()
    if read:
        await ctx.hub.call(api.add_space_secret, rec.space_id, "HF_TOKEN", read,
                           description="Read-only Hub token (INTERN_HF_READ_TOKEN): gated models, private data")
    ops = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=data) for path, data in space_files().items()]
    await ctx.hub.call(api.create_commit, rec.space_id, operations=ops, repo_type="space",
                       commit_message="Intern sandbox exec server")


async def _wait_running(ctx: ToolContext, reg: SandboxRegistry, rec: SandboxRecord, deadline: float) -> str:
    loop = asyncio.get_running_loop()
    stage = "unknown"
    while loop.time() < deadline:
        try:
            runtime = await ctx.hub.call(ctx.hub.api.get_space_runtime, rec.space_id)
        except Exception as exc:
            if not retryable(exc):
                raise
            stage = f"unknown: {type(exc).__name__}"
            await asyncio.sleep(reg.poll_seconds)
            continue
        stage = str(runtime.stage)
        if stage == "RUNNING" and runtime.hardware in (None, rec.hardware) and (url := space_url(runtime.raw)):
            return url
        if stage in FAILED_STAGES:
            raise SandboxFailed(failure_message(rec, stage, runtime.raw.get("errorMessage")))
        await asyncio.sleep(reg.poll_seconds)
    raise SandboxFailed(f"The sandbox Space {rec.space_id} did not start within "
                        f"{format_duration(reg.start_timeout_seconds)} (last stage {stage}). Try again, or other "
                        "hardware.")


def failure_message(rec: SandboxRecord, stage: str, detail: Any, what: str = "failed to start") -> str:
    why = f": {str(detail).strip()[-1500:]}" if detail else "."
    return (f"The sandbox Space {rec.space_id} on {rec.hardware} {what} ({stage}){why}\nA new sandbox call starts "
            "a fresh Space; or choose other hardware.")


def cleanup_note(gone: bool) -> str:
    if gone:
        return "\nThe Space was deleted: nothing is left behind."
    return "\nDeleting the Space failed for now; Intern keeps trying until it is gone."


async def _wait_healthy(ctx: ToolContext, url: str, token: str, deadline: float) -> None:
    loop = asyncio.get_running_loop()
    last = "no answer"
    while loop.time() < deadline:
        try:
            r = await ctx.http.get(f"{url}/health", headers=headers(ctx, url, token), timeout=10.0)
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}"
        await asyncio.sleep(0.2)
    raise SandboxFailed(f"The sandbox is RUNNING on the Hub but its server does not answer ({last}). Try again.")


def space_url(raw: dict[str, Any]) -> str | None:
    domains = [d for d in raw.get("domains") or [] if isinstance(d, dict) and d.get("domain")]
    ready = [d for d in domains if d.get("stage") == "READY"] or domains
    if not ready:
        return None
    host = str(ready[0]["domain"])
    return f"{'http' if is_loopback(host) else 'https'}://{host}"


def is_loopback(host: str) -> bool:
    name = urlsplit(f"//{host}").hostname or ""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def headers(ctx: ToolContext, url: str, token: str) -> dict[str, str]:
    out = {TOKEN_HEADER: token}
    host = urlsplit(url).hostname or ""
    read = ctx.hub.token_for_sandboxes()
    if read and host.endswith(SPACES_DOMAIN):
        out["Authorization"] = f"Bearer {read}"  # the Hub lets into a private Space only who may read it
    return out


# ---------------------------------------------------------------- calling the server

async def call(ctx: ToolContext, route: str, payload: dict[str, Any], wait_seconds: float,
               *, new_sandbox: bool = True) -> tuple[dict[str, Any], str]:
    """POST to the session's sandbox server; its answer, and the note about a new sandbox if one was started.
    With `new_sandbox=False` a session without a running sandbox is an argument error (a new one would be empty)."""
    if new_sandbox:
        rec, note = await ensure(ctx)
    else:
        rec, note = await existing(ctx), ""
    reg = registry(ctx)
    assert rec.url is not None
    await reg.touch(rec.id)
    try:
        r = await ctx.http.post(f"{rec.url}/{route}", json=payload, headers=headers(ctx, rec.url, rec.token),
                                timeout=wait_seconds)
    except httpx.TimeoutException:
        raise ToolFeedback(f"The sandbox did not answer within {format_duration(wait_seconds)}.") from None
    except httpx.TransportError as exc:
        raise await unreachable(ctx, reg, rec, exc) from None
    await reg.touch(rec.id)
    body = answer_json(r)
    if r.status_code == 200 and body is not None:
        return body, note
    if body is not None and isinstance(body.get("error"), str):
        raise ToolFeedback(note + body["error"])
    raise await unreachable(ctx, reg, rec, f"HTTP {r.status_code}")


def answer_json(r: httpx.Response) -> dict[str, Any] | None:
    try:
        body = r.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def unreachable(ctx: ToolContext, reg: SandboxRegistry, rec: SandboxRecord, why: Any) -> ToolFeedback:
    """Why the server did not answer, from the Hub's view of the Space; a dead Space is discarded."""
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        runtime = await ctx.hub.call(ctx.hub.api.get_space_runtime, rec.space_id)
    except RepositoryNotFoundError:
        await reg.discard(rec.id, "the Space no longer exists")
        return ToolFeedback("The sandbox Space no longer exists; the next sandbox call starts a new one (its files "
                            "are gone).")
    except Exception as exc:
        return ToolFeedback(f"Could not reach the sandbox ({why}), nor ask the Hub about it ({exc}). Try again.")
    stage = str(runtime.stage)
    if stage in FAILED_STAGES:
        gone = await reg.discard(rec.id, f"stage {stage}")
        return ToolFeedback(failure_message(rec, stage, runtime.raw.get("errorMessage"), "stopped working")
                            + cleanup_note(gone))
    return ToolFeedback(f"Could not reach the sandbox ({why}); the Hub says it is {stage}. Try again in a moment.")


# ---------------------------------------------------------------- the tools

async def create_handler(ctx: ToolContext, args: CreateArgs) -> ToolResult:
    reg = registry(ctx)
    async with reg.session_lock(ctx.session_id):
        current = await reg.live(ctx.session_id)
        if current is not None and current.hardware == args.hardware:
            return ToolResult(f"This session's sandbox is already running on {current.hardware} "
                              f"({current.space_id}).", artifacts=artifacts(current))
        if current is not None:
            await reg.discard(current.id, f"replaced by a sandbox on {args.hardware}")
        rec = await start(ctx, reg, args.hardware)
    price = "free" if rec.hourly_usd == 0 else f"${rec.hourly_usd:.2f}/hour"
    replaced = f" It replaces the sandbox on {current.hardware}, whose files are gone." if current else ""
    return ToolResult(
        f"Sandbox ready: private Space {rec.space_id} on {rec.hardware} ({price}).{replaced} Use sandbox_bash, "
        "sandbox_read, sandbox_write and sandbox_edit; files stay while the sandbox lives. It is deleted when the "
        f"session ends or after {format_duration(reg.idle_ttl_seconds)} without use.", artifacts=artifacts(rec))


def artifacts(rec: SandboxRecord) -> dict[str, Any]:
    return {"sandbox_id": rec.id, "space_id": rec.space_id, "hardware": rec.hardware, "hourly_usd": rec.hourly_usd}


async def bash_handler(ctx: ToolContext, args: BashArgs) -> ToolResult:
    seconds = bash_timeout(args.timeout)
    body, note = await call(ctx, "bash", {"command": args.command, "timeout": seconds}, wait_seconds=seconds + 30.0)
    output = clean_output(str(body.get("output", ""))).rstrip("\n") or "(no output)"
    code, took = body.get("exit_code"), float(body.get("seconds") or 0.0)
    if body.get("timed_out"):
        footer = (f"[timed out after {format_duration(seconds)}: the command and every process it started were "
                  "killed]")
    elif isinstance(code, int) and code < 0:
        footer = f"[killed by signal {-code} after {took:.1f} s]"
    else:
        footer = f"[exit code {code}, {took:.1f} s]"
    failed = bool(body.get("timed_out")) or code != 0
    return ToolResult(f"{note}{output}\n{footer}", is_error=failed)


def clean_output(text: str) -> str:
    """Terminal colours out; of a line redrawn with carriage returns (progress bars), its last state."""
    text = ANSI.sub("", text)
    return "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n"))


async def read_handler(ctx: ToolContext, args: ReadArgs) -> ToolResult:
    body, note = await call(ctx, "read", {"path": args.path, "offset": args.offset, "limit": args.limit},
                            wait_seconds=60.0)
    total = int(body.get("total_lines") or 0)
    if total == 0:
        return ToolResult(f"{note}{body['path']} is empty.")
    head = f"{body['path']}: lines {body['start']}-{body['end']} of {total}"
    if body.get("next_offset"):
        head += f" (more: read again with offset={body['next_offset']})"
    return ToolResult(f"{note}{head}\n{body['content']}")


async def write_handler(ctx: ToolContext, args: WriteArgs) -> ToolResult:
    body, note = await call(ctx, "write", {"path": args.path, "content": args.content}, wait_seconds=120.0)
    how = "created" if body.get("created") else "replaced"
    return ToolResult(f"{note}Wrote {body['bytes']:,} bytes to {body['path']} ({how}).")


async def edit_handler(ctx: ToolContext, args: EditArgs) -> ToolResult:
    payload = {"path": args.path, "old_str": args.old_str, "new_str": args.new_str, "replace_all": args.replace_all}
    body, note = await call(ctx, "edit", payload, wait_seconds=120.0)
    n = int(body["replacements"])
    how = "" if body.get("match") == "exact" else f", matched {body.get('match')}"
    return ToolResult(f"{note}Edited {body['path']}: {n} replacement{'s' if n != 1 else ''}{how}. Now:\n"
                      f"{body['snippet']}")


def _tool(name: str, description: str, args: type[BaseModel],
          handler: Callable[[ToolContext, Any], Awaitable[ToolResult]]) -> Tool:
    return Tool(name=name, description=description, args=args, handler=handler, read_only=False)


sandbox_create_tool = Tool(
    name="sandbox_create",
    description=("Start this session's private sandbox (a Hugging Face Space) on the given hardware, e.g. a GPU "
                 "to smoke-test training code before launching a job. Free cpu-basic needs no approval; other "
                 "hardware costs per hour and needs one. The other sandbox tools start a cpu-basic sandbox "
                 "themselves, so call this only for other hardware. Changing hardware replaces the sandbox "
                 "(files are lost)."),
    args=CreateArgs, handler=create_handler, policy=create_policy, describe=describe_create, read_only=False,
)

sandbox_bash_tool = _tool(
    "sandbox_bash",
    "Run a bash command in this session's sandbox (a fresh shell each time, in the work folder; files persist). "
    "Output over 25,000 characters is cut in the middle. A command past its timeout is killed with everything it "
    "started; run long work in the background and look at its log.",
    BashArgs, bash_handler)

sandbox_read_tool = _tool(
    "sandbox_read",
    "Read a text file in the sandbox, with line numbers, a page at a time (offset, limit). Reading a file is "
    "required before overwriting or editing it.",
    ReadArgs, read_handler)

sandbox_write_tool = _tool(
    "sandbox_write",
    "Write a whole file in the sandbox (atomically; folders are created). An existing file must have been read "
    "first, and not changed since.",
    WriteArgs, write_handler)

sandbox_edit_tool = _tool(
    "sandbox_edit",
    "Replace old_str by new_str in a sandbox file that was read first. old_str must match one place (or set "
    "replace_all); small slips in trailing whitespace, indentation and unicode quotes or dashes are forgiven.",
    EditArgs, edit_handler)

sandbox_tools: list[Tool] = [sandbox_create_tool, sandbox_bash_tool, sandbox_read_tool, sandbox_write_tool,
                             sandbox_edit_tool]
