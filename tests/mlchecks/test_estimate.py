"""The memory and time rules on their own: bytes per parameter as transformers' training-memory page and
the QLoRA paper give them, and how a job spreads over GPUs."""

from __future__ import annotations

import pytest

from intern.agent import hardware as hw
from intern.agent.guardrails.ml_checks.estimate import estimate_memory, estimate_time, layout
from intern.agent.guardrails.ml_checks.recipe import Recipe
from intern.agent.pricing import PriceTable

B = 1_000_000_000  # one billion parameters: GB per byte per parameter


def static(recipe: Recipe, **kw: object) -> float:
    """GB per billion parameters for weights, gradients and optimizer (activations and overhead left out)."""
    est = estimate_memory(B, recipe, 1, **kw)  # type: ignore[arg-type]
    return round(sum(gb for name, gb in est.parts if not name.startswith(("activations", "CUDA"))), 2)


@pytest.mark.parametrize(("recipe", "dtype", "per_param"), [
    (Recipe(method="Trainer", bf16=True), "F32", 18.0),  # fp32 master + half copy, fp32 grads, AdamW: 6 + 4 + 8
    (Recipe(method="Trainer"), "F32", 16.0),  # plain fp32: 4 + 4 + 8
    (Recipe(method="Trainer", fp16=True, optimizer="adamw_bnb_8bit"), "F32", 12.0),  # 6 + 4 + 2
    (Recipe(method="SFT", torch_dtype="bfloat16"), None, 8.0),  # bf16 weights trained as they are: 2 + 2 + 4
    (Recipe(method="SFT", torch_dtype="bfloat16", optimizer="paged_adamw_8bit"), None, 6.0),  # 2 + 2 + 2
    (Recipe(method="SFT"), "BF16", 8.0),  # dtype "auto": the checkpoint's bf16
])
def test_full_fine_tune_bytes_per_parameter(recipe: Recipe, dtype: str | None, per_param: float) -> None:
    assert static(recipe, checkpoint_dtype=dtype) == per_param


def test_adapters_keep_frozen_weights_at_load_precision() -> None:
    qlora = estimate_memory(7 * B, Recipe(method="SFT", peft=True, lora_rank=16, quantization="4bit"), 1)
    frozen = dict(qlora.parts)["frozen weights (4-bit NF4)"]
    assert frozen == pytest.approx(7 * hw.NF4)
    adapters = dict(qlora.parts)["adapters, their gradients and optimizer"]
    assert adapters == pytest.approx(20 * 16 * 131_072 * 16 / 1e9, rel=1e-3)  # 42M params x 16 B
    lora = estimate_memory(7 * B, Recipe(method="SFT", peft=True, torch_dtype="bfloat16"), 1)
    assert dict(lora.parts)["frozen weights (bf16)"] == pytest.approx(14.0)


def test_reference_model_unless_peft_or_precomputed() -> None:
    def has_reference(recipe: Recipe) -> bool:
        return "reference model" in dict(estimate_memory(B, recipe, 1).parts)

    assert has_reference(Recipe(method="DPO"))
    assert has_reference(Recipe(method="KTO"))
    assert not has_reference(Recipe(method="DPO", peft=True))
    assert not has_reference(Recipe(method="DPO", precompute_ref_log_probs=True))
    assert not has_reference(Recipe(method="ORPO"))
    assert not has_reference(Recipe(method="GRPO"))  # beta defaults to 0
    assert has_reference(Recipe(method="GRPO", beta=0.04))


@pytest.mark.parametrize(("recipe", "gpus", "processes", "shards", "stage"), [
    (Recipe(fsdp="full_shard auto_wrap"), 4, 1, 1, 0),  # no launcher: one process, nothing sharded
    (Recipe(fsdp="full_shard", launcher="accelerate launch"), 4, 4, 4, 3),
    (Recipe(fsdp="shard_grad_op", launcher="torchrun", num_processes=2), 4, 2, 2, 2),
    (Recipe(deepspeed="ds.json", zero_stage=2, launcher="deepspeed"), 8, 8, 8, 2),
    (Recipe(launcher="torchrun", num_processes=4), 4, 4, 1, 0),  # DDP: a full copy per GPU
    (Recipe(device_map="auto"), 4, 1, 4, 3),
    (Recipe(device_map="auto"), 1, 1, 1, 0),
])
def test_layout(recipe: Recipe, gpus: int, processes: int, shards: int, stage: int) -> None:
    lay = layout(recipe, gpus)
    assert (lay.processes, lay.shards, lay.zero_stage) == (processes, shards, stage)


def test_zero_stages_shard_what_they_say() -> None:
    base = Recipe(method="Trainer", torch_dtype="bfloat16", launcher="accelerate launch", deepspeed="x")
    one, two, three = (dict(estimate_memory(8 * B, Recipe(**{**base.__dict__, "zero_stage": s}), 4).parts)
                       for s in (1, 2, 3))
    assert one["optimizer states (AdamW)"] == two["optimizer states (AdamW)"] == pytest.approx(8.0)
    assert one["gradients (bf16)"] == pytest.approx(16.0) and two["gradients (bf16)"] == pytest.approx(4.0)
    assert two["weights (bf16)"] == pytest.approx(16.0) and three["weights (bf16)"] == pytest.approx(4.0)


def test_time_is_six_params_per_token_at_the_flavors_share_of_peak() -> None:
    a100 = PriceTable().lookup("a100-large")
    recipe = Recipe(method="Trainer", torch_dtype="bfloat16", bf16=True, max_steps=1000,
                    per_device_train_batch_size=8, max_length=1000, packing=True)
    est = estimate_time(B, recipe, a100, hw.GPUS["A100"], rows=None, tokens_per_row=None, pushes=False)
    assert est is not None and est.tokens == 8_000_000
    compute = 6 * B * 8_000_000 / (312e12 * hw.MFU)
    assert est.seconds == pytest.approx(compute + hw.STARTUP_SECONDS + 2 / hw.DOWNLOAD_GBS)
    assert estimate_time(B, Recipe(method="Trainer"), a100, hw.GPUS["A100"], rows=None, tokens_per_row=None,
                         pushes=False) is None  # neither max_steps nor the dataset's size


async def test_an_unforeseen_failure_in_an_estimate_is_a_warning(ctx: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from intern.agent.guardrails.ml_checks import checks as module
    from tests.mlchecks.cases.sft import SFT_05B

    def broken(*args: object, **kwargs: object) -> object:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(module, "estimate_memory", broken)
    found = await module.job_checks(ctx, script=SFT_05B, command=None,  # type: ignore[arg-type]
                                    flavor=PriceTable().lookup("a10g-small"), timeout_seconds=7200,
                                    timeout_given=True)
    assert module.Check("warn", "The hardware check could not be computed (ZeroDivisionError: division by zero)") \
        in found
    assert any(c.text.startswith("Timeout 2h fits") for c in found)


def test_a_script_too_deep_for_ast_is_a_warning() -> None:
    from intern.agent.guardrails.ml_checks.checks import _code

    facts, problem = _code("x = " + "(" * 5000 + "1" + ")" * 5000 + "\n", None)
    assert facts is None and problem is not None and problem.level in ("warn", "error")
