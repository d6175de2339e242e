"""Hostile and malformed platform payloads through the inbound translators (Slack events and button
clicks, Discord messages and component ids): nothing raises, and what comes out is only what the
payload really said — the bot's own and other bots' messages, edits and foreign buttons are dropped."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intern.adapters.discord import inbound as discord
from intern.adapters.slack.inbound import (
    ACTIONS,
    HUMAN_SUBTYPES,
    click_from_action,
    click_location,
    feedback_from_action,
    message_from_event,
    team_of,
)
from intern.adapters.slack.outbound import FEEDBACK_ACTION
from intern.bot.chat import ApprovalClick, FeedbackClick, JobCancelClick, StopClick, UserMessage
from intern.standins.slack import block_action, event_callback, mention_event, message_event

FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
BOT = "U0INTERN"

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)
hostile_text = st.one_of(
    st.text(max_size=200),
    st.sampled_from([f"<@{BOT}>", f"<@{BOT}> stop", "stop", "<!subteam^S0ADMINS>", "<@U0APPROVER>", "\u202e",
                     "' OR 1=1 --", "\x00", "a" * 5000, "intern:approve:", "intern:deny:" + "9" * 300]),
)


def mutate(base: dict[str, Any], data: st.DataObject, keys: list[str]) -> dict[str, Any]:
    out = dict(base)
    for key in data.draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys))):
        if data.draw(st.booleans()):
            out.pop(key, None)
        else:
            out[key] = data.draw(st.one_of(json_values, hostile_text))
    return out


EVENT_KEYS = ["type", "subtype", "user", "text", "channel", "ts", "thread_ts", "team", "bot_id", "channel_type",
              "blocks", "edited", "message", "hidden"]


@FUZZ
@given(data=st.data())
def test_slack_events_never_crash_and_only_people_get_through(data: st.DataObject) -> None:
    template = data.draw(st.sampled_from([
        mention_event("train a model", user="U0ALICE"),
        message_event("hello", user="U0ALICE", thread_ts="1700000000.000100"),
        message_event("hi", user="U0ALICE", channel_type="im"),
        message_event("edited", user="U0ALICE", subtype="message_changed"),
    ]))
    event = mutate(template, data, EVENT_KEYS)
    body = mutate(event_callback(event), data, ["event", "team_id", "authorizations", "team"])
    if data.draw(st.booleans()):
        body = data.draw(json_values) if data.draw(st.booleans()) else body
    bot = data.draw(st.sampled_from([BOT, None, ""]))
    body_for = body if isinstance(body, dict) else {"event": body}
    msg = message_from_event(body_for, bot)
    team_of(body_for)
    if msg is None:
        return
    ev = body_for["event"]
    assert isinstance(msg, UserMessage)
    assert ev.get("type") in ("app_mention", "message")
    assert ev.get("subtype") in HUMAN_SUBTYPES and not ev.get("bot_id")
    assert ev.get("user") and (not bot or ev.get("user") != bot)
    assert isinstance(ev.get("channel"), str) and isinstance(ev.get("ts"), str)
    assert msg.conversation.channel == ev["channel"]
    assert msg.event_key == f"slack:{msg.conversation.workspace}:{ev['channel']}:{ev['ts']}"
    assert isinstance(msg.text, str) and isinstance(msg.user, str) and msg.user
    if bot:
        assert f"<@{bot}>" not in msg.text
    if msg.mentioned:
        assert ev.get("type") == "app_mention" or ev.get("channel_type") == "im" or (
            bool(bot) and f"<@{bot}>" in str(ev.get("text")))


@FUZZ
@given(data=st.data())
def test_slack_clicks_never_crash_and_decide_only_what_the_button_says(data: st.DataObject) -> None:
    action_id = data.draw(st.one_of(st.sampled_from([*ACTIONS, "intern_approve ", "INTERN_APPROVE", "other"]),
                                    st.text(max_size=20)))
    value = data.draw(st.one_of(st.uuids().map(str), hostile_text))
    body = block_action(action_id if isinstance(action_id, str) else "x", value if isinstance(value, str) else "v",
                        user=data.draw(st.sampled_from(["U0APPROVER", "U0EVIL"])))
    body = mutate(body, data, ["actions", "user", "team", "container", "channel", "message", "trigger_id"])
    actions = body.get("actions")
    if isinstance(actions, list) and actions and isinstance(actions[0], dict) and data.draw(st.booleans()):
        body["actions"] = [mutate(body["actions"][0], data, ["action_id", "value", "action_ts", "type"]),
                           *body["actions"][1:]]
    click = click_from_action(body)
    click_location(body)
    if click is None:
        return
    action = body["actions"][0]
    assert action["action_id"] in ACTIONS and isinstance(action["value"], str)
    assert click.user == str(body["user"]["id"]) and body["user"]["id"]
    assert click.platform == "slack"
    if isinstance(click, StopClick):
        assert ACTIONS[action["action_id"]] == "stop" and click.session_id == action["value"]
    elif isinstance(click, JobCancelClick):
        assert ACTIONS[action["action_id"]] == "cancel_job" and click.job_id == action["value"][:64]
    else:
        assert isinstance(click, ApprovalClick)
        assert click.decision == ACTIONS[action["action_id"]] and click.decision in ("approve", "deny")
        assert click.approval_id == action["value"][:200]


@FUZZ
@given(data=st.data())
def test_slack_feedback_clicks_never_crash_and_carry_only_a_vote_the_button_says(data: st.DataObject) -> None:
    value = data.draw(st.one_of(st.builds(lambda v, s: f"{v}:{s}", st.sampled_from(["up", "down", "UP", "sideways"]),
                                          st.one_of(st.uuids().map(str), hostile_text)), hostile_text))
    body = block_action(FEEDBACK_ACTION, value, user=data.draw(st.sampled_from(["U0APPROVER", "U0EVIL"])),
                        message_ts="1700000000.000100")
    body = mutate(body, data, ["actions", "user", "team", "container", "channel", "message", "trigger_id"])
    click = feedback_from_action(body)
    if click is None:
        return
    vote, _, session = body["actions"][0]["value"].partition(":")
    assert click.vote == vote and vote in ("up", "down") and click.session_id == session[:64] and session
    assert click.user == str(body["user"]["id"]) and click.platform == "slack" and click.message


ids = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**64))


@FUZZ
@given(guild=ids, channel=ids, parent=ids, is_thread=st.booleans(), text=hostile_text, user=hostile_text,
       bot=st.one_of(st.none(), st.sampled_from(["42", ""])), kind=st.integers(-5, 30), is_bot=st.booleans(),
       roles=st.lists(hostile_text, max_size=3).map(tuple), message_id=st.text(max_size=30))
def test_discord_messages_never_crash_and_only_people_in_threads_get_through(
        guild: int | None, channel: int | None, parent: int | None, is_thread: bool, text: str, user: str,
        bot: str | None, kind: int, is_bot: bool, roles: tuple[str, ...], message_id: str) -> None:
    here = discord.where(guild, channel, thread_parent=parent, is_thread=is_thread)
    if guild is None or channel is None or (is_thread and not parent):
        assert here is None
        return
    assert here is not None
    msg = discord.thread_message(here, user=user, message_id=message_id, text=text, message_type=kind,
                                 author_is_bot=is_bot, bot_user_id=bot, roles=roles)
    name = discord.thread_name(text)
    assert 0 < len(name) <= discord.THREAD_NAME_LIMIT
    if msg is None:
        return
    assert is_thread and not is_bot and user != bot and kind in discord.HUMAN_MESSAGE_TYPES
    assert not msg.mentioned and msg.user == user and msg.conversation.thread == str(channel)
    assert msg.event_key == f"discord:{guild}:{channel}:{message_id}"
    if bot:
        assert f"<@{bot}>" not in msg.text and f"<@!{bot}>" not in msg.text


@FUZZ
@given(custom_id=st.one_of(hostile_text, st.builds(lambda a, v: f"intern:{a}:{v}",
                                                   st.sampled_from(["approve", "deny", "stop", "cancel_job",
                                                                    "feedback", "APPROVE", "x"]),
                                                   st.one_of(hostile_text, st.builds(
                                                       lambda v, s: f"{v}:{s}", st.sampled_from(["up", "down"]),
                                                       hostile_text)))),
       guild=ids, user=hostile_text, roles=st.lists(hostile_text, max_size=3).map(tuple),
       where=st.one_of(st.none(), st.tuples(st.integers(1, 2**63), st.integers(1, 2**63))))
def test_discord_buttons_never_crash_and_decide_only_what_the_id_says(custom_id: str, guild: int | None, user: str,
                                                                     roles: tuple[str, ...],
                                                                     where: tuple[int, int] | None) -> None:
    channel, message = where or (None, None)
    click = discord.click(custom_id, user=user, guild_id=guild, interaction_id="1234", roles=roles,
                          channel_id=channel, message_id=message)
    ours = re.fullmatch(r"intern:(approve|deny|stop|cancel_job|feedback):(.+)", custom_id)
    if click is None:
        feedback_without_place = ours is not None and ours[1] == "feedback"
        assert ours is None or guild is None or feedback_without_place
        return
    assert ours is not None and guild is not None
    assert click.workspace == str(guild) and click.user == user
    if isinstance(click, StopClick):
        assert ours[1] == "stop" and click.session_id == ours[2]
    elif isinstance(click, JobCancelClick):
        assert ours[1] == "cancel_job" and click.job_id == ours[2][:64]
    elif isinstance(click, FeedbackClick):
        vote, _, session = ours[2].partition(":")
        assert ours[1] == "feedback" and click.vote == vote and click.session_id == session[:64]
        assert (click.channel, click.message) == (str(channel), str(message))
    else:
        assert click.decision == ours[1] and click.approval_id == ours[2]
