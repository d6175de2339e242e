"""What a finished job's log says: the error signature of a failure and the last training metrics.

One table of signatures: each is a regular expression over one log line and a label people and
the agent can search for. The log is read from its end, so the latest evidence wins (a connection
warning early in a run does not hide the out-of-memory error that ended it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from intern.agent.logparse import parse_line


@dataclass(frozen=True)
class Signature:
    pattern: re.Pattern[str]
    label: str  # may name the pattern's first group: "missing column '{0}'"
    words: str = ""  # other words people search with ("oom")

    def match(self, line: str) -> str | None:
        m = self.pattern.search(line)
        if m is None:
            return None
        groups = [g for g in m.groups() if g]
        return self.label.format(*groups) if "{0}" in self.label and groups else self.label.replace(" '{0}'", "")


def _sig(pattern: str, label: str, words: str = "") -> Signature:
    return Signature(re.compile(pattern, re.I), label, words)


# Order matters within one line: the more specific reading first.
SIGNATURES: tuple[Signature, ...] = (
    _sig(r"CUDA out of memory|torch\.(?:cuda\.)?OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED|"
         r"HIP out of memory", "CUDA out of memory", "oom gpu memory vram"),
    _sig(r"'(?:loss|train_loss|eval_loss)':\s*nan\b|\bloss(?: is|=|:)\s*nan\b|NaN (?:or Inf )?(?:found|detected) in "
         r"(?:the )?loss|Loss is NaN", "NaN loss", "diverged nan inf"),
    _sig(r"\bjob (?:has )?timed out|\btimeout (?:reached|exceeded)|exceeded (?:its|the) (?:maximum )?(?:timeout|run "
         r"time)|maximum (?:run ?time|duration) (?:reached|exceeded)", "timeout", "timed out"),
    _sig(r"Column '?\"?([\w.-]+)'?\"? not in the dataset|column ['\"]?([\w.-]+)['\"]? (?:does not exist|not found)|"
         r"KeyError: ['\"](messages|text|prompt|completion|chosen|rejected|label|conversations|input_ids)['\"]",
         "missing column '{0}'", "dataset column schema"),
    _sig(r"Unknown split ['\"]?([\w.-]+)|Bad split: ['\"]?([\w.-]+)|split ['\"]?([\w.-]+)['\"]? (?:not found|does not "
         r"exist)", "missing split '{0}'", "dataset split"),
    _sig(r"GatedRepoError|Cannot access gated repo|You are trying to access a gated repo|is a gated (?:model|dataset)|"
         r"Access to (?:model|dataset) \S+ is restricted", "gated repo without access", "gated 403 access token"),
    _sig(r"RepositoryNotFoundError|401 Client Error|Invalid (?:user )?token|Repository Not Found for url",
         "repo not found or no access", "401 private token"),
    _sig(r"No space left on device|\[Errno 28\]", "disk full", "disk space storage"),
    _sig(r"ModuleNotFoundError: No module named ['\"]([\w.]+)['\"]", "missing module '{0}'",
         "import error dependency package"),
    _sig(r"ImportError: (?:cannot import name ['\"](\w+)['\"])?", "import error '{0}'", "import dependency version"),
    _sig(r"chat_template is not set|does not have a chat template|no chat template|Cannot use chat template",
         "tokenizer chat template missing", "tokenizer template"),
    _sig(r"tokenizer does not have a padding token|Asking to pad but the tokenizer", "tokenizer has no pad token",
         "tokenizer padding"),
    _sig(r"Bf16 (?:is only supported|requires)|bf16.{0,40}(?:not supported|requires)|--bf16 requires",
         "bf16 not supported on this GPU", "precision fp16 t4"),
    _sig(r"NCCL (?:error|WARN.*failed)|ProcessGroupNCCL.*(?:timeout|error)", "NCCL / distributed error",
         "multi gpu distributed"),
    _sig(r"\bOOMKilled\b|exit code:? 137\b|Out of memory: Killed process|^\s*Killed\s*$|signal 9\b|SIGKILL",
         "killed by the host (out of RAM)", "oom cpu memory ram killed"),
    _sig(r"ConnectionError|HTTPSConnectionPool|Max retries exceeded|Read timed out|ReadTimeout|Connection reset by "
         r"peer|Temporary failure in name resolution|50[234] Server Error|hub is unavailable",
         "connection or Hub error", "network http hub"),
)

_EXCEPTION = re.compile(r"^\s*(?:[\w.]+\.)?(\w+(?:Error|Exception))(?::|$)")


@dataclass(frozen=True)
class ErrorFound:
    signature: str
    line: str  # the line that shows it, as logged (trimmed)


def error_signature(lines: Sequence[str], status_message: str | None = None) -> ErrorFound | None:
    """The failure a log tail (and the Hub's status message) shows, latest evidence first; a Python
    exception no signature names is reported by its class name."""
    candidates = [*lines, status_message] if status_message else list(lines)
    for line in reversed(candidates):
        for sig in SIGNATURES:
            label = sig.match(line)
            if label is not None:
                return ErrorFound(label, line.strip()[:300])
    for line in reversed(lines):
        m = _EXCEPTION.match(line)
        if m is not None:
            return ErrorFound(m.group(1), line.strip()[:300])
    return None


def search_words(signature: str | None) -> str:
    """The words a signature is found by besides its label ("oom" for "CUDA out of memory")."""
    if not signature:
        return ""
    for sig in SIGNATURES:
        base = sig.label.split(" '{0}'")[0]
        if signature.startswith(base):
            return sig.words
    return ""


# --- metrics ------------------------------------------------------------------------------------

KEPT = ("loss", "eval_loss", "train_loss", "train_runtime", "epoch", "grad_norm", "learning_rate", "reward")
MAX_METRICS = 12


def kept_metrics(latest: Mapping[str, float | str]) -> dict[str, float | str]:
    """The metrics a run record keeps, non-finite values as text (JSON, and PostgreSQL's jsonb, have
    no NaN)."""
    keep = [k for k in KEPT if k in latest] + [k for k in latest if k not in KEPT and k.startswith(("eval_", "reward"))]
    out: dict[str, float | str] = {}
    for k in keep[:MAX_METRICS]:
        v = latest[k]
        out[k] = v if isinstance(v, str) or math.isfinite(v) else str(v)
    return out


def final_metrics(lines: Sequence[str]) -> dict[str, float | str]:
    """The latest value of each training metric the log lines show (Trainer/TRL dicts, tqdm postfixes,
    DeepSpeed and plain prints, as the log parser reads them)."""
    latest: dict[str, float] = {}
    for line in lines:
        facts = parse_line(line)
        if facts is not None:
            latest.update(facts.metrics)
    return kept_metrics(latest)


def headline_metric(metrics: dict[str, float | str]) -> tuple[str, float | str] | None:
    """The one number a table shows: eval loss, else the final training loss."""
    for key in ("eval_loss", "train_loss", "loss", "reward"):
        if key in metrics:
            return key, metrics[key]
    return None


def has_nan_loss(metrics: dict[str, float | str]) -> bool:
    return any(metrics.get(k) in ("nan", "inf", "-inf") for k in ("loss", "train_loss", "eval_loss"))
