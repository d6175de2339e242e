"""Which training formats a dataset fits, read from the dataset viewer's `features` and sample rows.

A label is given only when the data fits it as it is; what a small transformation would make it fit
goes into `conversions`, and what a trainer would get wrong into `notes`. Sample rows settle what the
schema cannot: whether chosen/rejected share their prompt or repeat the prompt column, and how the
conversations are built. The labels, the trainers and the column namings are in `datasets_labels`;
reading the columns is in `datasets_schema`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from intern.agent.datasets_labels import (
    ALPACA_INPUT,
    ALPACA_INSTRUCTION,
    ALPACA_OUTPUT,
    ANSWER_ALIASES,
    CANDIDATE_LISTS,
    CONTEXT_ALIASES,
    CONVERSATION_NAMES,
    LABELS,
    PAIR_SUFFIXES,
    PREFERENCE_PROMPTS,
    PROMPT_ALIASES,
    RESPONSE_BASES,
    ROLE_KEYS,
    SHAREGPT_KEYS,
    SHAREGPT_ROLES,
    STEPWISE_COMPLETIONS,
    STEPWISE_LABELS,
    TRAINER_FORMATS,
    TRAINERS_BY_LABEL,
    WINNER_NAMES,
)
from intern.agent.datasets_schema import (
    Column,
    Kind,
    MessagesAnalysis,
    analyse_messages,
    column_from_type,
    column_from_values,
    parse_features,
    refine,
)

__all__ = ["LABELS", "TRAINERS_BY_LABEL", "TRAINER_FORMATS", "Column", "FormatReport", "MessagesAnalysis",
           "analyse_messages", "classify", "clip_row", "column_from_type", "column_from_values", "parse_features"]

_SHARED_PREFIX_CHARS = 16
_EVIDENCE_SHARE = 0.8


# --- classification -------------------------------------------------------------------------------

@dataclass
class FormatReport:
    columns: list[Column]
    fits: list[str]
    conversions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    messages: list[MessagesAnalysis] = field(default_factory=list)

    def fits_line(self) -> str:
        return "Fits: " + (", ".join(self.fits) if self.fits else "none")

    def trainers_line(self) -> str | None:
        names: list[str] = []
        for label in self.fits:
            for trainer in TRAINERS_BY_LABEL.get(label, ()):
                if trainer not in names:
                    names.append(trainer)
        return ("Trainers (as it is): " + ", ".join(names)) if names else None


@dataclass
class _Schema:
    cols: dict[str, Column]
    rows: Sequence[Mapping[str, Any]]

    def kind(self, name: str) -> Kind | None:
        col = self.cols.get(name)
        return col.kind if col else None

    def textual(self, name: str) -> bool:
        return self.kind(name) in ("string", "conversation")

    def values(self, name: str) -> list[Any]:
        return [r.get(name) for r in self.rows if r.get(name) is not None]

    def first_of(self, names: Iterable[str], kinds: Iterable[str] = ("string",)) -> str | None:
        wanted = set(kinds)
        return next((n for n in names if self.kind(n) in wanted), None)


def _is_classification(s: _Schema) -> str | None:
    for col in s.cols.values():
        if col.kind == "classlabel" or (col.name in ("label", "labels") and col.kind == "int"):
            return col.name
    return None


def _is_message_tree(s: _Schema) -> bool:
    return "parent_id" in s.cols and "role" in s.cols and ("message_id" in s.cols or "message_tree_id" in s.cols)


def _shared_prefix(chosen: Any, rejected: Any) -> bool | None:
    if isinstance(chosen, str) and isinstance(rejected, str):
        n = 0
        for a, b in zip(chosen, rejected, strict=False):
            if a != b:
                break
            n += 1
        return n >= _SHARED_PREFIX_CHARS
    if isinstance(chosen, list) and isinstance(rejected, list):
        if not chosen or not rejected or not isinstance(chosen[0], Mapping):
            return False
        return chosen[0] == rejected[0] and str(chosen[0].get("role")) != "assistant"
    return None


def _implicit_prompt(s: _Schema) -> tuple[bool, bool]:
    """(chosen and rejected carry a shared prompt, that was seen on rows rather than assumed)."""
    pairs = [(r.get("chosen"), r.get("rejected")) for r in s.rows
             if r.get("chosen") is not None and r.get("rejected") is not None]
    verdicts = [v for v in (_shared_prefix(c, r) for c, r in pairs) if v is not None]
    if not verdicts:
        return True, False
    return sum(verdicts) >= _EVIDENCE_SHARE * len(verdicts), True


def _repeats_prompt(prompt: Any, answer: Any) -> bool | None:
    """Does a chosen/rejected value start with the row's prompt again? None: cannot tell."""
    if isinstance(prompt, str) and prompt.strip():
        if isinstance(answer, str):
            return answer.lstrip().startswith(prompt.strip())
        if isinstance(answer, list) and answer and isinstance(answer[0], Mapping):
            first = next((m for m in answer if str(m.get("role")) not in ("system", "developer")), None)
            return first is not None and str(first.get("role")) == "user" and \
                str(first.get("content") or "").strip() == prompt.strip()
    if isinstance(prompt, list) and prompt and isinstance(answer, list):
        return answer[:len(prompt)] == prompt
    return None


