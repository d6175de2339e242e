"""A ToolContext on the Hub and dataset-viewer stand-ins, with the models and datasets the cases use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import httpx
import pytest

from intern.agent.context_deps import ToolContext
from intern.standins.datasets_server import DatasetsServerStandIn
from intern.standins.hub import HubStandIn
from intern.standins.hub_models import register_model
from tests.datasets.conftest import load_schema, make_ctx, register
from tests.mlchecks.cases.world import DATASETS, MODELS


@pytest.fixture
async def viewer() -> AsyncIterator[DatasetsServerStandIn]:
    async with DatasetsServerStandIn() as stand_in:
        yield cast(DatasetsServerStandIn, stand_in)


@pytest.fixture
async def ctx(hub: HubStandIn, viewer: DatasetsServerStandIn) -> AsyncIterator[ToolContext]:
    for repo_id, (params, dtype) in MODELS.items():
        register_model(hub, repo_id, parameters={dtype: params})
    for dataset, rows in DATASETS.items():
        register(viewer, dataset, num_rows={load_schema(dataset)["split"]: rows})
    async with httpx.AsyncClient() as http:
        context, client = make_ctx(hub.url, hub.token, viewer.url, http, hub.user)
        yield context
        client.close()
