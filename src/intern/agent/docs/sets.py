"""The documentation sets Intern indexes: one table, the only place that names them.

`name` is what the model passes as `explore_hf_docs(endpoint=...)`; `path` is where the set lives on
the Hub (`<HF_ENDPOINT><path>/<page>`). Libraries live under `/docs/`, courses and the cookbook
under `/learn/`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from intern.agent.errors import ToolArgumentError


@dataclass(frozen=True)
class DocsSet:
    name: str
    path: str
    title: str
    about: str


def _lib(name: str, title: str, about: str) -> DocsSet:
    return DocsSet(name, f"/docs/{name}", title, about)


def _course(name: str, title: str, about: str) -> DocsSet:
    return DocsSet(name, f"/learn/{name}", title, about)


DOCS_SETS: tuple[DocsSet, ...] = (
    _lib("hub", "Hub", "repositories, model and dataset cards, Spaces, Jobs, tokens, storage, organizations"),
    _lib("transformers", "Transformers", "models, pipelines, Trainer, generation, quantization, chat templates"),
    _lib("diffusers", "Diffusers", "diffusion pipelines, schedulers, LoRA and DreamBooth training"),
    _lib("datasets", "Datasets", "loading, processing, streaming and sharing datasets"),
    _lib("peft", "PEFT", "LoRA, QLoRA and other parameter-efficient fine-tuning methods"),
    _lib("trl", "TRL", "SFT, DPO, GRPO, KTO, reward and other post-training trainers; dataset formats"),
    _lib("accelerate", "Accelerate", "multi-GPU and multi-node training, DeepSpeed, FSDP, mixed precision"),
    _lib("huggingface_hub", "huggingface_hub", "Python client and `hf` CLI: upload, download, repos, Jobs"),
    _lib("tokenizers", "Tokenizers", "fast tokenizers: training, pre-tokenizers, normalizers"),
    _lib("evaluate", "Evaluate", "metrics, comparisons and evaluators"),
    _lib("optimum", "Optimum", "hardware-specific optimisation, ONNX export"),
    _lib("optimum-neuron", "Optimum Neuron", "training and inference on AWS Trainium and Inferentia"),
    _lib("optimum-habana", "Optimum Habana", "training on Intel Gaudi"),
    _lib("optimum-intel", "Optimum Intel", "OpenVINO and Intel Neural Compressor"),
    _lib("inference-providers", "Inference Providers", "serverless inference through partner providers"),
    _lib("inference-endpoints", "Inference Endpoints", "dedicated managed deployments, autoscaling"),
    _lib("text-generation-inference", "Text Generation Inference", "TGI: serving LLMs, launcher options"),
    _lib("text-embeddings-inference", "Text Embeddings Inference", "TEI: serving embedding and reranker models"),
    _lib("sentence_transformers", "Sentence Transformers", "embedding, reranker and sparse encoder models"),
    _lib("lerobot", "LeRobot", "robot learning: datasets, policies, training"),
    _lib("smolagents", "smolagents", "agents that write code, tools, multi-agent setups"),
    _lib("trackio", "Trackio", "lightweight experiment tracking with a wandb-like API"),
    _lib("timm", "timm", "PyTorch image models, training scripts"),
    _lib("safetensors", "Safetensors", "the safe tensor serialization format"),
    _lib("bitsandbytes", "bitsandbytes", "8-bit and 4-bit quantization, 8-bit optimizers"),
    _lib("kernels", "Kernels", "loading compute kernels from the Hub"),
    _lib("lighteval", "Lighteval", "evaluating LLMs across backends"),
    _lib("setfit", "SetFit", "few-shot text classification with sentence transformers"),
    _lib("autotrain", "AutoTrain", "no-code training"),
    _lib("dataset-viewer", "Dataset viewer", "the dataset viewer API: splits, rows, parquet, statistics"),
    _lib("transformers.js", "Transformers.js", "running models in JavaScript"),
    _lib("huggingface.js", "Huggingface.js", "JavaScript clients for the Hub and inference"),
    _lib("chat-ui", "Chat UI", "the open-source chat interface"),
    _lib("leaderboards", "Leaderboards", "building and running leaderboards"),
    _lib("sagemaker", "Amazon SageMaker", "training and deploying on SageMaker"),
    _lib("google-cloud", "Google Cloud", "Hugging Face on Vertex AI, GKE and Cloud Run"),
    _lib("microsoft-azure", "Microsoft Azure", "Hugging Face on Azure AI Foundry"),
    _lib("competitions", "Competitions", "hosting competitions on the Hub"),
    _lib("xet", "Xet", "Xet storage for large files on the Hub"),
    _course("llm-course", "LLM Course", "transformers, fine-tuning, reasoning models"),
    _course("agents-course", "Agents Course", "building agents with smolagents and other frameworks"),
    _course("deep-rl-course", "Deep RL Course", "deep reinforcement learning"),
    _course("audio-course", "Audio Course", "audio tasks with transformers"),
    _course("computer-vision-course", "Computer Vision Course", "vision models and tasks"),
    _course("diffusion-course", "Diffusion Course", "diffusion models from scratch and with diffusers"),
    _course("mcp-course", "MCP Course", "the Model Context Protocol"),
    _course("ml-games-course", "ML for Games Course", "machine learning in games"),
    _course("ml-for-3d-course", "ML for 3D Course", "generative 3D"),
    _course("cookbook", "Open-Source AI Cookbook", "notebooks with end-to-end recipes"),
)

SETS_BY_NAME: dict[str, DocsSet] = {s.name: s for s in DOCS_SETS}

# Names people and models use for a set that is published under another name.
ALIASES: dict[str, str] = {
    "tgi": "text-generation-inference",
    "tei": "text-embeddings-inference",
    "sentence-transformers": "sentence_transformers",
    "huggingface-hub": "huggingface_hub",
    "hf_hub": "huggingface_hub",
    "hub-docs": "hub",
    "api-inference": "inference-providers",
    "inference-api": "inference-providers",
    "bnb": "bitsandbytes",
    "transformersjs": "transformers.js",
    "huggingfacejs": "huggingface.js",
}

GROUPS: dict[str, tuple[str, ...]] = {
    "courses": tuple(s.name for s in DOCS_SETS if s.path.startswith("/learn/")),
    "all": tuple(s.name for s in DOCS_SETS),
}


def set_for_path(path: str) -> DocsSet | None:
    """The set a URL path belongs to (`/docs/trl/sft_trainer` -> trl)."""
    for docs_set in DOCS_SETS:
        if path == docs_set.path or path.startswith(docs_set.path + "/"):
            return docs_set
    return None


def resolve_endpoint(endpoint: str) -> tuple[str, ...]:
    """The set names an `endpoint` argument stands for; a helpful ToolArgumentError when unknown."""
    key = endpoint.strip().strip("/").lower()
    for prefix in ("https://huggingface.co/", "huggingface.co/", "docs/", "learn/"):
        key = key.removeprefix(prefix)
    key = ALIASES.get(key, key)
    if key in SETS_BY_NAME:
        return (key,)
    if key in GROUPS:
        return GROUPS[key]
    raise ToolArgumentError(unknown_endpoint_message(endpoint))


def unknown_endpoint_message(endpoint: str) -> str:
    known = [s.name for s in DOCS_SETS]
    close = difflib.get_close_matches(endpoint.strip().lower(), [*known, *ALIASES, *GROUPS], n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return (
        f"Unknown documentation set {endpoint!r}.{hint} Use one of: {', '.join(known)}; "
        f"or 'courses' (all courses and the cookbook), or 'all' (every set)."
    )