def _prompt_repeated(s: _Schema) -> bool:
    """On the rows read, chosen and rejected both start with the prompt column's content."""
    verdicts = []
    for row in s.rows:
        seen = [_repeats_prompt(row.get("prompt"), row.get(k)) for k in ("chosen", "rejected")]
        if None not in seen:
            verdicts.append(all(seen))
    return bool(verdicts) and sum(verdicts) >= _EVIDENCE_SHARE * len(verdicts)


def _preference_labels(s: _Schema, notes: list[str]) -> set[str]:
    chosen, rejected, prompt = s.kind("chosen"), s.kind("rejected"), s.kind("prompt")
    if chosen not in ("string", "conversation") or chosen != rejected:
        return set()
    out: set[str] = set()
    repeated = prompt in ("string", "conversation") and _prompt_repeated(s)
    if prompt == chosen or repeated:
        out.add("dpo_explicit")
        if repeated:
            notes.append(_DUPLICATED_PROMPT + (_DUPLICATED_EXTRACTED if prompt != chosen else _DUPLICATED_TWICE))
    else:
        shared, seen = _implicit_prompt(s)
        if shared:
            out.add("dpo_implicit")
            if not seen:
                notes.append("chosen/rejected were assumed to include the prompt (no rows to verify it)")
    if out:
        out.add("reward")
    return out


_DUPLICATED_PROMPT = ("The prompt is duplicated: 'chosen' and 'rejected' start with the content of 'prompt' again. "
                      "Drop the 'prompt' column (chosen/rejected are then dpo_implicit) or strip the prompt from "
                      "chosen/rejected")
_DUPLICATED_EXTRACTED = ("; as it is, TRL's maybe_extract_prompt takes the prompt out of chosen/rejected again "
                         "because 'prompt' is text and they are conversations")
_DUPLICATED_TWICE = "; as it is, DPOTrainer would train on the prompt twice"


def _sft_labels(s: _Schema) -> set[str]:
    out: set[str] = set()
    if s.kind("messages") == "conversation":
        out.add("sft_messages")
    if s.kind("text") == "string" and not _is_classification(s) and not _is_message_tree(s):
        out.add("sft_text")
    pair = s.kind("prompt"), s.kind("completion")
    if pair[0] in ("string", "conversation") and pair[0] == pair[1] and s.kind("label") != "bool":
        out.add("sft_prompt_completion")
    if any(c.kind == "sharegpt" for c in s.cols.values()):
        out.add("sft_sharegpt")
    if _alpaca_columns(s) is not None:
        out.add("sft_alpaca")
    return out


def _alpaca_columns(s: _Schema) -> tuple[str, str | None, str] | None:
    """(instruction, input or None, output) under any of the instruction-input-output namings."""
    instruction, output = s.first_of(ALPACA_INSTRUCTION), s.first_of(ALPACA_OUTPUT)
    if instruction is None or output is None:
        return None
    given = next((n for n in ALPACA_INPUT if n in s.cols), None)
    if given is not None and s.kind(given) != "string":
        return None
    return instruction, given, output


def _other_labels(s: _Schema) -> set[str]:
    out: set[str] = set()
    prompt, completion = s.kind("prompt"), s.kind("completion")
    if prompt in ("string", "conversation") and prompt == completion and s.kind("label") == "bool":
        out.add("kto")
    if prompt in ("string", "conversation"):
        out.add("grpo")
        if _stepwise(s):
            out.add("stepwise")
    return out


