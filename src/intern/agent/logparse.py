"""Training progress and metrics read from a job's log lines. Pure functions, no I/O.

The formats are the ones training scripts actually print:

- transformers Trainer / TRL dicts: `{'loss': 1.42, 'grad_norm': 0.83, 'learning_rate': 1.9e-05,
  'epoch': 0.25}` (values may be quoted, `nan`/`inf`, or numpy/torch reprs such as `np.float64(1.2)`),
  eval dicts (`eval_loss`, …) and the final summary (`train_runtime`, `train_loss`, …);
- tqdm bars: `45%|████▌     | 450/1000 [02:10<02:40,  3.43it/s, loss=1.2]`, with or without a
  description, in `it/s` or `s/it`; bars of data processing (`Map:`, downloads, `examples/s`) are
  not training progress;
- DeepSpeed (`[Rank 0] step=100, skipped=0, lr=[1.9e-05], …`, `…/global_step=10, …`) and
  Megatron-DeepSpeed (`iteration 100/ 10000 | … | lm loss: 2.3E+00 | grad norm: 0.8 | …`) lines;
- plain prints: `step 10 loss 2.3`, `Step 10/100 | loss 2.3 | lr 1e-4`, accelerate logger lines such
  as `… - INFO - __main__ - Step 100: loss=2.31, lr=1.9e-05`, `epoch 0: perplexity: 25.3 eval_loss: 3.2`.

`parse_line` returns what one line says, or None when it says nothing about training.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

NUM = r"[-+]?(?:nan|inf(?:inity)?|(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)"

# --- Trainer / TRL dicts ---------------------------------------------------------------------------
_DICT_KEY = re.compile(r"""['"]([A-Za-z_][\w/.\- ]{0,80})['"]\s*:\s*""")
# A value: a bare or quoted number, possibly wrapped as np.float64(…), numpy.float32(…), tensor(…).
_DICT_VALUE = re.compile(r"""(?:(?:np|numpy|torch)\.\w+\(|tensor\(|float\()?\s*['"]?(""" + NUM + r""")['"]?""", re.I)
_TRAINING_KEYS = frozenset({"loss", "grad_norm", "learning_rate", "epoch", "train_loss", "train_runtime",
                            "reward", "kl", "entropy", "mean_token_accuracy"})
_TRAINING_PREFIXES = ("eval_", "train_", "rewards/", "logps/", "logits/", "reward", "objective/", "completions/")

# --- tqdm ---------------------------------------------------------------------------------------------
_CLOCK = r"\d+:\d{2}(?::\d{2})?"
_TQDM = re.compile(r"(?P<n>\d+)/(?P<total>\d+)\s*\[(?P<elapsed>" + _CLOCK + r")<(?P<remaining>" + _CLOCK
                   + r"|\?),\s*(?P<rate>[\d.]+|\?)\s*(?P<unit>[A-Za-z]+/s|s/[A-Za-z]+)(?P<postfix>[^\]]*)\]")
_BAR_HEAD = re.compile(r"\s*\d{1,3}%\|[^|]*\|\s*$")
_NOT_TRAINING = re.compile(r"map|filter|download|generat|load|tokeniz|extract|resolv|fetch|sav|upload|shard|"
                           r"convert|pack|process|preprocess|apply|sampl|build|copy|verif|writ|read|"
                           r"creat|cast|shuffl|flatten|concat|split|evaluat|valid|test|predict|infer", re.I)
_POSTFIX_PAIR = re.compile(r"([A-Za-z_][\w/.]*)\s*=\s*(" + NUM + r")", re.I)

# --- DeepSpeed / Megatron -------------------------------------------------------------------------------
_DS_STEP = re.compile(r"\bstep=(\d+),\s*skipped=\d+,\s*lr=\[\s*(" + NUM + r")", re.I)
_DS_GLOBAL = re.compile(r"\bglobal_step=(\d+)")
_MEGATRON = re.compile(r"\biteration\s+(\d+)\s*/\s*(\d+)\s*\|")
_MEGATRON_FIELD = re.compile(r"\|\s*([a-z][a-z ]*?(?:\([a-z]+\))?)\s*:\s*(" + NUM + r")", re.I)

