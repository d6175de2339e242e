"""The repository part of the Hub stand-in, driven by huggingface_hub's own HfApi calls."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from aiohttp import web
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import HfHubHTTPError, RemoteEntryNotFoundError, RepositoryNotFoundError

from intern.standins.hub import HubStandIn
from intern.standins.hub_repos import RepoStore, git_blob_oid, repo_store

T = TypeVar("T")
REPO = "intern-test/tiny"


def api_for(hub: HubStandIn) -> HfApi:
    return HfApi(endpoint=hub.url, token=hub.token)


async def sync(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def test_download_through_hf_hub_download(hub: HubStandIn, store: RepoStore, tmp_path: Path) -> None:
    weights = bytes(range(256)) * 4
    repo = store.add(REPO, files={"config.json": "{}\n", "w.bin": weights})
    api = api_for(hub)
    text = await sync(api.hf_hub_download, REPO, "config.json", cache_dir=tmp_path)
    assert await sync(Path(text).read_bytes) == b"{}\n"
    binary = await sync(api.hf_hub_download, REPO, "w.bin", cache_dir=tmp_path)
    assert await sync(Path(binary).read_bytes) == weights
    assert repo.branches["main"] in binary  # cached under the commit the Hub named in X-Repo-Commit
    head = hub.calls("/resolve/main/w.bin", "HEAD")[-1]
    assert head.method == "HEAD"


async def test_resolve_headers(hub: HubStandIn, store: RepoStore) -> None:
    import httpx

    data = b"\x00\x01" * 10
    repo = store.add(REPO, files={"a.txt": "hello\n", "w.bin": data})
    async with httpx.AsyncClient() as http:
        small = await http.head(f"{hub.url}/{REPO}/resolve/main/a.txt")
        lfs = await http.get(f"{hub.url}/{REPO}/resolve/main/w.bin", headers={"Range": "bytes=2-5"})
    assert small.headers["etag"] == '"' + git_blob_oid(b"hello\n") + '"'
    assert small.headers["x-repo-commit"] == repo.branches["main"]
    assert small.headers["content-length"] == "6"
    assert lfs.status_code == 206 and lfs.content == data[2:6]
    assert lfs.headers["x-linked-etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert lfs.headers["x-linked-size"] == "20"


async def test_tree_pages_and_paths_info(hub: HubStandIn, store: RepoStore) -> None:
    store.add(REPO, files={f"d/f{i}.txt": str(i) for i in range(5)})
    store.tree_page_size = 2
    api = api_for(hub)
    entries = await sync(lambda: list(api.list_repo_tree(REPO, "d")))
    assert [e.path for e in entries] == [f"d/f{i}.txt" for i in range(5)]
    pages = hub.calls("/tree/main/d", "GET")
    assert len(pages) == 3 and pages[1].query["cursor"] == "2"
    top = await sync(lambda: list(api.list_repo_tree(REPO)))
    assert [(type(e).__name__, e.path) for e in top] == [("RepoFile", ".gitattributes"), ("RepoFolder", "d")]
    info = await sync(api.get_paths_info, REPO, ["d", "d/f1.txt", "missing"])
    assert [(type(e).__name__, e.path) for e in info] == [("RepoFolder", "d"), ("RepoFile", "d/f1.txt")]


async def test_commit_protocol(hub: HubStandIn, store: RepoStore) -> None:
    repo = store.add(REPO, files={"a.txt": "a\n"})
    api = api_for(hub)
    same = await sync(api.create_commit, REPO, [CommitOperationAdd("a.txt", b"a\n")], commit_message="noop")
    assert same.oid == repo.branches["main"] and hub.calls("/commit/main", "POST") == []  # skipped by the client
    done = await sync(api.create_commit, REPO, [CommitOperationAdd("b.txt", b"b\n")],
                      commit_message="Add b", commit_description="why")
    sent = hub.calls("/commit/main", "POST")[-1]
    assert sent.headers["Content-Type"] == "application/x-ndjson"
    assert sent.body.splitlines()[0] == b'{"key": "header", "value": {"summary": "Add b", "description": "why"}}'
    assert repo.head().oid == done.oid and repo.head().parents == (same.oid,)
    preupload = hub.calls("/preupload/main", "POST")[-1].json
    assert preupload["files"][0]["path"] == "b.txt"
    with pytest.raises(RemoteEntryNotFoundError, match="A file with this name doesn't exist"):
        await sync(api.create_commit, REPO, [CommitOperationDelete("nope.txt")], commit_message="x")
    with pytest.raises(HfHubHTTPError, match="A commit has happened since"):
        await sync(api.create_commit, REPO, [CommitOperationAdd("c.txt", b"c")], commit_message="x",
                   parent_commit=same.oid)
    assert repo.head().oid == done.oid


async def test_preupload_modes(hub: HubStandIn, store: RepoStore) -> None:
    import httpx

    repo = store.add(REPO, files={"a.txt": "a\n"})
    body = {"files": [{"path": "a.txt", "sample": "YQo=", "size": 2},
                      {"path": "w.bin", "sample": "AAEC", "size": 3},
                      {"path": "big.txt", "sample": "eA==", "size": 20_000_000}]}
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{hub.url}/api/models/{REPO}/preupload/main", json=body,
                            headers={"Authorization": f"Bearer {hub.token}"})
    modes = {f["path"]: (f["uploadMode"], f["oid"]) for f in r.json()["files"]}
    assert modes == {"a.txt": ("regular", git_blob_oid(b"a\n")), "w.bin": ("lfs", None), "big.txt": ("lfs", None)}
    assert r.json()["commitOid"] == repo.branches["main"]


async def test_discussion_pages_and_filters(hub: HubStandIn, store: RepoStore) -> None:
    store.add(REPO)
    api = api_for(hub)
    for i in range(53):
        await sync(api.create_discussion, REPO, f"Topic {i}", pull_request=i % 2 == 0)
    everything = await sync(lambda: list(api.get_repo_discussions(REPO)))
    assert len(everything) == 53 and everything[0].title == "Topic 52"
    assert [r.query.get("p") for r in hub.calls("/discussions", "GET")] == ["0", "1"]
    prs = await sync(lambda: list(api.get_repo_discussions(REPO, discussion_type="pull_request")))
    assert len(prs) == 27 and all(p.is_pull_request and p.status == "draft" for p in prs)
    await sync(api.change_discussion_status, REPO, 2, "closed")
    open_ones = await sync(lambda: list(api.get_repo_discussions(REPO, discussion_status="open")))
    assert len(open_ones) == 52


@dataclass
class HubWithAnotherModule(HubStandIn):
    """A Hub stand-in where a route module loaded first also serves model info for its own models."""

    def setup(self, app: web.Application) -> None:
        async def other_model_info(request: web.Request) -> web.Response:
            return web.json_response({"id": f"{request.match_info['ns']}/{request.match_info['name']}",
                                      "sha": "f" * 40, "private": False, "pipeline_tag": "fill-mask"})

        app.router.add_get("/api/models/{ns}/{name}", other_model_info)
        super().setup(app)


@pytest.fixture
async def shared_hub() -> AsyncIterator[HubWithAnotherModule]:
    async with HubWithAnotherModule() as stand_in:
        yield cast(HubWithAnotherModule, stand_in)


async def test_routes_shared_with_another_module(shared_hub: HubWithAnotherModule) -> None:
    repo = repo_store(shared_hub).add(REPO, files={"a.txt": "a"})
    api = api_for(shared_hub)
    mine = await sync(api.model_info, REPO)
    assert mine.sha == repo.branches["main"]  # a repository held here is answered here
    theirs = await sync(api.model_info, "someone/else")
    assert theirs.pipeline_tag == "fill-mask"  # the rest goes to the module that routes it
    with pytest.raises(RepositoryNotFoundError):
        await sync(api.list_repo_refs, "someone/else")  # nobody else routes refs: answered here


async def test_models_module_and_repos_side_by_side(hub: HubStandIn, store: RepoStore) -> None:
    hub_models = pytest.importorskip("intern.standins.hub_models")
    hub_models.register_model(hub, "org/llm", parameters={"BF16": 7_000_000_000})
    store.add(REPO, files={"config.json": "{}"})
    api = api_for(hub)
    llm = await sync(api.model_info, "org/llm")
    assert llm.safetensors is not None and llm.safetensors.total == 7_000_000_000
    tiny = await sync(api.model_info, REPO, files_metadata=True)
    assert [s.rfilename for s in tiny.siblings or []] == [".gitattributes", "config.json"]
