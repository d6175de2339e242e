"""The training recipe read from a script's syntax tree (and from `trl` / launcher command lines)."""

from __future__ import annotations

from intern.agent.guardrails.ml_checks import read_script, read_trl_command
from intern.agent.guardrails.ml_checks.commands import apply_launcher, starts_vllm_server
from intern.agent.guardrails.ml_checks.recipe import Recipe

QLORA_SFT = '''
import torch
from dataclasses import dataclass, field
from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, BitsAndBytesConfig
from trl import SFTConfig, SFTTrainer

MODEL = "meta-llama/Llama-3.1-8B"
LR = 2e-4

def fmt(example):
    return f"### Q: {example['question']}\\n### A: {example['answer']}"

bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
model = AutoModelForCausalLM.from_pretrained(MODEL, quantization_config=bnb, torch_dtype=torch.bfloat16)
peft_config = LoraConfig(r=32, lora_alpha=64, target_modules="all-linear")
args = SFTConfig(output_dir="out", learning_rate=LR, num_train_epochs=2, per_device_train_batch_size=4,
                 gradient_accumulation_steps=8, max_seq_length=2048, packing=True, bf16=True,
                 optim="paged_adamw_8bit", gradient_checkpointing=True, push_to_hub=True,
                 hub_model_id="acme/llama-qa", save_strategy="no", report_to="none")
trainer = SFTTrainer(model=model, args=args, train_dataset=load_dataset("acme/qa", split="train"),
                     peft_config=peft_config, formatting_func=fmt)
trainer.train()
trainer.push_to_hub()
'''

GRPO_DATACLASS = '''
from dataclasses import dataclass, field
from transformers import HfArgumentParser
from trl import GRPOConfig, GRPOTrainer

@dataclass
class Args:
    model_name: str = field(default="Qwen/Qwen2.5-1.5B-Instruct")
    learning_rate: float = field(default=1e-6)
    max_steps: int = 200

args = HfArgumentParser(Args).parse_args_into_dataclasses()[0]
config = GRPOConfig(output_dir="grpo", learning_rate=args.learning_rate, max_steps=args.max_steps,
                    per_device_train_batch_size=8, num_generations=8, max_completion_length=512,
                    use_vllm=True, vllm_mode="colocate", vllm_gpu_memory_utilization=0.3, beta=0.0,
                    deepspeed={"zero_optimization": {"stage": 3}}, torch_dtype="bfloat16")
GRPOTrainer(model=args.model_name, reward_funcs=[len], args=config, train_dataset=None).train()
'''

CUSTOM_LOOP = '''
import argparse, torch
import bitsandbytes as bnb
from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM, AutoTokenizer

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--lr", type=float, default=3e-5)
args = p.parse_args()
model = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-0.5B", device_map="auto")
model.gradient_checkpointing_enable()
tok = AutoTokenizer.from_pretrained("Qwen/Qwen2.5-0.5B")
loader = DataLoader(data, batch_size=16)
opt = bnb.optim.AdamW8bit(model.parameters(), lr=args.lr)
for epoch in range(args.epochs):
    for batch in loader:
        enc = tok(batch["text"], max_length=1024, truncation=True, return_tensors="pt")
        model(**enc).loss.backward()
        opt.step()
model.push_to_hub("acme/qwen-loop")
tok.push_to_hub("acme/qwen-loop")
'''


def test_qlora_sft_recipe() -> None:
    facts = read_script(QLORA_SFT)
    r = facts.recipe
    assert (r.method, r.trainer) == ("SFT", "SFTTrainer")
    assert (r.learning_rate, r.num_train_epochs, r.max_steps) == (2e-4, 2.0, None)
    assert (r.per_device_train_batch_size, r.gradient_accumulation_steps) == (4, 8)
    assert (r.peft, r.lora_rank, r.quantization, r.torch_dtype) == (True, 32, "4bit", "bfloat16")
    assert (r.max_length, r.packing, r.bf16, r.optimizer, r.gradient_checkpointing) == (
        2048, True, True, "paged_adamw_8bit", True)
    assert (r.push_to_hub, r.hub_model_id, r.save_strategy) == (True, "acme/llama-qa", "no")
    assert r.post_training_pushes == ["trainer.push_to_hub()"]
    assert r.formatting_func == "fmt" and facts.formatting_columns == ["question", "answer"]
    assert r.as_dict()["lora_rank"] == 32 and "max_steps" not in r.as_dict()


def test_grpo_recipe_from_dataclass_defaults_and_inline_deepspeed() -> None:
    r = read_script(GRPO_DATACLASS).recipe
    assert r.method == "GRPO" and r.learning_rate == 1e-6 and r.max_steps == 200
    assert (r.use_vllm, r.vllm_mode, r.vllm_gpu_memory_utilization, r.beta) == (True, "colocate", 0.3, 0.0)
    assert (r.num_generations, r.max_completion_length, r.per_device_train_batch_size) == (8, 512, 8)
    assert (r.deepspeed, r.zero_stage, r.torch_dtype) == ("dict", 3, "bfloat16")
    assert r.post_training_pushes == [] and r.push_to_hub is None