def _stepwise(s: _Schema) -> bool:
    """A prompt, the steps of its completion (texts) and one label per step (bool or 0/1)."""
    labels = s.cols.get(STEPWISE_LABELS)
    return (s.kind(STEPWISE_COMPLETIONS) == "string_list" and labels is not None
            and labels.type_text in ("list of bool", "list of int64", "list of int32", "list of int8"))


def classify(features: Mapping[str, Any] | Sequence[Any] | None,
             rows: Sequence[Mapping[str, Any]] = ()) -> FormatReport:
    """Every label the data fits as it is, the conversions that would make it fit others, and notes."""
    columns = refine(parse_features(features), rows)
    s = _Schema({c.name: c for c in columns}, rows)
    notes: list[str] = []
    fits = _sft_labels(s) | _preference_labels(s, notes) | _other_labels(s)
    report = FormatReport(columns, [label for label in LABELS if label in fits], notes=notes)
    report.conversions = _conversions(s, fits)
    report.notes.extend(_notes(s))
    report.messages = _analyse_conversations(s)
    return report


# --- conversions and notes -------------------------------------------------------------------------

def _sharegpt_conversion(s: _Schema, col: Column) -> str:
    seen = Counter(str(m.get("from")) for conv in s.values(col.name) if isinstance(conv, list)
                   for m in conv if isinstance(m, Mapping))
    mapping = ", ".join(f"{raw} → {SHAREGPT_ROLES[raw.lower()]}" for raw in seen
                        if raw.lower() in SHAREGPT_ROLES) or "human → user, gpt → assistant, system → system"
    unknown = sorted(raw for raw in seen if raw.lower() not in SHAREGPT_ROLES)
    text = (f"Convert: sft_sharegpt -> sft_messages by mapping from/value to role/content ({mapping}) "
            f"and naming the column 'messages' instead of '{col.name}'")
    return text + (f"; decide what to do with 'from' values {', '.join(unknown)}" if unknown else "")


def _json_conversation(text: Any) -> bool:
    if not isinstance(text, str) or not text.lstrip().startswith("["):
        return False
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, list) and bool(value) and all(
        isinstance(v, Mapping) and (ROLE_KEYS <= v.keys() or SHAREGPT_KEYS <= v.keys()) for v in value)


def _conversation_rename(s: _Schema, fits: set[str]) -> list[str]:
    if "sft_messages" in fits:
        return []
    for name in CONVERSATION_NAMES:
        values = s.values(name)
        if s.kind(name) == "string" and values and all(_json_conversation(v) for v in values):
            return [f"Convert: column '{name}' -> sft_messages by parsing its JSON text (json.loads) into a list "
                    "of messages" + ("" if name == "messages" else " named 'messages'")]
    reserved = {"prompt", "completion", "chosen", "rejected"}
    for name in CONVERSATION_NAMES:
        col = s.cols.get(name)
        if col and col.kind == "conversation" and name not in reserved and name != "messages":
            return [f"Convert: column '{name}' -> sft_messages by renaming it to 'messages'"]
    return []


def _alpaca_conversions(s: _Schema) -> list[str]:
    found = _alpaca_columns(s)
    assert found is not None
    instruction, given, output = found
    joined = f" (+ \"\\n\\n\" + {given} when {given} is not empty)" if given else ""
    return [f"Convert: sft_alpaca -> sft_prompt_completion by prompt = {instruction}{joined}, completion = {output}",
            f"Convert: sft_alpaca -> sft_messages by a user turn = {instruction}{joined} and an assistant "
            f"turn = {output}"]


def _answer_source(s: _Schema, name: str) -> str:
    col = s.cols[name]
    if col.kind == "struct" and "text" in col.fields:
        return f"{name}['text'][0]"
    if col.kind == "string_list":
        return f"{name}[0]"
    return f"'{name}'"


