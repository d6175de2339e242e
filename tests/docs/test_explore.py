"""explore_hf_docs: ranked hits, listings, and errors the model can act on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from intern.agent.context_deps import ToolDeps
from intern.agent.docs import DocsIndex, open_index
from intern.agent.docs.index import Page, write_index
from intern.agent.docs.sets import DOCS_SETS
from intern.agent.errors import ToolArgumentError, ToolFeedback
from intern.agent.tools.base import ToolResult
from intern.agent.tools.docs import explore_docs_tool, fetch_docs_tool, find_api_tool


async def explore(ctx: Any, **raw: Any) -> ToolResult:
    return await explore_docs_tool.handler(ctx, explore_docs_tool.parse(raw))


def test_tools_need_no_approval_and_are_read_only() -> None:
    for tool in (explore_docs_tool, fetch_docs_tool, find_api_tool):
        assert tool.read_only
        assert tool.policy(None) == "none"
    assert [t.name for t in (explore_docs_tool, fetch_docs_tool, find_api_tool)] == [
        "explore_hf_docs", "fetch_hf_docs", "find_hf_api"]
    props = explore_docs_tool.schema()["function"]["parameters"]["properties"]
    assert set(props) == {"endpoint", "query", "max_results"}


def test_the_table_lists_at_least_forty_sets() -> None:
    names = [s.name for s in DOCS_SETS]
    assert len(names) >= 40 and len(set(names)) == len(names)
    assert {"hub", "transformers", "trl", "peft", "datasets", "accelerate", "huggingface_hub", "bitsandbytes",
            "text-generation-inference", "inference-providers", "inference-endpoints", "lerobot", "smolagents",
            "trackio", "timm", "safetensors", "tokenizers", "evaluate", "optimum", "diffusers",
            "sentence_transformers", "llm-course"} <= set(names)


async def test_ranked_hits_with_urls_on_the_configured_hub(make_ctx: Any, snapshot_index: DocsIndex) -> None:
    ctx = make_ctx(deps=ToolDeps(docs_index=snapshot_index))
    result = await explore(ctx, endpoint="trl", query="GRPO reward function", max_results=3)
    assert not result.is_error
    first = result.artifacts["hits"][0]
    assert first["title"] == "GRPO Trainer"
    assert first["url"].startswith(f"{ctx.config.hf_endpoint}/docs/trl/grpo_trainer")
    assert first["section"] == "Trainers" and first["snippet"]
    assert len(result.artifacts["hits"]) <= 3
    assert "GRPO Trainer" in result.content and first["url"] in result.content
    assert "shipped with Intern" in result.content  # the model is told this is the snapshot


async def test_endpoint_aliases_and_groups(make_ctx: Any, snapshot_index: DocsIndex) -> None:
    ctx = make_ctx(deps=ToolDeps(docs_index=snapshot_index))
    tgi = await explore(ctx, endpoint="TGI", query="max total tokens")
    assert tgi.artifacts["hits"][0]["url"].endswith("/docs/text-generation-inference/reference/launcher")
    url_form = await explore(ctx, endpoint="https://huggingface.co/docs/peft", query="merge adapter")
    assert {h["set"] for h in url_form.artifacts["hits"]} == {"peft"}
    courses = await explore(ctx, endpoint="courses", query="fine-tuning a pretrained model")
    assert courses.artifacts["hits"][0]["url"].endswith("/learn/llm-course/chapter3/1")


async def test_unknown_endpoint_lists_the_sets_and_suggests(make_ctx: Any, snapshot_index: DocsIndex) -> None:
    ctx = make_ctx(deps=ToolDeps(docs_index=snapshot_index))
    with pytest.raises(ToolArgumentError) as err:
        await explore(ctx, endpoint="transfomers", query="trainer")
    message = str(err.value)
    assert "Did you mean 'transformers'" in message
    assert all(s.name in message for s in DOCS_SETS)


async def test_a_set_missing_from_the_index_says_how_to_get_it(make_ctx: Any, snapshot_index: DocsIndex) -> None:
    ctx = make_ctx(deps=ToolDeps(docs_index=snapshot_index))
    with pytest.raises(ToolFeedback) as err:
        await explore(ctx, endpoint="timm", query="resnet")
    assert "intern docs index" in str(err.value)
    assert f"fetch_hf_docs (start at {ctx.config.hf_endpoint}/docs/timm)" in str(err.value)


async def test_without_an_index_the_tool_says_so(make_ctx: Any) -> None:
    with pytest.raises(ToolFeedback, match="not available"):
        await explore(make_ctx(), endpoint="trl", query="sft")


async def test_no_query_lists_pages_in_sidebar_order(make_ctx: Any, snapshot_index: DocsIndex) -> None:
    ctx = make_ctx(deps=ToolDeps(docs_index=snapshot_index))
    result = await explore(ctx, endpoint="trl", max_results=4)
    titles = [h["title"] for h in result.artifacts["hits"]]
    assert titles == ["TRL", "Installation", "Quickstart", "Dataset formats"]
    assert "[Getting started]" in result.content and "more: raise max_results" in result.content


async def test_max_results_is_capped_and_validated(make_ctx: Any, snapshot_index: DocsIndex) -> None:
    ctx = make_ctx(deps=ToolDeps(docs_index=snapshot_index))
    result = await explore(ctx, endpoint="all", max_results=500)
    assert len(result.artifacts["hits"]) == 50 and "capped at 50" in result.content
    with pytest.raises(ToolArgumentError, match="max_results"):
        explore_docs_tool.parse({"endpoint": "trl", "max_results": 0})


async def test_no_match_is_not_an_error_and_suggests_what_to_try(make_ctx: Any, snapshot_index: DocsIndex) -> None:
    ctx = make_ctx(deps=ToolDeps(docs_index=snapshot_index))
    result = await explore(ctx, endpoint="trl", query="xylophone zeppelin")
    assert not result.is_error and result.artifacts["hits"] == []
    assert "Try other words" in result.content


async def test_stale_live_index_is_flagged(make_ctx: Any, tmp_path: Path) -> None:
    write_index(tmp_path, [Page("trl", "/docs/trl/sft_trainer", "SFT", "Trainers", 0, "# SFT Trainer\n\nPacking.")],
                source="live")
    index = open_index(tmp_path, max_age_hours=24)
    try:
        fresh = await explore(make_ctx(deps=ToolDeps(docs_index=index)), endpoint="trl", query="packing")
        assert "Note:" not in fresh.content
        stale = await explore(make_ctx(deps=ToolDeps(docs_index=index, docs_stale=True)), endpoint="trl",
                              query="packing")
        assert "pages may have changed" in stale.content
    finally:
        index.close()
