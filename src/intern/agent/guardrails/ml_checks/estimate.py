"""Memory per GPU and training time, from the parameter count, the recipe and the hardware.

The rules and their sources are in `intern.agent.hardware`. Where the script leaves a setting unset,
the library's default applies; the defaults assumed here are those of transformers v5 and TRL:
TrainingArguments trains 3 epochs at batch 8 per device; TRL's configs default to bf16=True (unless
fp16), gradient_checkpointing=True and max_length=1024 (GRPO: 256 completion tokens after the prompt,
8 generations, no reference model since beta=0, vLLM colocated at 30% of each GPU); from_pretrained
loads the checkpoint's own dtype (dtype="auto").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from intern.agent import hardware as hw
from intern.agent.guardrails.ml_checks.recipe import CUSTOM_LOOP

if TYPE_CHECKING:
    from intern.agent.guardrails.ml_checks.recipe import Recipe
    from intern.agent.hardware import Gpu
    from intern.agent.pricing import Flavor

TRL_METHODS = {"SFT", "DPO", "GRPO", "KTO", "ORPO", "CPO", "reward", "PRM", "RLOO", "online DPO", "GKD", "BCO",
               "XPO", "Nash-MD", "PPO"}
_REFERENCE_METHODS = {"DPO", "KTO", "BCO"}  # keep a frozen copy of the model unless PEFT or precomputed
_PAIRED = {"DPO", "ORPO", "CPO", "reward"}  # a row is two sequences (chosen and rejected)
_GENERATING = {"GRPO", "RLOO", "online DPO", "XPO", "Nash-MD", "PPO"}  # generate their completions
_DTYPE_BYTES = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0, "F32": 4.0, "BF16": 2.0, "F16": 2.0,
                "F8_E4M3": 1.0, "I8": 1.0, "U8": 1.0}
GRPO_DEFAULTS = {"num_generations": 8, "max_completion_length": 256, "max_prompt_length": 512,
                 "vllm_gpu_memory_utilization": 0.3}


def trl(recipe: Recipe) -> bool:
    return recipe.method in TRL_METHODS


def uses_bf16(recipe: Recipe) -> bool:
    """bf16 mixed precision on, as written or by TRL's default (True unless fp16)."""
    if recipe.bf16 is not None:
        return recipe.bf16
    return trl(recipe) and not recipe.fp16


def sequence_length(recipe: Recipe) -> tuple[int, bool]:
    """Tokens per training sequence, and whether it is the library's default rather than the script's."""
    if recipe.method == "GRPO" or recipe.method == "RLOO":
        prompt = recipe.max_prompt_length or GRPO_DEFAULTS["max_prompt_length"]
        completion = recipe.max_completion_length or GRPO_DEFAULTS["max_completion_length"]
        return int(prompt + completion), recipe.max_completion_length is None
    return recipe.max_length or 1024, recipe.max_length is None


def batch_size(recipe: Recipe) -> int:
    if recipe.per_device_train_batch_size:
        return recipe.per_device_train_batch_size
    return 1 if recipe.method == CUSTOM_LOOP else 8  # DataLoader's default vs TrainingArguments'


def gradient_checkpointing(recipe: Recipe) -> bool:
    return recipe.gradient_checkpointing if recipe.gradient_checkpointing is not None else trl(recipe)


# --- how the job spreads over the GPUs ---------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    processes: int  # training processes (data-parallel replicas or shards)
    shards: int  # how many GPUs share the model's memory (1 = each GPU holds all of it)
    what: str  # "", "FSDP over 4 GPUs", "ZeRO-2 over 4 GPUs", "device_map=auto over 4 GPUs"
    zero_stage: int = 0  # 0 none, 1 optimizer states, 2 + gradients, 3 everything (FSDP full shard)
    note: str = ""  # a sharding setting that has no effect, said on the card