# --- plain prints ---------------------------------------------------------------------------------------
_STEP = re.compile(r"\b(?:global[_ ])?(?:step|iter(?:ation)?)s?\b\s*[:=#]?\s*\[?\s*(\d+)(?:\s*/\s*(\d+))?", re.I)
_EPOCH_LEAD = re.compile(r"^\W*epoch\s*[:=]?\s*(\d+)(?:\s*/\s*\d+)?\s*[:,|-]", re.I)
_KNOWN_NAMES = (r"eval[_ ]loss|val(?:idation)?[_ ]loss|train[_ ]loss|lm[_ ]loss|loss|grad[_ ]norm|"
                r"learning[_ ]rate|lr|perplexity|ppl|accuracy|acc|reward|kl|epoch")
_PAIR = re.compile(r"(?<![\w/])(" + _KNOWN_NAMES + r"|[A-Za-z_][\w/.]*)\s*[:=]\s*(" + NUM + r")(?![\w.])", re.I)
_SPACED_PAIR = re.compile(r"(?<![\w/])(" + _KNOWN_NAMES + r")\s+(" + NUM + r")(?![\w.])", re.I)
_NAME_ALIASES = {"lr": "learning_rate", "lm_loss": "loss", "val_loss": "eval_loss", "validation_loss": "eval_loss",
                 "ppl": "perplexity", "acc": "accuracy", "grad_norm": "grad_norm", "learning_rate": "learning_rate",
                 "elapsed_time_per_iteration_(ms)": "ms_per_step"}
_IGNORED_NAMES = frozenset({"step", "steps", "iter", "iteration", "global_step", "skipped", "rank", "info",
                            "warning", "micro_step", "it", "s"})


@dataclass(frozen=True, slots=True)
class LineFacts:
    """What one log line says about training."""

    source: str  # trainer | tqdm | deepspeed | megatron | plain
    step: int | None = None
    total: int | None = None
    elapsed_s: float | None = None
    remaining_s: float | None = None
    rate: float | None = None  # steps a second
    metrics: dict[str, float] = field(default_factory=dict)


def number(text: str) -> float | None:
    """A float from a log's spelling of it: `1.9e-05`, `nan`, `-inf`, `Infinity`."""
    try:
        return float(text)
    except ValueError:
        return None


def metric_name(raw: str) -> str:
    name = re.sub(r"\s+", "_", raw.strip().lower())
    return _NAME_ALIASES.get(name, name)


def clock_seconds(text: str) -> float | None:
    """tqdm's `MM:SS` or `H:MM:SS`."""
    if not text or text == "?":
        return None
    total = 0
    for part in text.split(":"):
        total = total * 60 + int(part)
    return float(total)


def parse_line(line: str) -> LineFacts | None:
    """The training facts in one log line; a line with carriage returns (a tqdm bar redrawn in place)
    is read segment by segment and its last progress wins."""
    if "\r" in line:
        return _merge([parse_segment(seg) for seg in latest_redraws(line.split("\r"))])
    return parse_segment(line)


def looks_like_bar(text: str) -> bool:
    """A cheap test for a progress-bar redraw (no parsing)."""
    return ("it/s" in text or "s/it" in text) and "[" in text and "{" not in text


def latest_redraws(lines: list[str]) -> list[str]:
    """The lines without the bar redraws that another redraw follows at once: only the last of a run
    says anything (a training log is mostly redraws)."""
    return [line for i, line in enumerate(lines)
            if not (i + 1 < len(lines) and looks_like_bar(line) and looks_like_bar(lines[i + 1]))]


def parse_segment(text: str) -> LineFacts | None:
    if "{" in text and ":" in text:
        found = trainer_dict(text)
        if found is not None:
            return found
    if "/" in text and "[" in text:
        found = tqdm_bar(text)
        if found is not None:
            return found
    lowered = text.lower()
    if "iteration" in lowered and "|" in text:
        found = megatron(text)
        if found is not None:
            return found
    if "step=" in lowered or "global_step=" in lowered:
        found = deepspeed(text)
        if found is not None:
            return found
    if "step" in lowered or "iter" in lowered or "epoch" in lowered:
        return plain(text)
    return None


