"""ML checks on job approval cards, from real training scripts: the syntax tree for what the script
does, the dataset viewer for its data, the Hub's safetensors metadata for its model's size."""

from __future__ import annotations

import socket

import httpx
import pytest

from intern.agent.context_deps import ToolContext
from intern.agent.guardrails.ml_checks import job_checks, read_script
from intern.agent.pricing import Flavor, PriceTable
from intern.agent.tools.base import Check
from intern.standins.datasets_server import DatasetsServerStandIn
from intern.standins.hub import HubStandIn
from intern.standins.hub_models import register_model
from tests.datasets.conftest import make_ctx, register

PRICES = PriceTable()
QWEN_05B = 494_032_768
MISTRAL_7B = 7_241_732_096

SFT_COMMENT_ONLY = '''\
# /// script
# dependencies = ["trl", "datasets"]
# ///
"""Fine-tune Qwen on Capybara. TODO: push_to_hub once the loss looks right."""
from datasets import load_dataset
from trl import SFTConfig, SFTTrainer

dataset = load_dataset("trl-lib/Capybara", split="train")
# push_to_hub=True  <- disabled for now
config = SFTConfig(output_dir="qwen-capybara", num_train_epochs=1, report_to="none")
trainer = SFTTrainer(model="Qwen/Qwen2.5-0.5B", train_dataset=dataset, args=config)
trainer.train()
print("would call trainer.push_to_hub() here")
'''

SFT_7B_HUB_MODEL_ID = '''\
import torch
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

MODEL_ID = "mistralai/Mistral-7B-v0.1"
DATASET = "HuggingFaceH4/ultrachat_200k"

tokenizer = AutoTokenizer.from_pretrained(MODEL_ID)
model = AutoModelForCausalLM.from_pretrained(MODEL_ID, torch_dtype=torch.bfloat16)
train = load_dataset(DATASET, split="train_sft[:5%]")
args = SFTConfig(output_dir="mistral-ultrachat", hub_model_id="intern-test/mistral-ultrachat",
                 per_device_train_batch_size=2, gradient_checkpointing=True, bf16=True)
SFTTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer).train()
'''

DPO_ON_ALPACA = '''\
from datasets import load_dataset
from trl import DPOConfig, DPOTrainer
from transformers import AutoModelForCausalLM, AutoTokenizer

name = "Qwen/Qwen2.5-0.5B-Instruct"
model = AutoModelForCausalLM.from_pretrained(name)
tok = AutoTokenizer.from_pretrained(name)
ds = load_dataset("yahma/alpaca-cleaned", split="train")
trainer = DPOTrainer(model=model, args=DPOConfig(output_dir="out", push_to_hub=True), train_dataset=ds,
                     processing_class=tok)
trainer.train()
'''


def checks_text(checks: list[Check]) -> str:
    return "\n".join(f"{c.level}: {c.text}" for c in checks)


def level_of(checks: list[Check], prefix: str) -> str:
    found = [c for c in checks if c.text.startswith(prefix)]
    assert len(found) == 1, checks_text(checks)
    return found[0].level


@pytest.fixture
def models(hub: HubStandIn) -> HubStandIn:
    register_model(hub, "Qwen/Qwen2.5-0.5B", parameters={"BF16": QWEN_05B})
    register_model(hub, "Qwen/Qwen2.5-0.5B-Instruct", parameters={"BF16": QWEN_05B})
    register_model(hub, "mistralai/Mistral-7B-v0.1", parameters={"BF16": MISTRAL_7B})
    # a name that says 1B, metadata that says 7B: the metadata wins
    register_model(hub, "someone/tiny-1b", parameters={"F32": MISTRAL_7B})
    register_model(hub, "meta-llama/Llama-3.1-8B", parameters={"BF16": 8_030_261_248}, gated="manual")
    return hub


@pytest.fixture
def data(viewer: DatasetsServerStandIn) -> DatasetsServerStandIn:
    # the row counts of the real splits: the schemas hold only their first rows
    register(viewer, "trl-lib/Capybara", num_rows={"train": 15_806})
    register(viewer, "HuggingFaceH4/ultrachat_200k", num_rows={"train_sft": 207_865})
    register(viewer, "yahma/alpaca-cleaned", num_rows={"train": 51_760})
    register(viewer, "trl-lib/tldr", num_rows={"train": 116_722})
    return viewer


def flavor(name: str) -> Flavor:
    return PRICES.lookup(name)


