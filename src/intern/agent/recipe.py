"""The recipe of a run for the team's memory: base model, datasets, method and the key
hyperparameters, as the ML checks read them from the job's code (its syntax tree, never its text).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from intern.agent.guardrails.ml_checks import ScriptFacts, read_script, read_trl_command
from intern.agent.guardrails.ml_checks.commands import apply_launcher, inline_code, unwrap_shell

# The hyperparameters a run record keeps (the checks' recipe field names) and how a line shows them.
KEY_HYPERPARAMS: dict[str, str] = {
    "learning_rate": "lr", "num_train_epochs": "epochs", "max_steps": "steps", "per_device_train_batch_size": "bs",
    "gradient_accumulation_steps": "ga", "lora_rank": "r", "max_length": "len",
}
_UPLOADS = {"upload_folder", "upload_file", "create_commit", "upload_large_folder"}


@dataclass
class Recipe:
    method: str | None = None
    base_model: str | None = None
    datasets: list[dict[str, str | None]] = field(default_factory=list)  # {"id", "config", "split"}
    hyperparams: dict[str, Any] = field(default_factory=dict)
    output_repo: str | None = None

    @property
    def dataset(self) -> str | None:
        return str(self.datasets[0]["id"]) if self.datasets else None


def recipe_of_spec(spec: dict[str, Any]) -> Recipe:
    """The recipe of an `hf_jobs` run spec (inline script or command). Never raises."""
    script, command = spec.get("script"), spec.get("command")
    if isinstance(script, str) and re.match(r"^https?://\S+$", script.strip()):
        return Recipe()
    words = unwrap_shell([str(c) for c in command]) if isinstance(command, list) and command else []
    try:
        if not isinstance(script, str) and words:
            trl = read_trl_command(words)
            if trl is not None:
                apply_launcher(words, trl.recipe)
                return _recipe(trl, None)
            script = inline_code(words)
        if not isinstance(script, str):
            return Recipe()
        facts = read_script(script)
        if words:
            apply_launcher(words, facts.recipe)
        return _recipe(facts, script)
    except (SyntaxError, ValueError, RecursionError):
        return Recipe()


def _recipe(facts: ScriptFacts, source: str | None) -> Recipe:
    r = facts.recipe
    hyper = {k: getattr(r, k) for k in KEY_HYPERPARAMS if getattr(r, k, None) is not None}
    return Recipe(method=r.method, base_model=facts.models[0] if facts.models else None,
                  datasets=[{"id": d.id, "config": d.config, "split": d.split} for d in facts.datasets],
                  hyperparams=hyper, output_repo=r.hub_model_id or (_pushed_to(source) if source else None))


def _pushed_to(source: str) -> str | None:
    """The repo a `push_to_hub("org/name")` or `upload_folder(repo_id="org/name")` names literally."""
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute | ast.Name):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
        if name == "push_to_hub" and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            return node.args[0].value
        if name in _UPLOADS:
            repo = next((k.value for k in node.keywords if k.arg == "repo_id"), None)
            if isinstance(repo, ast.Constant) and isinstance(repo.value, str):
                return repo.value
    return None


def hyperparams_text(hp: dict[str, Any]) -> str:
    """`lr 0.0002, epochs 3, bs 4, ga 8, r 16, len 2048`."""
    return ", ".join(f"{KEY_HYPERPARAMS.get(k, k)} {v:g}" if isinstance(v, float) else f"{KEY_HYPERPARAMS.get(k, k)} {v}"
                     for k, v in hp.items())
