"""Online RL with generation: GRPO with vLLM colocated or as a server, and with plain generate()."""

from __future__ import annotations

from tests.mlchecks.cases.world import Case

GRPO_MATH_COLOCATE = '''\
# /// script
# dependencies = ["trl[vllm]", "datasets", "math-verify"]
# ///
from datasets import load_dataset
from trl import GRPOConfig, GRPOTrainer

SYSTEM = "Think step by step, then give the final answer in \\\\boxed{}."

def make_prompt(example):
    return {"prompt": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": example["problem"]}]}

def accuracy(completions, solution, **kwargs):
    return [1.0 if sol in c[0]["content"] else 0.0 for c, sol in zip(completions, solution)]

train = load_dataset("AI-MO/NuminaMath-TIR", split="train").map(make_prompt)
args = GRPOConfig(
    output_dir="qwen1.5b-grpo-math",
    learning_rate=1e-6,
    max_steps=500,
    per_device_train_batch_size=8,
    gradient_accumulation_steps=4,
    num_generations=8,
    max_prompt_length=512,
    max_completion_length=1024,
    use_vllm=True,
    vllm_mode="colocate",
    vllm_gpu_memory_utilization=0.3,
    bf16=True,
    push_to_hub=True,
    hub_model_id="acme/qwen1.5b-grpo-math",
)
trainer = GRPOTrainer(model="Qwen/Qwen2.5-1.5B-Instruct", reward_funcs=[accuracy], args=args, train_dataset=train)
trainer.train()
'''

GRPO_SERVER = GRPO_MATH_COLOCATE.replace('vllm_mode="colocate"', 'vllm_mode="server"').replace(
    "    vllm_gpu_memory_utilization=0.3,\n", "")

GRPO_PROMPTS_7B_LORA = '''\
from datasets import load_dataset
from peft import LoraConfig
from trl import GRPOConfig, GRPOTrainer

def brevity(completions, **kwargs):
    return [-len(c) / 1000 for c in completions]

prompts = load_dataset("trl-lib/ultrafeedback-prompt", split="train")
trainer = GRPOTrainer(
    model="Qwen/Qwen2.5-7B-Instruct",
    reward_funcs=brevity,
    train_dataset=prompts,
    peft_config=LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"),
    args=GRPOConfig(output_dir="qwen7b-grpo-brevity", max_steps=200, per_device_train_batch_size=8,
                    gradient_accumulation_steps=2, num_generations=8, max_completion_length=256,
                    use_vllm=True, vllm_gpu_memory_utilization=0.4,
                    model_init_kwargs={"torch_dtype": "bfloat16"}),
)
trainer.train()
trainer.push_to_hub()
'''

GRPO_NO_VLLM_05B = '''\
from datasets import load_dataset
from trl import GRPOConfig, GRPOTrainer

def reward_len(completions, **kwargs):
    return [-abs(200 - len(c)) for c in completions]

ds = load_dataset("trl-lib/tldr", split="train")
cfg = GRPOConfig(output_dir="qwen-grpo-tldr", max_steps=100, per_device_train_batch_size=8, num_generations=4,
                 max_completion_length=128, logging_steps=5, push_to_hub=True)
trainer = GRPOTrainer(model="Qwen/Qwen2.5-0.5B-Instruct", reward_funcs=reward_len, args=cfg, train_dataset=ds)
trainer.train()
'''

GRPO_GSM8K_UNCONVERTED = GRPO_NO_VLLM_05B.replace('"trl-lib/tldr", split="train"', '"openai/gsm8k", "main", split="train"')