def test_custom_loop_recipe() -> None:
    facts = read_script(CUSTOM_LOOP)
    r = facts.recipe
    assert r.method == "custom loop" and r.trainer is None
    assert (r.learning_rate, r.num_train_epochs, r.per_device_train_batch_size) == (3e-5, 3.0, 16)
    assert (r.optimizer, r.gradient_checkpointing, r.device_map, r.max_length) == ("adamw_8bit", True, "auto", 1024)
    # the tokenizer's push is not the model's
    assert r.post_training_pushes == ["model.push_to_hub()"]


def test_push_before_training_does_not_count() -> None:
    facts = read_script('''
from trl import SFTTrainer
model.push_to_hub("acme/base-copy")
trainer = SFTTrainer(model=model, train_dataset=ds)
trainer.train()
''')
    assert facts.pushes == ["model.push_to_hub()"] and facts.recipe.post_training_pushes == []


def test_push_in_a_helper_function_counts() -> None:
    facts = read_script('''
from trl import DPOTrainer
def publish(trainer):
    trainer.push_to_hub()

def main():
    trainer = DPOTrainer(model="Qwen/Qwen2.5-0.5B-Instruct", train_dataset=ds)
    trainer.train()
    publish(trainer)
''')
    assert facts.recipe.method == "DPO" and facts.recipe.post_training_pushes == ["trainer.push_to_hub()"]


def test_save_model_pushes_only_with_push_to_hub() -> None:
    on = read_script("from trl import SFTConfig, SFTTrainer\nt = SFTTrainer(model='m/x', "
                     "args=SFTConfig(push_to_hub=True, save_strategy='no'))\nt.train()\nt.save_model()\n")
    assert on.recipe.post_training_pushes == ["trainer.save_model() with push_to_hub=True"]
    off = read_script("from trl import SFTTrainer\nt = SFTTrainer(model='m/x')\nt.train()\nt.save_model()\n")
    assert off.recipe.post_training_pushes == []


def test_subclassed_trainer_and_plain_trainer() -> None:
    r = read_script("from trl import RewardTrainer\nclass MyRM(RewardTrainer):\n    pass\n"
                    "MyRM(model='m/x', args=RewardConfig(max_length=1024)).train()\n").recipe
    assert (r.method, r.trainer, r.max_length) == ("reward", "RewardTrainer", 1024)
    r = read_script("from transformers import Trainer, TrainingArguments\n"
                    "Trainer(model=m, args=TrainingArguments('o', fp16=True, fsdp='full_shard auto_wrap')).train()\n"
                    ).recipe
    assert (r.method, r.fp16, r.fsdp) == ("Trainer", True, "full_shard auto_wrap")


def test_trl_command_line_recipe() -> None:
    facts = read_trl_command(["trl", "dpo", "--model_name_or_path", "Qwen/Qwen2.5-7B-Instruct", "--dataset_name",
                              "trl-lib/ultrafeedback_binarized", "--learning_rate", "5e-7", "--max_steps", "100",
                              "--per_device_train_batch_size", "2", "--use_peft", "--lora_r", "64",
                              "--load_in_4bit", "--torch_dtype", "bfloat16", "--bf16", "--max_length", "1024",
                              "--accelerate_config", "zero3", "--num_processes", "4"])
    assert facts is not None
    r = facts.recipe
    assert (r.method, r.learning_rate, r.max_steps, r.per_device_train_batch_size) == ("DPO", 5e-7, 100, 2)
    assert (r.peft, r.lora_rank, r.quantization, r.torch_dtype, r.bf16) == (True, 64, "4bit", "bfloat16", True)
    assert (r.launcher, r.deepspeed, r.zero_stage, r.num_processes, r.max_length) == ("trl", "zero3", 3, 4, 1024)


def test_launchers() -> None:
    r = Recipe()
    apply_launcher(["accelerate", "launch", "--use_deepspeed", "--zero_stage", "3", "--num_processes", "8",
                    "train.py"], r)
    assert (r.launcher, r.num_processes, r.zero_stage) == ("accelerate launch", 8, 3)
    r = Recipe()
    apply_launcher(["accelerate", "launch", "--config_file", "configs/fsdp.yaml", "train.py"], r)
    assert (r.launcher, r.num_processes, r.fsdp) == ("accelerate launch", None, "accelerate")
    r = Recipe()
    apply_launcher(["torchrun", "--nproc_per_node", "4", "train.py", "--deepspeed", "ds_zero2.json"], r)
    assert (r.launcher, r.num_processes, r.deepspeed, r.zero_stage) == ("torchrun", 4, "ds_zero2.json", 2)
    r = Recipe()
    apply_launcher(["uv", "run", "--with", "deepspeed", "train.py"], r)
    assert r.launcher is None
    assert starts_vllm_server(["bash", "-c", "x"]) is False
    assert starts_vllm_server(["trl", "vllm-serve", "--model", "Qwen/Qwen2.5-7B"]) is True
