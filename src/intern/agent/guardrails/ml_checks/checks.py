"""The checks on a job's approval card, from the script's facts, Hub metadata and the dataset viewer.

Model sizes come from the Hub's safetensors metadata, never from a model's name. Anything that cannot
be reached becomes a "warn" line; no check raises.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from intern.agent import hardware as hw
from intern.agent.guardrails.ml_checks.commands import (
    apply_launcher,
    inline_code,
    read_trl_command,
    starts_vllm_server,
    unwrap_shell,
)
from intern.agent.guardrails.ml_checks.data import DataSize, dataset_checks, first_line
from intern.agent.guardrails.ml_checks.estimate import (
    MemoryEstimate,
    estimate_memory,
    estimate_time,
    uses_bf16,
    vllm_share,
)
from intern.agent.guardrails.ml_checks.reading import ScriptFacts, read_script
from intern.agent.pricing import format_duration
from intern.agent.tools.base import Check

if TYPE_CHECKING:
    from intern.agent.context_deps import ToolContext
    from intern.agent.pricing import Flavor

SHORT_TRAINING = 2 * 3600
Level = Literal["ok", "warn", "error"]


# --- Hub metadata ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelSize:
    model: str
    params: int | None
    source: str  # where the figure came from, or why there is none
    dtype: str | None = None  # the checkpoint's main dtype ("BF16", "F32", …) from the same metadata


async def _model_size(ctx: ToolContext, model: str) -> ModelSize:
    try:
        info = await ctx.hub.call(ctx.hub.api.model_info, model, expand=["safetensors"])
    except Exception as exc:
        return ModelSize(model, None, first_line(exc))
    if info.safetensors and info.safetensors.total:
        by_dtype = info.safetensors.parameters or {}
        dtype = max(by_dtype, key=lambda k: by_dtype[k]) if by_dtype else None
        return ModelSize(model, int(info.safetensors.total), "safetensors metadata", dtype)
    try:
        info = await ctx.hub.call(ctx.hub.api.model_info, model, files_metadata=True)
    except Exception as exc:
        return ModelSize(model, None, first_line(exc))
    weights = sum(s.size or 0 for s in info.siblings or [] if s.rfilename.endswith((".safetensors", ".bin")))
    if weights:
        return ModelSize(model, weights // 2, f"estimated from {weights / 1e9:.1f} GB of weight files at 2 bytes "
                                              "per parameter")
    return ModelSize(model, None, "the Hub has no safetensors metadata or weight files for it")


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


# --- hardware ------------------------------------------------------------------------------------------

def _gb(value: float) -> str:
    return f"{value:.0f} GB" if value >= 10 else f"{value:.1f} GB"


def _model(size: ModelSize) -> str:
    count = _billions(size.params or 0)
    article = "an" if count.startswith(("8", "11", "18")) else "a"
    return f"{article} {count} model ({size.model}, {size.source})"


def _parts(est: MemoryEstimate) -> str:
    return ", ".join(f"{name} {_gb(gb)}" for name, gb in est.parts[:4])


def hardware_check(size: ModelSize, flavor: Flavor, facts: ScriptFacts, flavors: list[Flavor]) -> Check:
    """Memory per GPU: each GPU holds the whole estimate unless the job really shards."""
    assert size.params is not None
    recipe = facts.recipe
    gpu = hw.gpu_of(flavor)
    est = estimate_memory(size.params, recipe, flavor.gpus, size.dtype)
    level: Level = "warn" if size.source.startswith("estimated") else "error"
    if gpu is None:
        return Check(level, f"Hardware {flavor.name} has no GPU: training {_model(size)} needs ≈ "
                            f"{_gb(est.per_gpu_gb)} of GPU memory ({est.how}){_cheapest(size, facts, flavors)}")
    share = est.vllm_share
    usable = gpu.memory_gb * (1 - share)
    needed = f"≈ {_gb(est.per_gpu_gb)} needed" + (f" per GPU ({est.layout.what})" if est.layout.shards > 1 else "")
    if share:
        needed += f" + vLLM's {share:.0%} ({_gb(gpu.memory_gb * share)})"
    lead = f"Hardware {flavor.name}: {needed}, {gpu.memory_gb} GB per GPU"
    detail = f"{est.how} ({_parts(est)})"
    if est.per_gpu_gb <= usable * hw.TIGHT_SHARE:
        idle = flavor.gpus - 1 if est.layout.processes == 1 and est.layout.shards == 1 else 0
        unused = f" (one process: {idle} of the {flavor.gpus} GPUs stay idle)" if idle > 0 else ""
        return Check("ok", f"{lead}: fits {_model(size)}{unused}; {detail}")
    if est.per_gpu_gb <= usable:
        return Check("warn", f"{lead}: tight for {_model(size)} (over {hw.TIGHT_SHARE:.0%} of the memory); {detail}")
    why = ""
    if flavor.gpus > 1 and est.layout.shards == 1:
        why = (f"; {'a plain script is one process' if est.layout.processes == 1 else est.layout.what}, so each "
               f"of the {flavor.gpus} GPUs must hold it all (shard with FSDP or DeepSpeed ZeRO-3 through "
               "accelerate launch / torchrun, or device_map=\"auto\")")
    note = f"; {est.notes[0]}" if est.notes else ""
    return Check(level, f"{lead}: too small for {_model(size)}; {detail}{why}{note}"
                        f"{_cheapest(size, facts, flavors)}")


def _cheapest(size: ModelSize, facts: ScriptFacts, flavors: list[Flavor]) -> str:
    assert size.params is not None
    for option in sorted((f for f in flavors if f.is_gpu), key=lambda f: (f.hourly_usd, f.name)):
        gpu = hw.gpu_of(option)
        if gpu is None or (uses_bf16(facts.recipe) and not gpu.bf16):
            continue
        est = estimate_memory(size.params, facts.recipe, option.gpus, size.dtype)
        if est.per_gpu_gb <= gpu.memory_gb * (1 - est.vllm_share) * hw.TIGHT_SHARE:
            return f"; the cheapest flavor it fits as written: {option.name}"
    return "; no flavor fits it as written (use LoRA/QLoRA, or shard it)"


def launch_checks(size: ModelSize | None, flavor: Flavor, facts: ScriptFacts) -> list[Check]:
    """Failures at start-up that the configuration already shows."""
    recipe, gpu, out = facts.recipe, hw.gpu_of(flavor), []
    if gpu is not None and not gpu.bf16 and facts.trains and uses_bf16(recipe):
        why = "bf16=True" if recipe.bf16 else "bf16 (TRL's default when fp16 is not set)"
        out.append(Check("error", f"{why} on {flavor.name}: the {gpu.model} has no bf16 support and transformers "
                                  "stops at start (\"Your setup doesn't support bf16/gpu\"); set bf16=False, "
                                  "fp16=True"))
    if gpu is not None and not gpu.bf16 and recipe.tf32:
        out.append(Check("error", f"tf32=True on {flavor.name}: TF32 needs an Ampere or newer GPU, transformers "
                                  "stops at start"))
    if recipe.fp16 and recipe.torch_dtype == "float16" and not (recipe.peft or recipe.quantization):
        out.append(Check("error", "fp16=True with the model loaded in float16 (full fine-tune): the gradient scaler "
                                  "stops at the first step (\"Attempting to unscale FP16 gradients\"); load it in "
                                  "float32 or use bf16"))
    if recipe.quantization and not recipe.peft and facts.trainers:
        out.append(Check("error", f"The model is loaded in {recipe.quantization} without adapters: the Trainer "
                                  "refuses to fine-tune a purely quantized model; add a LoraConfig (peft_config=…)"))
    if recipe.use_vllm:
        out += _vllm_checks(size, flavor, facts)
    return out


def _vllm_checks(size: ModelSize | None, flavor: Flavor, facts: ScriptFacts) -> list[Check]:
    recipe = facts.recipe
    if recipe.vllm_mode == "server":
        if facts.starts_vllm_server or (recipe.vllm_server and not re.search(
                r"(localhost|127\.0\.0\.1|0\.0\.0\.0)", recipe.vllm_server)):
            return [Check("ok", "vLLM in server mode: the job starts its server (or names a remote one)")]
        return [Check("error", "vLLM in server mode (vllm_mode=\"server\") but nothing in the job starts a server "
                               "(trl vllm-serve): the trainer waits for it and fails; use vllm_mode=\"colocate\" or "
                               "start `trl vllm-serve` in the job's command")]
    gpu = hw.gpu_of(flavor)
    if gpu is None or size is None or size.params is None:
        return []
    share = vllm_share(recipe)
    reserved = gpu.memory_gb * share
    weights = size.params * 2 / 1e9  # vLLM serves the policy in bf16
    if reserved < weights + 1.0:
        return [Check("error", f"vLLM colocated with training gets vllm_gpu_memory_utilization={share:g} of "
                               f"{gpu.memory_gb} GB = {_gb(reserved)} per GPU, but the model's bf16 weights alone "
                               f"take {_gb(weights)}: vLLM fails at start (no memory left for its KV cache)")]
    return [Check("ok", f"vLLM colocated: {_gb(reserved)} per GPU ({share:.0%}) holds the {_gb(weights)} of "
                        "weights and a KV cache")]


# --- timeout -------------------------------------------------------------------------------------------

def timeout_check(size: ModelSize | None, flavor: Flavor, facts: ScriptFacts, data: DataSize,
                  timeout_seconds: int, timeout_given: bool) -> Check:
    """An error only when the estimated run (start-up, training, generation, push) exceeds the timeout."""
    shown = format_duration(timeout_seconds)
    if not facts.trains:
        return Check("ok", f"Timeout {shown} (the script does not train)" if timeout_given
                     else "No timeout given: the Hub default of 30 minutes applies (the script does not train)")
    lead = f"Timeout {shown}" if timeout_given else "No timeout given: the Hub default of 30 minutes applies, which"
    gpu = hw.gpu_of(flavor)
    if size is None or size.params is None or gpu is None:
        if timeout_seconds < SHORT_TRAINING:
            return Check("warn", f"{lead} is short for a training job (under 2 h); the model size is unknown")
        return Check("ok", f"{lead} allows a training run of up to {shown}")
    est = estimate_time(size.params, facts.recipe, flavor, gpu, rows=data.rows, tokens_per_row=data.tokens_per_row,
                        pushes=bool(facts.recipe.push_to_hub or facts.recipe.post_training_pushes),
                        checkpoint_dtype=size.dtype)
    if est is None:
        return Check("warn", f"{lead}: the training time could not be estimated (no max_steps and the dataset's "
                             "size is unknown)")
    run = format_duration(max(60, round(est.seconds / 60) * 60))
    cost = f" (≈ ${flavor.hourly_usd * est.seconds / 3600:,.2f})" if flavor.hourly_usd else ""
    assumed = f"; assumed: {', '.join(est.assumed)}" if est.assumed else ""
    detail = f"≈ {run} estimated{cost}: {est.how}{assumed}"
    if est.seconds > timeout_seconds:
        level: Level = "warn" if size.source.startswith("estimated") else "error"
        return Check(level, f"{lead} is too short: {detail}")
    if est.seconds > timeout_seconds * hw.CLOSE_SHARE:
        return Check("warn", f"{lead} is close to the estimate: {detail}")
    # DECISIONS: the Hub's default is flagged for training even when the run fits in it
    return Check("ok" if timeout_given else "warn", f"{lead} fits: {detail}")


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
    except (RecursionError, ValueError) as exc:  # nesting too deep for `ast`, or a NUL byte in the source
        return None, Check("warn", f"The checks could not read the script ({type(exc).__name__})")


def _with_command(facts: ScriptFacts, words: list[str]) -> ScriptFacts:
    """The command's launcher (accelerate, torchrun, …) and a vLLM server it starts belong to the recipe."""
    if words:
        apply_launcher(words, facts.recipe)
        facts.starts_vllm_server = starts_vllm_server(words)
    return facts


