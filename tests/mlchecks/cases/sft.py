"""Supervised fine-tuning: full fine-tunes, LoRA and QLoRA from 0.5B to 70B, one process or sharded."""

from __future__ import annotations

from tests.mlchecks.cases.world import Case

SFT_05B = '''\
# /// script
# dependencies = ["trl>=0.20", "datasets", "torch"]
# ///
from datasets import load_dataset
from trl import SFTConfig, SFTTrainer

dataset = load_dataset("trl-lib/Capybara", split="train")
config = SFTConfig(
    output_dir="qwen-capybara",
    num_train_epochs=1,
    per_device_train_batch_size=4,
    gradient_accumulation_steps=4,
    learning_rate=2e-5,
    max_length=2048,
    push_to_hub=True,
    hub_model_id="acme/qwen2.5-0.5b-capybara",
    model_init_kwargs={"torch_dtype": "bfloat16"},
    report_to="none",
)
trainer = SFTTrainer(model="Qwen/Qwen2.5-0.5B", train_dataset=dataset, args=config)
trainer.train()
'''

SFT_05B_T4 = SFT_05B.replace('    report_to="none",', '    fp16=True,\n    bf16=False,\n    report_to="none",')

SFT_7B_FULL = '''\
import torch
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

MODEL_ID = "Qwen/Qwen2.5-7B-Instruct"
tokenizer = AutoTokenizer.from_pretrained(MODEL_ID)
model = AutoModelForCausalLM.from_pretrained(MODEL_ID, torch_dtype=torch.bfloat16, attn_implementation="sdpa")
train = load_dataset("HuggingFaceH4/ultrachat_200k", split="train_sft[:10%]")

args = SFTConfig(
    output_dir="qwen7b-ultrachat",
    num_train_epochs=1,
    per_device_train_batch_size=2,
    gradient_accumulation_steps=8,
    gradient_checkpointing=True,
    learning_rate=1e-5,
    lr_scheduler_type="cosine",
    warmup_ratio=0.03,
    max_length=2048,
    bf16=True,
    logging_steps=10,
    save_strategy="steps",
    save_steps=500,
    push_to_hub=True,
    hub_model_id="acme/qwen7b-ultrachat",
)
trainer = SFTTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
trainer.train()
trainer.push_to_hub()
'''

QLORA_8B = '''\
import torch
from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
from trl import SFTConfig, SFTTrainer

base = "meta-llama/Llama-3.1-8B"
bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                         bnb_4bit_compute_dtype=torch.bfloat16)
model = AutoModelForCausalLM.from_pretrained(base, quantization_config=bnb, device_map={"": 0})
tokenizer = AutoTokenizer.from_pretrained(base)
tokenizer.pad_token = tokenizer.eos_token

dataset = load_dataset("timdettmers/openassistant-guanaco", split="train")
peft_config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
args = SFTConfig(
    output_dir="llama3-guanaco-qlora",
    num_train_epochs=3,
    per_device_train_batch_size=4,
    gradient_accumulation_steps=4,
    optim="paged_adamw_8bit",
    learning_rate=2e-4,
    max_length=1024,
    dataset_text_field="text",
    bf16=True,
    push_to_hub=True,
    hub_model_id="acme/llama3-8b-guanaco-qlora",
)
trainer = SFTTrainer(model=model, train_dataset=dataset, peft_config=peft_config, args=args,
                     processing_class=tokenizer)
trainer.train()
trainer.push_to_hub()
'''

QLORA_70B = '''\
import torch
from datasets import load_dataset
from peft import LoraConfig, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, BitsAndBytesConfig
from trl import SFTConfig, SFTTrainer

model = AutoModelForCausalLM.from_pretrained(
    "meta-llama/Llama-3.1-70B-Instruct",
    quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                           bnb_4bit_compute_dtype=torch.bfloat16),
    torch_dtype=torch.bfloat16,
)
model = prepare_model_for_kbit_training(model)
data = load_dataset("HuggingFaceTB/smoltalk", "all", split="train").select(range(5000))
trainer = SFTTrainer(
    model=model,
    train_dataset=data,
    peft_config=LoraConfig(r=16, lora_alpha=16, target_modules="all-linear"),
    args=SFTConfig(output_dir="llama70b-smoltalk", max_steps=300, per_device_train_batch_size=1,
                   gradient_accumulation_steps=16, max_length=2048, learning_rate=1e-4,
                   optim="paged_adamw_8bit", push_to_hub=True, hub_model_id="acme/llama70b-smoltalk"),
)
trainer.train()
'''

