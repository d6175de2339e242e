"""The Slack Web API stand-in through slack_sdk's AsyncWebClient, and the event sender against a
real slack_bolt app served on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from intern.standins.slack import (
    DEFAULT_BOT_ID,
    DEFAULT_BOT_USER,
    DEFAULT_TEAM,
    SlackEventSender,
    SlackStandIn,
    block_action,
    bot_message_event,
    mention_and_message,
    mention_event,
    message_changed_event,
    message_event,
    new_ts,
    sign,
    slash_command,
    thread_broadcast_event,
)

REFERENCE = Path(__file__).resolve().parent / "reference"  # real payloads Slack sent, kept as samples
SIGNING_SECRET = "standin-signing-secret"


def web_client(slack_api: SlackStandIn, token: str | None = None) -> AsyncWebClient:
    return AsyncWebClient(token=token or slack_api.token, base_url=f"{slack_api.url}/api/")


async def test_auth_test_describes_the_bot(slack_api: SlackStandIn) -> None:
    result = await web_client(slack_api).auth_test()
    assert (result["team_id"], result["user_id"], result["bot_id"]) == (DEFAULT_TEAM, DEFAULT_BOT_USER, DEFAULT_BOT_ID)


async def test_post_update_ephemeral_delete(slack_api: SlackStandIn) -> None:
    client = web_client(slack_api)
    root = await client.chat_postMessage(channel="C1", text="status: starting",
                                         blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}])
    reply = await client.chat_postMessage(channel="C1", thread_ts=root["ts"], text="step 1")
    assert float(reply["ts"]) > float(root["ts"])
    assert reply["message"]["thread_ts"] == root["ts"]
    assert root["message"]["blocks"][0]["block_id"]  # Slack fills in block ids
    await client.chat_update(channel="C1", ts=root["ts"], text="status: done")
    note = await client.chat_postEphemeral(channel="C1", user="U9", text="only you")
    await client.chat_delete(channel="C1", ts=reply["ts"])

    assert slack_api.texts("C1") == ["status: done"]
    assert [m.text for m in slack_api.posted("C1", root["ts"], include_deleted=True)] == ["status: done", "step 1"]
    updated = slack_api.message("C1", root["ts"])
    assert updated is not None and updated.edits[0]["text"] == "status: starting"
    assert updated.blocks[0]["text"]["text"] == "*hi*"  # blocks kept when an update gives text only
    assert [(m.ts, m.text) for m in slack_api.ephemerals("C1", user="U9")] == [(note["message_ts"], "only you")]


async def test_api_errors_are_slack_shaped(slack_api: SlackStandIn) -> None:
    client = web_client(slack_api)
    with pytest.raises(SlackApiError) as missing:
        await client.chat_update(channel="C1", ts="1.000001", text="x")
    assert missing.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as empty:
        await client.api_call("chat.postMessage", json={"channel": "C1", "text": ""})
    assert empty.value.response["error"] == "no_text"
    with pytest.raises(SlackApiError) as blocks:
        await client.chat_postMessage(channel="C1", text="t", blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}])
    assert blocks.value.response["error"] == "invalid_blocks"
    assert blocks.value.response["errors"] == ["must be less than 3001 characters [json-pointer:/blocks/0/text/text]"]
    slack_api.inject_error("chat.postMessage", "not_in_channel")
    with pytest.raises(SlackApiError) as injected:
        await client.chat_postMessage(channel="C1", text="t")
    assert injected.value.response["error"] == "not_in_channel"
    assert (await client.chat_postMessage(channel="C1", text="t"))["ok"]


async def test_token_is_checked(slack_api: SlackStandIn) -> None:
    with pytest.raises(SlackApiError) as wrong:
        await web_client(slack_api, token="xoxb-wrong").auth_test()
    assert wrong.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as missing:
        await AsyncWebClient(base_url=f"{slack_api.url}/api/").auth_test()
    assert missing.value.response["error"] == "not_authed"


async def test_form_and_json_bodies_are_both_accepted(slack_api: SlackStandIn) -> None:
    client = AsyncWebClient(base_url=f"{slack_api.url}/api/")
    blocks = [{"type": "section", "text": {"type": "plain_text", "text": "via form"}}]
    await client.api_call("chat.postMessage", data={"token": slack_api.token, "channel": "C2",
                                                    "text": "form", "blocks": json.dumps(blocks)})
    await client.api_call("chat.postMessage", json={"channel": "C2", "text": "json"},
                          headers={"Authorization": f"Bearer {slack_api.token}"})
    posted = slack_api.posted("C2")
    assert [m.text for m in posted] == ["form", "json"]
    assert posted[0].blocks[0]["text"]["text"] == "via form"
    assert [c["text"] for c in slack_api.method_calls("chat.postMessage")] == ["form", "json"]


async def test_people_groups_channels_and_home(slack_api: SlackStandIn) -> None:
    slack_api.add_user("U1", "alice", is_admin=True)
    slack_api.add_usergroup("S1", ["U1", "U2"])
    slack_api.add_channel("G7", "secret-lab", is_private=True)
    client = web_client(slack_api)
    user = (await client.users_info(user="U1"))["user"]
    assert (user["name"], user["is_admin"], user["team_id"]) == ("alice", True, DEFAULT_TEAM)
    assert (await client.usergroups_users_list(usergroup="S1"))["users"] == ["U1", "U2"]
    with pytest.raises(SlackApiError, match="no_such_subteam"):
        await client.usergroups_users_list(usergroup="S404")
    channel = (await client.conversations_info(channel="G7"))["channel"]
    assert channel["is_private"] and channel["name"] == "secret-lab"
    home = await client.views_publish(user_id="U1", view={"type": "home", "blocks": [{"type": "divider"}]})
    assert home["view"]["type"] == "home" and slack_api.views["U1"]["blocks"][0]["type"] == "divider"


async def test_reactions(slack_api: SlackStandIn) -> None:
    client = web_client(slack_api)
    await client.reactions_add(channel="C1", timestamp="1700000000.000100", name="eyes")
    with pytest.raises(SlackApiError, match="already_reacted"):
        await client.reactions_add(channel="C1", timestamp="1700000000.000100", name="eyes")
    assert slack_api.reactions == [("C1", "1700000000.000100", "eyes")]


# slack_sdk still builds aiohttp.BasicAuth for oauth.v2.access, which aiohttp 3.14 deprecates.
@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")
async def test_oauth_install_gives_a_working_bot_token(slack_api: SlackStandIn) -> None:
    slack_api.add_oauth_code("code-1", "T0OTHER")
    client = AsyncWebClient(base_url=f"{slack_api.url}/api/")
    with pytest.raises(SlackApiError, match="bad_client_secret"):
        await client.oauth_v2_access(client_id=slack_api.client_id, client_secret="nope", code="code-1")
    installed = await client.oauth_v2_access(client_id=slack_api.client_id, client_secret=slack_api.client_secret,
                                             code="code-1")
    assert installed["team"]["id"] == "T0OTHER" and installed["token_type"] == "bot"
    assert (await web_client(slack_api, installed["access_token"]).auth_test())["team_id"] == "T0OTHER"
    with pytest.raises(SlackApiError, match="invalid_code"):  # a code works once
        await client.oauth_v2_access(client_id=slack_api.client_id, client_secret=slack_api.client_secret,
                                     code="code-1")


async def test_files_upload_v2_into_a_thread(slack_api: SlackStandIn) -> None:
    client = web_client(slack_api)
    root = await client.chat_postMessage(channel="C3", text="approval card")
    result = await client.files_upload_v2(channel="C3", thread_ts=root["ts"], filename="train.py",
                                          content="print('train')\n", title="Full script",
                                          initial_comment="The full script")
    assert result["file"]["name"] == "train.py" and result["file"]["title"] == "Full script"
    upload_url = slack_api.method_calls("files.getUploadURLExternal")
    assert upload_url and upload_url[0]["filename"] == "train.py"
    stored = slack_api.files[result["file"]["id"]]
    assert stored.content == b"print('train')\n" and stored.completed
    shared = slack_api.posted("C3", root["ts"])[-1]
    assert shared.text == "The full script" and shared.files[0]["id"] == stored.file_id


async def test_rate_limit_injection(slack_api: SlackStandIn) -> None:
    slack_api.inject_rate_limit("chat.postMessage", times=1, retry_after=30)
    with pytest.raises(SlackApiError) as limited:
        await web_client(slack_api).chat_postMessage(channel="C1", text="x")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "30"
    assert limited.value.response["error"] == "ratelimited"

    slack_api.inject_rate_limit("chat.postMessage", times=1, retry_after=0)
    retrying = web_client(slack_api)
    retrying.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    assert (await retrying.chat_postMessage(channel="C1", text="second try"))["ok"]
    assert slack_api.texts("C1") == ["second try"]
    assert len(slack_api.calls("/api/chat.postMessage")) == 3


# --- the event sender, against a real bolt app ---------------------------------------------------


@pytest.fixture
async def bolt_app(slack_api: SlackStandIn) -> AsyncIterator[tuple[AsyncApp, str, list[tuple[str, Any]]]]:
    seen: list[tuple[str, Any]] = []
    app = AsyncApp(signing_secret=SIGNING_SECRET, client=web_client(slack_api))

    @app.middleware
    async def headers(req: Any, resp: Any, next: Any) -> Any:
        if "x-slack-retry-num" in req.headers:
            seen.append(("retry", (req.headers["x-slack-retry-num"][0], req.headers["x-slack-retry-reason"][0])))
        return await next()

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any]) -> None:
        seen.append(("mention", event))

    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        seen.append(("message", event))

    @app.action("approve")
    async def on_approve(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        seen.append(("approve", body))

    @app.command("/intern")
    async def on_command(ack: Any, command: dict[str, Any]) -> None:
        await ack(f"got {command['text']}")
        seen.append(("command", command))

    runner = web.AppRunner(app.web_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield app, f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def wait_for(seen: list[tuple[str, Any]], count: int) -> None:
    for _ in range(200):
        if len(seen) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"only {len(seen)} of {count} deliveries reached the app: {seen}")


async def test_signed_events_reach_bolt_handlers(bolt_app: Any) -> None:
    _, url, seen = bolt_app
    sender = SlackEventSender(url, SIGNING_SECRET)
    challenge = await sender.send_url_verification("abc123")
    assert challenge.status == 200 and challenge.json() == {"challenge": "abc123"}

    mention, message = mention_and_message("train a model", user="U5", channel="C5")
    first = await sender.send_event(mention)
    await sender.send_event(message)
    await wait_for(seen, 2)
    assert first.status == 200
    kinds = {kind: event for kind, event in seen}
    assert kinds["mention"]["text"] == f"<@{DEFAULT_BOT_USER}> train a model"
    assert kinds["mention"]["ts"] == kinds["message"]["ts"]


async def test_retry_headers_and_bad_signatures(bolt_app: Any) -> None:
    _, url, seen = bolt_app
    sender = SlackEventSender(url, SIGNING_SECRET)
    first = await sender.send_event(mention_event("hello"))
    await sender.send_envelope(first.payload, retry_num=1, retry_reason="http_timeout")
    await wait_for(seen, 3)
    assert ("retry", ("1", "http_timeout")) in seen
    forged = await SlackEventSender(url, "wrong-secret").send_event(mention_event("evil"))
    stale = await sender.post(b"{}", "application/json", timestamp=1_000_000)
    assert (forged.status, stale.status) == (401, 401)


async def test_bolt_ignores_its_own_bot_messages(bolt_app: Any) -> None:
    _, url, seen = bolt_app
    sender = SlackEventSender(url, SIGNING_SECRET)
    await sender.send_event(bot_message_event("I posted this", bot_id=DEFAULT_BOT_ID, user=DEFAULT_BOT_USER))
    await sender.send_event(message_event("a human"))
    await wait_for(seen, 1)
    await asyncio.sleep(0.05)
    assert [event["text"] for kind, event in seen if kind == "message"] == ["a human"]


async def test_block_action_and_slash_command(bolt_app: Any, slack_api: SlackStandIn) -> None:
    _, url, seen = bolt_app
    sender = SlackEventSender(url, SIGNING_SECRET)
    card = await web_client(slack_api).chat_postMessage(channel="C7", text="approve?", blocks=[
        {"type": "actions", "elements": [{"type": "button", "action_id": "approve", "value": "ap-1",
                                          "text": {"type": "plain_text", "text": "Approve"}}]}])
    posted = slack_api.message("C7", card["ts"])
    assert posted is not None
    click = await sender.send_interaction(block_action(
        "approve", "ap-1", user="U8", channel="C7", message_ts=card["ts"], message=posted.to_api(slack_api.workspace)))
    command = await sender.send_slash_command(slash_command("/intern", "status", user_id="U8"))
    await wait_for(seen, 2)
    assert click.status == 200 and command.status == 200 and command.text == "got status"
    body = dict(seen)["approve"]
    assert body["actions"][0]["value"] == "ap-1" and body["user"]["id"] == "U8"
    assert body["message"]["ts"] == card["ts"] and body["container"]["message_ts"] == card["ts"]


def test_signature_is_slacks_v0_hmac() -> None:
    from slack_sdk.signature import SignatureVerifier

    body, stamp = b'{"a":1}', "1700000000"
    verifier = SignatureVerifier(SIGNING_SECRET, clock=type("C", (), {"now": lambda self: 1700000000.0})())
    assert verifier.is_valid(body, stamp, sign(SIGNING_SECRET, stamp, body))
    assert not verifier.is_valid(body, stamp, sign("other", stamp, body))


# --- builders follow Slack's payload shapes ----------------------------------------------------------


def reference(name: str) -> dict[str, Any]:
    return json.loads((REFERENCE / f"{name}.json").read_text())["payload"]


@pytest.mark.parametrize(("name", "built"), [
    ("app_mention_event_callback", lambda: mention_event("hi")),
    ("message_thread_reply_event_callback", lambda: message_event("reply", thread_ts=new_ts())),
    ("message_thread_broadcast_event_callback", lambda: thread_broadcast_event("also here", thread_ts=new_ts())),
    ("message_bot_id_event_callback", lambda: bot_message_event("from another app")),
    ("message_bot_message_subtype_event_callback", lambda: bot_message_event("legacy", subtype_bot_message=True)),
    ("message_changed_event_callback", lambda: message_changed_event(message_ts=new_ts(), new_text="b",
                                                                     previous_text="a")),
])
def test_event_builders_have_slacks_keys(name: str, built: Any) -> None:
    real = reference(name)["event"]
    event = built()
    optional = {"user_team", "source_team", "user_profile", "enterprise_id"}
    assert set(real) - optional <= set(event), set(real) - set(event)
    assert event["type"] == real["type"] and event.get("subtype") == real.get("subtype")


def test_block_action_and_slash_command_have_slacks_keys() -> None:
    real = reference("block_actions_with_message")
    built = block_action("a", "v", message={"type": "message", "ts": "1.2", "text": "", "blocks": []})
    assert set(real) <= set(built)
    assert set(real["actions"][0]) <= set(built["actions"][0])
    assert set(real["container"]) <= set(built["container"])
    slash = json.loads((REFERENCE / "slash_command_form_body.json").read_text())["parsed"]
    assert set(slash) - {"enterprise_id", "enterprise_name"} <= set(slash_command("/intern", "x"))