CASES = [
    Case("grpo-1.5b-vllm-colocate-a100", GRPO_MATH_COLOCATE, "a100-large", "3h",
         {"push": "ok", "dataset": "warn", "launch": "ok", "hardware": "ok", "timeout": "ok"},
         "NuminaMath-TIR is problem/solution/messages, mapped to prompts by the script (a warning: the map's result "
         "is not checked). vLLM gets 30% of 80 GB = 24 GB for 3.1 GB of weights and its KV cache. Training: "
         "1.54B x 8 = 12.3 GB + activations and logits of 8 x 1536 tokens (≈ 12 GB) + 1.5 ≈ 26 GB of the 56 GB "
         "left. 500 steps x 32 completions x (90 prompt + 1024 completion tokens) = 17.8M tokens x 8 x 1.54B = "
         "2.2e17 / (312 TFLOPS x 35%) ≈ 34 min, plus generating 1024 tokens a step, each step reading 3.1 GB at "
         "60% of 2 TB/s ≈ 22 min, plus start-up ≈ 59 min of 3 h.",
         contains=("+ vLLM's 30% (24 GB)",)),
    Case("grpo-1.5b-vllm-colocate-1h", GRPO_MATH_COLOCATE, "a100-large", "1h",
         {"push": "ok", "dataset": "warn", "launch": "ok", "hardware": "ok", "timeout": "warn"},
         "≈ 59 min estimated against 1 h: under it, but above 80% of it — close, a warning (no error: the "
         "estimate does not exceed the timeout)."),
    Case("grpo-1.5b-vllm-colocate-45m", GRPO_MATH_COLOCATE, "a100-large", "45m",
         {"push": "ok", "dataset": "warn", "launch": "ok", "hardware": "ok", "timeout": "error"},
         "≈ 59 min estimated against 45 min: the job is killed before it ends."),
    Case("grpo-1.5b-vllm-colocate-l4", GRPO_MATH_COLOCATE, "l4x1", "6h",
         {"push": "ok", "dataset": "warn", "launch": "ok", "hardware": "error", "timeout": "ok"},
         "vLLM takes 30% of 24 GB = 7.2 GB (3.1 GB of weights fit); training needs ≈ 26 GB and only 16.8 GB is "
         "left."),
    Case("grpo-vllm-server-without-server", GRPO_SERVER, "a100-large", "3h",
         {"push": "ok", "dataset": "warn", "launch": "error", "hardware": "ok", "timeout": "ok"},
         "vllm_mode='server' makes the trainer connect to a `trl vllm-serve` process; a plain script starts none, "
         "so it waits and fails.", contains=("nothing in the job starts a server",)),
    Case("grpo-vllm-server-started-in-job", GRPO_SERVER, "a100x4", "3h",
         {"push": "ok", "dataset": "warn", "launch": "ok", "hardware": "ok", "timeout": "ok"},
         "The command starts `trl vllm-serve` on one GPU and trains on the others with accelerate launch: server "
         "mode works. Training (3 processes, DDP): ≈ 26 GB per A100. 500 steps x 96 completions x 1,114 tokens = "
         "53.5M tokens x 8 x 1.54B / (3 x 312 TFLOPS x 35%) ≈ 34 min + 22 min of generation + start-up ≈ 59 min "
         "of 3 h.",
         command=["bash", "-c", "CUDA_VISIBLE_DEVICES=3 trl vllm-serve --model Qwen/Qwen2.5-1.5B-Instruct & "
                  "CUDA_VISIBLE_DEVICES=0,1,2 accelerate launch --num_processes 3 /project/train.py"]),
    Case("grpo-7b-lora-vllm-h200", GRPO_PROMPTS_7B_LORA, "h200", "4h",
         {"push": "ok", "dataset": "ok", "launch": "ok", "hardware": "ok", "timeout": "ok"},
         "vllm_mode unset: TRL's default is colocate. vLLM gets 40% of 141 GB = 56 GB for 15.2 GB of weights. "
         "LoRA: 15.2 GB frozen + 0.7 GB adapters + activations and logits of 8 x 768 tokens (≈ 6 GB) + 1.5 ≈ "
         "25 GB of the 85 GB left. 200 steps x 16 x (23 prompt + 256 completion tokens) = 0.9M tokens x 6 x 7.6B "
         "= 4.1e16 / (989 x 35%) ≈ 2 min + generation 200 x 256 tokens x 15.2 GB / (60% of 4.8 TB/s) ≈ 4.5 min "
         "+ start-up ≈ 10 min."),
    Case("grpo-7b-lora-vllm-l4", GRPO_PROMPTS_7B_LORA, "l4x1", "4h",
         {"push": "ok", "dataset": "ok", "launch": "error", "hardware": "error", "timeout": "ok"},
         "vLLM's 40% of 24 GB = 9.6 GB cannot hold 15.2 GB of bf16 weights (vLLM fails at start), and training's "
         "23 GB does not fit the 14.4 GB left."),
    Case("grpo-0.5b-generate-a10g", GRPO_NO_VLLM_05B, "a10g-small", "1h",
         {"push": "ok", "dataset": "ok", "launch": None, "hardware": "ok", "timeout": "ok"},
         "No vLLM: generate() on the training model. 0.494B x 8 = 4 GB + activations and logits of 8 x 640 tokens "
         "(≈ 4.5 GB) + 1.5 ≈ 10 GB of 24. 100 steps x 8 x (72 + 128) = 0.16M tokens: seconds; generation 100 steps "
         "x 128 tokens x 1 GB / (20% of 600 GB/s) ≈ 1 min; start-up 3 min."),
    Case("grpo-gsm8k-not-prompts", GRPO_GSM8K_UNCONVERTED, "a10g-small", "1h",
         {"push": "ok", "dataset": "error", "launch": None, "hardware": "ok", "timeout": "ok"},
         "gsm8k is question/answer and the script passes it as it is: GRPOTrainer needs a 'prompt' column."),
]