def _qa_conversions(s: _Schema, fits: set[str]) -> list[str]:
    """Question/answer-style columns under other names (gsm8k, squad, dolly, HelpSteer...)."""
    out: list[str] = []
    prompt_col = s.first_of(PROMPT_ALIASES)
    if prompt_col is None:
        return out
    answers = [n for n in ANSWER_ALIASES if n in s.cols and n != prompt_col
               and s.kind(n) in ("string", "struct", "string_list")]
    # a worked solution is what to train on; a bare final answer is what a reward function checks
    answer_col = "solution" if "solution" in answers else next(iter(answers), None)
    reward_col = "answer" if "answer" in answers else answer_col
    context_col = s.first_of(CONTEXT_ALIASES)
    context = f" with '{context_col}' put before it" if context_col else ""
    if answer_col and not fits & {"sft_prompt_completion", "sft_alpaca", "sft_messages"}:
        out.append(f"Convert: {prompt_col}/{answer_col} -> sft_prompt_completion by making '{prompt_col}'{context} "
                   f"the prompt and {_answer_source(s, answer_col)} the completion")
    if "grpo" not in fits:
        keep = f" (keep {_answer_source(s, reward_col)} for the reward function)" if reward_col else ""
        out.append(f"Convert: {prompt_col} -> grpo by making '{prompt_col}'{context} the 'prompt' column{keep}")
    return out


def _preference_conversions(s: _Schema, fits: set[str]) -> list[str]:
    out: list[str] = []
    if "dpo_implicit" in fits and "dpo_explicit" not in fits:
        out.append("Convert: dpo_implicit -> dpo_explicit by splitting the shared start of chosen/rejected "
                   "off as 'prompt' (trl's extract_prompt; DPOTrainer does it itself)")
    paired = next((label for label in ("dpo_explicit", "dpo_implicit") if label in fits), None)
    if paired and "kto" not in fits:
        out.append(f"Convert: {paired} -> kto by unpairing each pair into a label=true and a label=false "
                   "row (trl's unpair_preference_dataset; KTOTrainer does it itself)")
    pref = s.kind("chosen") in ("string", "conversation") and s.kind("chosen") == s.kind("rejected")
    if pref and not fits & {"dpo_explicit", "dpo_implicit"}:
        out.append(_unprompted_preference(s))
    return out


def _unprompted_preference(s: _Schema) -> str:
    prompt_col = s.first_of(PROMPT_ALIASES, ("string", "conversation"))
    if prompt_col == "prompt" and s.kind("chosen") == "conversation":
        return ("Convert: prompt/chosen/rejected -> dpo_explicit by making 'prompt' a conversation "
                "([{'role': 'user', 'content': prompt}]) like chosen/rejected")
    if prompt_col == "prompt":
        return ("Convert: prompt/chosen/rejected -> dpo_explicit by making 'prompt', 'chosen' and 'rejected' "
                "the same kind (all text)")
    if prompt_col:
        system = " (and 'system' as a system turn)" if "system" in s.cols else ""
        return (f"Convert: {prompt_col}/chosen/rejected -> dpo_explicit by renaming '{prompt_col}' to "
                f"'prompt'{system}; chosen/rejected hold only the answers")
    return "Convert: chosen/rejected -> dpo_explicit needs a prompt column: chosen/rejected hold only the answers"


def _response_pair(s: _Schema) -> tuple[str, str] | None:
    for base in RESPONSE_BASES:
        for a, b in PAIR_SUFFIXES:
            first, second = base + a, base + b
            if s.kind(first) in ("string", "conversation") and s.kind(first) == s.kind(second):
                return first, second
    return None


def _pairwise_conversions(s: _Schema) -> list[str]:
    """Two responses and the verdict of which won, or a list of candidates with the one chosen."""
    winner = next((n for n in WINNER_NAMES if n in s.cols), None)
    pair = _response_pair(s)
    if pair and winner:
        return [_pair_conversion(s, f"{pair[0]}/{pair[1]}/{winner}", s.kind(pair[0]) == "conversation",
                                 f"the response '{winner}' names", ties=s.kind(winner) == "string")]
    for name in CANDIDATE_LISTS:
        col = s.cols.get(name)
        if col is None or col.kind not in ("string_list", "list"):
            continue
        if winner and winner != name:
            item = f"{name}[{winner}]" + ("['text']" if "text" in col.fields else "")
            return [_pair_conversion(s, f"{name}/{winner}", False, f"{item}", ties=False)]
        if "rank" in col.fields:
            return [_pair_conversion(s, f"{name} ranked by 'rank'", False, "the best-ranked answer",
                                     ties=False, other="the worst-ranked one")]
    return []


