"""What the watcher knows of one running job, from its log lines and GPU metrics, and what that is
worth telling: the job's line on the status card, alerts, and the metric points of its chart.

Everything here is pure (the clock is passed in as epoch seconds); `jobs.py` feeds it and writes
what it says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from intern.agent.logparse import LineFacts, is_bad, latest_redraws, parse_line

MAX_POINTS = 400  # per metric; past it every other point is dropped (first and last kept)
MAX_SERIES = 16
GPU_IDLE_PERCENT = 5.0
# Metrics that only describe the run itself: kept as the latest value, not charted.
NOT_CHARTED = ("epoch", "total_flos", "num_tokens", "num_input_tokens_seen")
NOT_CHARTED_SUFFIXES = ("_runtime", "_per_second", "_samples", "_steps")
CARD_METRICS = ("loss", "eval_loss", "grad_norm", "learning_rate", "epoch", "reward", "accuracy",
                "mean_token_accuracy", "rewards/accuracies", "rewards/margins", "perplexity")
ALERT_KINDS = ("nan", "stall", "gpu_idle", "timeout")


@dataclass(frozen=True)
class Limits:
    stall_seconds: float = 20 * 60.0
    gpu_idle_seconds: float = 10 * 60.0
    # A projection needs some progress to go by: at least this share of the steps (and 3 of them).
    min_progress: float = 0.01


@dataclass(frozen=True)
class Alert:
    kind: str
    text: str  # names the problem; the job id is added by whoever posts it


@dataclass
class GpuReading:
    count: int
    utilization: float  # the busiest GPU, percent
    memory_used: int
    memory_total: int


@dataclass
class Supervision:
    flavor: str = ""
    hourly_usd: float = 0.0
    timeout_seconds: int = 0
    step: int | None = None
    total: int | None = None
    rate: float | None = None
    remaining_s: float | None = None
    progress_at: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    # Metric points as they are stored: [step, value], a NaN or infinity as text (see `json_number`).
    series: dict[str, list[list[float | str]]] = field(default_factory=dict)
    last_line_at: float | None = None
    lines_seen: int = 0
    gpu: GpuReading | None = None
    gpu_idle_since: float | None = None
    idle_resumed: float | None = None  # the idle clock of the process before, until the first sample
    bad_metric: str | None = None  # e.g. "loss is nan at step 120"
    changed: bool = False  # since the row was last written
    version: int = 0  # counts the changes worth a card edit (progress, metrics, GPU)
    series_version: int = 0  # counts the changes to the metric points

    # --- input ------------------------------------------------------------------------------

    def feed_line(self, line: str, now: float) -> LineFacts | None:
        self.last_line_at = now
        self.lines_seen += 1
        facts = parse_line(line)
        if facts is not None:
            self.feed(facts, now)
        return facts

    def feed_lines(self, lines: list[str], now: float, logged_at: float | None = None) -> None:
        """A batch of new lines; of several progress-bar redraws in a row only the last is read.
        `logged_at` is when the job logged the last of them (the Hub's time): the stall clock goes by
        it, so a log read again after a restart does not count as new lines."""
        self.lines_seen += len(lines)
        at = now if logged_at is None else min(logged_at, now)
        self.last_line_at = at if self.last_line_at is None else max(self.last_line_at, at)
        for line in latest_redraws(lines):
            facts = parse_line(line)
            if facts is not None:
                self.feed(facts, now)

    def feed(self, facts: LineFacts, now: float) -> None:
        if facts.step is not None and self._is_training_progress(facts):
            self.step, self.progress_at = facts.step, now
            if facts.total is not None:
                self.total = facts.total
            if facts.rate is not None:
                self.rate = facts.rate
            self.remaining_s = facts.remaining_s if facts.remaining_s is not None else self._remaining_from_rate()
            self.changed = True
            self.version += 1
        if not facts.metrics:
            return
        at = facts.step if facts.step is not None and self._is_training_progress(facts) else self.step
        for name, value in facts.metrics.items():
            self.metrics[name] = value
            if self.bad_metric is None and name in ("loss", "grad_norm", "train_loss", "eval_loss") and is_bad(value):
                where = f" at step {at}" if at is not None else ""
                self.bad_metric = f"{name} is {value}{where}"
            if charted(name):
                self._add_point(name, at, value)
        self.changed = True
        self.version += 1

    def feed_gpu(self, sample: dict[str, Any], now: float, running: bool) -> None:
        """One sample of the Hub's job metrics (`gpus`: id → utilization, memory used and total)."""
        gpus = [g for g in (sample.get("gpus") or {}).values() if isinstance(g, dict)]
        if not gpus:
            self.gpu = None
            return
        reading = GpuReading(len(gpus), max(float(g.get("utilization") or 0) for g in gpus),
                             sum(int(g.get("memory_used_bytes") or 0) for g in gpus),
                             sum(int(g.get("memory_total_bytes") or 0) for g in gpus))
        if self.gpu != reading:
            self.changed = True
            self.version += 1
        self.gpu = reading
        idle_since = self.gpu_idle_since
        resumed, self.idle_resumed = self.idle_resumed, None
        if running and reading.utilization < GPU_IDLE_PERCENT:
            self.gpu_idle_since = idle_since if idle_since is not None else resumed if resumed is not None else now
        else:
            self.gpu_idle_since = None
        if self.gpu_idle_since != idle_since:
            self.changed = True  # kept in the live state: a process taking the job over goes on counting

    def resume(self, live: dict[str, Any] | None) -> None:
        """Carry on from what the process that followed this job before wrote. The stall clock needs
        nothing (the log's replay carries each line's time); the idle-GPU clock goes on from the time
        the GPU was last seen going idle, as long as the first new sample finds it idle still."""
        since = (live or {}).get("gpu_idle_since")
        if isinstance(since, int | float) and not isinstance(since, bool):
            self.idle_resumed = float(since)

    def _is_training_progress(self, facts: LineFacts) -> bool:
        """A bar with fewer steps than the one already followed is an evaluation loop's (the Trainer
        draws one without a description): it does not move the training progress."""
        if facts.source != "tqdm" or facts.total is None or self.total is None:
            return True
        return facts.total >= self.total

    def _remaining_from_rate(self) -> float | None:
        if self.rate and self.total is not None and self.step is not None:
            return max(0.0, (self.total - self.step) / self.rate)
        return None

    def _add_point(self, name: str, step: int | None, value: float) -> None:
        points = self.series.get(name)
        if points is None:
            if len(self.series) >= MAX_SERIES:
                return
            points = self.series[name] = []
        x = float(step) if step is not None else float(points[-1][0]) + 1 if points else 1.0
        stored = json_number(value)
        if points and points[-1][0] == x:
            if points[-1][1] != stored:
                points[-1][1] = stored  # the same step logged again (a replayed stream): the latest wins
                self.series_version += 1
            return
        if points and x < float(points[-1][0]):
            return  # a restarted stream replaying what is already there
        points.append([x, stored])
        self.series_version += 1
        if len(points) > MAX_POINTS:
            points[:] = [*points[:-1:2], points[-1]]

    # --- what it says ---------------------------------------------------------------------------

    def alerts(self, now: float, *, running_since: float | None, limits: Limits) -> list[Alert]:
        """The alerts due now (the caller raises each kind once per job)."""
        due: list[Alert] = []
        if self.bad_metric is not None:
            due.append(Alert("nan", f"training diverged: {self.bad_metric}. Every further step is wasted "
                                    "GPU time; a lower learning rate, gradient clipping or bf16 usually helps."))
        if running_since is None:
            return due
        quiet_since = max(self.last_line_at or running_since, running_since)
        if now - quiet_since >= limits.stall_seconds:
            due.append(Alert("stall", f"no new log line for {span(now - quiet_since)} while running "
                                      "(stuck on a download, a deadlock or a hung collective?)."))
        if self.gpu_idle_since is not None and now - self.gpu_idle_since >= limits.gpu_idle_seconds:
            due.append(Alert("gpu_idle", f"GPU utilisation under {GPU_IDLE_PERCENT:.0f}% for "
                                         f"{span(now - self.gpu_idle_since)} while running: the GPU is "
                                         "paid for and idle (data loading on the CPU? waiting on a download?)."))
        projected = self.projected_runtime(now, running_since, limits)
        if projected is not None and self.timeout_seconds and projected > self.timeout_seconds:
            due.append(Alert("timeout", f"at the current pace ({self.step}/{self.total} steps after "
                                        f"{span(now - running_since)}) the run needs about "
                                        f"{span(projected)} but its timeout is "
                                        f"{span(self.timeout_seconds)}: it will be killed before it "
                                        "ends (and before it saves or pushes)."))
        return due

    def projected_runtime(self, now: float, running_since: float, limits: Limits) -> float | None:
        if self.step is None or self.total is None or self.total <= 0:
            return None
        if self.step < max(3, math.ceil(self.total * limits.min_progress)) or self.step >= self.total:
            return None
        remaining = self.remaining_s if self.remaining_s is not None else self._remaining_from_rate()
        if remaining is None:
            return None
        return (now - running_since) + remaining

    def cost_so_far(self, now: float, running_since: float | None) -> float:
        if running_since is None:
            return 0.0
        return self.hourly_usd * max(0.0, now - running_since) / 3600.0

    def card_line(self, stage: str, now: float, running_since: float | None) -> str:
        """The job's entry on the status card: stage, elapsed, progress and ETA, the latest metrics,
        the GPU and the cost so far (what is known of it)."""
        head = [stage]
        if running_since is not None:
            head.append(f"{span(max(0.0, now - running_since))} elapsed")
        if self.step is not None:
            progress = f"step {self.step}" + (f"/{self.total} ({100 * self.step / self.total:.0f}%)"
                                                if self.total else "")
            if self.remaining_s is not None and self.total and self.step < self.total:
                progress += f" · ETA {span(self.remaining_s)}"
            head.append(progress)
        lines = [" · ".join(head)]
        shown = [f"{short_name(k)} {fmt_value(self.metrics[k])}" for k in CARD_METRICS if k in self.metrics]
        if shown:
            lines.append("   " + " · ".join(shown[:6]))
        tail = []
        if self.gpu is not None:
            gpus = f"{self.gpu.count}× GPU" if self.gpu.count > 1 else "GPU"
            tail.append(f"{gpus} {self.gpu.utilization:.0f}% · {self.gpu.memory_used / 1e9:.1f}/"
                        f"{self.gpu.memory_total / 1e9:.0f} GB")
        if running_since is not None and self.hourly_usd:
            tail.append(f"cost so far ${self.cost_so_far(now, running_since):,.2f}")
        if tail:
            lines.append("   " + " · ".join(tail))
        return "\n".join(lines)

    def live(self, now: float) -> dict[str, Any]:
        """The row's `live` column: what a card or a command in another process shows."""
        return {"step": self.step, "total": self.total, "rate": self.rate, "remaining_s": self.remaining_s,
                "metrics": {k: json_number(v) for k, v in self.metrics.items()},
                "gpu": None if self.gpu is None else {"count": self.gpu.count, "utilization": self.gpu.utilization,
                                                      "memory_used": self.gpu.memory_used,
                                                      "memory_total": self.gpu.memory_total},
                "last_line_at": self.last_line_at, "lines": self.lines_seen, "gpu_idle_since": self.gpu_idle_since,
                "at": now}

    def points(self) -> dict[str, list[list[float | str]]]:
        """The metric points as stored (kept in that form as they come: a copy is all a write costs)."""
        return {name: list(pts) for name, pts in self.series.items()}


def span(seconds: float) -> str:
    """A duration people read at a glance: `45s`, `7m30s`, `2h10m`, `1d3h`."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s" if s % 60 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m" if s % 3600 // 60 else f"{s // 3600}h"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def charted(name: str) -> bool:
    return name not in NOT_CHARTED and not name.endswith(NOT_CHARTED_SUFFIXES)


def short_name(name: str) -> str:
    return {"learning_rate": "lr", "mean_token_accuracy": "token acc", "rewards/accuracies": "reward acc",
            "rewards/margins": "reward margin"}.get(name, name)


def fmt_value(v: float) -> str:
    if is_bad(v):
        return str(v)
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.2e}"
    return f"{v:.4g}"


def json_number(v: float) -> float | str:
    """JSON has no nan or infinity (PostgreSQL's jsonb refuses them): they are kept as text."""
    return str(v) if is_bad(v) else v


def chartable(points: dict[str, Any] | None, minimum: int = 3) -> bool:
    """At least `minimum` finite points of one numeric metric."""
    return any(sum(1 for _, v in pts if not is_bad(float(v))) >= minimum for pts in (points or {}).values())
