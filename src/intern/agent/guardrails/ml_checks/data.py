"""The dataset lines of the card: does the data fit the trainer as the script feeds it, and how much of it
is there (rows and tokens per row, for the time estimate)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from intern.agent.datasets_format import TRAINER_FORMATS
from intern.agent.errors import ToolFeedback
from intern.agent.tools.base import Check
from intern.agent.tools.datasets import Inspection, inspect_dataset

if TYPE_CHECKING:
    from intern.agent.context_deps import ToolContext
    from intern.agent.guardrails.ml_checks.reading import DatasetRef, ScriptFacts

# PRMTrainer takes stepwise supervision: a prompt, a list of completion steps and one label per step.
FORMATS: dict[str, frozenset[str]] = {**TRAINER_FORMATS, "PRMTrainer": frozenset({"stepwise"})}
_STEPWISE = {"prompt": ("string",), "completions": ("string_list", "list"), "labels": ("list", "other")}
CHARS_PER_TOKEN = 4.0  # English text with a modern BPE tokenizer (Llama 3, Qwen 2.5): ~4 characters a token


@dataclass
class DataSize:
    rows: int | None  # rows trained on (after a split slice or .select)
    tokens_per_row: float | None  # from the sample rows' text


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    detail = next((line for line in text if line.strip()), "")
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


async def dataset_checks(ctx: ToolContext, facts: ScriptFacts) -> tuple[list[Check], DataSize]:
    out = [Check("warn", f"Dataset {d} is loaded from local files: its format was not checked")
           for d in facts.local_datasets]
    out += [Check("warn", f"The dataset in load_dataset({d}) could not be read from the code: its format was "
                          "not checked") for d in facts.unreadable_datasets]
    refs = facts.datasets[:3]
    found = await asyncio.gather(*(_inspect(ctx, ref) for ref in refs))
    size = _size(refs[0], found[0], facts) if refs and isinstance(found[0], Inspection) else DataSize(None, None)
    trainer = next((t for t in facts.trainers if t in FORMATS), None)
    if trainer is None:
        if facts.datasets and facts.trainers:
            out.append(Check("warn", f"{facts.trainers[0]} has no fixed dataset format (the script's own "
                                     "preprocessing decides): the dataset format was not checked"))
        return out, size
    if not facts.datasets and not out:
        out.append(Check("warn", f"No load_dataset(\"…\") call with a dataset id found: the data {trainer} "
                                 "trains on was not checked"))
    for ref, ins in zip(refs, found, strict=True):
        out.append(_fit(ref, ins, trainer, facts) if isinstance(ins, Inspection)
                   else Check("warn", f"Could not check dataset {ref.id} against {trainer}: {ins}"))
    return out, size


async def _inspect(ctx: ToolContext, ref: DatasetRef) -> Inspection | str:
    try:
        return await inspect_dataset(ctx, ref.id, ref.config, ref.split)
    except ToolFeedback as exc:
        return str(exc)
    except Exception as exc:
        return first_line(exc)


def _fit(ref: DatasetRef, ins: Inspection, trainer: str, facts: ScriptFacts) -> Check:
    where = f"{ref.id} ({ins.config}/{ins.split})"
    columns: dict[str, str] = {c.name: c.kind for c in ins.report.columns}
    recipe = facts.recipe
    if recipe.formatting_func and facts.formatting_columns:
        missing = [c for c in facts.formatting_columns if c not in columns]
        if missing:
            return Check("error", f"Dataset {where} has no column {', '.join(map(repr, missing))}, which the "
                                  f"script's formatting_func {recipe.formatting_func} reads (columns: "
                                  f"{', '.join(columns)}): it fails at the first row")
        return Check("ok", f"Dataset {where} is formatted for {trainer} by the script's formatting_func "
                           f"{recipe.formatting_func} (reads {', '.join(facts.formatting_columns)}: present)")
    if trainer == "SFTTrainer" and recipe.dataset_text_field and recipe.dataset_text_field != "text" \
            and not recipe.formatting_func:
        kind = columns.get(recipe.dataset_text_field)
        if kind == "string":
            return Check("ok", f"Dataset {where} fits SFTTrainer through dataset_text_field="
                               f"'{recipe.dataset_text_field}' (a text column)")
        if kind is None and not (set(ins.report.fits) & {"sft_messages", "sft_prompt_completion"}):
            return Check("error", f"Dataset {where} has no column '{recipe.dataset_text_field}' "
                                  f"(dataset_text_field; columns: {', '.join(columns)})")
    accepted = FORMATS[trainer]
    fits = set(ins.report.fits) | ({"stepwise"} if _stepwise(columns) else set())
    if fits & accepted:
        return Check("ok", f"Dataset {where} fits {trainer} as it is ({', '.join(sorted(fits & accepted))})")
    is_now = ", ".join(ins.report.fits) or "none of the known formats"
    needs = ", ".join(sorted(accepted))
    if facts.transforms:
        return Check("warn", f"Dataset {where} is {is_now} as it is, not what {trainer} takes ({needs}); the script "
                             f"transforms it ({', '.join(dict.fromkeys(facts.transforms))}): check the result fits")
    hint = next((c for c in ins.report.conversions if any(f"-> {a}" in c for a in accepted)), None)
    text = f"Dataset {where} does not fit {trainer}: it is {is_now}, {trainer} needs {needs}"
    return Check("error", text + (f". {hint}" if hint else ""))


def _stepwise(columns: dict[str, str]) -> bool:
    return all(columns.get(name) in kinds for name, kinds in _STEPWISE.items())


# --- how much data -------------------------------------------------------------------------------------

def _size(ref: DatasetRef, ins: Inspection, facts: ScriptFacts) -> DataSize:
    rows = ins.num_rows.get((ins.config, ins.split)) or None
    if rows is not None and ref.rows:
        rows = _slice(rows, ref.rows)
    if facts.row_limit is not None:
        rows = min(rows, facts.row_limit) if rows is not None else facts.row_limit
    sample = [_chars(r) for r in ins.rows]
    tokens = sum(sample) / len(sample) / CHARS_PER_TOKEN if sample else None
    return DataSize(rows, tokens)


def _slice(rows: int, text: str) -> int:
    """'[:5%]' -> 5% of the rows; '[:1000]' -> 1000; '[100:600]' -> 500."""
    m = re.fullmatch(r"\[\s*(\d*)\s*(%?)\s*:\s*(\d*)\s*(%?)\s*\]", text.strip())
    if not m:
        return rows
    start = int(m.group(1) or 0) * (rows / 100 if m.group(2) else 1)
    end = int(m.group(3)) * (rows / 100 if m.group(4) else 1) if m.group(3) else rows
    return max(0, int(min(end, rows) - min(start, rows)))


def _chars(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_chars(v) for v in value.values())
    if isinstance(value, list):
        return sum(_chars(v) for v in value)
    return 0
