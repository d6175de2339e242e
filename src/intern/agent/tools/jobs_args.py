"""`hf_jobs` arguments: what the model may ask for, checked before a card is drawn or the Hub is asked."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from intern.agent.errors import ToolArgumentError
from intern.agent.pricing import parse_job_timeout
from intern.agent.tools.base import Policy
from intern.agent.tools.jobs_code import is_relative_file

DEFAULT_FLAVOR = "cpu-basic"
DEFAULT_TIMEOUT = "30m"  # the Hub's default
UV_IMAGE = "ghcr.io/astral-sh/uv:python3.12-bookworm"
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|API_KEY|APIKEY|PRIVATE_KEY)", re.I)

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


def is_url(script: str) -> bool:
    return script.startswith("https://") or script.startswith("http://")
