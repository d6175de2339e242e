"""The training recipe a script (or a `trl` command line) sets, as read from its syntax tree.

Every field is what the code says, or None when the code does not set it (the library's default then
applies; the estimates in `estimate.py` name the defaults they assume). Run records store these
fields as they are, so their names follow the transformers/TRL argument names where one exists.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Trainer class -> the method a person would name. Subclasses are resolved to their TRL/transformers
# base first (see `_Reader.trainer_of`).
METHODS: dict[str, str] = {
    "SFTTrainer": "SFT", "DPOTrainer": "DPO", "GRPOTrainer": "GRPO", "KTOTrainer": "KTO",
    "ORPOTrainer": "ORPO", "CPOTrainer": "CPO", "RewardTrainer": "reward", "PRMTrainer": "PRM",
    "RLOOTrainer": "RLOO", "OnlineDPOTrainer": "online DPO", "GKDTrainer": "GKD", "BCOTrainer": "BCO",
    "XPOTrainer": "XPO", "NashMDTrainer": "Nash-MD", "PPOTrainer": "PPO",
    "Trainer": "Trainer", "Seq2SeqTrainer": "Trainer",
}
CUSTOM_LOOP = "custom loop"


@dataclass
class Recipe:
    """How the script trains. Numbers are as written; None = not set in the code."""

    method: str | None = None  # SFT, DPO, GRPO, KTO, ORPO, reward, PRM, Trainer, custom loop, …
    trainer: str | None = None  # the trainer class, e.g. "SFTTrainer" (a subclass resolves to its base)
    learning_rate: float | None = None
    num_train_epochs: float | None = None
    max_steps: int | None = None  # > 0 overrides epochs (transformers' rule)
    per_device_train_batch_size: int | None = None
    gradient_accumulation_steps: int | None = None
    lora_rank: int | None = None  # LoraConfig(r=…); also set when `use_peft` on the command line
    peft: bool = False  # adapters (LoRA/QLoRA) rather than a full fine-tune
    max_length: int | None = None  # max_seq_length / max_length (tokens per sequence)
    packing: bool | None = None
    torch_dtype: str | None = None  # the load dtype: "bfloat16", "float16", "float32", "auto"
    bf16: bool | None = None
    fp16: bool | None = None
    tf32: bool | None = None
    quantization: str | None = None  # "4bit" or "8bit" (bitsandbytes)
    optimizer: str | None = None  # transformers' `optim` name, or the optimizer class of a custom loop
    gradient_checkpointing: bool | None = None
    fsdp: str | None = None  # TrainingArguments(fsdp=…) or the launcher's FSDP flag
    deepspeed: str | None = None  # the DeepSpeed config (file name, or "dict" when written inline)
    zero_stage: int | None = None  # DeepSpeed ZeRO stage, when the code or the file name says it
    device_map: str | None = None  # from_pretrained(device_map=…) when it is a string ("auto")
    launcher: str | None = None  # "accelerate launch", "torchrun", "deepspeed", "trl" or None (one process)
    num_processes: int | None = None  # processes the launcher starts; None with a launcher = one per GPU
    use_vllm: bool | None = None
    vllm_mode: str | None = None  # "server" or "colocate" (GRPO generation)
    vllm_gpu_memory_utilization: float | None = None
    vllm_server: str | None = None  # vllm_server_base_url / vllm_server_host, when set
    num_generations: int | None = None
    max_prompt_length: int | None = None
    max_completion_length: int | None = None
    beta: float | None = None  # KL weight (GRPO keeps a reference model only when it is > 0)
    precompute_ref_log_probs: bool | None = None
    ref_model: bool = False  # an explicit ref_model is passed to the trainer
    dataset_text_field: str | None = None
    formatting_func: str | None = None  # the function's name (or "lambda")
    push_to_hub: bool | None = None
    hub_model_id: str | None = None
    save_strategy: str | None = None
    post_training_pushes: list[str] = field(default_factory=list)  # push/upload calls after training
    classifier: bool = False  # a classification head (…ForSequenceClassification / …ForTokenClassification)

    def as_dict(self) -> dict[str, Any]:
        """The fields that are set, for run records."""
        return {k: v for k, v in asdict(self).items() if v not in (None, [], False)}


# Keyword arguments that set a recipe field directly, wherever a config, arguments or trainer call
# (or from_pretrained / LoraConfig / BitsAndBytesConfig) carries them.
KEYWORDS: dict[str, str] = {
    "learning_rate": "learning_rate", "num_train_epochs": "num_train_epochs", "max_steps": "max_steps",
    "per_device_train_batch_size": "per_device_train_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "max_seq_length": "max_length", "max_length": "max_length", "packing": "packing",
    "bf16": "bf16", "fp16": "fp16", "tf32": "tf32", "optim": "optimizer",
    "gradient_checkpointing": "gradient_checkpointing", "use_vllm": "use_vllm", "vllm_mode": "vllm_mode",
    "vllm_gpu_memory_utilization": "vllm_gpu_memory_utilization", "vllm_server_base_url": "vllm_server",
    "vllm_server_host": "vllm_server", "num_generations": "num_generations",
    "max_prompt_length": "max_prompt_length", "max_completion_length": "max_completion_length",
    "beta": "beta", "precompute_ref_log_probs": "precompute_ref_log_probs",
    "dataset_text_field": "dataset_text_field", "push_to_hub": "push_to_hub", "hub_model_id": "hub_model_id",
    "save_strategy": "save_strategy", "torch_dtype": "torch_dtype", "dtype": "torch_dtype",
}

_INTS = {"max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "lora_rank", "max_length",
         "num_generations", "max_prompt_length", "max_completion_length", "num_processes", "zero_stage"}
_FLOATS = {"learning_rate", "num_train_epochs", "vllm_gpu_memory_utilization", "beta"}
_BOOLS = {"classifier", "peft", "packing", "bf16", "fp16", "tf32", "gradient_checkpointing", "use_vllm", "precompute_ref_log_probs",
          "push_to_hub"}


def coerce(name: str, value: Any) -> Any:
    """A literal (or a command-line string) as the field's type; None when it does not convert."""
    if value is None:
        return None
    try:
        if name in _BOOLS:
            if isinstance(value, str):
                return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(
                    value.strip().lower())
            return bool(value) if isinstance(value, bool | int) else None
        if name in _INTS:
            return int(float(value)) if not isinstance(value, bool) else None
        if name in _FLOATS:
            return float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, str) else str(value)


def dtype_name(text: str) -> str | None:
    """`torch.bfloat16` / "bf16" / "bfloat16" -> "bfloat16"; anything unknown -> None."""
    word = text.rsplit(".", 1)[-1].strip("'\" ").lower()
    return {"bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16", "fp16": "float16",
            "half": "float16", "float32": "float32", "fp32": "float32", "float": "float32",
            "auto": "auto"}.get(word)
