"""Hub stand-in: the Jobs API, as huggingface_hub 2.4.0 calls and parses it.

Routes (all under the stand-in's own host, so job URLs built from `endpoint` point here):
`GET /api/jobs/hardware`; `POST|GET /api/jobs/{ns}` (run, list with `stage`/`label` filters);
`GET /api/jobs/{ns}/{id}`; `GET /api/jobs/{ns}/{id}/logs` (server-sent events, see `_logs`);
`GET /api/jobs/{ns}/{id}/metrics` (server-sent `metric` events, one a second, see `metrics`);
`POST /api/jobs/{ns}/{id}/cancel|duplicate`; `PUT /api/jobs/{ns}/{id}/labels`; and the scheduled
jobs under `/api/scheduled-jobs/{ns}[/{id}[/suspend|resume|run|schedule|labels]]`.

A job spec's `volumes` (huggingface_hub's `Volume.to_dict`: `type`, `source`, `mountPath`, `revision`,
`readOnly`, `path`) are checked — known type, repo-id source, absolute and distinct mount paths, and
for repositories that the repository, the revision and the path exist and are readable — and echoed in
the job's info; a bad one is a 400 naming it.

Jobs do not run by themselves: a test drives them through `JobsState` (`hub.state["jobs"]`):
`set_stage`, `append_logs`, `end_log_stream`, `drop_log_connection`, `set_gpu`, `fail_next`,
`fire_schedule`, `honour_label_filter`, and reads what the app asked for in `created` /
`created_schedules`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from intern.standins.hub_core import auth_error, core_state, hub_error, object_id

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from intern.standins.hub import HubStandIn

STAGES = ("SCHEDULING", "RUNNING", "COMPLETED", "CANCELED", "ERROR", "DELETED")
TERMINAL_STAGES = frozenset({"COMPLETED", "CANCELED", "ERROR", "DELETED"})
SCHEDULE_ALIASES = frozenset({"@annually", "@yearly", "@monthly", "@weekly", "@daily", "@hourly"})
LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
# huggingface_hub documents one rule for values: the `name` label (a job's name) must match this, as it
# is also stored as a tag.
NAME_LABEL_RE = re.compile(r"^[A-Za-z0-9._-]*$")

# The Hub's Jobs hardware list (huggingface_hub docs/source/en/guides/jobs.md, generated from the live
# /api/jobs/hardware): name, pretty name, cpu, ram, ephemeral storage, accelerator, USD per hour.
HARDWARE: tuple[tuple[str, str, str, str, str, str | None, float], ...] = (
    ("cpu-basic", "CPU Basic", "2 vCPU", "16 GB", "50 GB", None, 0.01),
    ("cpu-upgrade", "CPU Upgrade", "8 vCPU", "32 GB", "50 GB", None, 0.03),
    ("cpu-performance", "CPU Performance", "32 vCPU", "256 GB", "1024 GB", None, 1.9),
    ("cpu-xl", "CPU XL", "16 vCPU", "124 GB", "1000 GB", None, 1.0),
    ("t4-small", "Nvidia T4 - small", "4 vCPU", "15 GB", "50 GB", "1x T4 (16 GB)", 0.4),
    ("t4-medium", "Nvidia T4 - medium", "8 vCPU", "30 GB", "100 GB", "1x T4 (16 GB)", 0.6),
    ("a10g-small", "Nvidia A10G - small", "4 vCPU", "15 GB", "110 GB", "1x A10G (24 GB)", 1.0),
    ("a10g-large", "Nvidia A10G - large", "12 vCPU", "46 GB", "200 GB", "1x A10G (24 GB)", 1.5),
    ("a10g-largex2", "2x Nvidia A10G - large", "24 vCPU", "92 GB", "1000 GB", "2x A10G (48 GB)", 3.0),
    ("a10g-largex4", "4x Nvidia A10G - large", "48 vCPU", "184 GB", "2000 GB", "4x A10G (96 GB)", 5.0),
    ("a100-large", "Nvidia A100 - large", "12 vCPU", "142 GB", "1000 GB", "1x A100 (80 GB)", 2.5),
    ("a100x4", "4x Nvidia A100", "48 vCPU", "568 GB", "4000 GB", "4x A100 (320 GB)", 10.0),
    ("a100x8", "8x Nvidia A100", "96 vCPU", "1136 GB", "8000 GB", "8x A100 (640 GB)", 20.0),
    ("h200", "Nvidia H200", "23 vCPU", "256 GB", "3000 GB", "1x H200 (141 GB)", 5.0),
    ("h200x2", "Nvidia H200", "46 vCPU", "512 GB", "6000 GB", "2x H200 (282 GB)", 10.0),
    ("h200x4", "Nvidia H200", "92 vCPU", "1024 GB", "12000 GB", "4x H200 (564 GB)", 20.0),
    ("h200x8", "Nvidia H200", "184 vCPU", "2048 GB", "24000 GB", "8x H200 (1128 GB)", 40.0),
    ("rtx-pro-6000", "Nvidia RTX PRO 6000", "23 vCPU", "256 GB", "475 GB", "1x RTX PRO 6000 (96 GB)", 2.75),
    ("rtx-pro-6000x2", "Nvidia RTX PRO 6000", "46 vCPU", "512 GB", "950 GB", "2x RTX PRO 6000 (192 GB)", 5.5),
    ("rtx-pro-6000x4", "Nvidia RTX PRO 6000", "92 vCPU", "1024 GB", "1900 GB", "4x RTX PRO 6000 (384 GB)", 11.0),
    ("rtx-pro-6000x8", "Nvidia RTX PRO 6000", "184 vCPU", "2048 GB", "3800 GB", "8x RTX PRO 6000 (768 GB)", 22.0),
    ("l4x1", "1x Nvidia L4", "8 vCPU", "30 GB", "400 GB", "1x L4 (24 GB)", 0.8),
    ("l4x4", "4x Nvidia L4", "48 vCPU", "186 GB", "3200 GB", "4x L4 (96 GB)", 3.8),
    ("l40sx1", "1x Nvidia L40S", "8 vCPU", "62 GB", "380 GB", "1x L40S (48 GB)", 1.8),
    ("l40sx4", "4x Nvidia L40S", "48 vCPU", "382 GB", "3200 GB", "4x L40S (192 GB)", 8.3),
    ("l40sx8", "8x Nvidia L40S", "192 vCPU", "1534 GB", "6500 GB", "8x L40S (384 GB)", 23.5),
)
FLAVORS = frozenset(row[0] for row in HARDWARE)
_ACCELERATOR_RE = re.compile(r"^(\d+)x (.+) \((\d+ GB)\)$")


def hardware_item(row: tuple[str, str, str, str, str, str | None, float]) -> dict[str, Any]:
    name, pretty, cpu, ram, storage, accelerator, hourly = row
    micro = round(hourly * 1_000_000 / 60)  # the Hub prices per minute, in micro-dollars
    item: dict[str, Any] = {"name": name, "prettyName": pretty, "cpu": cpu, "ram": ram,
                            "ephemeralStorage": storage, "accelerator": None, "unitCostMicroUSD": micro,
                            "unitCostUSD": micro / 1_000_000, "unitLabel": "minute"}
    match = _ACCELERATOR_RE.match(accelerator or "")
    if match:
        item["accelerator"] = {"type": "gpu", "model": match.group(2), "quantity": match.group(1),
                               "vram": match.group(3), "manufacturer": "Nvidia"}
    return item


def _accelerators(accelerator: str | None) -> tuple[int, int]:
    """(GPU count, bytes of memory per GPU) of a hardware row's accelerator, e.g. `1x A10G (24 GB)`."""
    match = _ACCELERATOR_RE.match(accelerator or "")
    if match is None:
        return 0, 0
    count = int(match.group(1))
    return count, int(match.group(3).split()[0]) * 1_000_000_000 // count


