"""Slack payload → neutral inbound types. Pure functions; no decision about who may do what."""

from __future__ import annotations

import json
from typing import Any

from intern.adapters.slack import mentions
from intern.bot.chat import ApprovalClick, Conversation, FeedbackClick, JobCancelClick, StopClick, UserMessage

PLATFORM = "slack"
# Message subtypes that carry a person's new words; edits, deletions, joins and bot posts do not.
HUMAN_SUBTYPES = {None, "thread_broadcast", "file_share", "me_message"}
ACTIONS = {"intern_approve": "approve", "intern_deny": "deny", "intern_stop": "stop", "intern_cancel_job": "cancel_job"}


def team_of(body: dict[str, Any]) -> str:
    """The workspace a request was delivered for: the envelope's team. Never `event.team` or the
    user's `team_id`: in Slack Connect channels those name the poster's home team, whose policy (if
    any) is not the channel's."""
    team = body.get("team_id")
    auths = body.get("authorizations")
    if not team and isinstance(auths, list) and auths and isinstance(auths[0], dict):
        team = auths[0].get("team_id")
    if not team and isinstance(body.get("team"), dict):
        team = body["team"].get("id")
    return str(team) if isinstance(team, str) else ""


def bot_user_of(body: dict[str, Any]) -> str | None:
    """The bot's own user id, as the Events API envelope names it (`authorizations`): known without
    asking the Web API."""
    for auth in body.get("authorizations") or []:
        if isinstance(auth, dict) and auth.get("is_bot") and isinstance(auth.get("user_id"), str):
            return str(auth["user_id"])
    return None


def message_from_event(body: dict[str, Any], bot_user_id: str | None) -> UserMessage | None:
    """An `app_mention` or `message` event → UserMessage, or None when it is not a person's new words."""
    event = body.get("event")
    if not isinstance(event, dict):
        return None
    if event.get("type") not in ("app_mention", "message"):
        return None
    subtype = event.get("subtype")
    if not isinstance(subtype, str | None) or subtype not in HUMAN_SUBTYPES or event.get("bot_id") \
            or not event.get("user"):
        return None
    if bot_user_id and event.get("user") == bot_user_id:
        return None
    channel, ts = event.get("channel"), event.get("ts")
    if not isinstance(channel, str) or not isinstance(ts, str):
        return None
    text = event.get("text") if isinstance(event.get("text"), str) else ""
    team = team_of(body)
    mention = f"<@{bot_user_id}>" if bot_user_id else None
    mentioned = event.get("type") == "app_mention" or bool(mention and mention in text) \
        or event.get("channel_type") == "im"
    if mention:
        text = text.replace(mention, " ")
    thread = event.get("thread_ts") if isinstance(event.get("thread_ts"), str) else ts
    return UserMessage(
        conversation=Conversation(PLATFORM, team, channel, thread),
        user=str(event["user"]),
        text=mentions.translate(" ".join(text.split(" ")).strip()),
        event_key=f"{PLATFORM}:{team}:{channel}:{ts}",
        mentioned=mentioned,
    )


def click_from_action(body: dict[str, Any]) -> ApprovalClick | StopClick | JobCancelClick | None:
    actions = body.get("actions")
    user = body.get("user")
    if not isinstance(actions, list) or not actions or not isinstance(user, dict) or not user.get("id"):
        return None
    action = actions[0]
    if not isinstance(action, dict):
        return None
    kind = ACTIONS.get(str(action.get("action_id")))
    value = action.get("value")
    if kind is None or not isinstance(value, str):
        return None
    team = team_of(body)
    key = f"{PLATFORM}:{team}:{user['id']}:{action.get('action_ts') or body.get('trigger_id') or ''}"
    if kind == "stop":
        return StopClick(value, str(user["id"]), team, PLATFORM, key)
    if kind == "cancel_job":
        return JobCancelClick(value[:64], str(user["id"]), team, PLATFORM, key)
    return ApprovalClick(value[:200], str(user["id"]), team, PLATFORM, kind, key)  # type: ignore[arg-type]


def feedback_from_action(body: dict[str, Any]) -> FeedbackClick | None:
    """A click on the feedback buttons of an answer (`value` `up:<session id>` / `down:<session id>`)."""
    actions, user = body.get("actions"), body.get("user")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict) \
            or not isinstance(user, dict) or not user.get("id"):
        return None
    vote, _, session_id = str(actions[0].get("value") or "").partition(":")
    channel, _ = click_location(body)
    container = body.get("container") if isinstance(body.get("container"), dict) else {}
    message = body.get("message") if isinstance(body.get("message"), dict) else {}
    ts = message.get("ts") or container.get("message_ts")
    if vote not in ("up", "down") or not session_id or not isinstance(channel, str) or not isinstance(ts, str):
        return None
    team = team_of(body)
    key = f"{PLATFORM}:{team}:{user['id']}:{actions[0].get('action_ts') or ''}"
    return FeedbackClick(session_id[:64], vote, str(user["id"]), team, PLATFORM, channel, ts, key)  # type: ignore[arg-type]


def reason_metadata(click: FeedbackClick, thread: str | None) -> str:
    """What the reason modal carries back: which answer, in which thread."""
    return json.dumps({"s": click.session_id, "c": click.channel, "m": click.message, "t": thread or ""})


def reason_from_view(body: dict[str, Any]) -> tuple[FeedbackClick, str] | None:
    """The submitted reason of a down-vote → the same vote with its reason, and the thread."""
    view, user = body.get("view"), body.get("user")
    if not isinstance(view, dict) or not isinstance(user, dict) or not user.get("id"):
        return None
    try:
        meta = json.loads(str(view.get("private_metadata") or ""))
        reason = view["state"]["values"]["reason"]["reason"].get("value") or ""
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(meta, dict) or not all(isinstance(meta.get(k), str) for k in "scmt"):
        return None
    team = team_of(body)
    click = FeedbackClick(meta["s"][:64], "down", str(user["id"]), team, PLATFORM, meta["c"], meta["m"],
                          f"{PLATFORM}:{team}:{user['id']}:reason:{meta['m']}", reason=str(reason) or None)
    return click, meta["t"]


def clicked_message_ts(body: dict[str, Any]) -> str | None:
    """The ts of the message whose button was clicked (`container.message_ts`)."""
    container = body.get("container") if isinstance(body.get("container"), dict) else {}
    ts = container.get("message_ts")
    if not isinstance(ts, str):
        message = body.get("message") if isinstance(body.get("message"), dict) else {}
        ts = message.get("ts")
    return ts if isinstance(ts, str) and ts else None


def click_location(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(channel, thread) of the clicked message, to answer privately next to it."""
    container = body.get("container") if isinstance(body.get("container"), dict) else {}
    channel = (body.get("channel") or {}).get("id") if isinstance(body.get("channel"), dict) else None
    channel = channel or container.get("channel_id")
    message = body.get("message") if isinstance(body.get("message"), dict) else {}
    thread = message.get("thread_ts") or container.get("thread_ts")
    return channel, thread
