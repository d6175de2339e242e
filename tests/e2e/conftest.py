"""The stand-ins and the `intern serve` process most end-to-end tests share; a test module that needs
another model rule or other settings defines its own `harness`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from intern.standins.hub import HubStandIn
from intern.standins.llm import LLMStandIn
from intern.standins.slack import SlackStandIn
from tests.e2e.harness import Harness, job_rule


@pytest.fixture
async def stands() -> AsyncIterator[tuple[SlackStandIn, HubStandIn, LLMStandIn]]:
    async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm:
        yield slack, hub, llm  # type: ignore[misc]


@pytest.fixture
async def harness(migrated_url: str, stands: tuple[SlackStandIn, HubStandIn, LLMStandIn]) -> AsyncIterator[Harness]:
    """`intern serve` in this process, with the model scripted to propose and launch one job."""
    slack, hub, llm = stands
    llm.rule = job_rule()
    h = Harness(migrated_url, slack, hub, llm)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()
