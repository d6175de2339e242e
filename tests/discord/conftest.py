from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from intern.standins.discord import EPHEMERAL, DiscordStandIn
from intern.standins.hub import HubStandIn
from intern.standins.llm import LLMStandIn
from tests.discord.harness import DiscordHarness, people_in
from tests.e2e.harness import job_rule


@pytest.fixture
async def discord_api() -> AsyncIterator[DiscordStandIn]:
    async with DiscordStandIn() as stand_in:
        yield stand_in  # type: ignore[misc]


@pytest.fixture
async def harness(migrated_url: str, discord_api: DiscordStandIn) -> AsyncIterator[DiscordHarness]:
    async with HubStandIn() as hub, LLMStandIn() as llm:
        llm.rule = job_rule()  # type: ignore[attr-defined]
        h = DiscordHarness(migrated_url, discord_api, hub, llm, people_in(discord_api))  # type: ignore[arg-type]
        await h.start()
        try:
            yield h
        finally:
            await h.stop()
    assert_interactions_deferred_privately_in_time(discord_api)


def assert_interactions_deferred_privately_in_time(d: DiscordStandIn) -> None:
    """Every interaction from a person was acknowledged once, within Discord's 3 s, privately."""
    for i in d.interactions.values():
        if i.user == d.bot_user_id:
            continue
        assert i.errors == [], i.errors
        assert i.callback_type == 5, f"interaction {i.id} answered with {i.callback_type}"
        assert i.callback_delay is not None and i.callback_delay < 3.0
        assert int((i.callback_data or {}).get("flags", 0)) & EPHEMERAL