def trainer_dict(text: str) -> LineFacts | None:
    start, end = text.find("{"), text.rfind("}")
    if end < start:
        end = len(text)
    body = text[start + 1:end]
    keys = list(_DICT_KEY.finditer(body))
    metrics: dict[str, float] = {}
    for i, m in enumerate(keys):
        chunk = body[m.end():keys[i + 1].start() if i + 1 < len(keys) else len(body)]
        value = _DICT_VALUE.match(chunk)
        if value is None:
            continue
        parsed = number(value.group(1))
        if parsed is not None:
            metrics[m.group(1)] = parsed
    if not any(k in _TRAINING_KEYS or k.startswith(_TRAINING_PREFIXES) for k in metrics):
        return None
    metrics.pop("total_flos", None)
    return LineFacts("trainer", metrics=metrics)


def tqdm_bar(text: str) -> LineFacts | None:
    m = _TQDM.search(text)
    if m is None:
        return None
    unit = m["unit"]
    if unit not in ("it/s", "s/it"):
        return None  # examples/s, ba/s, B/s: data processing or downloads
    prefix = _BAR_HEAD.sub("", text[:m.start()]).strip().rstrip(":").strip()
    if prefix and _NOT_TRAINING.search(prefix):
        return None
    rate = number(m["rate"]) if m["rate"] != "?" else None
    if rate is not None and unit == "s/it":
        rate = 1.0 / rate if rate > 0 else None
    total = int(m["total"])
    if total <= 0:
        return None
    metrics = {metric_name(k): v for k, raw in _POSTFIX_PAIR.findall(m["postfix"])
               if (v := number(raw)) is not None}
    return LineFacts("tqdm", step=int(m["n"]), total=total, elapsed_s=clock_seconds(m["elapsed"]),
                     remaining_s=clock_seconds(m["remaining"]), rate=rate, metrics=metrics)


def deepspeed(text: str) -> LineFacts | None:
    m = _DS_STEP.search(text)
    if m is not None:
        lr = number(m.group(2))
        return LineFacts("deepspeed", step=int(m.group(1)), metrics={} if lr is None else {"learning_rate": lr})
    g = _DS_GLOBAL.search(text)
    if g is not None:
        return LineFacts("deepspeed", step=int(g.group(1)))
    return None


def megatron(text: str) -> LineFacts | None:
    m = _MEGATRON.search(text)
    if m is None:
        return None
    metrics: dict[str, float] = {}
    rate = None
    for name, raw in _MEGATRON_FIELD.findall(text):
        value = number(raw)
        if value is None:
            continue
        key = metric_name(name)
        if key == "ms_per_step":
            rate = 1000.0 / value if value > 0 else None
        elif key in ("loss", "grad_norm", "learning_rate", "eval_loss", "loss_scale"):
            metrics[key] = value
    return LineFacts("megatron", step=int(m.group(1)), total=int(m.group(2)), rate=rate, metrics=metrics)


def plain(text: str) -> LineFacts | None:
    step_m = _STEP.search(text)
    epoch_m = _EPOCH_LEAD.search(text) if step_m is None else None
    if step_m is None and epoch_m is None:
        return None
    after = text[(step_m or epoch_m).end():]  # type: ignore[union-attr]
    metrics: dict[str, float] = {}
    for name, raw in [*_PAIR.findall(after), *_SPACED_PAIR.findall(after)]:
        key = metric_name(name)
        value = number(raw)
        if value is None or key in _IGNORED_NAMES or key in metrics:
            continue
        metrics[key] = value
    if epoch_m is not None:
        if not metrics:
            return None
        metrics.setdefault("epoch", float(epoch_m.group(1)))
        return LineFacts("plain", metrics=metrics)
    assert step_m is not None
    if not metrics and step_m.group(2) is None:
        return None  # "step 3" alone, e.g. a numbered instruction, is not progress
    total = int(step_m.group(2)) if step_m.group(2) else None
    return LineFacts("plain", step=int(step_m.group(1)), total=total, metrics=metrics)


def _merge(found: list[LineFacts | None]) -> LineFacts | None:
    facts = [f for f in found if f is not None]
    if not facts:
        return None
    if len(facts) == 1:
        return facts[0]
    progress = next((f for f in reversed(facts) if f.step is not None), facts[-1])
    metrics: dict[str, float] = {}
    for f in facts:
        metrics.update(f.metrics)
    return LineFacts(progress.source, progress.step, progress.total, progress.elapsed_s, progress.remaining_s,
                     progress.rate, metrics)


def is_bad(value: float) -> bool:
    return math.isnan(value) or math.isinf(value)
