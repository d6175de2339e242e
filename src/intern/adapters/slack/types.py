"""The Slack payload shapes we read (they never leave this package)."""

from __future__ import annotations

from typing import NotRequired, TypedDict


class SlackMessageEvent(TypedDict):
    type: str
    channel: str
    ts: str
    text: NotRequired[str]
    user: NotRequired[str]
    team: NotRequired[str]
    thread_ts: NotRequired[str]
    subtype: NotRequired[str]
    bot_id: NotRequired[str]
    channel_type: NotRequired[str]


class SlackAction(TypedDict):
    action_id: str
    value: NotRequired[str]
    action_ts: NotRequired[str]
