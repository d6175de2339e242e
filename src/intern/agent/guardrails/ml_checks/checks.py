"""The checks on a job's approval card, from the script's facts, Hub metadata and the dataset viewer.

Model sizes come from the Hub's safetensors metadata, never from a model's name. Anything that cannot
be reached becomes a "warn" line; no check raises.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from intern.agent.datasets_format import TRAINER_FORMATS
from intern.agent.errors import ToolFeedback
from intern.agent.guardrails.ml_checks.commands import (
    apply_launcher,
    inline_code,
    read_trl_command,
    starts_vllm_server,
    unwrap_shell,
)
from intern.agent.guardrails.ml_checks.reading import DatasetRef, ScriptFacts, read_script
from intern.agent.pricing import format_duration, size_guide_for
from intern.agent.tools.base import Check
from intern.agent.tools.datasets import inspect_dataset

if TYPE_CHECKING:
    from intern.agent.context_deps import ToolContext
    from intern.agent.pricing import Flavor

SHORT_TRAINING = 2 * 3600
_ADAPTER_HEADROOM = 1.3
Level = Literal["ok", "warn", "error"]


# --- Hub metadata ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelSize:
    model: str
    params: int | None
    source: str  # where the figure came from, or why there is none


async def _model_size(ctx: ToolContext, model: str) -> ModelSize:
    try:
        info = await ctx.hub.call(ctx.hub.api.model_info, model, expand=["safetensors"])
    except Exception as exc:
        return ModelSize(model, None, _first_line(exc))
    if info.safetensors and info.safetensors.total:
        return ModelSize(model, int(info.safetensors.total), "safetensors metadata")
    try:
        info = await ctx.hub.call(ctx.hub.api.model_info, model, files_metadata=True)
    except Exception as exc:
        return ModelSize(model, None, _first_line(exc))
    weights = sum(s.size or 0 for s in info.siblings or [] if s.rfilename.endswith((".safetensors", ".bin")))
    if weights:
        return ModelSize(model, weights // 2, f"estimated from {weights / 1e9:.1f} GB of weight files at 2 bytes "
                                              "per parameter")
    return ModelSize(model, None, "the Hub has no safetensors metadata or weight files for it")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    detail = next((line for line in text if line.strip()), "")
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _billions(params: int) -> str:
    b = params / 1e9
    if b >= 10:
        return f"{b:.0f}B"
    if b >= 1:
        return f"{b:.1f}".rstrip("0").rstrip(".") + "B"
    return f"{params / 1e6:.0f}M"


# --- the checks ------------------------------------------------------------------------------------

def push_check(facts: ScriptFacts) -> Check:
    """transformers' rules: the Trainer pushes only with push_to_hub=True (default False), and then at
    each saved checkpoint (save_strategy "steps"/"epoch" also saves at the end); save_model() and
    push_to_hub() calls after training push whatever the settings say."""
    r = facts.recipe
    after = r.post_training_pushes
    target = f" to {r.hub_model_id}" if r.hub_model_id else ""
    if r.push_to_hub:
        if r.save_strategy == "no" and not after:
            return Check("error", f"push_to_hub=True{target} with save_strategy=\"no\" uploads nothing: no "
                                  "checkpoint is saved and the script does not save or push after training "
                                  "(call trainer.push_to_hub() after train())")
        how = ", ".join(after) if after else f"at each checkpoint (save_strategy={r.save_strategy or 'steps'})"
        return Check("ok", f"Pushes to the Hub{target}: push_to_hub=True, {how}")
    if after:
        return Check("ok", "Pushes to the Hub after training: " + ", ".join(after))
    if facts.maybe_pushes:
        return Check("warn", "Push to the Hub depends on " + ", ".join(facts.maybe_pushes)
                     + ": make sure it is on, or the trained model will be lost")
    if facts.pushes and facts.trains:
        return Check("error", "The script pushes only before training (" + ", ".join(facts.pushes)
                     + "): the trained model will be lost")
    if r.hub_model_id and facts.trains:
        return Check("error", f"hub_model_id={r.hub_model_id} is set but push_to_hub is not (it defaults to "
                              "False): nothing is pushed and the trained model will be lost")
    if facts.trains:
        return Check("error", "No push to the Hub (push_to_hub / hub_model_id): the trained model will be lost")
    if facts.pushes:
        return Check("ok", "Pushes to the Hub: " + ", ".join(facts.pushes))
    return Check("warn", "No push to the Hub (push_to_hub / upload_folder): whatever the job writes is lost "
                         "when it ends")


async def dataset_checks(ctx: ToolContext, facts: ScriptFacts) -> list[Check]:
    out = [Check("warn", f"Dataset {d} is loaded from local files: its format was not checked")
           for d in facts.local_datasets]
    out += [Check("warn", f"The dataset in load_dataset({d}) could not be read from the code: its format was "
                          "not checked") for d in facts.unreadable_datasets]
    trainer = next((t for t in facts.trainers if t in TRAINER_FORMATS), None)
    if trainer is None:
        if facts.datasets and facts.trainers:
            out.append(Check("warn", f"{facts.trainers[0]} has no fixed dataset format (the script's own "
                                     "preprocessing decides): the dataset format was not checked"))
        return out
    if not facts.datasets and not out:
        out.append(Check("warn", f"No load_dataset(\"…\") call with a dataset id found: the data {trainer} "
                                 "trains on was not checked"))
    results = await asyncio.gather(*(_dataset_fit(ctx, ref, trainer, facts) for ref in facts.datasets[:3]))
    return out + list(results)


async def _dataset_fit(ctx: ToolContext, ref: DatasetRef, trainer: str, facts: ScriptFacts) -> Check:
    try:
        ins = await inspect_dataset(ctx, ref.id, ref.config, ref.split)
    except ToolFeedback as exc:
        return Check("warn", f"Could not check dataset {ref.id} against {trainer}: {exc}")
    except Exception as exc:
        return Check("warn", f"Could not check dataset {ref.id} against {trainer}: {_first_line(exc)}")
    where = f"{ref.id} ({ins.config}/{ins.split})"
    accepted = TRAINER_FORMATS[trainer]
    fits = set(ins.report.fits)
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


def hardware_check(size: ModelSize, flavor: Flavor, facts: ScriptFacts) -> Check:
    assert size.params is not None
    vram, examples, _ = size_guide_for(size.params / 1e9)
    what = f"a {_billions(size.params)} model ({size.model}, {size.source})"
    level: Level = "warn" if size.source.startswith("estimated") else "error"
    if not flavor.is_gpu:
        return Check(level, f"Hardware {flavor.name} has no GPU: training {what} needs about {vram} GB of GPU "
                            f"memory (e.g. {examples})")
    if flavor.vram_gb >= vram:
        return Check("ok", f"Hardware {flavor.name} ({flavor.vram_gb} GB) fits {what} (guide: {vram} GB)")
    bits = {"4bit": 4, "8bit": 8}.get(facts.recipe.quantization or "", 16)
    if facts.recipe.peft or bits < 16:
        weights = size.params * bits / 8 / 1e9
        method = f"{bits}-bit " if bits < 16 else ""
        if flavor.vram_gb >= weights * _ADAPTER_HEADROOM:
            return Check("ok", f"Hardware {flavor.name} ({flavor.vram_gb} GB) fits {what} with {method}adapters: "
                               f"the frozen weights take about {weights:.1f} GB (full fine-tuning guide: {vram} GB)")
        return Check(level, f"Hardware {flavor.name} ({flavor.vram_gb} GB) is too small for {what} even with "
                            f"{method}adapters: the weights alone take about {weights:.1f} GB (e.g. {examples})")
    return Check(level, f"Hardware {flavor.name} ({flavor.vram_gb} GB) is too small to fine-tune {what}: the guide "
                        f"is {vram} GB (e.g. {examples}), or use LoRA")


def timeout_check(size: ModelSize | None, timeout_seconds: int, timeout_given: bool, trains: bool) -> Check:
    shown = format_duration(timeout_seconds)
    if not trains:
        return Check("ok", f"Timeout {shown} (the script does not train)" if timeout_given
                     else "No timeout given: the Hub default of 30 minutes applies (the script does not train)")
    lead = f"Timeout {shown}" if timeout_given else "No timeout given: the Hub default of 30 minutes applies, which"
    if size is not None and size.params is not None:
        _, _, (low, high) = size_guide_for(size.params / 1e9)
        guide = f"(guide: {low:g}–{high:g} h)"
        model = f"a {_billions(size.params)} model"
        if timeout_seconds < low * 3600:
            return Check("warn" if size.source.startswith("estimated") else "error",
                         f"{lead} is too short for {model} {guide}")
        return Check("ok", f"{lead} fits {model} {guide}")
    if timeout_seconds < SHORT_TRAINING:
        return Check("warn", f"{lead} is short for a training job (under 2 h); the model size is unknown")
    return Check("ok", f"{lead} allows a training run of up to {shown}")


async def _sizes(ctx: ToolContext, facts: ScriptFacts) -> list[ModelSize]:
    return list(await asyncio.gather(*(_model_size(ctx, m) for m in facts.models[:3])))


def _code(script: str | None, command: list[str] | None) -> tuple[ScriptFacts | None, Check | None]:
    if script is not None and re.match(r"^https?://\S+$", script.strip()):
        return None, Check("warn", "Script is a URL: its code was not read by the checks")
    words = unwrap_shell(command) if command else []
    if script is None and words:
        trl = read_trl_command(words)
        if trl is not None:
            return _with_command(trl, words), None
        script = inline_code(words)
        if script is None:
            return None, Check("warn", f"The checks could not read the code: the command runs "
                                       f"`{shlex.join(words)[:120]}`, not inline Python (python -c)")
    if script is None:
        return None, Check("warn", "No script or command given: nothing for the checks to read")
    try:
        return _with_command(read_script(script), words), None
    except SyntaxError as exc:
        return None, Check("error", f"The script does not parse (SyntaxError at line {exc.lineno}: {exc.msg}): "
                                    "the job would fail at once")


def _with_command(facts: ScriptFacts, words: list[str]) -> ScriptFacts:
    """The command's launcher (accelerate, torchrun, …) and a vLLM server it starts belong to the recipe."""
    if words:
        apply_launcher(words, facts.recipe)
        facts.starts_vllm_server = starts_vllm_server(words)
    return facts


