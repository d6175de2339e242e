"""fetch_hf_docs: markdown and HTML pages, sections, and the token staying on the Hub host."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from intern.agent.docs.snapshot import load_snapshot
from intern.agent.docs.web import HostPolicy
from intern.agent.errors import ToolArgumentError, ToolFeedback
from intern.agent.tools.base import ToolResult
from intern.agent.tools.docs import fetch_docs_tool
from tests.docs.conftest import LoopbackNames


async def fetch(ctx: Any, url: str) -> ToolResult:
    return await fetch_docs_tool.handler(ctx, fetch_docs_tool.parse({"url": url}))


def _snapshot_page(set_name: str, local: str) -> str:
    snap = next(s for s in load_snapshot() if s.name == set_name)
    return snap.pages[local]


def _auth(standin: Any, path: str) -> list[str | None]:
    return [r.headers.get("Authorization") for r in standin.requests if r.path == path]


async def test_markdown_page_with_the_token_sent_to_the_hub(make_ctx: Any, hub: Any) -> None:
    result = await fetch(make_ctx(), f"{hub.url}/docs/trl/sft_trainer")
    assert result.content == f"Source: {hub.url}/docs/trl/sft_trainer\n\n" + _snapshot_page("trl", "sft_trainer")
    assert _auth(hub, "/docs/trl/sft_trainer.md") == [f"Bearer {hub.token}"]


async def test_without_a_token_nothing_is_sent(make_ctx: Any, hub: Any) -> None:
    await fetch(make_ctx(token=None), f"{hub.url}/docs/trl/sft_trainer")
    assert _auth(hub, "/docs/trl/sft_trainer.md") == [None]


async def test_relative_paths_resolve_against_the_hub(make_ctx: Any, hub: Any) -> None:
    result = await fetch(make_ctx(), "/docs/peft/quicktour")
    assert "get_peft_model" in result.content


async def test_html_page_is_converted_to_markdown(make_ctx: Any, hub: Any) -> None:
    hub.state["docs_html_only"] = {"/docs/trl/sft_trainer"}
    result = await fetch(make_ctx(), f"{hub.url}/docs/trl/sft_trainer")
    assert result.content.startswith(f"Source: {hub.url}/docs/trl/sft_trainer\n")
    assert "# SFT Trainer" in result.content
    assert "## Expected dataset" in result.content
    assert "SFTConfig(output_dir=" in result.content  # code survives
    assert "Understanding logs" not in result.content  # the sidebar is dropped
    assert "Footer links" not in result.content and "window.hydrate" not in result.content
    assert [r.path for r in hub.requests] == ["/docs/trl/sft_trainer.md", "/docs/trl/sft_trainer"]


async def test_an_anchor_returns_one_section(make_ctx: Any, hub: Any) -> None:
    result = await fetch(make_ctx(), f"{hub.url}/docs/trl/dpo_trainer#reference-model")
    assert result.content.startswith(f"Source: {hub.url}/docs/trl/dpo_trainer#reference-model\n\n## Reference model")
    assert "## Key options" not in result.content


async def test_missing_page_points_to_explore(make_ctx: Any, hub: Any) -> None:
    with pytest.raises(ToolFeedback, match="explore_hf_docs"):
        await fetch(make_ctx(), f"{hub.url}/docs/trl/no_such_page")


async def test_a_long_page_is_cut_with_a_table_of_sections(make_ctx: Any, hub: Any) -> None:
    snap = next(s for s in load_snapshot() if s.name == "trl")
    body = "\n\n".join(f"## Part {i}\n\n" + "words " * 400 for i in range(20))
    snap.pages["sft_trainer"] = "# Long page\n\n" + body
    hub.state["docs_sets"] = [snap]
    result = await fetch(make_ctx(), f"{hub.url}/docs/trl/sft_trainer")
    assert len(result.content) < 30_000
    assert "The page continues" in result.content
    assert f"- Part 19: {hub.url}/docs/trl/sft_trainer#part-19" in result.content


# --- which hosts, and where the token goes --------------------------------------------------------


@pytest.mark.parametrize("url", [
    "https://huggingface.co.evil.example/docs/trl",
    "https://evilhuggingface.co/docs",
    "https://huggingface.co@evil.example/docs",
    "https://user:pw@huggingface.co/docs",
    "ftp://huggingface.co/docs",
    "https://huggingface.co:8443/docs",
    "http://169.254.169.254/latest/meta-data",
])
def test_policy_refuses_look_alike_hosts(url: str) -> None:
    assert not HostPolicy("https://huggingface.co").allowed(httpx.URL(url))


@pytest.mark.parametrize("url", [
    "https://huggingface.co/docs/trl", "https://hf.co/docs", "https://cdn-lfs.hf.co/x",
    "http://docs.huggingface.co/x", "https://HuggingFace.CO./docs",
])
def test_policy_allows_hugging_face_hosts(url: str) -> None:
    assert HostPolicy("https://huggingface.co").allowed(httpx.URL(url))


def test_only_the_exact_hub_origin_gets_the_token() -> None:
    policy = HostPolicy("https://huggingface.co")
    assert policy.is_hub(httpx.URL("https://huggingface.co/docs"))
    assert not policy.is_hub(httpx.URL("http://huggingface.co/docs"))  # never over plain HTTP
    assert not policy.is_hub(httpx.URL("https://hf.co/docs"))
    mirror = HostPolicy("http://127.0.0.1:8080")
    assert mirror.allowed(httpx.URL("http://127.0.0.1:8080/docs")) and mirror.is_hub(httpx.URL("http://127.0.0.1:8080/x"))
    assert not mirror.allowed(httpx.URL("http://127.0.0.1:8081/docs"))


async def test_refuses_another_host(make_ctx: Any, other: Any) -> None:
    with pytest.raises(ToolArgumentError, match="not a Hugging Face host"):
        await fetch(make_ctx(), f"{other.url}/docs/trl/sft_trainer")
    assert other.requests == []


async def test_refuses_a_redirect_off_hugging_face(make_ctx: Any, hub: Any, other: Any) -> None:
    hub.state["docs_redirects"] = {"/docs/trl/moved.md": f"{other.url}/steal"}
    with pytest.raises(ToolFeedback, match="not a Hugging Face host"):
        await fetch(make_ctx(), f"{hub.url}/docs/trl/moved")
    assert other.requests == []
    assert _auth(hub, "/docs/trl/moved.md") == [f"Bearer {hub.token}"]


async def test_token_is_dropped_when_a_redirect_leaves_the_hub(make_ctx: Any, hub: Any, other: Any,
                                                             names: dict[str, int]) -> None:
    names["cdn.huggingface.co"] = other.port
    hub.state["docs_redirects"] = {"/docs/trl/cdn.md": "http://cdn.huggingface.co/files/page.md"}
    result = await fetch(make_ctx(), f"{hub.url}/docs/trl/cdn")
    assert "Served by the other host" in result.content
    assert result.artifacts["url"] == "http://cdn.huggingface.co/files/page.md"
    assert _auth(hub, "/docs/trl/cdn.md") == [f"Bearer {hub.token}"]
    [seen] = other.requests
    assert seen.headers.get("Host") == "cdn.huggingface.co"
    assert "Authorization" not in seen.headers


async def test_token_is_not_put_back_when_a_redirect_returns_to_the_hub(make_ctx: Any, hub: Any, other: Any,
                                                                       names: dict[str, int]) -> None:
    names["cdn.huggingface.co"] = other.port
    hub.state["docs_redirects"] = {"/docs/trl/away.md": "http://cdn.huggingface.co/bounce"}
    other.redirects["/bounce"] = f"{hub.url}/docs/trl/index.md"
    result = await fetch(make_ctx(), f"{hub.url}/docs/trl/away")
    assert "# TRL" in result.content
    assert _auth(hub, "/docs/trl/away.md") == [f"Bearer {hub.token}"]
    assert _auth(hub, "/docs/trl/index.md") == [None]
    assert all("Authorization" not in r.headers for r in other.requests)


async def test_huggingface_co_is_not_the_hub_when_another_endpoint_is_configured(
        make_ctx: Any, other: Any, names: dict[str, int]) -> None:
    names["huggingface.co"] = other.port
    result = await fetch(make_ctx(), "http://huggingface.co/docs/trl/sft_trainer")
    assert "Served by the other host" in result.content
    assert other.requests and all("Authorization" not in r.headers for r in other.requests)


async def test_credentials_on_the_shared_client_never_leave_the_hub(make_ctx: Any, hub: Any, other: Any) -> None:
    names = {"cdn.huggingface.co": other.port}
    async with httpx.AsyncClient(transport=LoopbackNames(names), headers={"Authorization": "Bearer client-default"},
                                 cookies={"session": "secret-cookie"}) as leaky:
        ctx = make_ctx()
        ctx.http = leaky
        hub.state["docs_redirects"] = {"/docs/trl/cdn.md": "http://cdn.huggingface.co/page.md"}
        await fetch(ctx, f"{hub.url}/docs/trl/cdn")
    [seen] = other.requests
    assert "Authorization" not in seen.headers and "Cookie" not in seen.headers
    assert _auth(hub, "/docs/trl/cdn.md") == [f"Bearer {hub.token}"]
