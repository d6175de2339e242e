"""`hf_inspect_dataset` end to end: httpx against the dataset-viewer stand-in, the real HfApi against
the Hub stand-in for what the viewer will not say."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from intern.agent.cache import MemoryCache
from intern.agent.context_deps import ToolContext
from intern.agent.errors import ToolArgumentError, ToolFeedback
from intern.agent.tools.base import ToolResult
from intern.agent.tools.datasets import inspect_dataset_tool, is_hub_host
from intern.standins.datasets_server import DatasetsServerStandIn
from intern.standins.hub import HubStandIn
from intern.standins.hub_repos import repo_store
from tests.datasets.conftest import load_schema, make_ctx, register

STRING = {"dtype": "string", "_type": "Value"}


async def run(ctx: ToolContext, **arguments: Any) -> ToolResult:
    args = inspect_dataset_tool.parse(arguments)
    return await inspect_dataset_tool.handler(ctx, args)


async def feedback(ctx: ToolContext, **arguments: Any) -> str:
    with pytest.raises(ToolFeedback) as caught:
        await run(ctx, **arguments)
    return str(caught.value)


def test_contract_arguments_and_policy() -> None:
    schema = inspect_dataset_tool.schema()["function"]
    assert schema["name"] == "hf_inspect_dataset"
    assert set(schema["parameters"]["properties"]) == {"dataset", "config", "split", "sample_rows"}
    assert schema["parameters"]["required"] == ["dataset"]
    assert inspect_dataset_tool.read_only is True
    assert inspect_dataset_tool.policy(inspect_dataset_tool.parse({"dataset": "a/b"})) == "none"


def test_bad_dataset_ids_are_argument_errors() -> None:
    with pytest.raises(ToolArgumentError, match="not a dataset id"):
        inspect_dataset_tool.parse({"dataset": "not a dataset id!"})
    with pytest.raises(ToolArgumentError, match="sample_rows"):
        inspect_dataset_tool.parse({"dataset": "a/b", "sample_rows": 500})
    url = inspect_dataset_tool.parse({"dataset": "https://huggingface.co/datasets/trl-lib/tldr"})
    assert url.dataset == "trl-lib/tldr"  # type: ignore[attr-defined]


async def test_report_for_a_chat_dataset(ctx: ToolContext, viewer: DatasetsServerStandIn) -> None:
    fx = load_schema("HuggingFaceH4/ultrachat_200k")
    viewer.add_dataset(fx["dataset"], features=fx["features"], config="default",
                       rows={"train_sft": fx["rows"], "test_sft": fx["rows"]},
                       num_rows={"train_sft": 207865, "test_sft": 23110})
    result = await run(ctx, dataset="HuggingFaceH4/ultrachat_200k", sample_rows=1)
    text = result.content
    assert not result.is_error
    fits_lines = [line for line in text.splitlines() if line.startswith("Fits:")]
    assert fits_lines == ["Fits: sft_messages, grpo"]
    assert "Inspected: config 'default', split 'train_sft' (207,865 rows; parquet: 1 file(s)" in text
    assert "- default: train_sft 207,865, test_sft 23,110" in text
    assert "- messages: list of {content: string, role: string}" in text
    assert "Trainers (as it is): SFTTrainer, GRPOTrainer, RLOOTrainer" in text
    assert "Messages 'messages' (role/content, 1 row(s) read): roles user 2, assistant 2" in text
    assert "Sample rows (1 of 1 read):" in text and "[0] {\"prompt\": \"These instructions" in text
    assert result.artifacts["fits"] == ["sft_messages", "grpo"]


async def test_requested_config_and_split_are_the_ones_classified(ctx: ToolContext,
                                                                  viewer: DatasetsServerStandIn) -> None:
    prefs = register(viewer, "trl-lib/tldr-preference")
    sft = register(viewer, "trl-lib/tldr")
    viewer.add_dataset("org/mixed", config="sft", features=sft["features"], rows={"train": sft["rows"]})
    viewer.add_dataset("org/mixed", config="prefs", features=prefs["features"],
                       rows={"train": prefs["rows"], "test": prefs["rows"]})
    first = (await run(ctx, dataset="org/mixed")).content
    assert "Fits: sft_prompt_completion, grpo" in first.splitlines()  # no 'default': the first config
    chosen = (await run(ctx, dataset="org/mixed", config="prefs", split="test")).content
    assert "Fits: dpo_explicit, grpo, reward" in chosen.splitlines()
    assert "Inspected: config 'prefs', split 'test'" in chosen


async def test_conversion_lines_for_sharegpt(ctx: ToolContext, viewer: DatasetsServerStandIn) -> None:
    register(viewer, "teknium/OpenHermes-2.5")
    text = (await run(ctx, dataset="teknium/OpenHermes-2.5", sample_rows=0)).content
    assert "Fits: sft_sharegpt" in text.splitlines()
    assert any(line.startswith("Convert: sft_sharegpt -> sft_messages by mapping from/value to role/content")
               for line in text.splitlines())
    assert "Sample rows" not in text


async def test_the_viewer_on_the_hub_host_gets_the_hub_token(ctx: ToolContext, viewer: DatasetsServerStandIn,
                                                             hub: HubStandIn) -> None:
    # the stand-ins share the Hub's host name (127.0.0.1), as datasets-server.huggingface.co is under huggingface.co
    register(viewer, "openai/gsm8k")
    await run(ctx, dataset="openai/gsm8k")
    assert viewer.requests, "the viewer was not asked"
    assert all(r.headers.get("Authorization") == f"Bearer {hub.token}" for r in viewer.requests)
    assert all(hub.token not in str(r.query) for r in viewer.requests)


async def test_a_viewer_on_another_host_never_gets_the_hub_token(viewer: DatasetsServerStandIn,
                                                                hub: HubStandIn) -> None:
    register(viewer, "openai/gsm8k")
    elsewhere = viewer.url.replace("127.0.0.1", "localhost")
    async with httpx.AsyncClient() as http:
        ctx, client = make_ctx(hub.url, hub.token, elsewhere, http, hub.user)
        try:
            await run(ctx, dataset="openai/gsm8k")
            viewer.add_dataset("org/closed", features={"text": STRING}, rows={"train": [{"text": "x"}]},
                               access="gated", authorized_tokens={hub.token})
            repo_store(hub).add("org/closed", "dataset", gated="auto")
            message = await feedback(ctx, dataset="org/closed")
        finally:
            client.close()
    assert viewer.requests and all("Authorization" not in r.headers for r in viewer.requests)
    assert all(hub.token not in str(r.headers) + str(r.query) for r in viewer.requests)
    assert "is gated (auto approval)" in message
    assert f"{elsewhere} is not on the Hub's host" in message and "INTERN_DATASETS_SERVER_URL" in message


def test_hub_hosts() -> None:
    assert is_hub_host("https://datasets-server.huggingface.co", "https://huggingface.co")
    assert is_hub_host("https://huggingface.co:8443/viewer", "https://huggingface.co")
    assert not is_hub_host("https://datasets-server.huggingface.co", "https://hub.example.com")
    assert not is_hub_host("https://evilhuggingface.co", "https://huggingface.co")
    assert not is_hub_host("https://huggingface.co.example.com", "https://huggingface.co")


async def test_a_gated_dataset_the_token_was_granted_is_inspected(ctx: ToolContext, viewer: DatasetsServerStandIn,
                                                                  hub: HubStandIn) -> None:
    viewer.add_dataset("meta-llama/granted", features={"text": STRING}, rows={"train": [{"text": "hello"}]},
                       access="gated", authorized_tokens={hub.token})
    repo_store(hub).add("meta-llama/granted", "dataset", gated="manual")
    text = (await run(ctx, dataset="meta-llama/granted")).content
    assert text.startswith("Dataset: meta-llama/granted")
    assert "Fits: sft_text" in text.splitlines()


async def test_a_private_dataset_of_a_pro_owner_is_inspected(ctx: ToolContext, viewer: DatasetsServerStandIn,
                                                             hub: HubStandIn) -> None:
    viewer.add_dataset(f"{hub.user}/mine", features={"text": STRING}, rows={"train": [{"text": "hello"}]},
                       access="private", authorized_tokens={hub.token}, owner_pro=True)
    repo_store(hub).add(f"{hub.user}/mine", "dataset", private=True)
    assert (await run(ctx, dataset=f"{hub.user}/mine")).content.startswith(f"Dataset: {hub.user}/mine")


async def test_a_private_dataset_the_viewer_does_not_serve_says_how_to_read_it(
        ctx: ToolContext, viewer: DatasetsServerStandIn, hub: HubStandIn) -> None:
    viewer.add_dataset(f"{hub.user}/plain", features={"text": STRING}, rows={"train": [{"text": "x"}]},
                       access="private", authorized_tokens={hub.token})
    repo_store(hub).add(f"{hub.user}/plain", "dataset", private=True)
    message = await feedback(ctx, dataset=f"{hub.user}/plain")
    assert "is private. Intern's token can read it, but the dataset viewer does not serve it" in message
    assert "hf_repo_files" in message and "INTERN_HF_READ_TOKEN" in message


async def test_missing_dataset(ctx: ToolContext) -> None:
    message = await feedback(ctx, dataset="org/does-not-exist")
    assert "'org/does-not-exist' was not found on the Hub" in message
    assert "typos" in message


async def test_gated_dataset_is_named_as_gated(ctx: ToolContext, viewer: DatasetsServerStandIn,
                                               hub: HubStandIn) -> None:
    viewer.add_dataset("meta-llama/gated-set", features={"text": STRING}, rows={"train": [{"text": "x"}]},
                       access="gated")
    repo_store(hub).add("meta-llama/gated-set", "dataset", gated="manual")
    message = await feedback(ctx, dataset="meta-llama/gated-set")
    assert f"is gated (manual approval) and the account behind Intern's Hub token ({hub.user}) has no access" \
        in message
    assert f"Request access on the dataset's page, {hub.url}/datasets/meta-llama/gated-set" in message
    assert "its authors review each request" in message
    assert "INTERN_HF_READ_TOKEN" in message and "HF_TOKEN" in message


async def test_private_dataset_is_named_as_private(ctx: ToolContext, viewer: DatasetsServerStandIn,
                                                   hub: HubStandIn) -> None:
    viewer.add_dataset(f"{hub.user}/secret", features={"text": STRING}, rows={"train": [{"text": "x"}]},
                       access="private")
    repo_store(hub).add(f"{hub.user}/secret", "dataset", private=True)
    message = await feedback(ctx, dataset=f"{hub.user}/secret")
    assert "is private" in message


async def test_viewer_not_ready(ctx: ToolContext, viewer: DatasetsServerStandIn) -> None:
    viewer.add_dataset("org/fresh", features={"text": STRING}, rows={"train": [{"text": "x"}]}, state="not_ready")
    message = await feedback(ctx, dataset="org/fresh")
    assert "has not finished processing 'org/fresh' yet" in message and "Retry" in message


async def test_wrong_config_and_split_list_the_right_ones(ctx: ToolContext, viewer: DatasetsServerStandIn) -> None:
    register(viewer, "openai/gsm8k")
    message = await feedback(ctx, dataset="openai/gsm8k", config="socratic")
    assert message == "Config 'socratic' does not exist in 'openai/gsm8k'. Configs: main."
    message = await feedback(ctx, dataset="openai/gsm8k", config="main", split="validation")
    assert message == "Split 'validation' does not exist in config 'main' of 'openai/gsm8k'. Splits: train."


async def test_broken_dataset_reports_the_cause(ctx: ToolContext, viewer: DatasetsServerStandIn) -> None:
    viewer.add_broken("severo/empty", error="The dataset is empty.", cause_exception="EmptyDatasetError",
                      cause_message="The directory at hf://datasets/severo/empty doesn't contain any data files",
                      error_code="EmptyDatasetError")
    message = await feedback(ctx, dataset="severo/empty")
    assert "The dataset is empty. (EmptyDatasetError: The directory at hf://datasets/severo/empty" in message


async def test_unreachable_viewer(hub: HubStandIn) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with httpx.AsyncClient() as http:
        ctx, client = make_ctx(hub.url, hub.token, f"http://127.0.0.1:{port}", http)
        try:
            message = await feedback(ctx, dataset="openai/gsm8k")
        finally:
            client.close()
    assert message.startswith(f"Could not reach the dataset viewer at http://127.0.0.1:{port}")


async def test_truncated_cells_are_left_out_and_said(ctx: ToolContext, viewer: DatasetsServerStandIn) -> None:
    viewer.truncate_cell_chars = 120
    register(viewer, "HuggingFaceH4/ultrachat_200k")
    text = (await run(ctx, dataset="HuggingFaceH4/ultrachat_200k")).content
    assert "Fits: sft_messages, grpo" in text.splitlines()  # the schema still says what the column is
    assert "Note: 2 cell(s) were too large for the viewer and are left out of the analysis" in text


async def test_answers_are_cached_when_a_cache_is_given(ctx: ToolContext, viewer: DatasetsServerStandIn) -> None:
    ctx.deps.cache = MemoryCache()
    register(viewer, "trl-lib/tldr")
    first = await run(ctx, dataset="trl-lib/tldr")
    asked = len(viewer.requests)
    second = await run(ctx, dataset="trl-lib/tldr")
    assert second.content == first.content
    assert len(viewer.requests) == asked
