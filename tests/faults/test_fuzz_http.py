"""Signed Slack requests whose bodies parse but are not what Slack sends — a JSON array, a string or a
number instead of an object, an `event` that is a list, a user id that is an object, a repeated form
field — through the real `/slack/events` endpoint: each is answered 400 (never 500) and nothing is
stored; the endpoint keeps working for the requests that follow."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from intern.bot.models import ApprovalDecision, AuditEvent, InboundEvent, Message, Session, WorkItem
from intern.standins.hub import HubStandIn
from intern.standins.llm import LLMStandIn, text_reply
from intern.standins.slack import SlackStandIn, block_action, event_callback, mention_event, message_event
from tests.e2e.harness import APPROVER, REQUESTER, Harness, wait_until

FUZZ = settings(max_examples=120, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
STORED = (Session, Message, WorkItem, InboundEvent, ApprovalDecision, AuditEvent)

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=8)
not_an_object = json_values.filter(lambda v: not isinstance(v, dict))
not_a_string = json_values.filter(lambda v: not isinstance(v, str))
not_a_string_nor_null = not_a_string.filter(lambda v: v is not None)
not_a_list = json_values.filter(lambda v: not isinstance(v, list))

# Where Slack's bodies hold a value of one type, and what would be the wrong type there.
EVENT_FIELDS: list[tuple[tuple[Any, ...], st.SearchStrategy[Any]]] = [
    ((), not_an_object), (("type",), not_a_string), (("event",), not_an_object),
    (("event", "type"), not_a_string), (("event", "user"), not_a_string), (("event", "channel"), not_a_string),
    (("event", "ts"), not_a_string), (("event", "text"), not_a_string_nor_null),
    (("event", "thread_ts"), not_a_string), (("event", "subtype"), not_a_string_nor_null),
    (("event", "team"), not_a_string_nor_null), (("event", "channel_type"), not_a_string),
    (("team_id",), not_a_string_nor_null), (("event_id",), not_a_string),
    (("authorizations",), not_a_list.filter(lambda v: v is not None)), (("authorizations", 0), not_an_object),
]
PAYLOAD_FIELDS: list[tuple[tuple[Any, ...], st.SearchStrategy[Any]]] = [
    ((), not_an_object), (("type",), not_a_string), (("user",), not_an_object), (("user", "id"), not_a_string),
    (("actions",), not_a_list), (("actions", 0), not_an_object), (("actions", 0, "action_id"), not_a_string),
    (("actions", 0, "value"), not_a_string), (("actions", 0, "action_ts"), not_a_string),
    (("team",), not_an_object.filter(lambda v: v is not None)), (("team", "id"), not_a_string),
    (("channel",), not_an_object.filter(lambda v: v is not None)), (("channel", "id"), not_a_string),
    (("container",), not_an_object.filter(lambda v: v is not None)),
    (("container", "thread_ts"), not_a_string), (("message",), not_an_object.filter(lambda v: v is not None)),
    (("message", "thread_ts"), not_a_string), (("trigger_id",), not_a_string),
]


def replaced(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    out = json.loads(json.dumps(body))
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


@pytest.fixture
async def bot(migrated_url: str) -> AsyncIterator[Harness]:
    async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm:
        llm.rule = lambda request: text_reply("On it.")
        h = Harness(migrated_url, slack, hub, llm)  # type: ignore[arg-type]
        await h.start()
        try:
            yield h
        finally:
            await h.stop()


async def stored(h: Harness) -> dict[str, int]:
    assert h.proc is not None
    async with h.proc.rt.db.session() as db:
        return {m.__name__: int((await db.execute(select(func.count()).select_from(m))).scalar_one()) for m in STORED}


def fuzz(send: Callable[[bytes, str], Any]) -> Callable[..., Any]:
    """Runs hypothesis in a worker thread; each example is sent on the test's event loop."""
    loop = asyncio.get_running_loop()
    statuses: list[tuple[int, bytes, str]] = []

    def post(body: bytes, content_type: str) -> None:
        status = asyncio.run_coroutine_threadsafe(send(body, content_type), loop).result(30)
        statuses.append((status, body, content_type))
        assert status == 400, (status, body[:300], content_type)

    return post


def mention_envelope() -> dict[str, Any]:
    return event_callback(mention_event("train something", user=REQUESTER))


def thread_reply_envelope() -> dict[str, Any]:
    return event_callback(message_event("and then?", user=REQUESTER, thread_ts="1700000000.000100"))


def click_payload() -> dict[str, Any]:
    return block_action("intern_approve", "7f1f0c36-6d2a-4b8e-9a57-3f1cf2a0c001", user=APPROVER,
                        channel="C0GENERAL", message_ts="1700000000.000200", thread_ts="1700000000.000100")


async def test_signed_well_typed_but_wrong_bodies_get_400_and_store_nothing(bot: Harness) -> None:
    async def send(body: bytes, content_type: str) -> int:
        return (await bot.sender.post(body, content_type)).status

    post = fuzz(send)

    @FUZZ
    @given(data=st.data())
    def events(data: st.DataObject) -> None:
        template = data.draw(st.sampled_from([mention_envelope(), thread_reply_envelope()]))
        path, wrong = data.draw(st.sampled_from(EVENT_FIELDS))
        post(json.dumps(replaced(template, path, data.draw(wrong))).encode(), "application/json")

    @FUZZ
    @given(data=st.data())
    def interactions(data: st.DataObject) -> None:
        path, wrong = data.draw(st.sampled_from(PAYLOAD_FIELDS))
        payload = json.dumps(replaced(click_payload(), path, data.draw(wrong)))
        post(urllib.parse.urlencode({"payload": payload}).encode(), "application/x-www-form-urlencoded")

    @FUZZ
    @given(data=st.data())
    def slash_commands(data: st.DataObject) -> None:
        fields = [("command", "/intern"), ("text", "ask train a model"), ("user_id", REQUESTER),
                  ("channel_id", "C0GENERAL"), ("team_id", bot.slack.team_id)]
        name = data.draw(st.sampled_from([k for k, _ in fields]))
        how = data.draw(st.sampled_from(["repeat", "drop command", "payload"]))
        if how == "repeat":
            fields.append((name, data.draw(st.text(max_size=10))))
        elif how == "drop command":
            fields = [(k, v) for k, v in fields if k != "command"]
        else:
            fields.append(("payload", json.dumps(data.draw(not_an_object))))
        post(urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded")

    for run in (events, interactions, slash_commands):
        await asyncio.to_thread(run)
    assert set((await stored(bot)).values()) == {0}

    # Still serving: a real mention after all that is stored and answered.
    event = mention_event("train something", user=REQUESTER)
    assert (await bot.sender.send_event(event)).status == 200
    await wait_until(lambda: "On it." in bot.slack.texts(thread_ts=event["ts"]), timeout=20)


@pytest.mark.parametrize("body", [b"[]", b"[1, 2]", b'"event_callback"', b"3", b"-1.5", b"null", b"true",
                                  b'[{"type": "event_callback"}]'])
async def test_a_json_body_that_is_not_an_object_gets_400(bot: Harness, body: bytes) -> None:
    r = await bot.sender.post(body, "application/json")
    assert r.status == 400 and "not an object" in r.text
    for payload in (body, b"payload=" + urllib.parse.quote(body).encode()):
        r = await bot.sender.post(payload, "application/x-www-form-urlencoded")
        assert r.status == 400
    assert set((await stored(bot)).values()) == {0}
