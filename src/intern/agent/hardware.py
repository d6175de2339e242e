"""Hardware and training-memory facts in one place: the approval checks, the prompt's size guide and
the cost estimates read them from here.

Each fact names its source. Where a source gives a figure "with sparsity", the dense figure (half of
it) is the one used: training does not use 2:4 structured sparsity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from intern.agent.pricing import Flavor


@dataclass(frozen=True)
class Gpu:
    model: str
    memory_gb: int  # per GPU
    bf16: bool  # bf16 tensor cores (Ampere and later); without them transformers refuses bf16=True
    tflops_16bit: float  # dense bf16 tensor TFLOPS (fp16 on GPUs without bf16)
    tflops_fp32: float  # plain fp32 (PyTorch does not use TF32 for matmuls unless told to)
    bandwidth_gbs: float  # memory bandwidth, GB/s (bounds token-by-token generation)


# Memory per GPU: the Hugging Face Jobs hardware list (huggingface_hub docs, guides/jobs.md, generated
# from GET /api/jobs/hardware: "1x T4 (16 GB)", "4x A100 (320 GB)", … the figure is for all GPUs).
# Throughput and bandwidth: NVIDIA's datasheets, dense figures.
GPUS: dict[str, Gpu] = {
    # NVIDIA T4 datasheet: 65 TFLOPS mixed precision FP16/FP32, 8.1 TFLOPS FP32, 320 GB/s; Turing has
    # no bf16 (transformers raises "Your setup doesn't support bf16/gpu" for bf16=True).
    "T4": Gpu("T4", 16, False, 65.0, 8.1, 320.0),
    # NVIDIA L4 datasheet: BF16 tensor 242 TFLOPS with sparsity -> 121 dense; FP32 30.3; 300 GB/s.
    "L4": Gpu("L4", 24, True, 121.0, 30.3, 300.0),
    # A10G is AWS's variant of the A10 (NVIDIA A10 datasheet: BF16 125 TFLOPS dense, FP32 31.2, 600 GB/s);
    # its tensor throughput is lower than the A10's (same memory and bandwidth), so 70 TFLOPS is used.
    "A10G": Gpu("A10G", 24, True, 70.0, 31.2, 600.0),
    # NVIDIA L40S datasheet: BF16 tensor 362.05 TFLOPS dense (733 with sparsity), FP32 91.6, 864 GB/s.
    "L40S": Gpu("L40S", 48, True, 362.0, 91.6, 864.0),
    # NVIDIA A100 80GB datasheet: BF16 tensor 312 TFLOPS dense, FP32 19.5, 2,039 GB/s (SXM).
    "A100": Gpu("A100", 80, True, 312.0, 19.5, 2039.0),
    # NVIDIA H200 datasheet: BF16 tensor 1,979 TFLOPS with sparsity -> 989 dense, FP32 67, 4.8 TB/s.
    "H200": Gpu("H200", 141, True, 989.0, 67.0, 4800.0),
    # NVIDIA RTX PRO 6000 Blackwell Server Edition: 4 PFLOPS FP4 with sparsity, i.e. about 500 TFLOPS
    # dense BF16; FP32 125 TFLOPS; 96 GB GDDR7 at 1,792 GB/s.
    "RTX PRO 6000": Gpu("RTX PRO 6000", 96, True, 500.0, 125.0, 1792.0),
}


def gpu_of(flavor: Flavor) -> Gpu | None:
    """The GPU of a flavor; a GPU this table does not know gets its memory from the flavor and
    A100-like throughput (the checks say when they assume it)."""
    if not flavor.is_gpu:
        return None
    known = GPUS.get(flavor.gpu_model or "")
    per_gpu = flavor.vram_gb // max(flavor.gpus, 1)
    if known is not None:
        return known if not per_gpu or per_gpu == known.memory_gb else Gpu(
            known.model, per_gpu, known.bf16, known.tflops_16bit, known.tflops_fp32, known.bandwidth_gbs)
    return Gpu(flavor.gpu_model or "GPU", per_gpu, True, 312.0, 19.5, 2039.0)


# --- training memory, bytes per parameter -------------------------------------------------------------
# transformers, "GPU memory usage" (model_memory_anatomy / perf_train_gpu_one): mixed precision keeps
# the weights twice (fp32 4 B + half 2 B = 6 B), AdamW two fp32 states (8 B; bitsandbytes' 8-bit Adam
# 2 B; SGD with momentum 4 B), fp32 gradients (4 B): 18 B per parameter; fp32 training 4 + 8 + 4 = 16 B.
# A model loaded in bf16/fp16 is trained in that dtype: no fp32 copy, gradients and the optimizer's
# states take the weights' dtype (PyTorch creates them like the parameter): 2 + 2 + 4 = 8 B with AdamW.
MIXED_WEIGHTS = 6.0
FP32 = 4.0
HALF = 2.0
# Optimizer state bytes per parameter for fp32 states; half-precision weights halve all but 8-bit ones.
OPTIMIZER_STATES = {"adamw": 8.0, "8bit": 2.0, "sgd": 4.0, "adafactor": 0.0, "lion": 4.0}
# QLoRA paper (Dettmers et al. 2023): NF4 with double quantization costs about 4.127 bits per parameter;
# embeddings, norms and the output head stay in 16-bit, so ~0.55 B per parameter over the whole model.
NF4 = 0.55
INT8 = 1.1  # LLM.int8(): one byte per weight plus fp16 outlier columns and scales
# LoRA adapters are kept in fp32 by PEFT and trained with AdamW: 4 (weights) + 4 (grads) + 8 (states).
ADAPTER_TRAINING = 16.0
# LoRA on all linear layers adds r x (d_in + d_out) per matrix; a Llama-shaped layer's seven matrices sum
# to about 20 x hidden (q, o: 2h each; k, v: 1.25h with grouped KV heads; gate, up, down: 4.5h each), so
# trainable ≈ 20 x r x hidden x layers: 42M for Llama-3-8B at r=16, 830M for Llama-3-70B at r=64.
LORA_PER_RANK_HIDDEN_LAYER = 20.0
# Activations of a decoder layer in bf16 (Korthikanti et al. 2022, "Reducing Activation Recomputation
# in Large Transformer Models"): about 34 bytes per hidden value per token with flash/SDPA attention;
# with gradient checkpointing only each layer's input (2 bytes) stays, plus one layer being recomputed.
ACTIVATION_BYTES = 34.0
CHECKPOINTED_BYTES = 2.0
# The loss keeps the logits twice per token (bf16 output and the fp32 copy cross-entropy makes); the
# vocabulary is taken as 128k (Llama 3: 128,256; Qwen 2.5: 151,936; Mistral: 32,768).
LOGIT_BYTES = 6.0
VOCAB = 128_000
# Per GPU: CUDA context, cuBLAS workspaces and the allocator's fragmentation.
OVERHEAD_GB = 1.5
# Above this share of a GPU's memory the run is "tight" (a longer batch or fragmentation tips it over).
TIGHT_SHARE = 0.9


def hidden_times_layers(params: float) -> float:
    """hidden size x layers of a decoder LLM from its parameter count, when its config is not read.

    A fit over Qwen2.5 and Llama configs (0.5B: 896 x 24; 1.5B: 1536 x 28; 3B: 3072 x 28; 7-8B: 4096 x 32;
    14B: 5120 x 48; 32B: 5120 x 64; 70B: 8192 x 80), within 20% of each."""
    return 131_072.0 * (params / 7.0e9) ** 0.69


def hidden_size(params: float) -> float:
    """From params ≈ 12 x layers x hidden²: hidden ≈ params / (12 x hidden x layers)."""
    return params / (12.0 * hidden_times_layers(params))


# --- training time -------------------------------------------------------------------------------------
# Model FLOPs utilisation: a fine-tune reaches about a third of the peak (Chowdhery et al. 2022, PaLM,
# Table 3: 46% for a tuned pre-training stack; HF Trainer fine-tunes typically reach 30-40%).
MFU = 0.35
MFU_QUANTIZED = 0.2  # 4-/8-bit weights are dequantized at every matmul (QLoRA trains slower than LoRA)
# Token-by-token generation is bound by reading the weights: vLLM gets close to the bandwidth, HF
# generate() loses much of it to Python overhead per step.
GENERATION_EFFICIENCY = {"vllm": 0.6, "generate": 0.2}
STARTUP_SECONDS = 180.0  # container start, `uv` installing torch/transformers/trl, CUDA init
DOWNLOAD_GBS = 0.5  # the Hub to a Jobs container, GB/s
UPLOAD_GBS = 0.1  # a push of the trained weights back to the Hub, GB/s
CLOSE_SHARE = 0.8  # an estimate above this share of the timeout is "close"
