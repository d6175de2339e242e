"""Plain PyTorch loops, the plain Trainer, launchers (accelerate, torchrun, DeepSpeed, the trl CLI) and the
push rules."""

from __future__ import annotations

from tests.mlchecks.cases.world import Case

GPT2_LOOP = '''\
import torch
from datasets import load_dataset
from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM, AutoTokenizer

tok = AutoTokenizer.from_pretrained("openai-community/gpt2")
tok.pad_token = tok.eos_token
model = AutoModelForCausalLM.from_pretrained("openai-community/gpt2").cuda()
text = load_dataset("Salesforce/wikitext", "wikitext-2-raw-v1", split="train")
loader = DataLoader(text.filter(lambda r: len(r["text"]) > 20), batch_size=8, shuffle=True)
opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
model.train()
for epoch in range(3):
    for batch in loader:
        enc = tok(batch["text"], return_tensors="pt", truncation=True, max_length=512, padding=True).to("cuda")
        loss = model(**enc, labels=enc["input_ids"]).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
model.push_to_hub("acme/gpt2-wikitext")
tok.push_to_hub("acme/gpt2-wikitext")
'''

QWEN_LOOP_NO_PUSH = '''\
import bitsandbytes as bnb
import torch
from datasets import load_dataset
from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM, AutoTokenizer

name = "Qwen/Qwen2.5-1.5B-Instruct"
model = AutoModelForCausalLM.from_pretrained(name, torch_dtype=torch.bfloat16).to("cuda")
model.gradient_checkpointing_enable()
tok = AutoTokenizer.from_pretrained(name)
rows = load_dataset("timdettmers/openassistant-guanaco", split="train")
optimizer = bnb.optim.AdamW8bit(model.parameters(), lr=2e-5)
for epoch in range(2):
    for batch in DataLoader(rows, batch_size=16):
        enc = tok(batch["text"], truncation=True, max_length=1024, padding=True, return_tensors="pt").to("cuda")
        model(**enc, labels=enc["input_ids"]).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
model.save_pretrained("/tmp/qwen-guanaco")
'''

QWEN_LOOP_UPLOAD = QWEN_LOOP_NO_PUSH + '''\
from huggingface_hub import HfApi

HfApi().upload_folder(folder_path="/tmp/qwen-guanaco", repo_id="acme/qwen-guanaco", repo_type="model")
'''

GEMMA_CLASSIFIER = '''\
import numpy as np
from datasets import load_dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

checkpoint = "google/gemma-2-2b"
tokenizer = AutoTokenizer.from_pretrained(checkpoint)
model = AutoModelForSequenceClassification.from_pretrained(checkpoint, num_labels=2)
imdb = load_dataset("stanfordnlp/imdb", split="train")
encoded = imdb.map(lambda b: tokenizer(b["text"], truncation=True, max_length=512), batched=True)
args = TrainingArguments(output_dir="gemma-imdb", per_device_train_batch_size=8, num_train_epochs=1, fp16=True,
                         learning_rate=2e-5, push_to_hub=True, hub_model_id="acme/gemma-imdb")
trainer = Trainer(model=model, args=args, train_dataset=encoded, processing_class=tokenizer)
trainer.train()
'''

ZERO3_8B = '''\
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

model_id = "meta-llama/Llama-3.1-8B-Instruct"
data = load_dataset("HuggingFaceH4/ultrachat_200k", split="train_sft[:20%]")
training_args = SFTConfig(output_dir="llama8b-ultrachat", num_train_epochs=1, per_device_train_batch_size=4,
                          gradient_accumulation_steps=4, max_length=2048, learning_rate=2e-5,
                          model_init_kwargs={"torch_dtype": "bfloat16"}, push_to_hub=True,
                          hub_model_id="acme/llama8b-ultrachat")
trainer = SFTTrainer(model=model_id, args=training_args, train_dataset=data)
trainer.train()
'''

DDP_3B = '''\
from datasets import load_dataset
from trl import SFTConfig, SFTTrainer

trainer = SFTTrainer(
    model="Qwen/Qwen2.5-3B-Instruct",
    train_dataset=load_dataset("trl-lib/Capybara", split="train"),
    args=SFTConfig(output_dir="qwen3b-capybara", per_device_train_batch_size=4, gradient_accumulation_steps=2,
                   num_train_epochs=2, max_length=2048, model_init_kwargs={"torch_dtype": "bfloat16"},
                   push_to_hub=True),
)
trainer.train()
'''