LORA_14B_TEXT_FIELD = '''\
from datasets import load_dataset
from peft import LoraConfig
from trl import SFTConfig, SFTTrainer

ds = load_dataset("tatsu-lab/alpaca", split="train")
cfg = SFTConfig(
    output_dir="qwen14b-alpaca-lora",
    dataset_text_field="text",
    max_length=512,
    packing=True,
    num_train_epochs=2,
    per_device_train_batch_size=8,
    gradient_accumulation_steps=2,
    learning_rate=1e-4,
    model_init_kwargs={"torch_dtype": "bfloat16"},
    push_to_hub=True,
    hub_model_id="acme/qwen14b-alpaca-lora",
)
SFTTrainer(model="Qwen/Qwen2.5-14B-Instruct", train_dataset=ds, args=cfg,
           peft_config=LoraConfig(r=32, lora_alpha=64, target_modules="all-linear")).train()
'''

WRONG_TEXT_FIELD = LORA_14B_TEXT_FIELD.replace('dataset_text_field="text"', 'dataset_text_field="content"').replace(
    '"tatsu-lab/alpaca"', '"stanfordnlp/imdb"')

FORMATTING_FUNC = '''\
from datasets import load_dataset
from trl import SFTConfig, SFTTrainer

def to_text(example):
    return f"### Instruction:\\n{example['instruction']}\\n\\n### Context:\\n{example['context']}\\n\\n### Response:\\n{example['response']}"

dolly = load_dataset("databricks/databricks-dolly-15k", split="train")
trainer = SFTTrainer(
    model="HuggingFaceTB/SmolLM2-1.7B-Instruct",
    train_dataset=dolly,
    formatting_func=to_text,
    args=SFTConfig(output_dir="smollm-dolly", num_train_epochs=2, per_device_train_batch_size=8,
                   max_length=1024, learning_rate=3e-5, push_to_hub=True),
)
trainer.train()
'''

FORMATTING_FUNC_TYPO = FORMATTING_FUNC.replace("example['context']", "example['input']")

SMOKE_7B = SFT_7B_FULL.replace("num_train_epochs=1,", "max_steps=20,").replace(
    "per_device_train_batch_size=2,", "per_device_train_batch_size=1,")

LORA_70B_DEVICE_MAP = '''\
import torch
from datasets import load_dataset
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

name = "meta-llama/Llama-3.1-70B-Instruct"
model = AutoModelForCausalLM.from_pretrained(name, torch_dtype=torch.bfloat16, device_map="auto")
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
tok = AutoTokenizer.from_pretrained(name)
train = load_dataset("trl-lib/Capybara", split="train[:2000]")
trainer = SFTTrainer(model=model, processing_class=tok, train_dataset=train,
                     args=SFTConfig(output_dir="llama70b-capybara", max_steps=200, per_device_train_batch_size=1,
                                    gradient_accumulation_steps=8, max_length=2048, learning_rate=1e-4))
trainer.train()
model.push_to_hub("acme/llama70b-capybara-lora")
'''

PRETRAIN_FINEWEB = '''\
from datasets import load_dataset
from trl import SFTConfig, SFTTrainer

web = load_dataset("HuggingFaceFW/fineweb", "sample-10BT", split="train")
trainer = SFTTrainer(
    model="Qwen/Qwen2.5-1.5B-Instruct",
    train_dataset=web,
    args=SFTConfig(output_dir="qwen-fineweb", num_train_epochs=1, packing=True, max_length=4096,
                   per_device_train_batch_size=4, gradient_accumulation_steps=8, learning_rate=5e-5,
                   model_init_kwargs={"torch_dtype": "bfloat16"}, push_to_hub=True,
                   hub_model_id="acme/qwen-fineweb"),
)
trainer.train()
'''

