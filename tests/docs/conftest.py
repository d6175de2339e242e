"""Fixtures for the documentation tools (the Hub stand-in itself, `hub`, comes from
tests/support/standin_fixtures.py): a second host that must never see the token, an httpx client that can resolve Hugging Face host names to loopback
stand-ins, and a ToolContext wired to them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from intern.agent.context_deps import AgentConfig, ToolContext, ToolDeps
from intern.agent.docs import DocsIndex, open_index
from intern.agent.hub import HubClient
from intern.agent.plan import PlanState
from intern.agent.pricing import PriceTable
from intern.standins.base import StandIn
from intern.standins.hub import HubStandIn


class OtherHost(StandIn):
    """A host that is not the Hub: serves markdown, or redirects where `redirects` says."""

    redirects: dict[str, str]

    def setup(self, app: web.Application) -> None:
        self.redirects = {}

        async def anything(request: web.Request) -> web.StreamResponse:
            if request.path in self.redirects:
                raise web.HTTPFound(self.redirects[request.path])
            return web.Response(text=f"# Served by the other host\n\nPath {request.path}.",
                                content_type="text/markdown")

        app.router.add_get("/{tail:.*}", anything)


class LoopbackNames(httpx.AsyncBaseTransport):
    """Resolves chosen host names (cdn.huggingface.co, huggingface.co …) to loopback ports, keeping
    the Host header, so the real client code talks to stand-ins under real-looking names."""

    def __init__(self, names: dict[str, int]) -> None:
        self.names = names
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        port = self.names.get(request.url.host)
        if port is not None:
            request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class Events:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def emit(self, event: Any) -> None:
        self.seen.append(event)


@pytest.fixture
async def other() -> AsyncIterator[OtherHost]:
    async with OtherHost() as standin:
        yield standin


@pytest.fixture
def names() -> dict[str, int]:
    """Host name -> loopback port; tests add entries before making requests."""
    return {}


@pytest.fixture
async def http(names: dict[str, int]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=LoopbackNames(names), timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def snapshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("docs-snapshot-index")


@pytest.fixture(scope="session")
def snapshot_index(snapshot_dir: Path) -> Iterator[DocsIndex]:
    index = open_index(snapshot_dir, max_age_hours=168)
    yield index
    index.close()


@pytest.fixture
def make_ctx(hub: HubStandIn, http: httpx.AsyncClient) -> Iterator[Any]:
    clients: list[HubClient] = []

    def make(*, endpoint: str | None = None, token: str | None = "hub", deps: ToolDeps | None = None) -> ToolContext:
        client = HubClient(endpoint=endpoint or hub.url, token=hub.token if token == "hub" else token,
                           namespace="intern-test")
        clients.append(client)
        config = AgentConfig(model="test", research_model="test", hf_endpoint=endpoint or hub.url,
                             namespace="intern-test")
        return ToolContext(session_id="s1", config=config, hub=client, http=http, prices=PriceTable(),
                           plan=PlanState(), events=Events(), deps=deps or ToolDeps())

    yield make
    for client in clients:
        client.close()