def layout(recipe: Recipe, gpus: int) -> Layout:
    gpus = max(gpus, 1)
    processes = 1
    if recipe.launcher is not None:
        processes = min(recipe.num_processes or gpus, gpus)
    configured = bool(recipe.fsdp or recipe.deepspeed)
    if processes > 1 and recipe.fsdp:
        stage = 2 if "shard_grad_op" in recipe.fsdp.lower() else 3
        return Layout(processes, processes, f"FSDP over {processes} GPUs", stage)
    if processes > 1 and recipe.deepspeed:
        stage = recipe.zero_stage if recipe.zero_stage is not None else 1
        return Layout(processes, processes, f"DeepSpeed ZeRO-{stage} over {processes} GPUs", stage)
    if recipe.device_map in ("auto", "balanced", "sequential") and gpus > 1 and processes == 1:
        return Layout(1, gpus, f"device_map={recipe.device_map} over {gpus} GPUs", 3)
    note = ""
    if configured and processes == 1 and gpus > 1:
        note = ("FSDP/DeepSpeed is configured but the job runs one process (no accelerate launch / torchrun), "
                "so nothing is sharded")
    what = f"{processes} processes, each GPU holds a full copy" if processes > 1 else ""
    return Layout(processes, 1, what, 0, note)


# --- memory --------------------------------------------------------------------------------------------

@dataclass
class MemoryEstimate:
    per_gpu_gb: float  # what one GPU must hold
    parts: list[tuple[str, float]]  # GB per GPU, largest first
    how: str  # e.g. "full fine-tune of bf16 weights with AdamW, 8 B/param"
    layout: Layout
    vllm_share: float = 0.0  # of each GPU's memory, reserved by vLLM colocated with training
    notes: list[str] = field(default_factory=list)


def load_bytes(recipe: Recipe, checkpoint_dtype: str | None) -> tuple[float, str]:
    """Bytes per parameter of the weights as loaded."""
    if recipe.quantization == "4bit":
        return hw.NF4, "4-bit NF4"
    if recipe.quantization == "8bit":
        return hw.INT8, "8-bit"
    dtype = recipe.torch_dtype
    if dtype in (None, "auto"):  # transformers v5 loads the checkpoint's dtype
        size = _DTYPE_BYTES.get(checkpoint_dtype or "BF16", 2.0)
        return size, "fp32" if size == 4.0 else "bf16"
    return _DTYPE_BYTES.get(dtype, 2.0), {"float32": "fp32", "float16": "fp16"}.get(dtype, "bf16")


def _optimizer_kind(recipe: Recipe) -> str:
    name = (recipe.optimizer or "adamw").lower()
    if "8bit" in name:
        return "8bit"
    for kind in ("sgd", "adafactor", "lion"):
        if kind in name:
            return kind
    return "adamw"


def estimate_memory(params: int, recipe: Recipe, gpus: int, checkpoint_dtype: str | None = None) -> MemoryEstimate:
    weight_bytes, loaded = load_bytes(recipe, checkpoint_dtype)
    lay = layout(recipe, gpus)
    gb = params / 1e9
    parts: dict[str, float] = {}
    if recipe.peft or recipe.quantization:
        how = _adapters(parts, gb, weight_bytes, loaded, recipe)
    else:
        how = _full(parts, gb, weight_bytes, loaded, recipe)
    _shard(parts, lay)
    parts["activations"] = _activations(params, recipe)
    if _keeps_reference(recipe):
        parts["reference model"] = gb * weight_bytes / (lay.shards if lay.zero_stage == 3 else 1)
    parts["CUDA context and fragmentation"] = hw.OVERHEAD_GB
    notes = [lay.note] if lay.note else []
    vllm = vllm_share(recipe)
    total = sum(parts.values())
    ordered = sorted(((k, v) for k, v in parts.items() if v >= 0.05), key=lambda kv: -kv[1])
    return MemoryEstimate(total, ordered, how, lay, vllm, notes)


def vllm_share(recipe: Recipe) -> float:
    if recipe.use_vllm and (recipe.vllm_mode or "colocate") == "colocate":
        return recipe.vllm_gpu_memory_utilization or GRPO_DEFAULTS["vllm_gpu_memory_utilization"]
    return 0.0