DEEPSPEED_IN_SCRIPT = '''\
from datasets import load_dataset
from trl import SFTConfig, SFTTrainer

ds_config = {
    "zero_optimization": {"stage": 3, "overlap_comm": True},
    "bf16": {"enabled": True},
    "train_micro_batch_size_per_gpu": "auto",
}
args = SFTConfig(output_dir="mistral-dolly", deepspeed=ds_config, per_device_train_batch_size=2,
                 num_train_epochs=1, max_length=1024, push_to_hub=True, hub_model_id="acme/mistral-dolly")
data = load_dataset("databricks/databricks-dolly-15k", split="train").map(
    lambda r: {"prompt": r["instruction"], "completion": r["response"]})
SFTTrainer(model="mistralai/Mistral-7B-v0.1", args=args, train_dataset=data).train()
'''

SAVE_NO_PUSH_AFTER = '''\
from datasets import load_dataset
from trl import SFTConfig, SFTTrainer

cfg = SFTConfig(output_dir="smol-tldr", push_to_hub=True, save_strategy="no", num_train_epochs=1,
                per_device_train_batch_size=16, max_length=512)
trainer = SFTTrainer(model="HuggingFaceTB/SmolLM2-1.7B-Instruct", args=cfg,
                     train_dataset=load_dataset("trl-lib/tldr", split="train"))
trainer.train()
'''

SAVE_NO_PUSH_AFTER_FIXED = SAVE_NO_PUSH_AFTER + "trainer.push_to_hub(commit_message='final')\n"

HUB_ID_ONLY = SAVE_NO_PUSH_AFTER.replace('push_to_hub=True, save_strategy="no"', 'hub_model_id="acme/smol-tldr"')

PUSH_BEFORE_TRAINING = '''\
from datasets import load_dataset
from transformers import AutoModelForCausalLM
from trl import SFTConfig, SFTTrainer

model = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-0.5B-Instruct", torch_dtype="bfloat16")
model.push_to_hub("acme/qwen-alpaca")  # create the repo early
trainer = SFTTrainer(model=model, args=SFTConfig(output_dir="qwen-alpaca", num_train_epochs=1),
                     train_dataset=load_dataset("tatsu-lab/alpaca", split="train"))
trainer.train()
'''

PUSH_FLAG_FROM_ENV = '''\
import os
from datasets import load_dataset
from trl import SFTConfig, SFTTrainer

push = os.environ["PUSH"] == "1"
cfg = SFTConfig(output_dir="qwen-guanaco", push_to_hub=push, num_train_epochs=1)
SFTTrainer(model="Qwen/Qwen2.5-0.5B-Instruct", args=cfg,
           train_dataset=load_dataset("timdettmers/openassistant-guanaco", split="train")).train()
'''

SFT_CLI_ZERO3 = ["trl", "sft", "--model_name_or_path", "Qwen/Qwen2.5-14B-Instruct", "--dataset_name",
                 "trl-lib/Capybara", "--learning_rate", "1e-5", "--num_train_epochs", "1", "--max_length", "4096",
                 "--per_device_train_batch_size", "1", "--gradient_accumulation_steps", "8", "--torch_dtype",
                 "bfloat16", "--output_dir", "qwen14b-capybara", "--push_to_hub", "--hub_model_id",
                 "acme/qwen14b-capybara", "--accelerate_config", "zero3"]

INFERENCE_ONLY = '''\
from datasets import load_dataset
from transformers import pipeline

gen = pipeline("text-generation", model="Qwen/Qwen2.5-7B-Instruct", torch_dtype="bfloat16", device_map="auto")
prompts = load_dataset("trl-lib/ultrafeedback-prompt", split="train[:100]")
outputs = [gen(p["prompt"], max_new_tokens=256)[0]["generated_text"] for p in prompts]
print(outputs[:3])
'''

