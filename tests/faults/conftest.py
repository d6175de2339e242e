"""Fault tests run on PostgreSQL only (they prove concurrency between processes): each test gets a
database of its own on the server named by INTERN_TEST_DATABASE_URL, migrated before any process
starts; without that variable they are skipped."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from intern.bot.store import upgrade
from intern.standins.hub import HubStandIn
from intern.standins.llm import LLMStandIn
from intern.standins.slack import SlackStandIn
from tests.support.db import PG_ENV, create_pg_database, drop_pg_database, pg_base_url


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    base = pg_base_url()
    if base is None:
        pytest.skip(f"{PG_ENV} is not set")
    url = await create_pg_database(base)
    try:
        await upgrade(url)
        yield url
    finally:
        await drop_pg_database(base, url)


@pytest.fixture
async def stands() -> AsyncIterator[tuple[SlackStandIn, HubStandIn, LLMStandIn]]:
    async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm:
        yield slack, hub, llm  # type: ignore[misc]