def _guarded(what: str, compute: Callable[[], list[Check]]) -> list[Check]:
    """An estimate that meets something unforeseen in a script becomes a warning, never a failed card."""
    try:
        return compute()
    except Exception as exc:
        return [Check("warn", f"The {what} check could not be computed ({first_line(exc)})")]


async def job_checks(ctx: ToolContext, *, script: str | None, command: list[str] | None, flavor: Flavor,
                     timeout_seconds: int, timeout_given: bool,
                     modules: dict[str, str] | None = None) -> list[Check]:
    """One line per check: push, dataset vs trainer, launch-time failures, memory per GPU, timeout.

    `modules`: the source of local modules the script imports (path -> text), read with it: a push or a
    trainer set up in a helper module counts."""
    facts, problem = _code(script, command)
    if facts is not None and modules:
        facts = with_modules(facts, modules)
    if facts is None:
        assert problem is not None
        default = [] if timeout_given else [Check("warn", "No timeout given: the Hub default of 30 minutes applies")]
        return [problem, *default]
    (datasets, data), sizes = await asyncio.gather(dataset_checks(ctx, facts), _sizes(ctx, facts))
    checks = [push_check(facts), *datasets]
    known = [s for s in sizes if s.params is not None]
    checks += [Check("warn", f"Could not read the size of model {s.model} from the Hub ({s.source}): hardware "
                             "and timeout were not checked against it") for s in sizes if s.params is None]
    largest = max(known, key=lambda s: s.params or 0) if known else None
    checks += _guarded("launch", lambda: launch_checks(largest, flavor, facts))
    if facts.trains and largest is not None:
        size = largest
        checks += _guarded("hardware", lambda: [hardware_check(size, flavor, facts, ctx.prices.all())])
    elif facts.trains and not facts.models:
        checks.append(Check("warn", "No Hub model id found in the script (from_pretrained / model=): hardware and "
                                    "timeout were not checked against a model size"))
    checks += _guarded("timeout", lambda: [timeout_check(largest, flavor, facts, data, timeout_seconds,
                                                         timeout_given)])
    return [Check(c.level, " ".join(c.text.split())) for c in checks]


def with_modules(facts: ScriptFacts, modules: dict[str, str]) -> ScriptFacts:
    """The entry script's facts with those of the local modules it imports (what the entry sets first wins)."""
    for source in modules.values():
        try:
            merge(facts, read_script(source))
        except SyntaxError:
            continue  # the module's own error shows when it is imported; the entry's facts still hold
    return facts


def merge(into: Any, other: Any) -> None:
    for f in dataclasses.fields(into):
        mine, theirs = getattr(into, f.name), getattr(other, f.name)
        if isinstance(mine, list):
            mine.extend(v for v in theirs if v not in mine)
        elif dataclasses.is_dataclass(mine):
            merge(mine, theirs)
        elif isinstance(mine, bool) and f.default is False:
            setattr(into, f.name, mine or theirs)
        elif mine is None:
            setattr(into, f.name, theirs)