def _full(parts: dict[str, float], gb: float, weight_bytes: float, loaded: str, recipe: Recipe) -> str:
    optimizer = _optimizer_kind(recipe)
    states = hw.OPTIMIZER_STATES[optimizer]
    mixed = uses_bf16(recipe) or bool(recipe.fp16)
    if weight_bytes >= hw.FP32 and mixed:
        parts["weights (fp32 + half copy)"] = gb * hw.MIXED_WEIGHTS
        parts["gradients (fp32)"] = gb * hw.FP32
        how = "mixed precision"
    elif weight_bytes >= hw.FP32:
        parts["weights (fp32)"] = gb * hw.FP32
        parts["gradients (fp32)"] = gb * hw.FP32
        how = "fp32"
    else:
        parts[f"weights ({loaded})"] = gb * hw.HALF
        parts[f"gradients ({loaded})"] = gb * hw.HALF
        states = states if optimizer == "8bit" else states / 2
        how = f"{loaded} weights"
    parts[f"optimizer states ({recipe.optimizer or 'AdamW'})"] = gb * states
    per_param = sum(parts.values()) / gb if gb else 0.0
    return f"full fine-tune, {how}, {recipe.optimizer or 'AdamW'}: {per_param:.0f} B/param"


def _adapters(parts: dict[str, float], gb: float, weight_bytes: float, loaded: str, recipe: Recipe) -> str:
    rank = recipe.lora_rank or 16  # TRL's ModelConfig and most LoRA recipes
    parts[f"frozen weights ({loaded})"] = gb * weight_bytes
    trainable = hw.LORA_PER_RANK_HIDDEN_LAYER * rank * hw.hidden_times_layers(gb * 1e9) / 1e9
    parts["adapters, their gradients and optimizer"] = trainable * hw.ADAPTER_TRAINING
    method = "QLoRA" if recipe.quantization == "4bit" else "LoRA"
    return f"{method} r={rank} on {loaded} weights ({weight_bytes:g} B/param frozen)"


def _shard(parts: dict[str, float], lay: Layout) -> None:
    """ZeRO-1 shards optimizer states, ZeRO-2 also gradients, ZeRO-3/FSDP full shard also weights."""
    if lay.shards <= 1:
        return
    for name in list(parts):
        if (name.startswith("optimizer") and lay.zero_stage >= 1) or (name.startswith("gradients")
                                                                      and lay.zero_stage >= 2) \
                or lay.zero_stage >= 3:
            parts[name] /= lay.shards


def _activations(params: int, recipe: Recipe) -> float:
    seq, _ = sequence_length(recipe)
    sequences = batch_size(recipe) * (2 if recipe.method in _PAIRED else 1)
    tokens = sequences * seq
    hl = hw.hidden_times_layers(params)
    if gradient_checkpointing(recipe):
        per_token = hw.CHECKPOINTED_BYTES * hl + hw.ACTIVATION_BYTES * hw.hidden_size(params)
    else:
        per_token = hw.ACTIVATION_BYTES * hl
    # TRL's SFT loss is chunked; a classification head (reward models, PRMs) has no vocabulary logits
    chunked = recipe.method == "SFT" or recipe.classifier or recipe.method in ("reward", "PRM")
    logits = 0.0 if chunked else hw.LOGIT_BYTES * hw.VOCAB
    return tokens * (per_token + logits) / 1e9


def _keeps_reference(recipe: Recipe) -> bool:
    if recipe.ref_model:
        return True
    if recipe.method == "GRPO" or recipe.method == "RLOO":
        return bool(recipe.beta) and not recipe.peft
    return recipe.method in _REFERENCE_METHODS and not recipe.peft and not recipe.precompute_ref_log_probs


# --- time ----------------------------------------------------------------------------------------------

@dataclass
class TimeEstimate:
    seconds: float
    tokens: float  # tokens trained on
    steps: int
    how: str  # the arithmetic in words, for the card
    assumed: list[str] = field(default_factory=list)  # what was not in the script or the data


