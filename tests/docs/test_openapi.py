"""find_hf_api: search over the Hub's OpenAPI description, fetched from the configured Hub."""

from __future__ import annotations

import json
from typing import Any

import pytest

from intern.agent.cache import MemoryCache
from intern.agent.context_deps import ToolDeps
from intern.agent.docs.openapi import ApiSearch, example_from_schema, operations
from intern.agent.docs.snapshot import snapshot_openapi_text
from intern.agent.errors import ToolArgumentError, ToolFeedback
from intern.agent.tools.base import ToolResult
from intern.agent.tools.docs import find_api_tool

SPEC_PATH = "/.well-known/openapi.json"


async def find(ctx: Any, **raw: Any) -> ToolResult:
    return await find_api_tool.handler(ctx, find_api_tool.parse(raw))


def test_sample_spec_is_openapi_3_with_unique_operation_ids() -> None:
    spec = json.loads(snapshot_openapi_text())
    assert spec["openapi"].startswith("3.")
    ops = operations(spec)
    assert len(ops) >= 40
    ids = [op.operation_id for op in ops]
    assert len(set(ids)) == len(ids) and all(ids)
    declared = {t["name"] for t in spec["tags"]}
    assert all(set(op.tags) <= declared for op in ops)


def test_refs_are_resolved() -> None:
    ops = {op.operation_id: op for op in operations(json.loads(snapshot_openapi_text()))}
    cancel = ops["cancelJob"]
    assert [(p.name, p.location, p.required) for p in cancel.params] == [
        ("namespace", "path", True), ("jobId", "path", True)]
    assert ops["runJob"].body_example["dockerImage"] == "python:3.12"
    assert ops["createRepo"].body_schema["properties"]["type"]["enum"] == ["model", "dataset", "space"]


def test_cyclic_refs_end() -> None:
    spec = {"paths": {"/x": {"post": {"operationId": "x", "requestBody": {"content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Node"}}}}}}},
        "components": {"schemas": {"Node": {"type": "object", "required": ["child"],
                                            "properties": {"child": {"$ref": "#/components/schemas/Node"}}}}}}
    [op] = operations(spec)
    assert op.body_example == {"child": None}  # the cycle is cut, not followed


def test_examples_from_schemas() -> None:
    assert example_from_schema({"type": "object", "required": ["a"], "properties": {
        "a": {"type": "array", "items": {"type": "integer"}}, "b": {"type": "string"}}}) == {"a": [0]}
    assert example_from_schema({"allOf": [{"type": "boolean"}]}) is False
    assert example_from_schema({"type": ["null", "string"], "enum": ["x", "y"]}) == "x"


@pytest.mark.parametrize(("query", "expected"), [
    ("create a repository", "POST /api/repos/create"),
    ("cancel a running job", "POST /api/jobs/{namespace}/{jobId}/cancel"),
    ("stream space logs", "GET /api/spaces/{namespace}/{repo}/logs/{logType}"),
    ("list organization members", "GET /api/organizations/{name}/members"),
    ("upload files in a commit", "POST /api/{repoType}/{namespace}/{repo}/commit/{revision}"),
    ("who am I token", "GET /api/whoami-v2"),
    ("schedule a job with cron", "POST /api/scheduled-jobs/{namespace}"),
    ("hardware flavors prices", "GET /api/jobs/hardware"),
])
def test_search_ranks_the_right_endpoint_first(query: str, expected: str) -> None:
    found = ApiSearch(json.loads(snapshot_openapi_text())).search(query)
    assert found and found[0].key == expected, [op.key for op in found[:3]]


async def test_result_has_parameters_and_a_curl_example_without_the_token(make_ctx: Any, hub: Any) -> None:
    result = await find(make_ctx(), query="create repository")
    assert result.artifacts["operations"][0] == "POST /api/repos/create"
    assert f"curl -X POST {hub.url}/api/repos/create" in result.content
    assert '-H "Authorization: Bearer $HF_TOKEN"' in result.content
    assert """-d '{"name": "my-model"}'""" in result.content
    assert hub.token not in result.content
    cancel = await find(make_ctx(), query="cancel job")
    assert f"{hub.url}/api/jobs/my-org/687fb701029421ae5549d998/cancel" in cancel.content
    assert "- `jobId` (path, string, required)" in cancel.content


async def test_tag_browsing_and_filtering(make_ctx: Any) -> None:
    ctx = make_ctx()
    jobs = await find(ctx, tag="Jobs")
    assert set(jobs.artifacts["operations"]) == {
        "GET /api/jobs/hardware", "GET /api/jobs/{namespace}", "POST /api/jobs/{namespace}",
        "GET /api/jobs/{namespace}/{jobId}", "POST /api/jobs/{namespace}/{jobId}/cancel",
        "GET /api/jobs/{namespace}/{jobId}/logs"}
    within = await find(ctx, query="logs", tag="spaces")
    assert within.artifacts["operations"] == ["GET /api/spaces/{namespace}/{repo}/logs/{logType}"]
    fallback = await find(ctx, query="zeppelin", tag="papers")
    assert "No endpoint in 'papers' matched" in fallback.content
    assert len(fallback.artifacts["operations"]) == 3


async def test_bad_arguments_list_the_tags(make_ctx: Any) -> None:
    with pytest.raises(ToolArgumentError, match="Tags in the Hub API: auth, collections"):
        await find(make_ctx(), query="x", tag="nope")
    with pytest.raises(ToolArgumentError, match="Give a query"):
        await find(make_ctx())


async def test_spec_is_fetched_once_through_the_cache(make_ctx: Any, hub: Any) -> None:
    cache = MemoryCache()
    ctx = make_ctx(deps=ToolDeps(cache=cache))
    await find(ctx, query="create repo")
    await find(ctx, query="delete branch")
    assert len(hub.calls(SPEC_PATH)) == 1
    assert await cache.get(f"openapi:{hub.url}") == snapshot_openapi_text()


async def test_spec_is_kept_in_memory_without_a_cache(make_ctx: Any, hub: Any) -> None:
    await find(make_ctx(), query="create repo")
    await find(make_ctx(), query="list models")
    assert len(hub.calls(SPEC_PATH)) == 1


async def test_spec_comes_from_the_configured_hub_without_the_token(make_ctx: Any, hub: Any) -> None:
    await find(make_ctx(), query="create repo")
    [request] = hub.calls(SPEC_PATH)
    assert "Authorization" not in request.headers


async def test_a_broken_spec_is_reported_and_not_cached(make_ctx: Any, hub: Any) -> None:
    hub.state["openapi_text"] = "<html>maintenance</html>"
    with pytest.raises(ToolFeedback, match="could not be loaded"):
        await find(make_ctx(), query="create repo")
    hub.state["openapi_text"] = snapshot_openapi_text()
    result = await find(make_ctx(), query="create repo")
    assert result.artifacts["operations"][0] == "POST /api/repos/create"
    assert len(hub.calls(SPEC_PATH)) == 2
