"""Reading a job's command line: inline Python, `trl <method>` runs, and how many processes it starts.

A plain `uv run script.py` (what `hf_jobs run script=…` launches) is one process on one GPU. Only a
launcher starts one process per GPU: `accelerate launch` (all GPUs unless `--num_processes` says
otherwise, as accelerate does without a config file), `torchrun --nproc_per_node N`, `deepspeed`.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import os
import re
import shlex

from intern.agent.guardrails.ml_checks.reading import DatasetRef, ScriptFacts
from intern.agent.guardrails.ml_checks.recipe import KEYWORDS, METHODS, Recipe, coerce, dtype_name

TRL_COMMANDS = {"sft": "SFTTrainer", "dpo": "DPOTrainer", "kto": "KTOTrainer", "grpo": "GRPOTrainer",
                "reward": "RewardTrainer", "rloo": "RLOOTrainer", "orpo": "ORPOTrainer", "cpo": "CPOTrainer",
                "online_dpo": "OnlineDPOTrainer", "gkd": "GKDTrainer", "xpo": "XPOTrainer",
                "nash_md": "NashMDTrainer", "bco": "BCOTrainer", "prm": "PRMTrainer"}
_ZERO = re.compile(r"(?:zero|z)[_-]?([0-3])", re.IGNORECASE)
_TRUE = ("true", "1", "yes")


def unwrap_shell(command: list[str]) -> list[str]:
    """`bash -c "uv run python -c '…'"` -> the inner command's words."""
    for i, token in enumerate(command[:-2]):
        if os.path.basename(token) in ("sh", "bash") and command[i + 1] == "-c":
            try:
                return shlex.split(command[i + 2])
            except ValueError:
                return command
    return command