async def job_checks(ctx: ToolContext, *, script: str | None, command: list[str] | None, flavor: Flavor,
                     timeout_seconds: int, timeout_given: bool) -> list[Check]:
    """One line per check: push, dataset vs trainer, hardware vs model size, timeout vs model size."""
    facts, problem = _code(script, command)
    if facts is None:
        assert problem is not None
        default = [] if timeout_given else [Check("warn", "No timeout given: the Hub default of 30 minutes applies")]
        return [problem, *default]
    datasets, sizes = await asyncio.gather(dataset_checks(ctx, facts), _sizes(ctx, facts))
    checks = [push_check(facts), *datasets]
    known = [s for s in sizes if s.params is not None]
    checks += [Check("warn", f"Could not read the size of model {s.model} from the Hub ({s.source}): hardware "
                             "and timeout were not checked against it") for s in sizes if s.params is None]
    largest = max(known, key=lambda s: s.params or 0) if known else None
    if facts.trains and largest is not None:
        checks.append(hardware_check(largest, flavor, facts))
    elif facts.trains and not facts.models:
        checks.append(Check("warn", "No Hub model id found in the script (from_pretrained / model=): hardware and "
                                    "timeout were not checked against a model size"))
    checks.append(timeout_check(largest, timeout_seconds, timeout_given, facts.trains))
    return [Check(c.level, " ".join(c.text.split())) for c in checks]
