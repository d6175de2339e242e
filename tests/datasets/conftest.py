"""Fixtures for the dataset tool and the ML checks: a ToolContext whose HubClient (the real HfApi)
talks to the Hub stand-in and whose httpx client talks to the dataset-viewer stand-in, plus the
dataset schemas under fixtures/schemas (features as the viewer lists them, a row or two each)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from intern.agent.context_deps import AgentConfig, ToolContext
from intern.agent.hub import HubClient
from intern.agent.plan import PlanState
from intern.agent.pricing import PriceTable
from intern.standins.datasets_server import DatasetsServerStandIn
from intern.standins.hub import HubStandIn

SCHEMAS = Path(__file__).parent / "fixtures" / "schemas"


def load_schema(dataset: str) -> dict[str, Any]:
    """A fixture as the classifier reads it: `features` in the viewer's notation the fixture uses
    (`/info`'s mapping or `/first-rows`' list), `rows` as plain rows, `verdict` what it should get."""
    fx = cast(dict[str, Any], json.loads((SCHEMAS / (dataset.replace("/", "__") + ".json")).read_text()))
    fx["rows"] = [r["row"] if "row_idx" in r else r for r in fx["rows"]]
    return fx


def features_mapping(features: Any) -> dict[str, Any]:
    """`/first-rows`' feature list as `/info`'s mapping."""
    if isinstance(features, dict):
        return features
    return {f["name"]: f["type"] for f in features}


def all_schemas() -> list[str]:
    return sorted(json.loads(p.read_text())["dataset"] for p in SCHEMAS.glob("*.json"))


def register(viewer: DatasetsServerStandIn, dataset: str, **kwargs: Any) -> dict[str, Any]:
    """Serve one fixture schema from the viewer stand-in, under its real config and split names."""
    fx = load_schema(dataset)
    viewer.add_dataset(fx["dataset"], features=features_mapping(fx["features"]), rows={fx["split"]: fx["rows"]},
                       config=fx["config"], **kwargs)
    return fx


class Events:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def emit(self, event: Any) -> None:
        self.seen.append(event)


@pytest.fixture
async def viewer() -> AsyncIterator[DatasetsServerStandIn]:
    async with DatasetsServerStandIn() as stand_in:
        yield cast(DatasetsServerStandIn, stand_in)


def make_ctx(hub_url: str, token: str | None, viewer_url: str, http: httpx.AsyncClient,
             namespace: str = "intern-test") -> tuple[ToolContext, HubClient]:
    client = HubClient(endpoint=hub_url, token=token, namespace=namespace)
    config = AgentConfig(model="test", research_model="test", hf_endpoint=hub_url, namespace=namespace,
                         datasets_server_url=viewer_url)
    ctx = ToolContext(session_id="s1", config=config, hub=client, http=http, prices=PriceTable(),
                      plan=PlanState(), events=Events())
    return ctx, client


@pytest.fixture
async def ctx(hub: HubStandIn, viewer: DatasetsServerStandIn) -> AsyncIterator[ToolContext]:
    async with httpx.AsyncClient() as http:
        context, client = make_ctx(hub.url, hub.token, viewer.url, http, hub.user)
        yield context
        client.close()