def inline_code(command: list[str]) -> str | None:
    """`python -c '…'`, or the script a job launched from `hf_jobs run script=…` carries in its command
    (`echo <base64> | base64 -d > file && uv run … file`), as a rerun or a schedule shows it."""
    for i, token in enumerate(command[:-4]):
        if token == "echo" and command[i + 2: i + 5] == ["|", "base64", "-d"]:
            try:
                return base64.b64decode(command[i + 1], validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
    for i, token in enumerate(command[:-2]):
        if re.fullmatch(r"python(\d+(\.\d+)?)?", os.path.basename(token)) and command[i + 1] == "-c":
            return command[i + 2]
    return None


def cli_options(tokens: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("--"):
            key, _, value = token[2:].partition("=")
            if not value and i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                value, i = tokens[i + 1], i + 1
            out.setdefault(key.replace("-", "_"), value or "true")
        elif token in ("&&", ";", "&", "|"):
            break
        i += 1
    return out


def starts_vllm_server(command: list[str]) -> bool:
    words = [os.path.basename(w) for w in command]
    return "vllm-serve" in words or any(a == "vllm" and b == "serve" for a, b in itertools.pairwise(words))


def apply_launcher(command: list[str], recipe: Recipe) -> None:
    """Launcher, processes and sharding from `accelerate launch` / `torchrun` / `deepspeed` words."""
    words = [os.path.basename(w) for w in command]
    for i, word in enumerate(words):
        if word == "accelerate" and i + 1 < len(words) and words[i + 1] == "launch":
            _accelerate(cli_options(command[i + 2:]), recipe)
            return
        if word == "torchrun" or (word == "torch.distributed.run" and i and words[i - 1] == "-m"):
            opts = cli_options(command[i + 1:])
            recipe.launcher = "torchrun"
            recipe.num_processes = coerce("num_processes", opts.get("nproc_per_node", "1"))
            _script_options(command[i + 1:], recipe)
            return
        if word == "deepspeed" and (i == 0 or words[i - 1] not in ("install", "add", "--with", "-m")):
            opts = cli_options(command[i + 1:])
            recipe.launcher = "deepspeed"
            recipe.num_processes = coerce("num_processes", opts.get("num_gpus"))
            _script_options(command[i + 1:], recipe)
            return


def _accelerate(opts: dict[str, str], recipe: Recipe) -> None:
    recipe.launcher = "accelerate launch"
    recipe.num_processes = coerce("num_processes", opts.get("num_processes"))
    config = opts.get("config_file", "")
    if opts.get("use_fsdp") or any(k.startswith("fsdp_") for k in opts) or "fsdp" in config.lower():
        recipe.fsdp = recipe.fsdp or "accelerate"
    if opts.get("use_deepspeed") or opts.get("deepspeed_config_file") or "zero" in config.lower() \
            or "deepspeed" in config.lower():
        recipe.deepspeed = recipe.deepspeed or opts.get("deepspeed_config_file") or config or "accelerate"
        stage = opts.get("zero_stage") or (m.group(1) if (m := _ZERO.search(os.path.basename(
            opts.get("deepspeed_config_file") or config))) else None)
        recipe.zero_stage = coerce("zero_stage", stage) if stage else recipe.zero_stage


def _script_options(tokens: list[str], recipe: Recipe) -> None:
    """TrainingArguments given to the script on the command line (HfArgumentParser reads them)."""
    opts = cli_options(tokens)
    if opts.get("deepspeed"):
        recipe.deepspeed = opts["deepspeed"]
        if m := _ZERO.search(os.path.basename(opts["deepspeed"])):
            recipe.zero_stage = int(m.group(1))
    if opts.get("fsdp"):
        recipe.fsdp = opts["fsdp"]


def read_trl_command(command: list[str]) -> ScriptFacts | None:
    """`trl sft --model_name_or_path … --dataset_name …` read like a script."""
    at = next((i for i, t in enumerate(command[:-1])
               if os.path.basename(t) == "trl" and command[i + 1] in TRL_COMMANDS), None)
    if at is None:
        return None
    opts = cli_options(command[at + 2:])
    trainer = TRL_COMMANDS[command[at + 1]]
    facts = ScriptFacts(trainers=[trainer], trains=True)
    recipe = facts.recipe
    recipe.trainer, recipe.method = trainer, METHODS.get(trainer, trainer)
    for key, value in opts.items():
        if key in KEYWORDS:
            target = KEYWORDS[key]
            setattr(recipe, target, dtype_name(value) if target == "torch_dtype" else coerce(target, value))
    recipe.peft = opts.get("use_peft", "false").lower() in _TRUE
    recipe.lora_rank = coerce("lora_rank", opts.get("lora_r")) if recipe.peft else None
    if recipe.peft and recipe.lora_rank is None:
        recipe.lora_rank = 16  # TRL's ModelConfig default lora_r
    for bits in ("4bit", "8bit"):
        if opts.get(f"load_in_{bits}", "false").lower() in _TRUE:
            recipe.quantization = bits
    if recipe.push_to_hub:
        recipe.post_training_pushes.append("--push_to_hub (TRL's script pushes after training)")
    _trl_launch(opts, recipe)
    if opts.get("dataset_name"):
        facts.datasets.append(DatasetRef(opts["dataset_name"], opts.get("dataset_config"),
                                         opts.get("dataset_train_split")))
    if opts.get("model_name_or_path"):
        facts.models.append(opts["model_name_or_path"])
    if "config" in opts:
        facts.maybe_pushes.append(f"--config {opts['config']} (not read)")
    return facts


def _trl_launch(opts: dict[str, str], recipe: Recipe) -> None:
    """`trl` runs its script through accelerate (one process per GPU unless told otherwise);
    `--accelerate_config zero3|fsdp2|multi_gpu|single_gpu` picks how."""
    recipe.launcher = "trl"
    recipe.num_processes = coerce("num_processes", opts.get("num_processes"))
    choice = opts.get("accelerate_config")
    if not choice:
        return
    if choice.startswith("fsdp"):
        recipe.fsdp = choice
    elif m := _ZERO.search(choice):
        recipe.deepspeed, recipe.zero_stage = choice, int(m.group(1))
    elif choice == "single_gpu":
        recipe.num_processes = 1
