"""INTERACTION_CREATE payloads whose fields have the wrong types (Discord never sends them; a proxy or a
bug might): each is dropped or privately refused, nothing is stored, and the gateway connection —
which one unreadable event used to end for good — keeps serving the interactions that follow."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from intern.bot.models import Approval, ApprovalDecision, InboundEvent, Message, Session, WorkItem
from intern.standins.discord import EPHEMERAL, DiscordStandIn
from intern.standins.hub import HubStandIn
from intern.standins.llm import LLMStandIn
from tests.discord.harness import DiscordHarness, ask_until_card, custom_id, people_in
from tests.e2e.harness import job_rule

FUZZ = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
STORED = (Session, Message, WorkItem, InboundEvent, ApprovalDecision)

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=8)
not_an_object = json_values.filter(lambda v: not isinstance(v, dict))
not_a_string = json_values.filter(lambda v: not isinstance(v, str))
# discord.py reads an id given as a number (int(), so a float or a boolean too) as an id: only other
# types are wrong.
not_a_snowflake = json_values.filter(lambda v: not (isinstance(v, str) and v.isdigit())
                                     and not isinstance(v, int | float))

CLICK_FIELDS: list[tuple[tuple[Any, ...], st.SearchStrategy[Any]]] = [
    (("data",), not_an_object), (("data", "custom_id"), not_a_string),
    (("data", "component_type"), json_values.filter(lambda v: not isinstance(v, int) or isinstance(v, bool))),
    (("member",), not_an_object), (("member", "user"), not_an_object), (("member", "user", "id"), not_a_snowflake),
    (("member", "roles"), json_values.filter(lambda v: not isinstance(v, list))),
    (("guild_id",), not_a_snowflake.filter(lambda v: v is not None)), (("channel",), not_an_object),
    (("message",), not_an_object),
]
SLASH_FIELDS: list[tuple[tuple[Any, ...], st.SearchStrategy[Any]]] = [
    (("data",), not_an_object), (("data", "name"), not_a_string),
    (("data", "options"), json_values.filter(lambda v: not isinstance(v, list))), (("data", "options", 0), not_an_object),
    (("data", "options", 0, "name"), not_a_string), (("member",), not_an_object),
    (("member", "user", "id"), not_a_snowflake),
]


def replacing(path: tuple[Any, ...], value: Any) -> Any:
    def mutate(payload: dict[str, Any]) -> dict[str, Any]:
        out = json.loads(json.dumps(payload))
        target = out
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return out

    return mutate


@pytest.fixture
async def harness(migrated_url: str) -> AsyncIterator[DiscordHarness]:
    async with DiscordStandIn() as discord, HubStandIn() as hub, LLMStandIn() as llm:
        llm.rule = job_rule()  # type: ignore[attr-defined]
        h = DiscordHarness(migrated_url, discord, hub, llm, people_in(discord))  # type: ignore[arg-type]
        await h.start()
        try:
            yield h
        finally:
            await h.stop()


async def stored(h: DiscordHarness) -> dict[str, int]:
    async with h.rt.db.session() as db:
        return {m.__name__: int((await db.execute(select(func.count()).select_from(m))).scalar_one()) for m in STORED}


async def test_malformed_interactions_are_dropped_or_refused_and_the_gateway_keeps_serving(
        harness: DiscordHarness) -> None:
    d, people = harness.discord, harness.people
    thread, card = await ask_until_card(harness)
    approve = custom_id(card, "approve")
    before = await stored(harness)
    loop = asyncio.get_running_loop()
    sent: list[Any] = []

    def deliver(coro: Any) -> None:
        sent.append(asyncio.run_coroutine_threadsafe(coro, loop).result(30))

    @FUZZ
    @given(data=st.data())
    def clicks(data: st.DataObject) -> None:
        path, wrong = data.draw(st.sampled_from(CLICK_FIELDS))
        deliver(d.click(card, approve, people.bystander, mutate=replacing(path, data.draw(wrong))))

    @FUZZ
    @given(data=st.data())
    def slashes(data: st.DataObject) -> None:
        path, wrong = data.draw(st.sampled_from(SLASH_FIELDS))
        deliver(d.slash(people.requester, "ask", channel=d.channel_id, task="train a model",
                        mutate=replacing(path, data.draw(wrong))))

    await asyncio.to_thread(clicks)
    await asyncio.to_thread(slashes)
    await asyncio.sleep(1.0)

    status = await d.slash(people.requester, "status", channel=thread)
    await d.answered(status)  # the gateway connection still serves interactions
    assert await stored(harness) == before
    async with harness.rt.db.session() as db:
        assert {a.status for a in (await db.execute(select(Approval))).scalars().all()} == {"pending"}
    answered = [i for i in sent if i.callback_type is not None]
    assert answered, "no malformed interaction got an answer"
    assert all(int((i.callback_data or {}).get("flags", 0)) & EPHEMERAL for i in answered)
    assert any(i.callback_type == 4 and "could not be read" in str(i.callback_data) for i in answered)