CASES = [
    Case("loop-gpt2-fp32-t4", GPT2_LOOP, "t4-small", "2h",
         {"push": "ok", "dataset": None, "launch": None, "hardware": "ok", "timeout": "ok"},
         "gpt2's checkpoint is fp32 and the loop has no autocast: fp32 training, 4 + 4 + 8 = 16 B/param x 0.124B "
         "= 2.0 GB + activations of 8 x 512 tokens without checkpointing (1.1 GB) and their logits (3.1 GB) + "
         "1.5 ≈ 7.7 GB of 16. 3 epochs x 36,718 rows x 12 tokens = 1.3M tokens x 6 x 0.124B = 1e15 / (8.1 TFLOPS "
         "fp32 x 35%) ≈ 6 min. model.push_to_hub() after the loop pushes the trained weights. A plain loop has "
         "no trainer, so no dataset format line."),
    Case("loop-qwen-8bit-adam-no-push", QWEN_LOOP_NO_PUSH, "a10g-small", "2h",
         {"push": "error", "dataset": None, "launch": None, "hardware": "error", "timeout": "ok"},
         "save_pretrained to /tmp is lost when the job ends: no push. bf16 weights with 8-bit AdamW: 2 + 2 + 2 = "
         "6 B/param x 1.54B = 9.3 GB + activations of 16 x 1024 tokens checkpointed (3.1 GB) and their logits "
         "(16,384 tokens x 128k x 6 B = 12.6 GB; Qwen's 152k vocabulary makes it more) + 1.5 ≈ 26 GB: over an "
         "A10G's 24 GB. The loss over full logits is what runs out of memory here, not the weights.",
    ),
    Case("loop-qwen-upload-folder", QWEN_LOOP_UPLOAD, "a100-large", "2h",
         {"push": "ok", "dataset": None, "launch": None, "hardware": "ok", "timeout": "ok"},
         "upload_folder after the loop uploads what save_pretrained wrote: a push after training."),
    Case("trainer-gemma-fp32-checkpoint-a10g", GEMMA_CLASSIFIER, "a10g-large", "4h",
         {"push": "ok", "dataset": "warn", "launch": None, "hardware": "error", "timeout": "ok"},
         "gemma-2-2b's checkpoint is fp32 (safetensors F32), loaded as it is and trained with fp16 autocast: "
         "mixed precision, 6 + 4 + 8 = 18 B/param x 2.6B = 47 GB: an A10G's 24 GB is far too small. The plain "
         "Trainer has no fixed dataset format: a warning.", contains=("18 B/param",)),
    Case("trainer-gemma-fp32-checkpoint-a100", GEMMA_CLASSIFIER, "a100-large", "4h",
         {"push": "ok", "dataset": "warn", "launch": None, "hardware": "ok", "timeout": "ok"},
         "47 GB + activations of 8 x 512 tokens without checkpointing (34 B x hidden x layers ≈ 2.3 MB a token: "
         "9.3 GB; a classification head, no vocabulary logits) + 1.5 ≈ 58 GB of 80. 25,000 reviews x 32 tokens "
         "(the viewer's sample rows) = 0.8M tokens x 6 x 2.6B / (312 x 35%) ≈ 2 min + start-up."),
    Case("zero3-8b-a100x4", ZERO3_8B, "a100x4", "4h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "accelerate launch with DeepSpeed ZeRO-3 over 4 processes: 8.0B x 8 B = 64 GB sharded 4 ways = 16 GB + "
         "activations (4 x 2048 checkpointed ≈ 3.7 GB) + 1.5 ≈ 21 GB per A100. 20% of 207,865 = 41,573 rows x 163 "
         "tokens = 6.8M tokens x 8 x 8.0B / (4 x 312 x 35%) ≈ 17 min + start-up and a 16 GB push ≈ 23 min.",
         command=["accelerate", "launch", "--use_deepspeed", "--zero_stage", "3", "--num_processes", "4",
                  "/project/train.py"], contains=("DeepSpeed ZeRO-3 over 4 GPUs",)),
    Case("zero3-8b-without-launcher", ZERO3_8B, "a100x4", "4h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "The same script as a plain `uv run`: one process on one A100, 64 + 3.7 + 1.5 ≈ 69 GB of 80 (86%): it "
         "fits, on one of the four GPUs, and the card says the other three stay idle. 6.8M tokens x 8 x 8.0B / "
         "(312 x 35%) ≈ 1.1 h + start-up and push ≈ 1.2 h.", contains=("3 of the 4 GPUs stay idle",)),
    Case("torchrun-ddp-3b-l4x4", DDP_3B, "l4x4", "4h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "error", "timeout": "ok"},
         "torchrun --nproc_per_node 4 is data parallel: every process holds the whole model. 3.09B x 8 = 24.7 GB "
         "alone exceeds one L4's 24 GB.",
         command=["torchrun", "--nproc_per_node", "4", "/project/train.py"],
         contains=("4 processes, each GPU holds a full copy",)),
    Case("torchrun-ddp-3b-l40sx4", DDP_3B, "l40sx4", "4h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "24.7 GB + activations (4 x 2048 checkpointed ≈ 2.6 GB) + 1.5 ≈ 29 GB of 48 per L40S. 2 epochs x 15,806 x "
         "66 = 2.1M tokens x 8 x 3.09B / (4 x 362 x 35%) ≈ 1 min + start-up.",
         command=["torchrun", "--nproc_per_node", "4", "/project/train.py"]),
    Case("deepspeed-dict-but-one-process", DEEPSPEED_IN_SCRIPT, "a10g-largex4", "4h",
         {"push": "ok", "dataset": "warn", "launch": None, "hardware": "error", "timeout": "ok"},
         "ZeRO-3 is configured in the script, but `uv run` starts one process, so nothing is sharded: 7.2B x 8 = "
         "58 GB on one 24 GB A10G. The data is mapped to prompt/completion by the script (a warning).",
         contains=("nothing is sharded",)),
    Case("trl-cli-zero3-14b-h200x2", None, "h200x2", "3h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "`trl sft --accelerate_config zero3` runs one process per GPU with ZeRO-3: 14.8B x 8 = 118 GB / 2 = "
         "59 GB + activations (1 x 4096 checkpointed ≈ 2 GB) + 1.5 ≈ 63 GB of 141 per H200. 15,806 x 66 = 1.0M "
         "tokens: minutes; start-up, 30 GB download and push ≈ 9 min.", command=SFT_CLI_ZERO3,
         contains=("DeepSpeed ZeRO-3 over 2 GPUs",)),
    Case("trl-cli-zero3-14b-one-h200", None, "h200", "3h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "On one H200 ZeRO-3 has nothing to shard over: 118 + 2 + 1.5 ≈ 122 GB of 141 (86%): fits.",
         command=SFT_CLI_ZERO3),
    Case("push-save-strategy-no", SAVE_NO_PUSH_AFTER, "a10g-large", "3h",
         {"push": "error", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "push_to_hub=True pushes when a checkpoint is saved; save_strategy='no' saves none and nothing is pushed "
         "after train(): the trained model is lost.", contains=('save_strategy="no" uploads nothing',)),
    Case("push-save-strategy-no-then-push", SAVE_NO_PUSH_AFTER_FIXED, "a10g-large", "3h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "trainer.push_to_hub() after train() saves and uploads the final model. 1.7B x 8 = 13.7 GB + activations "
         "(16 x 512 checkpointed ≈ 1.6 GB) + 1.5 ≈ 17 GB of 24; 116,722 x 72 = 8.4M tokens x 8 x 1.7B / (70 x 35%) "
         "≈ 1.3 h of 3 h."),
    Case("push-hub-model-id-only", HUB_ID_ONLY, "a10g-large", "3h",
         {"push": "error", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "hub_model_id names a repository but push_to_hub defaults to False: nothing is pushed.",
         contains=("hub_model_id=acme/smol-tldr is set but push_to_hub is not",)),
    Case("push-before-training-only", PUSH_BEFORE_TRAINING, "a10g-small", "2h",
         {"push": "error", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "model.push_to_hub() runs before trainer.train(): it uploads the base model, the trained one is lost."),
    Case("push-flag-from-env", PUSH_FLAG_FROM_ENV, "a10g-small", "1h",
         {"push": "warn", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "push_to_hub=push depends on an environment variable the code does not show: a warning."),
    Case("inference-only-7b", INFERENCE_ONLY, "a10g-large", "1h",
         {"push": "warn", "dataset": None, "launch": None, "hardware": None, "timeout": "ok"},
         "No training: no memory or time estimate, nothing to lose but the printed outputs (a warning)."),
]