async def test_comment_mentioning_push_to_hub_is_not_a_push(ctx: ToolContext, models: HubStandIn,
                                                            data: DatasetsServerStandIn) -> None:
    checks = await job_checks(ctx, script=SFT_COMMENT_ONLY, command=None, flavor=flavor("a10g-small"),
                              timeout_seconds=2 * 3600, timeout_given=True)
    text = checks_text(checks)
    assert "error: No push to the Hub (push_to_hub / hub_model_id): the trained model will be lost" in text
    assert "ok: Dataset trl-lib/Capybara (default/train) fits SFTTrainer as it is (sft_messages)" in text
    assert level_of(checks, "Hardware a10g-small: ≈ ") == "ok"
    assert "24 GB per GPU: fits a 494M model (Qwen/Qwen2.5-0.5B, safetensors metadata)" in text
    assert level_of(checks, "Timeout 2h fits: ≈ ") == "ok"
    assert all("\n" not in c.text for c in checks)


async def test_hub_model_id_alone_does_not_push_and_7b_on_t4_is_flagged(ctx: ToolContext, models: HubStandIn,
                                                           data: DatasetsServerStandIn) -> None:
    checks = await job_checks(ctx, script=SFT_7B_HUB_MODEL_ID, command=None, flavor=flavor("t4-small"),
                              timeout_seconds=1800, timeout_given=True)
    text = checks_text(checks)
    assert level_of(checks, "hub_model_id=intern-test/mistral-ultrachat is set but push_to_hub is not") == "error"
    assert ("ok: Dataset HuggingFaceH4/ultrachat_200k (default/train_sft) fits SFTTrainer as it is (sft_messages)"
            in text)
    assert level_of(checks, "bf16=True on t4-small: the T4 has no bf16 support") == "error"
    assert level_of(checks, "Hardware t4-small: ≈ 60 GB needed, 16 GB per GPU: too small for a 7.2B model "
                            "(mistralai/Mistral-7B-v0.1, safetensors metadata)") == "error"
    assert level_of(checks, "Timeout 30m is too short: ≈ ") == "error"


async def test_default_timeout_is_said_and_flagged_for_training(ctx: ToolContext, models: HubStandIn,
                                                                data: DatasetsServerStandIn) -> None:
    checks = await job_checks(ctx, script=SFT_7B_HUB_MODEL_ID, command=None, flavor=flavor("a100-large"),
                              timeout_seconds=1800, timeout_given=False)
    text = checks_text(checks)
    assert "error: No timeout given: the Hub default of 30 minutes applies, which is too short: ≈ " in text
    assert level_of(checks, "Hardware a100-large: ≈ 60 GB needed, 80 GB per GPU: fits a 7.2B model") == "ok"


async def test_size_comes_from_metadata_not_the_name(ctx: ToolContext, models: HubStandIn,
                                                     data: DatasetsServerStandIn) -> None:
    script = SFT_COMMENT_ONLY.replace("Qwen/Qwen2.5-0.5B", "someone/tiny-1b")
    checks = await job_checks(ctx, script=script, command=None, flavor=flavor("t4-small"),
                              timeout_seconds=8 * 3600, timeout_given=True)
    assert level_of(checks, "Hardware t4-small: ≈ 135 GB needed, 16 GB per GPU: too small for a 7.2B model "
                            "(someone/tiny-1b") == "error"
    asked = [r for r in models.requests if r.path == "/api/models/someone/tiny-1b"]
    assert asked and asked[0].query.get("expand") == "safetensors"


async def test_timeout_is_judged_from_the_tokens_not_the_model_size(
        ctx: ToolContext, models: HubStandIn, data: DatasetsServerStandIn) -> None:
    # one epoch of 15,806 short rows (66 tokens each in the viewer's sample): ~1M tokens, minutes on an A10G
    checks = await job_checks(ctx, script=SFT_COMMENT_ONLY, command=None, flavor=flavor("a10g-small"),
                              timeout_seconds=1800, timeout_given=True)
    assert level_of(checks, "Timeout 30m fits: ≈ 6m estimated") == "ok"
    assert "1,976 steps x 8 sequences x 66 tokens ≈ 1.0M tokens" in checks_text(checks)
    ten = SFT_COMMENT_ONLY.replace("num_train_epochs=1,", "num_train_epochs=10, max_length=4096, packing=True,")
    checks = await job_checks(ctx, script=ten, command=None, flavor=flavor("a10g-small"),
                              timeout_seconds=1800, timeout_given=True)
    assert level_of(checks, "Timeout 30m is too short: ≈ ") == "error"


async def test_dataset_that_does_not_fit_the_trainer(ctx: ToolContext, models: HubStandIn,
                                                     data: DatasetsServerStandIn) -> None:
    checks = await job_checks(ctx, script=DPO_ON_ALPACA, command=None, flavor=flavor("a10g-large"),
                              timeout_seconds=4 * 3600, timeout_given=True)
    [check] = [c for c in checks if c.text.startswith("Dataset yahma/alpaca-cleaned")]
    assert check.level == "error"
    assert check.text.startswith("Dataset yahma/alpaca-cleaned (default/train) does not fit DPOTrainer: it is "
                                 "sft_alpaca, DPOTrainer needs dpo_explicit, dpo_implicit")
    assert level_of(checks, "Pushes to the Hub: push_to_hub=True, at each checkpoint") == "ok"


