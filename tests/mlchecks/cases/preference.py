"""Preference and reward training: DPO (with and without a reference copy), KTO, ORPO, reward models and
process reward models."""

from __future__ import annotations

from tests.mlchecks.cases.world import Case

DPO_05B = '''\
from datasets import load_dataset
from trl import DPOConfig, DPOTrainer

train = load_dataset("trl-lib/ultrafeedback_binarized", split="train")
args = DPOConfig(output_dir="qwen-dpo", beta=0.1, learning_rate=5e-7, num_train_epochs=1,
                 per_device_train_batch_size=4, gradient_accumulation_steps=4, max_length=1024,
                 model_init_kwargs={"torch_dtype": "bfloat16"}, push_to_hub=True, hub_model_id="acme/qwen-dpo")
trainer = DPOTrainer(model="Qwen/Qwen2.5-0.5B-Instruct", args=args, train_dataset=train)
trainer.train()
'''

DPO_7B_EXPLICIT_REF = '''\
import torch
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer

name = "Qwen/Qwen2.5-7B-Instruct"
policy = AutoModelForCausalLM.from_pretrained(name, torch_dtype=torch.bfloat16)
reference = AutoModelForCausalLM.from_pretrained(name, torch_dtype=torch.bfloat16)
tokenizer = AutoTokenizer.from_pretrained(name)
prefs = load_dataset("trl-lib/ultrafeedback_binarized", split="train[:20%]")
trainer = DPOTrainer(
    model=policy,
    ref_model=reference,
    args=DPOConfig(output_dir="qwen7b-dpo", per_device_train_batch_size=2, gradient_accumulation_steps=8,
                   max_length=1024, learning_rate=5e-7, num_train_epochs=1, bf16=True,
                   push_to_hub=True, hub_model_id="acme/qwen7b-dpo"),
    train_dataset=prefs,
    processing_class=tokenizer,
)
trainer.train()
'''

DPO_8B_LORA = '''\
from datasets import load_dataset
from peft import LoraConfig
from trl import DPOConfig, DPOTrainer

trainer = DPOTrainer(
    model="meta-llama/Llama-3.1-8B-Instruct",
    train_dataset=load_dataset("argilla/dpo-mix-7k", split="train"),
    peft_config=LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"),
    args=DPOConfig(output_dir="llama-dpo-lora", per_device_train_batch_size=2, gradient_accumulation_steps=4,
                   max_length=1024, num_train_epochs=2, learning_rate=5e-6,
                   model_init_kwargs={"torch_dtype": "bfloat16"}),
)
trainer.train()
trainer.push_to_hub()
'''

DPO_PRECOMPUTED = '''\
from datasets import load_dataset
from trl import DPOConfig, DPOTrainer

cfg = DPOConfig(output_dir="qwen1.5b-dpo", precompute_ref_log_probs=True, per_device_train_batch_size=4,
                gradient_accumulation_steps=4, max_length=1024, num_train_epochs=1,
                model_init_kwargs={"torch_dtype": "bfloat16"}, push_to_hub=True)
ds = load_dataset("Anthropic/hh-rlhf", split="train[:10%]")
DPOTrainer(model="Qwen/Qwen2.5-1.5B-Instruct", args=cfg, train_dataset=ds).train()
'''

DPO_ON_ALPACA = '''\
from datasets import load_dataset
from trl import DPOConfig, DPOTrainer

data = load_dataset("yahma/alpaca-cleaned", split="train")
trainer = DPOTrainer(model="Qwen/Qwen2.5-0.5B-Instruct", train_dataset=data,
                     args=DPOConfig(output_dir="out", max_steps=100, push_to_hub=True))
trainer.train()
'''

KTO_7B_LORA = '''\
from datasets import load_dataset
from peft import LoraConfig
from trl import KTOConfig, KTOTrainer

dataset = load_dataset("trl-lib/kto-mix-14k", split="train")
trainer = KTOTrainer(
    model="Qwen/Qwen2.5-7B-Instruct",
    args=KTOConfig(output_dir="qwen-kto", per_device_train_batch_size=4, num_train_epochs=1, learning_rate=5e-6,
                   max_length=1024, model_init_kwargs={"torch_dtype": "bfloat16"}, push_to_hub=True,
                   hub_model_id="acme/qwen-kto", save_strategy="no"),
    train_dataset=dataset,
    peft_config=LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"),
)
trainer.train()
trainer.save_model()
'''

KTO_FULL_NO_SAVE = KTO_7B_LORA.replace("trainer.save_model()\n", "").replace(
    'model="Qwen/Qwen2.5-7B-Instruct"', 'model="Qwen/Qwen2.5-1.5B-Instruct"')

