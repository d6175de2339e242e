"""Fixtures for the repo tools: a ToolContext whose HubClient (the real HfApi) talks to the Hub
stand-in, and the stand-in's repository store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from intern.agent.context_deps import AgentConfig, ToolContext
from intern.agent.hub import HubClient
from intern.agent.plan import PlanState
from intern.agent.pricing import PriceTable
from intern.standins.hub import HubStandIn
from intern.standins.hub_repos import RepoStore, repo_store


class Events:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def emit(self, event: Any) -> None:
        self.seen.append(event)


@pytest.fixture
def store(hub: HubStandIn) -> RepoStore:
    return repo_store(hub)


@pytest.fixture
async def ctx(hub: HubStandIn) -> AsyncIterator[ToolContext]:
    client = HubClient(endpoint=hub.url, token=hub.token, namespace=hub.user)
    config = AgentConfig(model="test", research_model="test", hf_endpoint=hub.url, namespace=hub.user)
    async with httpx.AsyncClient() as http:
        yield ToolContext(session_id="s1", config=config, hub=client, http=http, prices=PriceTable(),
                          plan=PlanState(), events=Events())
    client.close()