FP16_WEIGHTS_FP16_AMP = '''\
import torch
from datasets import load_dataset
from transformers import AutoModelForCausalLM
from trl import SFTConfig, SFTTrainer

model = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-1.5B-Instruct", torch_dtype=torch.float16)
trainer = SFTTrainer(model=model, train_dataset=load_dataset("trl-lib/Capybara", split="train"),
                     args=SFTConfig(output_dir="qwen-fp16", fp16=True, num_train_epochs=1, push_to_hub=True))
trainer.train()
'''

QUANTIZED_WITHOUT_ADAPTERS = QLORA_8B.replace("peft_config=peft_config, ", "")

TF32_ON_T4 = SFT_05B_T4.replace("    fp16=True,\n", "    fp16=True,\n    tf32=True,\n")

CASES = [
    Case("sft-0.5b-full-a10g", SFT_05B, "a10g-small", "2h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "0.494B bf16 x 8 B (bf16 weights, grads, AdamW states) = 4.0 GB + activations (4 x 2048 tokens, "
         "checkpointed) + 1.5 GB overhead ≈ 6 GB of 24. 15,806 rows x 66 tokens x 1 epoch ≈ 1.0M tokens x "
         "8 x 0.494B FLOPs = 4.1e15 / (70 TFLOPS x 35%) ≈ 3 min + 3 min start-up: far under 2 h.",
         contains=("24 GB per GPU: fits a 494M model",)),
    Case("sft-0.5b-t4-bf16-default", SFT_05B, "t4-small", "2h",
         {"push": "ok", "dataset": "ok", "launch": "error", "hardware": "ok", "timeout": "ok"},
         "TRL's configs turn bf16 on when fp16 is not set; a T4 (Turing) has no bf16 and transformers refuses "
         "bf16=True at start. Memory (≈ 6 GB of 16) and time (minutes) are fine.",
         contains=("bf16 (TRL's default when fp16 is not set) on t4-small",)),
    Case("sft-0.5b-t4-fp16", SFT_05B_T4, "t4-small", "1h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "fp16=True, bf16=False runs on a T4; 1.0M tokens x 8 x 0.494B = 4.1e15 / (65 TFLOPS x 35%) ≈ 3 min."),
    Case("sft-fp16-weights-fp16-amp", FP16_WEIGHTS_FP16_AMP, "t4-medium", "2h",
         {"push": "ok", "dataset": "ok", "launch": "error", "hardware": "warn", "timeout": "ok"},
         "Weights loaded in float16 and fp16=True: the gradient scaler refuses fp16 gradients at the first "
         "optimizer step (\"Attempting to unscale FP16 gradients\"). Memory 1.54B x 8 = 12.3 GB + activations "
         "(8 x 1024 checkpointed ≈ 1.5 GB) + 1.5 ≈ 15 GB of 16: over 90%, tight (and the fix, fp32 weights with "
         "fp16 autocast at 18 B/param, would need 28 GB).",
         contains=("Attempting to unscale FP16 gradients",)),
    Case("sft-tf32-on-t4", TF32_ON_T4, "t4-small", "2h",
         {"push": "ok", "dataset": "ok", "launch": "error", "hardware": "ok", "timeout": "ok"},
         "tf32=True needs an Ampere or newer GPU: transformers stops at start on a T4 (Turing)."),
    Case("sft-0.5b-cpu", SFT_05B, "cpu-upgrade", "2h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "error", "timeout": "ok"},
         "No GPU: training needs ≈ 6 GB of GPU memory. (No time estimate on CPU, the 2 h allows a run.)",
         contains=("has no GPU",)),
    Case("sft-7b-full-a100", SFT_7B_FULL, "a100-large", "2h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "7.6B in bf16 trained in bf16 with AdamW: 2 + 2 + 4 = 8 B/param = 61 GB + activations (2 x 2048 tokens, "
         "checkpointed: ~2 GB) + 1.5 ≈ 64 GB of 80 (under 90%). 10% of 207,865 rows = 20,786 rows x 163 tokens "
         "≈ 3.4M tokens x (6 + 2 checkpointing) x 7.6B = 2.1e17 / (312 TFLOPS x 35%) ≈ 31 min + start-up, "
         "download and a 15 GB push ≈ 38 min: under 2 h.",
         contains=("≈ 64 GB needed, 80 GB per GPU",)),
    Case("sft-7b-full-30m", SFT_7B_FULL, "a100-large", "30m",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "error"},
         "Same run, ≈ 38 min estimated: a 30 min timeout kills it before the push."),
    Case("sft-7b-full-l4x4-one-process", SFT_7B_FULL, "l4x4", "8h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "error", "timeout": "ok"},
         "A plain `uv run` script is one process: 96 GB across 4 GPUs does not help, one L4 (24 GB) must hold "
         "all 64 GB. (Summing the GPUs said it fits: the failure this check exists for.)",
         contains=("each of the 4 GPUs must hold it all", "the cheapest flavor it fits as written: a100-large")),
    Case("sft-7b-full-a10g-x4-one-process", SFT_7B_FULL, "a10g-largex4", "8h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "error", "timeout": "ok"},
         "Same: 64 GB per process against 24 GB per A10G."),
    Case("sft-7b-fsdp-l4x4", SFT_7B_FULL, "l4x4", "8h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "accelerate launch --use_fsdp over 4 processes: weights, grads and AdamW states (61 GB) shard 4 ways = "
         "15.2 GB + activations 2 GB + 1.5 ≈ 19 GB of 24 per L4 (79%). 3.4M tokens x 8 x 7.6B = 2.1e17 / "
         "(4 x 121 TFLOPS x 35%) ≈ 21 min + start-up and push: well under 8 h.",
         command=["accelerate", "launch", "--use_fsdp", "--num_processes", "4", "/project/train.py"],
         contains=("FSDP over 4 GPUs",)),
    Case("sft-7b-smoke-20-steps", SMOKE_7B, "a100-large", "30m",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "A smoke test: 20 steps x 8 sequences x 163 tokens = 26k tokens, seconds of compute; start-up, the 15 GB "
         "download and the 15 GB push ≈ 6 min: a 30 min timeout is fine (not 'too short for a 7B model')."),
    Case("qlora-8b-l4", QLORA_8B, "l4x1", "4h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "QLoRA: 8.0B x 0.55 B (NF4) = 4.4 GB frozen + 42M adapter params x 16 B = 0.7 GB + activations "
         "(4 x 1024 tokens checkpointed ≈ 1.8 GB) + 1.5 ≈ 8.4 GB of 24. 3 epochs x 9,846 rows x 48 tokens "
         "= 1.4M tokens x (4 + 2) x 8.0B = 6.8e16 / (121 TFLOPS x 20%, dequantizing) ≈ 47 min + 3 min: under 4 h."),
    Case("qlora-8b-t4-bf16", QLORA_8B, "t4-small", "4h",
         {"push": "ok", "dataset": "ok", "launch": "error", "hardware": "ok", "timeout": "ok"},
         "bf16=True on a T4 stops at start; memory would fit (≈ 8.4 GB of 16); 6.8e16 / (65 TFLOPS x 20%) "
         "≈ 1.5 h, under 4 h."),
    Case("4bit-without-adapters", QUANTIZED_WITHOUT_ADAPTERS, "l4x1", "4h",
         {"push": "ok", "dataset": "ok", "launch": "error", "hardware": "ok", "timeout": "ok"},
         "The QLoRA script with its peft_config removed: 4-bit weights cannot be trained, and transformers' Trainer "
         "refuses a purely quantized model at start (memory and time as for QLoRA, ≈ 8 GB and ≈ 51 min).",
         contains=("without adapters",)),
    Case("qlora-70b-a100", QLORA_70B, "a100-large", "8h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "70.6B x 0.55 = 38.8 GB frozen + 207M adapter params (20 x 16 x 8192 x 80) x 16 B = 3.3 GB + "
         "activations (1 x 2048 checkpointed) ≈ 3.4 GB + 1.5 ≈ 47 GB of 80. 300 steps x 16 x 38 tokens "
         "(5,000 smoltalk rows, short) = 182k tokens: minutes of compute; the 141 GB download ≈ 5 min."),
    Case("qlora-70b-l40s-tight", QLORA_70B, "l40sx1", "8h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "warn", "timeout": "ok"},
         "≈ 47 GB against 48 GB: over 90% of the L40S, a longer batch or fragmentation tips it over: tight."),
    Case("qlora-70b-a10g", QLORA_70B, "a10g-large", "8h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "error", "timeout": "ok"},
         "The 4-bit weights alone (38.8 GB) exceed an A10G's 24 GB."),
    Case("lora-14b-packed-l40s", LORA_14B_TEXT_FIELD, "l40sx1", "6h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "LoRA on bf16: 14.8B x 2 = 29.5 GB frozen + 0.2 GB adapters + activations (8 x 512 packed, "
         "checkpointed ≈ 2 GB) + 1.5 ≈ 34 GB of 48. 2 epochs x 52,002 rows x 110 tokens = 11.4M tokens x "
         "(4 + 2) x 14.8B = 1.0e18 / (362 TFLOPS x 35%) ≈ 2.2 h + start-up: under 6 h, not close (< 80%).",
         contains=("fits SFTTrainer as it is",)),
    Case("lora-14b-packed-l40s-2h", LORA_14B_TEXT_FIELD, "l40sx1", "2h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "error"},
         "≈ 2.3 h estimated against a 2 h timeout."),
    Case("sft-text-field-missing", WRONG_TEXT_FIELD, "l40sx1", "6h",
         {"push": "ok", "dataset": "error", "launch": None, "hardware": "ok", "timeout": "ok"},
         "dataset_text_field='content' but imdb has the columns text and label: SFTTrainer fails at the first row.",
         contains=("has no column 'content'",)),
    Case("sft-formatting-func", FORMATTING_FUNC, "a10g-large", "3h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "dolly is instruction/context/response (no SFT format as it is) but formatting_func reads exactly those "
         "columns: fine. push_to_hub=True without hub_model_id pushes to <user>/smollm-dolly at every save, and "
         "the default save_strategy 'steps' also saves at the end: ok. Memory: 1.7B x 8 B = 13.7 GB + "
         "activations 1.6 GB + 1.5 ≈ 17 GB of 24 (TRL's bf16 and gradient checkpointing defaults). "
         "2 epochs x 15,011 rows x 81 tokens = 2.4M tokens x 8 x 1.7B = 3.3e16 / (70 TFLOPS x 35%) ≈ 22 min.",
         contains=("formatting_func to_text (reads instruction, context, response: present)",)),
    Case("sft-formatting-func-typo", FORMATTING_FUNC_TYPO, "a10g-large", "3h",
         {"push": "ok", "dataset": "error", "launch": None, "hardware": "ok", "timeout": "ok"},
         "formatting_func reads example['input'], which dolly does not have: KeyError at the first row."),
    Case("lora-70b-device-map-a100x4", LORA_70B_DEVICE_MAP, "a100x4", "6h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "device_map='auto' spreads the 141 GB of bf16 weights over 4 x 80 GB (≈ 37 GB each + adapters and "
         "activations ≈ 40 GB per GPU). Compute runs on one GPU at a time: 200 steps x 8 x 66 tokens = 106k "
         "tokens, minutes; the 141 GB download ≈ 5 min.",
         contains=("device_map=auto over 4 GPUs",)),
    Case("lora-70b-device-map-one-gpu", LORA_70B_DEVICE_MAP, "h200", "6h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "error", "timeout": "ok"},
         "One H200 (141 GB) cannot hold 141 GB of bf16 weights plus activations and overhead."),
    Case("pretrain-fineweb-1.5b", PRETRAIN_FINEWEB, "h200", "12h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "error"},
         "Packed: 14.9M fineweb rows x 104 tokens ≈ 1.55B tokens x (6 + 2 checkpointing) x 1.54B = 1.9e19 / "
         "(989 TFLOPS x 35%) ≈ 15.5 h: a 12 h timeout stops it three quarters through.",
    ),
]