def iso(moment: datetime | None) -> str | None:
    """The Hub's timestamp format (milliseconds, Z)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class LogEvent:
    timestamp: str
    data: str


@dataclass
class _Stream:
    """One open log connection; test controls flag it and wake it up."""

    loop: asyncio.AbstractEventLoop
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    end: bool = False
    drop: bool = False

    def notify(self) -> None:
        try:
            on_loop = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self.wake.set()
        else:
            self.loop.call_soon_threadsafe(self.wake.set)


@dataclass
class Job:
    id: str
    namespace: str
    owner: dict[str, str]
    initiator: dict[str, Any]
    spec: dict[str, Any]
    created_at: datetime
    stage: str = "SCHEDULING"
    message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    logs: list[LogEvent] = field(default_factory=list)
    streams: list[_Stream] = field(default_factory=list)
    end_next_stream: bool = False
    drop_next_stream: bool = False
    gpu_utilization: int = 0  # percent, every GPU of the job
    gpu_memory_used_bytes: int = 0
    replica: str = field(default_factory=lambda: secrets.token_hex(3)[:5])
    gpu_ids: list[str] = field(default_factory=list)

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.spec.get("labels") or {})

    def to_api(self) -> dict[str, Any]:
        spec = self.spec
        body: dict[str, Any] = {
            "id": self.id, "createdAt": iso(self.created_at), "startedAt": iso(self.started_at),
            "finishedAt": iso(self.finished_at), "command": spec.get("command"),
            "arguments": spec.get("arguments", []), "environment": spec.get("environment", {}),
            "secrets": {k: _sealed(v) for k, v in (spec.get("secrets") or {}).items()},
            "flavor": spec.get("flavor"), "labels": spec.get("labels"), "status": self._status(),
            "durations": self._durations(), "owner": self.owner, "initiator": self.initiator,
        }
        for key in ("dockerImage", "spaceId", "volumes", "expose", "network"):
            if key in spec:
                body[key] = spec[key]
        if "attempts" in spec:
            body["retry"] = max(0, int(spec["attempts"]) - 1)
        return body

    def _status(self) -> dict[str, Any]:
        return {"stage": self.stage, "message": self.message}

    def metric_sample(self) -> dict[str, Any]:
        """One sample of the metrics stream, in the Hub's field names (bytes, percent, bits a second)."""
        row = next((r for r in HARDWARE if r[0] == self.spec.get("flavor")), HARDWARE[0])
        gpus, vram = _accelerators(row[5])
        if len(self.gpu_ids) != gpus:
            self.gpu_ids = [secrets.token_hex(4) for _ in range(gpus)]
        ram = int(row[3].split()[0]) * 1024 ** 3
        return {"cpu_usage_pct": 12 if self.gpu_utilization else 1, "cpu_millicores": int(row[2].split()[0]) * 1000,
                "memory_used_bytes": ram // 8, "memory_total_bytes": ram, "rx_bps": 0, "tx_bps": 0,
                "gpus": {gid: {"utilization": self.gpu_utilization, "memory_used_bytes": self.gpu_memory_used_bytes,
                               "memory_total_bytes": vram} for gid in self.gpu_ids},
                "replica": self.replica}

    def _durations(self) -> dict[str, int | None]:
        end = self.finished_at or _now()
        running = int((end - self.started_at).total_seconds()) if self.started_at else None
        scheduling = int((self.started_at - self.created_at).total_seconds()) if self.started_at else None
        return {"schedulingSecs": scheduling, "runningSecs": running,
                "totalSecs": int((end - self.created_at).total_seconds())}


