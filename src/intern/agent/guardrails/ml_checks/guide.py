"""The prompt's size guide, computed by the same memory and time rules as the approval card's checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from intern.agent import hardware as hw
from intern.agent.guardrails.ml_checks.estimate import estimate_memory, estimate_time
from intern.agent.guardrails.ml_checks.recipe import Recipe
from intern.agent.pricing import STATIC_FLAVORS, Flavor

GUIDE_SIZES = (0.5e9, 1.5e9, 3e9, 8e9, 14e9, 32e9, 70e9)
GUIDE_TOKENS = 10_000_000  # the time column: hours to train on this many tokens


def _recipes() -> dict[str, Recipe]:
    """TRL SFT with its defaults (bf16, gradient checkpointing, batch 8 x 1024 tokens)."""
    return {
        "full fine-tune (bf16, AdamW)": Recipe(method="SFT", trainer="SFTTrainer", torch_dtype="bfloat16"),
        "LoRA r=16 (bf16)": Recipe(method="SFT", trainer="SFTTrainer", torch_dtype="bfloat16", peft=True,
                                   lora_rank=16),
        "QLoRA r=16 (4-bit)": Recipe(method="SFT", trainer="SFTTrainer", peft=True, lora_rank=16,
                                     quantization="4bit"),
    }


def _cell(params: float, recipe: Recipe, flavors: Sequence[Flavor]) -> str:
    """The memory one process needs, and the cheapest flavor that holds it (sharded with FSDP when one GPU
    is too small for a full fine-tune), with the hours for GUIDE_TOKENS tokens there."""
    one = estimate_memory(int(params), recipe, 1)
    for flavor in sorted((f for f in flavors if f.is_gpu), key=lambda f: (f.hourly_usd, f.name)):
        gpu = hw.gpu_of(flavor)
        if gpu is None or not gpu.bf16:  # these recipes train in bf16
            continue
        plan = recipe
        if flavor.gpus > 1:
            plan = replace(recipe, device_map="auto") if recipe.peft else replace(
                recipe, launcher="accelerate launch", fsdp="full_shard")
        est = estimate_memory(int(params), plan, flavor.gpus)
        if est.per_gpu_gb > gpu.memory_gb * hw.TIGHT_SHARE:
            continue
        steps = max(1, round(GUIDE_TOKENS / (8 * 1024 * est.layout.processes)))
        time = estimate_time(int(params), replace(plan, max_steps=steps, packing=True), flavor, gpu, rows=None,
                             tokens_per_row=None, pushes=False)
        hours = f", {time.seconds / 3600:.1f} h" if time else ""
        how = "FSDP" if plan.fsdp else "device_map=auto"
        where = f"{flavor.name} ({how}, {est.per_gpu_gb:.0f} GB/GPU)" if est.layout.shards > 1 else flavor.name
        return f"≈ {one.per_gpu_gb:.0f} GB: {where}{hours}"
    return f"≈ {one.per_gpu_gb:.0f} GB: none"


def size_guide_markdown(flavors: Sequence[Flavor] | None = None) -> str:
    flavors = list(flavors or STATIC_FLAVORS)
    recipes = _recipes()
    rows = ["| params | " + " | ".join(recipes) + " |", "|---" * (len(recipes) + 1) + "|"]
    # each cell: memory for one process; the cheapest flavor that holds it; hours for GUIDE_TOKENS tokens
    for params in GUIDE_SIZES:
        cells = [_cell(params, recipe, flavors) for recipe in recipes.values()]
        rows.append(f"| {params / 1e9:g}B | " + " | ".join(cells) + " |")
    return "\n".join(rows)
