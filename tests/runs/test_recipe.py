"""The recipe of a run, read from the approved code's syntax tree."""

from __future__ import annotations

from intern.agent.recipe import hyperparams_text, recipe_of_spec

LORA_SFT = '''
import os
from datasets import load_dataset
from peft import LoraConfig
from trl import SFTConfig, SFTTrainer

MODEL = "Qwen/Qwen2.5-7B-Instruct"
LR = 2e-4
ds = load_dataset("trl-lib/Capybara", "default", split="train[:90%]")
peft = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear")
args = SFTConfig(output_dir="out", learning_rate=LR, num_train_epochs=3, per_device_train_batch_size=4,
                 gradient_accumulation_steps=8, max_length=2048, push_to_hub=True,
                 hub_model_id="team/qwen7b-capybara-lora")
# a comment naming DPOTrainer(learning_rate=1.0) is not code
SFTTrainer(model=MODEL, args=args, train_dataset=ds, peft_config=peft).train()
'''

DPO_SUBCLASS = '''
from dataclasses import dataclass, field
from datasets import load_dataset
from transformers import AutoModelForCausalLM
from trl import DPOConfig, DPOTrainer

@dataclass
class ScriptArguments:
    model_name_or_path: str = field(default="HuggingFaceTB/SmolLM2-1.7B-Instruct")
    learning_rate: float = 5e-7
    max_steps: int = 500

class MyTrainer(DPOTrainer):
    pass

a = ScriptArguments()
model = AutoModelForCausalLM.from_pretrained(a.model_name_or_path)
ds = load_dataset("trl-lib/ultrafeedback_binarized", split="train")
MyTrainer(model=model, args=DPOConfig(output_dir="o", learning_rate=a.learning_rate, max_steps=a.max_steps),
          train_dataset=ds).train()
model.push_to_hub("team/smol-dpo")
'''


def test_sft_with_lora_recipe() -> None:
    r = recipe_of_spec({"operation": "run", "script": LORA_SFT})
    assert r.method == "SFT" and r.base_model == "Qwen/Qwen2.5-7B-Instruct"
    assert r.datasets == [{"id": "trl-lib/Capybara", "config": "default", "split": "train"}]
    assert r.hyperparams == {"learning_rate": 2e-4, "num_train_epochs": 3, "per_device_train_batch_size": 4,
                             "gradient_accumulation_steps": 8, "lora_rank": 16, "max_length": 2048}
    assert r.output_repo == "team/qwen7b-capybara-lora"
    assert hyperparams_text(r.hyperparams) == "lr 0.0002, epochs 3, bs 4, ga 8, r 16, len 2048"


def test_a_trainer_subclass_and_dataclass_defaults() -> None:
    r = recipe_of_spec({"script": DPO_SUBCLASS})
    assert r.method == "DPO" and r.base_model == "HuggingFaceTB/SmolLM2-1.7B-Instruct"
    assert r.hyperparams == {"learning_rate": 5e-7, "max_steps": 500}
    assert r.output_repo == "team/smol-dpo" and r.dataset == "trl-lib/ultrafeedback_binarized"


def test_a_trl_command_line() -> None:
    r = recipe_of_spec({"command": ["trl", "grpo", "--model_name_or_path", "Qwen/Qwen2.5-1.5B",
                                    "--dataset_name", "trl-lib/tldr", "--learning_rate", "1e-6",
                                    "--num_train_epochs", "1", "--use_peft", "--lora_r", "32",
                                    "--hub_model_id", "team/grpo", "--push_to_hub"]})
    assert r.method == "GRPO" and r.base_model == "Qwen/Qwen2.5-1.5B" and r.dataset == "trl-lib/tldr"
    assert r.hyperparams["learning_rate"] == 1e-6 and r.hyperparams["num_train_epochs"] == 1
    assert r.output_repo == "team/grpo"


def test_unreadable_code_gives_an_empty_recipe() -> None:
    assert recipe_of_spec({"script": "def broken(:\n"}).base_model is None
    assert recipe_of_spec({"script": "https://example.org/train.py"}).method is None
    assert recipe_of_spec({"command": ["bash", "-c", "python train.py"]}).datasets == []