async def test_a_script_that_converts_its_data_gets_a_warning_not_an_error(
        ctx: ToolContext, models: HubStandIn, data: DatasetsServerStandIn) -> None:
    script = DPO_ON_ALPACA.replace('split="train")', 'split="train").map(to_preferences)')
    checks = await job_checks(ctx, script=script, command=None, flavor=flavor("a10g-large"),
                              timeout_seconds=4 * 3600, timeout_given=True)
    [check] = [c for c in checks if c.text.startswith("Dataset yahma/alpaca-cleaned")]
    assert check.level == "warn" and "transforms it (.map())" in check.text


async def test_unreachable_or_unknown_model_gives_a_warning(ctx: ToolContext, models: HubStandIn,
                                                            data: DatasetsServerStandIn) -> None:
    script = SFT_COMMENT_ONLY.replace("Qwen/Qwen2.5-0.5B", "nobody/no-such-model")
    checks = await job_checks(ctx, script=script, command=None, flavor=flavor("a10g-small"),
                              timeout_seconds=3600, timeout_given=True)
    [warn] = [c for c in checks if c.text.startswith("Could not read the size of model nobody/no-such-model")]
    assert warn.level == "warn" and "RepositoryNotFoundError" in warn.text
    assert level_of(checks, "Timeout 1h is short for a training job (under 2 h)") == "warn"
    assert not [c for c in checks if c.text.startswith("Hardware")]


async def test_gated_model_metadata_gives_a_warning(ctx: ToolContext, models: HubStandIn,
                                                    data: DatasetsServerStandIn) -> None:
    script = SFT_COMMENT_ONLY.replace("Qwen/Qwen2.5-0.5B", "meta-llama/Llama-3.1-8B")
    checks = await job_checks(ctx, script=script, command=None, flavor=flavor("a10g-small"),
                              timeout_seconds=8 * 3600, timeout_given=True)
    [warn] = [c for c in checks if "meta-llama/Llama-3.1-8B" in c.text]
    assert warn.level == "warn" and "GatedRepoError" in warn.text


async def test_hub_unreachable_gives_warnings_not_exceptions(viewer: DatasetsServerStandIn) -> None:
    register(viewer, "trl-lib/Capybara")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with httpx.AsyncClient() as http:
        ctx, client = make_ctx(f"http://127.0.0.1:{port}", "hf_x", viewer.url, http)
        try:
            checks = await job_checks(ctx, script=SFT_COMMENT_ONLY, command=None, flavor=flavor("a10g-small"),
                                      timeout_seconds=3 * 3600, timeout_given=True)
        finally:
            client.close()
    [warn] = [c for c in checks if c.text.startswith("Could not read the size of model Qwen/Qwen2.5-0.5B")]
    assert warn.level == "warn"
    assert level_of(checks, "Dataset trl-lib/Capybara") == "ok"


async def test_missing_dataset_gives_a_warning(ctx: ToolContext, models: HubStandIn,
                                               data: DatasetsServerStandIn) -> None:
    script = SFT_COMMENT_ONLY.replace("trl-lib/Capybara", "org/never-uploaded")
    checks = await job_checks(ctx, script=script, command=None, flavor=flavor("a10g-small"),
                              timeout_seconds=3 * 3600, timeout_given=True)
    [warn] = [c for c in checks if c.text.startswith("Could not check dataset org/never-uploaded")]
    assert warn.level == "warn" and "not found" in warn.text


async def test_lora_in_4bit_fits_a_small_gpu(ctx: ToolContext, models: HubStandIn,
                                             data: DatasetsServerStandIn) -> None:
    script = SFT_7B_HUB_MODEL_ID.replace(
        "torch_dtype=torch.bfloat16)",
        "quantization_config=BitsAndBytesConfig(load_in_4bit=True))\npeft = LoraConfig(r=16)").replace(
        "processing_class=tokenizer)", "processing_class=tokenizer, peft_config=peft)").replace(
        "bf16=True)", "fp16=True)")
    checks = await job_checks(ctx, script=script, command=None, flavor=flavor("t4-small"),
                              timeout_seconds=8 * 3600, timeout_given=True)
    assert level_of(checks, "Hardware t4-small: ≈ 7.0 GB needed, 16 GB per GPU: fits a 7.2B model") == "ok"
    assert "QLoRA r=16 on 4-bit NF4 weights" in checks_text(checks)
    assert not [c for c in checks if c.text.startswith(("bf16", "The model is loaded in"))]
    # the same config never passed to the trainer trains nothing but 4-bit weights, which the Trainer refuses
    unused = script.replace(", peft_config=peft)", ")")
    checks = await job_checks(ctx, script=unused, command=None, flavor=flavor("t4-small"),
                              timeout_seconds=8 * 3600, timeout_given=True)
    assert level_of(checks, "The model is loaded in 4bit without adapters") == "error"


