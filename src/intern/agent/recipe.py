"""The recipe of a job: base model, datasets, method and key hyperparameters, read from the code the
ML checks read (`read_script` / `read_trl_command`: the syntax tree, never the text).

The hyperparameters are the keyword arguments of the calls that configure training
(`TrainingArguments`, `SFTConfig`, `LoraConfig`, …), resolved like the checks resolve a dataset
name: literals, names bound to literals, dataclass and argparse defaults.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from intern.agent.guardrails import ml_checks

# recipe key -> the keyword (or CLI option) names that set it, first found wins
HYPERPARAMS: dict[str, tuple[str, ...]] = {
    "learning_rate": ("learning_rate", "lr"),
    "epochs": ("num_train_epochs", "epochs"),
    "max_steps": ("max_steps",),
    "batch_size": ("per_device_train_batch_size", "batch_size", "train_batch_size"),
    "grad_accum": ("gradient_accumulation_steps",),
    "lora_rank": ("r", "lora_r", "lora_rank"),
    "max_length": ("max_length", "max_seq_length", "max_seq_len", "model_max_length"),
}
_LORA_ONLY = {"r"}  # `r=` means the LoRA rank only inside a LoRA config
_SHORT = {"learning_rate": "lr", "epochs": "epochs", "max_steps": "steps", "batch_size": "bs", "grad_accum": "ga",
          "lora_rank": "r", "max_length": "len"}


@dataclass
class Recipe:
    method: str | None = None
    base_model: str | None = None
    datasets: list[dict[str, str | None]] = field(default_factory=list)  # {"id", "config", "split"}
    hyperparams: dict[str, float | int] = field(default_factory=dict)
    output_repo: str | None = None
    lora: bool = False

    @property
    def dataset(self) -> str | None:
        return str(self.datasets[0]["id"]) if self.datasets else None


def method_of(trainer: str | None) -> str | None:
    """`SFTTrainer` -> SFT, `RewardTrainer` -> reward, a subclass already resolved by the reader."""
    if not trainer:
        return None
    base = trainer[: -len("Trainer")] if trainer.endswith("Trainer") else trainer
    if not base:
        return "Trainer"
    return "reward" if base == "Reward" else base


def recipe_of_spec(spec: dict[str, Any]) -> Recipe:
    """The recipe of an `hf_jobs` run spec (inline script or command). Never raises."""
    script, command = spec.get("script"), spec.get("command")
    try:
        if isinstance(script, str) and not re.match(r"^https?://\S+$", script.strip()):
            return recipe_of_script(script)
        if isinstance(command, list) and command:
            return recipe_of_command([str(c) for c in command])
    except (SyntaxError, ValueError, RecursionError):
        pass
    return Recipe()


def recipe_of_script(source: str) -> Recipe:
    tree = ast.parse(source)
    facts = ml_checks.read_script(source)
    values = ml_checks._Values(tree)
    recipe = _from_facts(facts)
    recipe.hyperparams = _hyperparams(tree, values, facts)
    recipe.output_repo = _output_repo(tree, values)
    return recipe


def recipe_of_command(command: list[str]) -> Recipe:
    inner = ml_checks._unwrap_shell(command)
    trl = ml_checks.read_trl_command(inner)
    if trl is not None:
        recipe = _from_facts(trl)
        opts = ml_checks._cli_options(inner)
        for key, names in HYPERPARAMS.items():
            value = next((_number(opts[n]) for n in names if n in opts and n not in _LORA_ONLY), None)
            if value is not None:
                recipe.hyperparams[key] = value
        rank = _number(opts.get("lora_r", ""))
        if rank is not None:
            recipe.hyperparams["lora_rank"] = rank
        recipe.output_repo = opts.get("hub_model_id") or None
        return recipe
    code = ml_checks._inline_code(inner)
    return recipe_of_script(code) if code is not None else Recipe()


def _from_facts(facts: ml_checks.ScriptFacts) -> Recipe:
    trainer = next((t for t in facts.trainers), None)
    return Recipe(method=getattr(facts, "method", None) or method_of(trainer),
                  base_model=facts.models[0] if facts.models else None,
                  datasets=[{"id": d.id, "config": d.config, "split": d.split} for d in facts.datasets],
                  lora=facts.lora)


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def _hyperparams(tree: ast.Module, values: Any, facts: ml_checks.ScriptFacts) -> dict[str, float | int]:
    """Keyword arguments of the script's calls; the recipe fields the checks already read win."""
    found: dict[str, float | int] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        callee = ml_checks._call_name(node.func) or ""
        for kw in node.keywords:
            for key, names in HYPERPARAMS.items():
                if key in found or kw.arg not in names:
                    continue
                if kw.arg in _LORA_ONLY and "Lora" not in callee:
                    continue
                value = _number(values.literal(kw.value))
                if value is not None:
                    found[key] = value
    for key, names in HYPERPARAMS.items():
        if key not in found:  # dataclass / argparse defaults (TRL-style script arguments)
            value = next((_number(values.attrs.get(n)) for n in names
                          if n not in _LORA_ONLY and _number(values.attrs.get(n)) is not None), None)
            if value is not None:
                found[key] = value
        read = getattr(facts, key, None)  # the checks' own reading, when they have one
        if _number(read) is not None:
            found[key] = read  # type: ignore[assignment]
    return {k: found[k] for k in HYPERPARAMS if k in found}


def _output_repo(tree: ast.Module, values: Any) -> str | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            uploads = ml_checks._call_name(node.func) in ml_checks._UPLOADS
            for kw in node.keywords:
                if (kw.arg == "hub_model_id" or (uploads and kw.arg == "repo_id")) \
                        and isinstance(values.literal(kw.value), str):
                    return str(values.literal(kw.value))
            if ml_checks._call_name(node.func) == "push_to_hub" and node.args:
                target = values.literal(node.args[0])
                if isinstance(target, str):
                    return target
    hub = values.attrs.get("hub_model_id")
    return hub if isinstance(hub, str) else None


def hyperparams_text(hp: dict[str, Any]) -> str:
    """`lr 2e-05, epochs 3, bs 8, ga 4, r 16, len 2048`."""
    return ", ".join(f"{_SHORT.get(k, k)} {v:g}" if isinstance(v, float) else f"{_SHORT.get(k, k)} {v}"
                     for k, v in hp.items())