ORPO_3B = '''\
from datasets import load_dataset
from trl import ORPOConfig, ORPOTrainer

mix = load_dataset("mlabonne/orpo-dpo-mix-40k", split="train")
config = ORPOConfig(output_dir="qwen3b-orpo", beta=0.1, learning_rate=8e-6, num_train_epochs=1,
                    per_device_train_batch_size=2, gradient_accumulation_steps=8, max_length=2048,
                    model_init_kwargs={"torch_dtype": "bfloat16"}, push_to_hub=True)
ORPOTrainer(model="Qwen/Qwen2.5-3B-Instruct", args=config, train_dataset=mix).train()
'''

REWARD_MODEL = '''\
from datasets import load_dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from trl import RewardConfig, RewardTrainer

base = "Qwen/Qwen2.5-1.5B-Instruct"
model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, torch_dtype="bfloat16")
tokenizer = AutoTokenizer.from_pretrained(base)
trainer = RewardTrainer(
    model=model,
    processing_class=tokenizer,
    train_dataset=load_dataset("trl-lib/ultrafeedback_binarized", split="train"),
    args=RewardConfig(output_dir="qwen-rm", per_device_train_batch_size=8, num_train_epochs=1, max_length=2048,
                      learning_rate=1e-5, push_to_hub=True, hub_model_id="acme/qwen-rm"),
)
trainer.train()
'''

REWARD_ON_SFT_DATA = REWARD_MODEL.replace('"trl-lib/ultrafeedback_binarized"', '"trl-lib/Capybara"')

PRM_7B = '''\
from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForTokenClassification, AutoTokenizer
from trl import PRMConfig, PRMTrainer

model_id = "Qwen/Qwen2.5-Math-7B"
model = AutoModelForTokenClassification.from_pretrained(model_id, num_labels=2, torch_dtype="bfloat16")
tokenizer = AutoTokenizer.from_pretrained(model_id)
train = load_dataset("trl-lib/math_shepherd", split="train[:5%]")
trainer = PRMTrainer(
    model=model,
    args=PRMConfig(output_dir="qwen-math-prm", per_device_train_batch_size=4, max_length=1024, num_train_epochs=1,
                   learning_rate=1e-4, push_to_hub=True, hub_model_id="acme/qwen-math-prm"),
    processing_class=tokenizer,
    train_dataset=train,
    peft_config=LoraConfig(r=32, lora_alpha=64, target_modules="all-linear", task_type="TOKEN_CLS"),
)
trainer.train()
'''

PRM_ON_PAIRS = PRM_7B.replace('"trl-lib/math_shepherd", split="train[:5%]"', '"trl-lib/tldr-preference", split="train"')

DPO_CLI = ["trl", "dpo", "--model_name_or_path", "Qwen/Qwen2.5-7B-Instruct", "--dataset_name",
           "trl-lib/ultrafeedback_binarized", "--use_peft", "--lora_r", "32", "--load_in_4bit", "--max_steps", "500",
           "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "8", "--learning_rate", "5e-6",
           "--max_length", "1024", "--output_dir", "qwen-dpo-qlora", "--push_to_hub"]