async def test_script_that_does_not_parse(ctx: ToolContext) -> None:
    checks = await job_checks(ctx, script="from trl import SFTTrainer\nSFTTrainer(model=\n", command=None,
                              flavor=flavor("a10g-small"), timeout_seconds=3600, timeout_given=False)
    assert checks[0].level == "error" and checks[0].text.startswith("The script does not parse (SyntaxError at line")
    assert Check("warn", "No timeout given: the Hub default of 30 minutes applies") in checks


async def test_command_with_inline_python(ctx: ToolContext, models: HubStandIn, data: DatasetsServerStandIn) -> None:
    command = ["uv", "run", "--with", "trl", "python", "-c", SFT_COMMENT_ONLY]
    checks = await job_checks(ctx, script=None, command=command, flavor=flavor("a10g-small"),
                              timeout_seconds=2 * 3600, timeout_given=True)
    assert level_of(checks, "No push to the Hub") == "error"
    assert level_of(checks, "Dataset trl-lib/Capybara") == "ok"


@pytest.mark.parametrize("wrap", [False, True])
async def test_trl_command_line(ctx: ToolContext, models: HubStandIn, data: DatasetsServerStandIn,
                                wrap: bool) -> None:
    command = ["trl", "sft", "--model_name_or_path", "mistralai/Mistral-7B-v0.1", "--dataset_name", "trl-lib/tldr",
               "--output_dir", "out", "--push_to_hub"]
    if wrap:
        command = ["bash", "-c", "pip install -q trl && " + " ".join(command)]
    checks = await job_checks(ctx, script=None, command=command, flavor=flavor("l4x1"),
                              timeout_seconds=7 * 3600, timeout_given=True)
    text = checks_text(checks)
    assert "ok: Pushes to the Hub: push_to_hub=True, --push_to_hub (TRL's script pushes after training)" in text
    assert "ok: Dataset trl-lib/tldr (default/train) fits SFTTrainer as it is (sft_prompt_completion)" in text
    assert level_of(checks, "Hardware l4x1: ≈ 63 GB needed, 24 GB per GPU: too small") == "error"
    assert level_of(checks, "Timeout 7h is too short: ≈ ") == "error"


async def test_other_commands_are_not_read(ctx: ToolContext) -> None:
    checks = await job_checks(ctx, script=None, command=["bash", "train.sh"], flavor=flavor("a10g-small"),
                              timeout_seconds=3600, timeout_given=True)
    assert checks == [Check("warn", "The checks could not read the code: the command runs `bash train.sh`, "
                                    "not inline Python (python -c)")]


def test_reading_the_tree() -> None:
    facts = read_script('''
import argparse, os
from huggingface_hub import HfApi
from trl import GRPOTrainer

class MyTrainer(GRPOTrainer):
    pass

parser = argparse.ArgumentParser()
parser.add_argument("--model-name", default="Qwen/Qwen2.5-1.5B-Instruct")
args = parser.parse_args()
DATA = os.environ.get("DATASET", "trl-lib/ultrafeedback-prompt")
note = "call push_to_hub=True later"
ds = load_dataset(DATA, "default", split="train[:1000]")
model = AutoModelForCausalLM.from_pretrained(args.model_name)
MyTrainer(model=model, train_dataset=ds).train()
HfApi().upload_folder(folder_path="out", repo_id="me/grpo")
''')
    assert facts.trainers == ["GRPOTrainer"]
    assert [(d.id, d.config, d.split) for d in facts.datasets] == [("trl-lib/ultrafeedback-prompt", "default", "train")]
    assert facts.models == ["Qwen/Qwen2.5-1.5B-Instruct"]
    assert facts.pushes == ["upload_folder()"] and facts.recipe.post_training_pushes == ["upload_folder()"]
    assert facts.recipe.method == "GRPO" and facts.recipe.trainer == "GRPOTrainer"


def test_push_flag_from_a_variable_is_uncertain() -> None:
    facts = read_script("from trl import SFTConfig\ncfg = SFTConfig(output_dir='o', push_to_hub=should_push)\n")
    assert facts.recipe.push_to_hub is None and facts.maybe_pushes == ["push_to_hub=should_push"]
    off = read_script("from trl import SFTConfig\ncfg = SFTConfig(output_dir='o', push_to_hub=False)\n")
    assert off.recipe.push_to_hub is False and off.maybe_pushes == []
