"""Fixtures for the governance tests: the real bot in this process (slack_bolt over HTTP, litellm,
huggingface_hub, SQLAlchemy on SQLite and PostgreSQL) against loopback stand-ins."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from intern.standins.hub import HubStandIn
from intern.standins.llm import LLMStandIn
from intern.standins.slack import SlackStandIn
from tests.e2e.harness import Harness, job_rule
from tests.governance.helpers import ADMIN

StartBot = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def stands() -> AsyncIterator[tuple[SlackStandIn, HubStandIn, LLMStandIn]]:
    async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm:
        yield slack, hub, llm  # type: ignore[misc]


@pytest.fixture
async def start_bot(migrated_url: str, stands: tuple[SlackStandIn, HubStandIn, LLMStandIn]) -> AsyncIterator[StartBot]:
    """Start the bot with extra settings; INTERN_APPROVERS holds only ADMIN unless told otherwise."""
    slack, hub, llm = stands
    started: list[Harness] = []

    async def start(rule: Any = None, approvers: str = ADMIN, **env: str) -> Harness:
        llm.rule = rule or job_rule()
        h = Harness(migrated_url, slack, hub, llm, approvers=approvers, extra_env=env)
        await h.start()
        started.append(h)
        return h

    try:
        yield start
    finally:
        for h in started:
            await h.stop()


@pytest.fixture
async def bot(start_bot: StartBot) -> Harness:
    return await start_bot()
