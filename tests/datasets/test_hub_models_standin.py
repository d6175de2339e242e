"""The Hub stand-in's model metadata, read by huggingface_hub's own `model_info` (synchronous, so it
runs in a thread while the stand-in serves on the event loop)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

from intern.standins.hub import HubStandIn
from intern.standins.hub_models import register_model


async def model_info(hub: HubStandIn, repo_id: str, *, token: str | bool = True, **kwargs: Any) -> Any:
    api = HfApi(endpoint=hub.url, token=hub.token if token is True else token)
    return await asyncio.to_thread(api.model_info, repo_id, **kwargs)


async def test_safetensors_parameters_and_total(hub: HubStandIn) -> None:
    register_model(hub, "mistralai/Mistral-7B-v0.1", parameters={"BF16": 7_241_732_096},
                   files={"config.json": 571, "model-00001-of-00002.safetensors": 9_942_981_696,
                          "model-00002-of-00002.safetensors": 4_540_516_344})
    info = await model_info(hub, "mistralai/Mistral-7B-v0.1")
    assert info.id == "mistralai/Mistral-7B-v0.1" and info.author == "mistralai"
    assert info.safetensors is not None
    assert info.safetensors.total == 7_241_732_096 and info.safetensors.parameters == {"BF16": 7_241_732_096}
    assert info.gated is False and info.private is False
    assert next(s.rfilename for s in info.siblings or []) == "config.json"
    assert all(s.size is None for s in info.siblings or [])


async def test_expand_returns_only_what_was_asked(hub: HubStandIn) -> None:
    register_model(hub, "Qwen/Qwen2.5-0.5B", parameters={"BF16": 494_032_768})
    info = await model_info(hub, "Qwen/Qwen2.5-0.5B", expand=["safetensors"])
    assert info.safetensors is not None and info.safetensors.total == 494_032_768
    assert info.siblings is None and info.pipeline_tag is None and info.tags is None
    assert hub.requests[-1].query == {"expand": "safetensors"}


async def test_files_metadata_sizes_and_lfs(hub: HubStandIn) -> None:
    register_model(hub, "gpt2", files={"config.json": 665, "pytorch_model.bin": 548_118_077})
    info = await model_info(hub, "gpt2", files_metadata=True)
    sizes = {s.rfilename: (s.size, s.lfs.size if s.lfs else None) for s in info.siblings or []}
    assert sizes == {"config.json": (665, None), "pytorch_model.bin": (548_118_077, 548_118_077)}
    assert info.safetensors is None
    assert (await model_info(hub, "gpt2", revision="main")).id == "gpt2"


async def test_unknown_model(hub: HubStandIn) -> None:
    with pytest.raises(RepositoryNotFoundError):
        await model_info(hub, "nobody/nothing")
    with pytest.raises(RepositoryNotFoundError) as anonymous:
        await model_info(hub, "nobody/nothing", token=False)
    assert anonymous.value.response.status_code == 401
    assert anonymous.value.response.headers["X-Error-Code"] == "RepoNotFound"
    assert anonymous.value.response.json() == {"error": "Repository not found"}


async def test_gated_model(hub: HubStandIn) -> None:
    register_model(hub, "meta-llama/Llama-3.1-8B", parameters={"BF16": 8_030_261_248}, gated="manual")
    with pytest.raises(GatedRepoError) as anonymous:
        await model_info(hub, "meta-llama/Llama-3.1-8B", token=False)
    assert anonymous.value.response.status_code == 401
    with pytest.raises(GatedRepoError) as not_granted:
        await model_info(hub, "meta-llama/Llama-3.1-8B")
    assert not_granted.value.response.status_code == 403
    assert "not in the authorized list" in str(not_granted.value)
    register_model(hub, "meta-llama/Llama-3.1-8B", parameters={"BF16": 8_030_261_248}, gated="manual",
                   granted_users=[hub.user])
    assert (await model_info(hub, "meta-llama/Llama-3.1-8B")).gated == "manual"


async def test_private_model(hub: HubStandIn) -> None:
    register_model(hub, f"{hub.user}/secret", parameters={"F32": 1000}, private=True)
    assert (await model_info(hub, f"{hub.user}/secret")).private is True
    with pytest.raises(RepositoryNotFoundError):
        await model_info(hub, f"{hub.user}/secret", token=False)
    register_model(hub, "someone-else/secret", parameters={"F32": 1000}, private=True)
    with pytest.raises(RepositoryNotFoundError) as other:
        await model_info(hub, "someone-else/secret")
    assert other.value.response.status_code == 404
