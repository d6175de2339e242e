"""The Hub as the cases see it: parameter counts and dtypes as the models' safetensors metadata gives
them, and the real row counts of the datasets' training splits (their schema and first rows are the
fixtures in tests/datasets/fixtures/schemas). Sizes are never read from a model's name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Level = Literal["ok", "warn", "error"]

MODELS: dict[str, tuple[int, str]] = {
    "openai-community/gpt2": (124_439_808, "F32"),
    "Qwen/Qwen2.5-0.5B": (494_032_768, "BF16"),
    "Qwen/Qwen2.5-0.5B-Instruct": (494_032_768, "BF16"),
    "Qwen/Qwen2.5-1.5B-Instruct": (1_543_714_304, "BF16"),
    "HuggingFaceTB/SmolLM2-1.7B-Instruct": (1_711_376_384, "BF16"),
    "google/gemma-2-2b": (2_614_341_888, "F32"),
    "Qwen/Qwen2.5-3B-Instruct": (3_085_938_688, "BF16"),
    "mistralai/Mistral-7B-v0.1": (7_241_732_096, "BF16"),
    "Qwen/Qwen2.5-7B-Instruct": (7_615_616_512, "BF16"),
    "Qwen/Qwen2.5-Math-7B": (7_615_616_512, "BF16"),
    "meta-llama/Llama-3.1-8B": (8_030_261_248, "BF16"),
    "meta-llama/Llama-3.1-8B-Instruct": (8_030_261_248, "BF16"),
    "Qwen/Qwen2.5-14B-Instruct": (14_770_033_664, "BF16"),
    "Qwen/Qwen2.5-32B-Instruct": (32_763_876_352, "BF16"),
    "meta-llama/Llama-3.1-70B-Instruct": (70_553_706_496, "BF16"),
}

DATASETS: dict[str, int] = {
    "trl-lib/Capybara": 15_806,
    "HuggingFaceH4/ultrachat_200k": 207_865,
    "trl-lib/tldr": 116_722,
    "trl-lib/ultrafeedback_binarized": 62_135,
    "trl-lib/kto-mix-14k": 13_500,
    "trl-lib/math_shepherd": 444_655,
    "trl-lib/ultrafeedback-prompt": 62_135,
    "AI-MO/NuminaMath-TIR": 72_441,
    "openai/gsm8k": 7_473,
    "tatsu-lab/alpaca": 52_002,
    "yahma/alpaca-cleaned": 51_760,
    "databricks/databricks-dolly-15k": 15_011,
    "timdettmers/openassistant-guanaco": 9_846,
    "Anthropic/hh-rlhf": 160_800,
    "trl-lib/tldr-preference": 92_858,
    "Salesforce/wikitext": 36_718,
    "argilla/dpo-mix-7k": 6_750,
    "mlabonne/orpo-dpo-mix-40k": 44_245,
    "HuggingFaceTB/smoltalk": 1_043_917,
    "stanfordnlp/imdb": 25_000,
    "HuggingFaceFW/fineweb": 14_868_862,
}

CHECKS = ("push", "dataset", "launch", "hardware", "timeout")


@dataclass(frozen=True)
class Case:
    """One script on one hardware/timeout choice, and what a careful engineer would put on the card."""

    name: str
    script: str | None
    flavor: str
    timeout: str  # as given to hf_jobs ("30m", "2h"); "" = not given (the Hub's 30 minutes)
    expect: dict[str, Level | None]  # per check in CHECKS; None = no such line on the card
    why: str  # the arithmetic behind the verdicts
    command: list[str] | None = None
    contains: tuple[str, ...] = field(default=())  # phrases the card must show