@dataclass
class ScheduledJob:
    id: str
    namespace: str
    owner: dict[str, str]
    spec: dict[str, Any]
    schedule: str
    created_at: datetime
    suspend: bool = False
    concurrency: bool = False
    last_job: tuple[str, datetime] | None = None

    def to_api(self) -> dict[str, Any]:
        spec = dict(self.spec)
        if "timeoutSeconds" in spec:
            spec["timeout"] = spec["timeoutSeconds"]  # the client's JobSpec reads `timeout`
        last = {"id": self.last_job[0], "at": iso(self.last_job[1])} if self.last_job else None
        return {"id": self.id, "createdAt": iso(self.created_at), "jobSpec": spec, "schedule": self.schedule,
                "suspend": self.suspend, "concurrency": self.concurrency, "owner": self.owner,
                "status": {"lastJob": last, "nextJobRunAt": None if self.suspend else _next_run(self.schedule)}}


@dataclass(frozen=True)
class CreatedJob:
    """What the app asked the Hub to run, in the words of the request body."""

    job_id: str
    namespace: str
    image: str | None
    space_id: str | None
    command: list[str]
    flavor: str
    timeout_seconds: int | None
    labels: dict[str, str]
    env: dict[str, Any]
    secrets: dict[str, Any]
    schedule: str | None
    raw: dict[str, Any]

    @property
    def secret_names(self) -> list[str]:
        return sorted(self.secrets)

    @property
    def volumes(self) -> list[dict[str, Any]]:
        return list(self.raw.get("volumes") or [])


def _created(job_id: str, namespace: str, spec: dict[str, Any], schedule: str | None = None) -> CreatedJob:
    return CreatedJob(job_id=job_id, namespace=namespace, image=spec.get("dockerImage"),
                      space_id=spec.get("spaceId"), command=list(spec.get("command") or []),
                      flavor=spec.get("flavor", ""), timeout_seconds=spec.get("timeoutSeconds"),
                      labels=dict(spec.get("labels") or {}), env=dict(spec.get("environment") or {}),
                      secrets=dict(spec.get("secrets") or {}), schedule=schedule, raw=spec)


@dataclass
class _Failure:
    status: int
    path_contains: str | None
    method: str | None

    def matches(self, request: web.Request) -> bool:
        return ((self.path_contains is None or self.path_contains in request.path)
                and (self.method is None or self.method == request.method))