def _pair_conversion(s: _Schema, source: str, whole_conversations: bool, chosen: str, *, ties: bool,
                     other: str = "the other") -> str:
    prompt = next((n for n in PREFERENCE_PROMPTS if n in s.cols), None)
    if whole_conversations:
        target, how = "dpo_implicit", ""
    elif prompt == "prompt":
        target, how = "dpo_explicit", ", keeping 'prompt'"
    elif prompt:
        target, how = "dpo_explicit", f", with '{prompt}' as 'prompt'" + (" (its post text)" if prompt == "info" else "")
    else:
        target, how = "dpo_explicit", " (a prompt column is needed too)"
    drop = ", dropping ties" if ties else ""
    return (f"Convert: {source} -> {target} by taking {chosen} as 'chosen' and {other} as 'rejected'"
            f"{how}{drop} (as it is, these are judgements of responses, not preference pairs)")


def _conversions(s: _Schema, fits: set[str]) -> list[str]:
    out: list[str] = []
    for col in s.cols.values():
        if col.kind == "sharegpt" and "sft_messages" not in fits:
            out.append(_sharegpt_conversion(s, col))
    out += _conversation_rename(s, fits)
    if "sft_alpaca" in fits and "sft_prompt_completion" not in fits:
        out += _alpaca_conversions(s)
    if "kto" in fits and "sft_prompt_completion" not in fits:
        out.append("Convert: kto -> sft_prompt_completion by keeping the rows with label = true")
    out += _preference_conversions(s, fits)
    if not fits & {"dpo_explicit", "dpo_implicit"}:
        out += _pairwise_conversions(s)
    label = _is_classification(s)
    if label and s.kind("text") == "string":
        out.append(f"Convert: text/{label} -> sft_prompt_completion by making 'text' the prompt and the name of '{label}' "
                   "the completion (as it is, this is classification data: AutoModelForSequenceClassification "
                   "with transformers' Trainer fits it)")
    if _is_message_tree(s):
        out.append("Convert: message tree -> sft_messages by rebuilding each thread from message_id/parent_id "
                   "(role prompter → user)")
    if "sft_alpaca" not in fits and not fits & {"kto", "dpo_explicit", "dpo_implicit"}:
        out += _qa_conversions(s, fits)
    return out


def _notes(s: _Schema) -> list[str]:
    notes = []
    if "tools" in s.cols:
        notes.append("Tool definitions in column 'tools': the chat template must accept tools")
    if s.kind("prompt") and s.kind("completion") and s.kind("prompt") != s.kind("completion"):
        notes.append("'prompt' and 'completion' are not the same kind (text vs conversation)")
    if s.kind("chosen") and s.kind("chosen") != s.kind("rejected"):
        notes.append("'chosen' and 'rejected' are not the same kind (text vs conversation)")
    if "completions" in s.cols and "labels" in s.cols and "completion" not in s.cols:
        notes.append("'completions' with 'labels' looks like stepwise supervision (PRMTrainer)")
    media = [c.name for c in s.cols.values() if c.kind == "media"]
    if media:
        notes.append("Media columns (" + ", ".join(media) + "): a vision/audio model and its processor are needed")
    return notes


def _analyse_conversations(s: _Schema) -> list[MessagesAnalysis]:
    explicit = s.kind("prompt") is not None and s.kind("prompt") == s.kind("chosen")
    out = []
    for col in s.cols.values():
        if col.kind not in ("conversation", "sharegpt"):
            continue
        style: Literal["role/content", "from/value"] = "from/value" if col.kind == "sharegpt" else "role/content"
        answers_only = col.name == "completion" or (col.name in ("chosen", "rejected") and explicit)
        values = [r.get(col.name) for r in s.rows if col.name in r]
        if values:
            out.append(analyse_messages(col.name, values, style=style, expect_question=not answers_only,
                                        expect_answer=col.name != "prompt"))
    return out


def clip_row(row: Mapping[str, Any], limit: int = 300) -> str:
    """A row as one line of JSON with long strings and long lists cut, for the tool's sample."""
    def cut(value: Any) -> Any:
        if isinstance(value, str):
            return value if len(value) <= limit else value[:limit] + f"… (+{len(value) - limit} chars)"
        if isinstance(value, list):
            head = [cut(v) for v in value[:6]]
            return head + ([f"… (+{len(value) - 6} items)"] if len(value) > 6 else [])
        if isinstance(value, Mapping):
            return {k: cut(v) for k, v in value.items()}
        return value
    return json.dumps(cut(dict(row)), ensure_ascii=False)