CASES = [
    Case("dpo-0.5b-a10g", DPO_05B, "a10g-small", "3h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "0.494B x 8 B = 4.0 GB + a reference copy (TRL makes one for a full DPO: 1.0 GB) + activations of 4 x 2 "
         "sequences x 1024 (checkpointed, 1.2 GB) and their logits (8192 x 128k x 6 B = 6.3 GB) + 1.5 ≈ 14 GB of 24. "
         "62,135 rows x 99 tokens (a row holds both answers) ≈ 6.1M tokens x (6 + 2 checkpointing + 2 reference "
         "forward) x 0.494B = 3.0e16 / (70 TFLOPS x 35%) ≈ 20 min + start-up: under 3 h."),
    Case("dpo-7b-explicit-ref-a100", DPO_7B_EXPLICIT_REF, "a100-large", "4h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "error", "timeout": "ok"},
         "Policy 7.6B x 8 B = 61 GB + the reference model 15.2 GB + activations and logits of 2 x 2 x 1024 tokens "
         "(1.8 + 3.1 GB) + 1.5 ≈ 83 GB: more than an A100's 80 GB. (A DPO's second model is what a size table "
         "misses.)", contains=("reference model 15 GB",)),
    Case("dpo-7b-explicit-ref-h200", DPO_7B_EXPLICIT_REF, "h200", "4h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "≈ 83 GB of 141. 20% of 62,135 = 12,427 rows x 99 = 1.2M tokens x 10 x 7.6B = 9.3e16 / (989 x 35%) "
         "≈ 4.5 min + start-up, the 15 GB download and the 15 GB push ≈ 11 min."),
    Case("dpo-8b-lora-a10g-tight", DPO_8B_LORA, "a10g-large", "4h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "warn", "timeout": "ok"},
         "LoRA DPO needs no reference copy (the adapters are switched off instead): 8.0B x 2 = 16.1 GB frozen + "
         "0.7 GB adapters + activations 1.8 GB + logits 3.1 GB (2 x 2 x 1024 tokens) + 1.5 ≈ 23 GB of 24: over "
         "90%, tight."),
    Case("dpo-8b-lora-l40s", DPO_8B_LORA, "l40sx1", "4h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "≈ 23 GB of 48. 2 epochs x 6,750 rows x 48 tokens ≈ 0.65M tokens x (4 + 2 + 2 reference forward with "
         "the adapters off) x 8.0B = 4.2e16 / (362 x 35%) ≈ 5 min + start-up."),
    Case("dpo-1.5b-precomputed-l4", DPO_PRECOMPUTED, "l4x1", "2h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "warn", "timeout": "ok"},
         "precompute_ref_log_probs=True: no reference model in memory. 1.54B x 8 = 12.3 GB + activations 1.9 GB + "
         "logits 6.3 GB (4 x 2 x 1024 tokens x 128k vocabulary x 6 B) + 1.5 ≈ 22 GB of 24: over 90%, tight "
         "(Qwen's vocabulary is 152k, so the logits are if anything larger). 10% of hh-rlhf = 16,080 rows x 163 "
         "tokens = 2.6M tokens x 10 x 1.54B = 4e16 / (121 x 35%) ≈ 16 min."),
    Case("dpo-on-sft-data", DPO_ON_ALPACA, "a10g-small", "1h",
         {"push": "ok", "dataset": "error", "launch": None, "hardware": "ok", "timeout": "ok"},
         "alpaca-cleaned is instruction/input/output: DPOTrainer needs chosen/rejected pairs, and the script does "
         "not convert it."),
    Case("kto-7b-lora-save-model", KTO_7B_LORA, "a100-large", "2h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "save_strategy='no' saves no checkpoint, but trainer.save_model() after training pushes because "
         "push_to_hub=True. LoRA KTO: 7.6B x 2 = 15.2 GB + activations and logits (4 x 1024) + 1.5 ≈ 25 GB of 80."),
    Case("kto-no-save-nothing-pushed", KTO_FULL_NO_SAVE, "a100-large", "2h",
         {"push": "error", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "push_to_hub=True with save_strategy='no' and no save or push after training: nothing reaches the Hub.",
         contains=('with save_strategy="no" uploads nothing',)),
    Case("orpo-3b-l40s", ORPO_3B, "l40sx1", "4h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "ORPO keeps no reference model: 3.09B x 8 = 24.7 GB + activations (2 x 2 x 2048) + logits 6.3 GB "
         "+ 1.5 ≈ 35 GB of 48. 44,245 rows x 104 = 4.6M tokens x 8 x 3.09B = 1.1e17 / (362 x 35%) ≈ 15 min."),
    Case("reward-1.5b-a10g", REWARD_MODEL, "a10g-large", "3h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "A scalar head, no vocabulary logits: 1.54B x 8 = 12.3 GB + activations of 8 x 2 x 2048 tokens "
         "(checkpointed ≈ 6 GB) + 1.5 ≈ 20 GB of 24. 62,135 x 99 = 6.1M tokens x 8 x 1.54B = 7.6e16 / "
         "(70 x 35%) ≈ 52 min: under 3 h."),
    Case("reward-on-sft-data", REWARD_ON_SFT_DATA, "a10g-large", "3h",
         {"push": "ok", "dataset": "error", "launch": None, "hardware": "ok", "timeout": "ok"},
         "Capybara is conversations, RewardTrainer needs chosen/rejected."),
    Case("prm-7b-lora-stepwise", PRM_7B, "a100-large", "6h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "math_shepherd is stepwise supervision (prompt, completions, labels): what PRMTrainer takes. LoRA on "
         "bf16: 15.2 GB + adapters + activations (4 x 1024) + 1.5 ≈ 21 GB of 80. 5% of 444,655 = 22,233 rows x "
         "87 tokens = 1.9M tokens x 6 x 7.6B = 8.8e16 / (312 x 35%) ≈ 13 min.",
         contains=("fits PRMTrainer as it is (stepwise)",)),
    Case("prm-on-preference-pairs", PRM_ON_PAIRS, "a100-large", "6h",
         {"push": "ok", "dataset": "error", "launch": None, "hardware": "ok", "timeout": "ok"},
         "tldr-preference is prompt/chosen/rejected, not stepwise: PRMTrainer cannot tokenize it."),
    Case("dpo-cli-qlora-l4", None, "l4x1", "6h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "`trl dpo --use_peft --load_in_4bit`: 7.6B x 0.55 = 4.2 GB + adapters (r=32) 1.4 GB + activations and "
         "logits of 2 x 2 x 1024 tokens ≈ 5 GB + 1.5 ≈ 12 GB of 24. 500 steps x 16 rows x 99 tokens = 0.8M "
         "tokens x (4 + 2 + 2) x 7.6B = 4.8e16 / (121 x 20%, dequantizing) ≈ 33 min: under 6 h.",
         command=DPO_CLI),
]