def estimate_time(params: int, recipe: Recipe, flavor: Flavor, gpu: Gpu, *, rows: int | None,
                  tokens_per_row: float | None, pushes: bool, checkpoint_dtype: str | None = None
                  ) -> TimeEstimate | None:
    """None when neither max_steps nor the dataset's size tells how much is trained on."""
    lay = layout(recipe, flavor.gpus)
    seq, seq_default = sequence_length(recipe)
    assumed = [f"max_length {seq} (default)"] if seq_default else []
    per_step_sequences = batch_size(recipe) * (recipe.gradient_accumulation_steps or 1) * lay.processes
    row_tokens = float(seq) if recipe.packing or tokens_per_row is None else min(float(seq), tokens_per_row)
    generates = recipe.method in _GENERATING
    if generates:  # the data holds prompts; each sequence is a prompt and a completion of up to the limit
        prompt = recipe.max_prompt_length or GRPO_DEFAULTS["max_prompt_length"]
        completion = recipe.max_completion_length or GRPO_DEFAULTS["max_completion_length"]
        row_tokens = min(float(prompt), tokens_per_row or float(prompt)) + completion
    if tokens_per_row is None and not recipe.packing:
        assumed.append("full-length sequences (row length unknown)")
    if recipe.max_steps and recipe.max_steps > 0:
        steps = recipe.max_steps
    elif rows:
        epochs = recipe.num_train_epochs if recipe.num_train_epochs is not None else 3.0
        if recipe.num_train_epochs is None:
            assumed.append("3 epochs (default)")
        sequences = rows * (min(float(seq), tokens_per_row or seq) / seq if recipe.packing else 1.0)
        if generates:  # every prompt is answered num_generations times
            sequences = rows * (recipe.num_generations or GRPO_DEFAULTS["num_generations"])
        steps = max(1, math.ceil(epochs * sequences / per_step_sequences))
    else:
        return None
    # a preference row's text already holds both answers: its tokens are what the two sequences process
    tokens = steps * per_step_sequences * row_tokens
    flops = _flops_per_token(params, recipe) * tokens
    half = uses_bf16(recipe) or bool(recipe.fp16) or load_bytes(recipe, checkpoint_dtype)[0] < hw.FP32
    peak = (gpu.tflops_16bit if half else gpu.tflops_fp32) * 1e12
    mfu = hw.MFU_QUANTIZED if recipe.quantization else hw.MFU
    compute = flops / (peak * mfu * lay.processes)
    generation = _generation_seconds(params, recipe, gpu, steps, per_step_sequences)
    io = hw.STARTUP_SECONDS + params * 2 / 1e9 / hw.DOWNLOAD_GBS
    if pushes and not recipe.peft:
        io += params * 2 / 1e9 / hw.UPLOAD_GBS
    what = "sequences (prompt + completion)" if generates else "sequences"
    how = (f"{steps:,} steps x {per_step_sequences} {what} x {row_tokens:,.0f} tokens ≈ {_short(tokens)} "
           f"tokens, ~{_flops_per_token(params, recipe) / params:.0f} x params FLOPs each at {mfu:.0%} of "
           f"{lay.processes} x {gpu.model}")
    if generation:
        shown = f"{generation / 3600:.1f} h" if generation >= 3600 else f"{max(1, round(generation / 60))} min"
        how += f", plus generating the completions ≈ {shown}"
    return TimeEstimate(compute + generation + io, tokens, steps, how, assumed)


def _flops_per_token(params: int, recipe: Recipe) -> float:
    """6 x params for forward + backward (Kaplan et al. 2020); frozen weights skip their weight gradients
    (4 x); checkpointing repeats the forward (+2 x); a reference model adds its forward (+2 x)."""
    per = 4.0 if recipe.peft or recipe.quantization else 6.0
    if gradient_checkpointing(recipe):
        per += 2.0
    if recipe.method in _REFERENCE_METHODS or _keeps_reference(recipe):
        per += 2.0
    return per * params


def _generation_seconds(params: int, recipe: Recipe, gpu: Gpu, steps: int, per_step_sequences: int) -> float:
    """GRPO-style methods generate every completion token by token: each decoding step reads all the
    weights once, for the whole batch of completions at a time."""
    if recipe.method not in _GENERATING:
        return 0.0
    completion = recipe.max_completion_length or GRPO_DEFAULTS["max_completion_length"]
    efficiency = hw.GENERATION_EFFICIENCY["vllm" if recipe.use_vllm else "generate"]
    weight_bytes = params * (hw.NF4 if recipe.quantization == "4bit" else 2.0)
    per_token = weight_bytes / (gpu.bandwidth_gbs * 1e9 * efficiency)
    batches = max(1, math.ceil(per_step_sequences / 256))  # vLLM/generate batch up to a few hundred sequences
    return steps * completion * per_token * batches


def _short(n: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"
