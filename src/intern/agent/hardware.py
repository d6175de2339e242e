"""Hardware and training-memory facts in one place: the Jobs flavors, what their GPUs hold and compute,
and the memory rules. The approval checks, the prompt's tables and the cost estimates read them here
(prices come live from the Hub when it answers; `pricing.PriceTable`).

Each fact names its source. Where a source gives a figure "with sparsity", the dense figure (half of
it) is the one used: training does not use 2:4 structured sparsity.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Flavor:
    name: str
    pretty_name: str
    hourly_usd: float
    gpus: int = 0
    gpu_model: str | None = None
    vram_gb: int = 0  # total across GPUs, as the Hub lists it ("4x A100 (320 GB)")
    cpu: str = ""
    ram: str = ""

    @property
    def is_gpu(self) -> bool:
        return self.gpus > 0

    @property
    def is_free(self) -> bool:
        return self.hourly_usd == 0

    @property
    def vram_per_gpu(self) -> int:
        """What one process can use: a plain script does not pool the GPUs' memory."""
        return self.vram_gb // self.gpus if self.gpus else 0

    def gpu_text(self) -> str:
        """'4x A100, 80 GB each' / '1x L4, 24 GB' (per GPU, never the sum)."""
        each = " each" if self.gpus > 1 else ""
        return f"{self.gpus}x {self.gpu_model}, {self.vram_per_gpu} GB{each}"


def _f(name: str, pretty: str, hourly: float, gpus: int = 0, model: str | None = None, vram: int = 0,
       cpu: str = "", ram: str = "") -> Flavor:
    return Flavor(name, pretty, hourly, gpus, model, vram, cpu, ram)


# Static fallback: the Hub's Jobs hardware list (huggingface_hub docs, guides/jobs.md, generated from
# GET /api/jobs/hardware): name, pretty name, USD per hour, GPUs, GPU model, GPU memory for all GPUs
# together (as the Hub lists it), vCPUs, RAM.
STATIC_FLAVORS: tuple[Flavor, ...] = (
    _f("cpu-basic", "CPU Basic", 0.01, cpu="2 vCPU", ram="16 GB"),
    _f("cpu-upgrade", "CPU Upgrade", 0.03, cpu="8 vCPU", ram="32 GB"),
    _f("cpu-xl", "CPU XL", 1.00, cpu="16 vCPU", ram="124 GB"),
    _f("cpu-performance", "CPU Performance", 1.90, cpu="32 vCPU", ram="256 GB"),
    _f("t4-small", "Nvidia T4 - small", 0.40, 1, "T4", 16, "4 vCPU", "15 GB"),
    _f("t4-medium", "Nvidia T4 - medium", 0.60, 1, "T4", 16, "8 vCPU", "30 GB"),
    _f("l4x1", "1x Nvidia L4", 0.80, 1, "L4", 24, "8 vCPU", "30 GB"),
    _f("l4x4", "4x Nvidia L4", 3.80, 4, "L4", 96, "48 vCPU", "186 GB"),
    _f("a10g-small", "Nvidia A10G - small", 1.00, 1, "A10G", 24, "4 vCPU", "15 GB"),
    _f("a10g-large", "Nvidia A10G - large", 1.50, 1, "A10G", 24, "12 vCPU", "46 GB"),
    _f("a10g-largex2", "2x Nvidia A10G - large", 3.00, 2, "A10G", 48, "24 vCPU", "92 GB"),
    _f("a10g-largex4", "4x Nvidia A10G - large", 5.00, 4, "A10G", 96, "48 vCPU", "184 GB"),
    _f("l40sx1", "1x Nvidia L40S", 1.80, 1, "L40S", 48, "8 vCPU", "62 GB"),
    _f("l40sx4", "4x Nvidia L40S", 8.30, 4, "L40S", 192, "48 vCPU", "382 GB"),
    _f("l40sx8", "8x Nvidia L40S", 23.50, 8, "L40S", 384, "192 vCPU", "1534 GB"),
    _f("a100-large", "Nvidia A100 - large", 2.50, 1, "A100", 80, "12 vCPU", "142 GB"),
    _f("a100x4", "4x Nvidia A100", 10.00, 4, "A100", 320, "48 vCPU", "568 GB"),
    _f("a100x8", "8x Nvidia A100", 20.00, 8, "A100", 640, "96 vCPU", "1136 GB"),
    _f("rtx-pro-6000", "Nvidia RTX PRO 6000", 2.75, 1, "RTX PRO 6000", 96, "23 vCPU", "256 GB"),
    _f("rtx-pro-6000x2", "Nvidia RTX PRO 6000", 5.50, 2, "RTX PRO 6000", 192, "46 vCPU", "512 GB"),
    _f("rtx-pro-6000x4", "Nvidia RTX PRO 6000", 11.00, 4, "RTX PRO 6000", 384, "92 vCPU", "1024 GB"),
    _f("rtx-pro-6000x8", "Nvidia RTX PRO 6000", 22.00, 8, "RTX PRO 6000", 768, "184 vCPU", "2048 GB"),
    _f("h200", "Nvidia H200", 5.00, 1, "H200", 141, "23 vCPU", "256 GB"),
    _f("h200x2", "Nvidia H200", 10.00, 2, "H200", 282, "46 vCPU", "512 GB"),
    _f("h200x4", "Nvidia H200", 20.00, 4, "H200", 564, "92 vCPU", "1024 GB"),
    _f("h200x8", "Nvidia H200", 40.00, 8, "H200", 1128, "184 vCPU", "2048 GB"),
)


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