class JobsState:
    """The jobs the stand-in knows, and the controls tests use to play the Hub's side."""

    def __init__(self, hub: HubStandIn) -> None:
        self.hub = hub
        self.jobs: dict[str, Job] = {}
        self.scheduled: dict[str, ScheduledJob] = {}
        self.created: list[CreatedJob] = []
        self.created_schedules: list[CreatedJob] = []
        self.initial_stage = "SCHEDULING"
        self.keepalive_seconds = 30.0  # the Hub sends ": keep-alive" every 30 s on a quiet stream
        self.log_idle_timeout: float | None = None  # close a quiet stream of a live job after this long
        # False plays a Hub (or a proxy in front of it) that drops the `label` filter of the job list
        # and answers with every job of the namespace.
        self.honour_label_filter = True
        self.metrics_interval = 1.0  # the Hub sends one metric event a second
        self._failures: list[_Failure] = []
        self._last_log_ms = 0

    # --- test controls -------------------------------------------------------------------

    def job(self, job_id: str) -> Job:
        return self.jobs[job_id]

    @property
    def last_job(self) -> Job:
        return list(self.jobs.values())[-1]

    def job_url(self, job_id: str) -> str:
        job = self.jobs[job_id]
        return f"{self.hub.url}/jobs/{job.namespace}/{job.id}"

    def set_stage(self, job_id: str, stage: str, message: str | None = None) -> None:
        """Move a job on. RUNNING logs the Hub's "Job started" line; a final stage ends the log streams."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; one of {STAGES}")
        job = self.jobs[job_id]
        job.stage, job.message = stage, message
        if stage == "RUNNING" and job.started_at is None:
            job.started_at = _now()
            job.logs.append(LogEvent(self._log_timestamp(), f"===== Job started at {iso(job.started_at)} ====="))
        if stage in TERMINAL_STAGES and job.finished_at is None:
            job.finished_at = _now()
        self._wake(job)

    def append_logs(self, job_id: str, *lines: str) -> None:
        job = self.jobs[job_id]
        job.logs.extend(LogEvent(self._log_timestamp(), line) for line in lines)
        self._wake(job)

    def end_log_stream(self, job_id: str) -> None:
        """End the open log streams cleanly (the Hub's stream can end before the job does); with
        none open, the next one ends right after its replay."""
        job = self.jobs[job_id]
        if not job.streams:
            job.end_next_stream = True
        for stream in job.streams:
            stream.end = True
        self._wake(job)

    def drop_log_connection(self, job_id: str) -> None:
        """Cut the open log connections mid-stream (no clean end); with none open, the next one is
        cut right after its replay."""
        job = self.jobs[job_id]
        if not job.streams:
            job.drop_next_stream = True
        for stream in job.streams:
            stream.drop = True
        self._wake(job)

    def set_gpu(self, job_id: str, *, utilization: int, memory_used_bytes: int | None = None) -> None:
        """What the job's GPUs report from now on (percent busy, bytes of memory in use)."""
        job = self.jobs[job_id]
        job.gpu_utilization = utilization
        if memory_used_bytes is not None:
            job.gpu_memory_used_bytes = memory_used_bytes

    def fail_next(self, count: int = 1, *, status: int = 500, path_contains: str | None = None,
                  method: str | None = None) -> None:
        """The next `count` matching Jobs API requests get an HTTP `status` error."""
        self._failures.extend(_Failure(status, path_contains, method) for _ in range(count))

    def fire_schedule(self, scheduled_job_id: str) -> Job:
        """Play the scheduler: start one run of a scheduled job now."""
        return self._start_scheduled(self.scheduled[scheduled_job_id])

    async def end_all_streams(self, app: web.Application | None = None) -> None:
        """On server shutdown: open log streams end at once instead of holding the shutdown."""
        for job in self.jobs.values():
            for stream in job.streams:
                stream.end = True
            self._wake(job)

    # --- internals -----------------------------------------------------------------------

    def _wake(self, job: Job) -> None:
        for stream in list(job.streams):
            stream.notify()

    def _log_timestamp(self) -> str:
        self._last_log_ms = max(int(time.time() * 1000), self._last_log_ms + 1)
        moment = datetime.fromtimestamp(self._last_log_ms / 1000, UTC)
        return iso(moment) or ""

    def take_failure(self, request: web.Request) -> web.Response | None:
        for index, failure in enumerate(self._failures):
            if failure.matches(request):
                del self._failures[index]
                return hub_error(failure.status, "Internal Error - We're working hard to fix this as soon as "
                                                 "possible!")
        return None

    def new_job(self, namespace: str, spec: dict[str, Any], initiator: dict[str, Any] | None = None) -> Job:
        core = core_state(self.hub)
        job = Job(id=object_id(), namespace=namespace, owner=core.owner(self.hub, namespace),
                  initiator=initiator or {"type": "user", "id": core.user_id, "name": self.hub.user},
                  spec=spec, created_at=_now())
        self.jobs[job.id] = job
        if self.initial_stage != job.stage:
            self.set_stage(job.id, self.initial_stage)
        return job

    def _start_scheduled(self, scheduled: ScheduledJob) -> Job:
        job = self.new_job(scheduled.namespace, dict(scheduled.spec),
                           initiator={"type": "scheduled-job", "id": scheduled.id})
        scheduled.last_job = (job.id, job.created_at)
        return job


def jobs_state(hub: HubStandIn) -> JobsState:
    state = hub.state.get("jobs")
    if state is None:
        state = hub.state["jobs"] = JobsState(hub)
    return state


# --- request validation ------------------------------------------------------------------------


def _sealed(value: Any) -> str:
    """Secret values never come back in clear, only as an opaque sealed form."""
    return "sealed:" + base64.b64encode(hashlib.sha256(str(value).encode()).digest()[:12]).decode()


def spec_problem(spec: Any) -> str | None:
    """Why the Hub would refuse this job spec, or None."""
    if not isinstance(spec, dict):
        return "Invalid job spec"
    if not (spec.get("dockerImage") or spec.get("spaceId")):
        return "Either dockerImage or spaceId is required"
    command = spec.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        return "command must be a non-empty array of strings"
    if spec.get("flavor") not in FLAVORS:
        return f"Invalid flavor: {spec.get('flavor')!r}"
    timeout = spec.get("timeoutSeconds")
    if timeout is not None and (not isinstance(timeout, int) or timeout <= 0):
        return "timeoutSeconds must be a positive integer"
    for group in ("environment", "secrets"):
        values = spec.get(group) or {}
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            return f"{group} values must be strings"
    return _labels_problem(spec.get("labels"))


VOLUME_TYPES = ("bucket", "model", "dataset", "space")
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def volumes_problem(volumes: Any, hub: HubStandIn | None = None) -> str | None:
    """Why the Hub would refuse these volumes (as huggingface_hub's `Volume.to_dict` sends them), or None.
    Repositories must exist, be readable and hold the revision; a repository is always mounted read-only."""
    if volumes is None:
        return None
    if not isinstance(volumes, list):
        return "volumes must be an array"
    seen: set[str] = set()
    for volume in volumes:
        if not isinstance(volume, dict):
            return "Invalid volume: each volume must be an object"
        kind, source, mount = volume.get("type", "model"), volume.get("source"), volume.get("mountPath")
        if kind not in VOLUME_TYPES:
            return f"Invalid volume type {kind!r}: one of {', '.join(VOLUME_TYPES)}"
        if not isinstance(source, str) or not _REPO_ID_RE.match(source) or "--" in source or ".." in source:
            return f"Invalid volume source {source!r}"
        if not isinstance(mount, str) or not mount.startswith("/") or mount == "/" or ".." in mount.split("/"):
            return f"Invalid volume mountPath {mount!r}: an absolute path other than /"
        if mount in seen:
            return f"Duplicate volume mountPath {mount}"
        seen.add(mount)
        for key in ("revision", "path"):
            if key in volume and not isinstance(volume[key], str):
                return f"Invalid volume {key}: must be a string"
        if "readOnly" in volume and not isinstance(volume["readOnly"], bool):
            return "Invalid volume readOnly: must be a boolean"
        if hub is not None and kind != "bucket" and (problem := _repo_volume_problem(hub, volume)):
            return problem
    return None


def _repo_volume_problem(hub: HubStandIn, volume: dict[str, Any]) -> str | None:
    from intern.standins.hub_repos import repo_store

    repo = repo_store(hub).get(volume.get("type", "model"), volume["source"])
    if repo is None or (repo.gated and not repo.gated_access):
        return f"Volume source {volume['source']} not found or not accessible"
    commit = repo.resolve(volume.get("revision") or "main")
    if commit is None:
        return f"Volume revision {volume.get('revision')} not found in {volume['source']}"
    path = (volume.get("path") or "").strip("/")
    if path and not any(p == path or p.startswith(path + "/") for p in commit.files):
        return f"Volume path {path} not found in {volume['source']} at {commit.oid}"
    return None


def _labels_problem(labels: Any) -> str | None:
    if labels is None:
        return None
    if not isinstance(labels, dict):
        return "labels must be an object"
    for key, value in labels.items():
        if not LABEL_KEY_RE.match(str(key)) or not isinstance(value, str):
            return f"Invalid label {key}={value}: keys are at most 100 letters, digits, '-', '_' or '.', values text"
        if key == "name" and not NAME_LABEL_RE.match(value):
            return f"Invalid job name {value!r}: only letters, digits, '-', '_' and '.'"
    return None


def _absent(labels: Any) -> str | None:
    return "labels are required" if labels is None else None


def schedule_problem(schedule: Any) -> str | None:
    if not isinstance(schedule, str) or not schedule:
        return "schedule is required"
    if schedule in SCHEDULE_ALIASES:
        return None
    from croniter import croniter  # type: ignore[import-untyped]

    return None if len(schedule.split()) == 5 and croniter.is_valid(schedule) else f"Invalid schedule: {schedule}"


def _next_run(schedule: str) -> str | None:
    from croniter import croniter  # type: ignore[import-untyped]

    expression = "@yearly" if schedule == "@annually" else schedule
    return iso(croniter(expression, _now()).get_next(datetime))


def _label_filter_matches(job: Job, filters: list[str]) -> bool:
    labels = job.labels
    for item in filters:
        key, has_value, value = item.partition("=")
        if key not in labels or (has_value and labels[key] != value):
            return False
    return True


# --- routes ------------------------------------------------------------------------------------

def add_routes(app: web.Application, hub: HubStandIn) -> None:
    state = jobs_state(hub)
    routes = _Routes(hub, state)
    app.on_shutdown.append(state.end_all_streams)
    add = app.router.add_route
    add("GET", "/api/jobs/hardware", routes.wrap(routes.hardware, required=False))
    add("POST", "/api/jobs/{ns}", routes.wrap(routes.run))
    add("GET", "/api/jobs/{ns}", routes.wrap(routes.list_jobs))
    add("GET", "/api/jobs/{ns}/{job_id}", routes.wrap(routes.inspect))
    add("GET", "/api/jobs/{ns}/{job_id}/logs", routes.wrap(routes.logs))
    add("GET", "/api/jobs/{ns}/{job_id}/metrics", routes.wrap(routes.metrics))
    add("POST", "/api/jobs/{ns}/{job_id}/cancel", routes.wrap(routes.cancel))
    add("POST", "/api/jobs/{ns}/{job_id}/duplicate", routes.wrap(routes.duplicate))
    add("PUT", "/api/jobs/{ns}/{job_id}/labels", routes.wrap(routes.job_labels))
    add("POST", "/api/scheduled-jobs/{ns}", routes.wrap(routes.create_scheduled))
    add("GET", "/api/scheduled-jobs/{ns}", routes.wrap(routes.list_scheduled))
    add("GET", "/api/scheduled-jobs/{ns}/{sid}", routes.wrap(routes.inspect_scheduled))
    add("DELETE", "/api/scheduled-jobs/{ns}/{sid}", routes.wrap(routes.delete_scheduled))
    add("POST", "/api/scheduled-jobs/{ns}/{sid}/suspend", routes.wrap(routes.suspend_scheduled))
    add("POST", "/api/scheduled-jobs/{ns}/{sid}/resume", routes.wrap(routes.resume_scheduled))
    add("POST", "/api/scheduled-jobs/{ns}/{sid}/run", routes.wrap(routes.trigger_scheduled))
    add("POST", "/api/scheduled-jobs/{ns}/{sid}/schedule", routes.wrap(routes.update_schedule))
    add("PUT", "/api/scheduled-jobs/{ns}/{sid}/labels", routes.wrap(routes.scheduled_labels))


class _Routes:
    def __init__(self, hub: HubStandIn, state: JobsState) -> None:
        self.hub, self.state = hub, state

    def wrap(self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]], *,
             required: bool = True) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if (denied := auth_error(request, self.hub, required=required)) is not None:
                return denied
            if (failure := self.state.take_failure(request)) is not None:
                return failure
            if "ns" in request.match_info and request.match_info["ns"] not in self._namespaces():
                return hub_error(403 if request.method != "GET" else 404,
                                 f"Namespace {request.match_info['ns']} not found or not accessible")
            return await handler(request)

        return guarded

    def _namespaces(self) -> set[str]:
        return core_state(self.hub).namespaces(self.hub)

    def _job(self, request: web.Request) -> Job | None:
        job = self.state.jobs.get(request.match_info["job_id"])
        return job if job is not None and job.namespace == request.match_info["ns"] else None

    def _scheduled(self, request: web.Request) -> ScheduledJob | None:
        item = self.state.scheduled.get(request.match_info["sid"])
        return item if item is not None and item.namespace == request.match_info["ns"] else None

    # --- jobs ----------------------------------------------------------------------------

    async def hardware(self, request: web.Request) -> web.StreamResponse:
        return web.json_response([hardware_item(row) for row in HARDWARE])

    async def run(self, request: web.Request) -> web.StreamResponse:
        spec = await _json_body(request)
        if (problem := spec_problem(spec) or volumes_problem(spec.get("volumes"), self.hub)) is not None:
            return hub_error(400, problem)
        namespace = request.match_info["ns"]
        job = self.state.new_job(namespace, spec)
        self.state.created.append(_created(job.id, namespace, spec))
        return web.json_response(job.to_api())

    async def list_jobs(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info["ns"]
        stages = {s.upper() for s in request.query.getall("stage", [])}
        labels = request.query.getall("label", []) if self.state.honour_label_filter else []
        found = [job.to_api() for job in self.state.jobs.values()
                 if job.namespace == namespace and (not stages or job.stage in stages)
                 and _label_filter_matches(job, labels)]
        return web.json_response(found)

    async def inspect(self, request: web.Request) -> web.StreamResponse:
        job = self._job(request)
        return web.json_response(job.to_api()) if job else hub_error(404, "Job not found")

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        job = self._job(request)
        if job is None:
            return hub_error(404, "Job not found")
        if job.stage not in TERMINAL_STAGES:
            self.state.set_stage(job.id, "CANCELED")
        return web.json_response(job.to_api())

    async def duplicate(self, request: web.Request) -> web.StreamResponse:
        job = self._job(request)
        if job is None:
            return hub_error(404, "Job not found")
        copy = self.state.new_job(job.namespace, dict(job.spec),
                                  initiator={"type": "duplicated-job", "id": job.id})
        self.state.created.append(_created(copy.id, copy.namespace, copy.spec))
        return web.json_response(copy.to_api())

    async def job_labels(self, request: web.Request) -> web.StreamResponse:
        job = self._job(request)
        if job is None:
            return hub_error(404, "Job not found")
        labels = (await _json_object(request)).get("labels")
        if (problem := _labels_problem(labels) or _absent(labels)) is not None:
            return hub_error(400, problem)
        assert isinstance(labels, dict)
        kept = {"name": job.labels["name"]} if "name" in job.labels else {}
        job.spec = {**job.spec, "labels": {**kept, **labels}}
        return web.json_response(job.to_api())

    async def logs(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: one `data: {"data": line, "timestamp": iso}` per line. The replay of the
        log so far comes first (only the last `tail` lines when asked), then new lines as they are
        appended, until the job reaches a final stage or a test ends or cuts the stream."""
        job = self._job(request)
        if job is None:
            return hub_error(404, "Job not found")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        stream = _Stream(asyncio.get_running_loop())
        stream.end, stream.drop = job.end_next_stream, job.drop_next_stream
        job.end_next_stream = job.drop_next_stream = False
        job.streams.append(stream)
        try:
            return await self._pump_logs(request, response, job, stream, _tail(request))
        finally:
            job.streams.remove(stream)

    async def _pump_logs(self, request: web.Request, response: web.StreamResponse, job: Job, stream: _Stream,
                         tail: int | None) -> web.StreamResponse:
        sent = len(job.logs)
        replay = job.logs[-tail:] if tail else ([] if tail == 0 else job.logs)
        await _write_events(response, replay)
        quiet_since = last_write = time.monotonic()
        while not _client_gone(request):
            stream.wake.clear()
            fresh, sent = job.logs[sent:], len(job.logs)
            await _write_events(response, fresh)
            if fresh:
                quiet_since = last_write = time.monotonic()
            if stream.drop:
                _cut(request)
                return response
            if stream.end or job.stage in TERMINAL_STAGES or self._idle(quiet_since):
                await response.write_eof()
                return response
            if time.monotonic() - last_write >= self.state.keepalive_seconds:
                await response.write(b": keep-alive\n\n")
                last_write = time.monotonic()
            await self._wait(stream, quiet_since, last_write)
        return response

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events without history: `event: metric` with one sample a second while the job
        runs (nothing but keep-alives while it is still scheduled); a job that has ended answers 406."""
        job = self._job(request)
        if job is None:
            return hub_error(404, "Job not found")
        if job.stage in TERMINAL_STAGES:
            return hub_error(406, "Job is not running")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        last_write = time.monotonic()
        while not _client_gone(request) and job.stage not in TERMINAL_STAGES:
            if job.stage == "RUNNING":
                await response.write(b"event: metric\ndata: " + json.dumps(job.metric_sample(), separators=(",", ":"))
                                     .encode() + b"\n\n")
                last_write = time.monotonic()
            elif time.monotonic() - last_write >= self.state.keepalive_seconds:
                await response.write(b": keep-alive\n\n")
                last_write = time.monotonic()
            await asyncio.sleep(min(self.state.metrics_interval, 0.25) if job.stage != "RUNNING"
                                else self.state.metrics_interval)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    def _idle(self, quiet_since: float) -> bool:
        limit = self.state.log_idle_timeout
        return limit is not None and time.monotonic() - quiet_since >= limit

    async def _wait(self, stream: _Stream, quiet_since: float, last_write: float) -> None:
        """Until woken, the next keep-alive or idle deadline, in short slices so that a client that
        hung up is noticed soon (a quiet stream would otherwise hold the server's shutdown)."""
        now = time.monotonic()
        deadline = last_write + self.state.keepalive_seconds
        if self.state.log_idle_timeout is not None:
            deadline = min(deadline, quiet_since + self.state.log_idle_timeout)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stream.wake.wait(), max(0.0, min(deadline - now, 0.25)))

    # --- scheduled jobs --------------------------------------------------------------------

    async def create_scheduled(self, request: web.Request) -> web.StreamResponse:
        body = await _json_object(request)
        spec = body.get("jobSpec")
        if (problem := spec_problem(spec) or schedule_problem(body.get("schedule"))
                or volumes_problem(spec.get("volumes"), self.hub)) is not None:
            return hub_error(400, problem)
        assert isinstance(spec, dict)
        namespace = request.match_info["ns"]
        scheduled = ScheduledJob(id=object_id(), namespace=namespace,
                                 owner=core_state(self.hub).owner(self.hub, namespace), spec=spec,
                                 schedule=body["schedule"], created_at=_now(),
                                 suspend=bool(body.get("suspend", False)),
                                 concurrency=bool(body.get("concurrency", False)))
        self.state.scheduled[scheduled.id] = scheduled
        self.state.created_schedules.append(_created(scheduled.id, namespace, spec, schedule=scheduled.schedule))
        return web.json_response(scheduled.to_api())

    async def list_scheduled(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info["ns"]
        label = request.query.get("label")
        found = [s.to_api() for s in self.state.scheduled.values() if s.namespace == namespace
                 and (label is None or _spec_has_label(s.spec, label))]
        return web.json_response(found)

    async def inspect_scheduled(self, request: web.Request) -> web.StreamResponse:
        item = self._scheduled(request)
        return web.json_response(item.to_api()) if item else hub_error(404, "Scheduled job not found")

    async def delete_scheduled(self, request: web.Request) -> web.StreamResponse:
        item = self._scheduled(request)
        if item is None:
            return hub_error(404, "Scheduled job not found")
        del self.state.scheduled[item.id]
        return web.Response(status=200)

    async def suspend_scheduled(self, request: web.Request) -> web.StreamResponse:
        return self._set_suspended(request, True)

    async def resume_scheduled(self, request: web.Request) -> web.StreamResponse:
        return self._set_suspended(request, False)

    def _set_suspended(self, request: web.Request, suspend: bool) -> web.StreamResponse:
        item = self._scheduled(request)
        if item is None:
            return hub_error(404, "Scheduled job not found")
        item.suspend = suspend
        return web.json_response(item.to_api())

    async def trigger_scheduled(self, request: web.Request) -> web.StreamResponse:
        item = self._scheduled(request)
        if item is None:
            return hub_error(404, "Scheduled job not found")
        running = item.last_job and self.state.jobs[item.last_job[0]].stage not in TERMINAL_STAGES
        if running and not item.concurrency:
            return hub_error(409, "A run of this scheduled job is already in progress")
        return web.json_response(self.state.fire_schedule(item.id).to_api())

    async def update_schedule(self, request: web.Request) -> web.StreamResponse:
        item = self._scheduled(request)
        if item is None:
            return hub_error(404, "Scheduled job not found")
        schedule = (await _json_object(request)).get("schedule")
        if (problem := schedule_problem(schedule)) is not None:
            return hub_error(400, problem)
        item.schedule = str(schedule)
        return web.json_response(item.to_api())

    async def scheduled_labels(self, request: web.Request) -> web.StreamResponse:
        item = self._scheduled(request)
        if item is None:
            return hub_error(404, "Scheduled job not found")
        labels = (await _json_object(request)).get("labels")
        if (problem := _labels_problem(labels) or _absent(labels)) is not None:
            return hub_error(400, problem)
        item.spec = {**item.spec, "labels": labels}
        return web.json_response(item.to_api())


def _spec_has_label(spec: dict[str, Any], item: str) -> bool:
    key, has_value, value = item.partition("=")
    labels = spec.get("labels") or {}
    return key in labels and (not has_value or labels[key] == value)


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


async def _json_object(request: web.Request) -> dict[str, Any]:
    body = await _json_body(request)
    return body if isinstance(body, dict) else {}


def _tail(request: web.Request) -> int | None:
    try:
        return max(0, int(request.query["tail"])) if "tail" in request.query else None
    except ValueError:
        return None


async def _write_events(response: web.StreamResponse, events: list[LogEvent]) -> None:
    if events:
        payload = b"".join(
            b"data: " + json.dumps({"data": e.data, "timestamp": e.timestamp}).encode() + b"\n\n" for e in events)
        await response.write(payload)


def _client_gone(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


def _cut(request: web.Request) -> None:
    """Abort the TCP connection: the client sees a chunked body that never ends properly."""
    if request.transport is not None:
        request.transport.abort()
