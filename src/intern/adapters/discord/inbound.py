"""Discord events → neutral inbound types. Pure functions over ids and text; who may do what is
decided in `bot/`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from intern.adapters.discord import mentions
from intern.bot.chat import (
    ApprovalClick,
    Command,
    Conversation,
    FeedbackClick,
    JobCancelClick,
    MessageRef,
    StopClick,
    UserMessage,
)

PLATFORM = "discord"
CUSTOM_ID = re.compile(r"intern:(?P<action>approve|deny|stop|cancel_job|feedback):(?P<value>.+)")
# Message types that carry a person's new words: DEFAULT and REPLY. Joins, pins, thread-created
# notices and the like are system messages.
HUMAN_MESSAGE_TYPES = frozenset({0, 19})
THREAD_NAME_LIMIT = 100


@dataclass(frozen=True)
class Where:
    """A place in a guild: a text channel, or a thread and the text channel it belongs to."""

    guild: str
    channel: str  # the text channel; a thread follows its parent channel's policy
    thread: str = ""

    @property
    def conversation(self) -> Conversation:
        return Conversation(PLATFORM, self.guild, self.channel, self.thread)

    @property
    def target(self) -> str:
        """The Discord channel id to post in."""
        return self.thread or self.channel


def where(guild_id: int | None, channel_id: int | None, *, thread_parent: int | None = None,
          is_thread: bool = False) -> Where | None:
    """None outside a guild (DMs) or for a thread whose parent is unknown."""
    if guild_id is None or channel_id is None:
        return None
    if is_thread:
        return Where(str(guild_id), str(thread_parent), str(channel_id)) if thread_parent else None
    return Where(str(guild_id), str(channel_id))


def strip_bot_mention(text: str, bot_user_id: str | None) -> str:
    if bot_user_id:
        text = text.replace(f"<@{bot_user_id}>", " ").replace(f"<@!{bot_user_id}>", " ")
    return text.strip()


def thread_message(here: Where, *, user: str, message_id: str, text: str, message_type: int,
                   author_is_bot: bool, bot_user_id: str | None, roles: tuple[str, ...]) -> UserMessage | None:
    """A person's message in a thread continues that thread's session (if it has one)."""
    if not here.thread or author_is_bot or user == bot_user_id or message_type not in HUMAN_MESSAGE_TYPES:
        return None
    return UserMessage(conversation=here.conversation, user=user,
                       text=mentions.translate(strip_bot_mention(text, bot_user_id)),
                       event_key=f"{PLATFORM}:{here.guild}:{here.thread}:{message_id}", mentioned=False,
                       user_groups=roles)


def ask_message(here: Where, *, user: str, task: str, interaction_id: str, roles: tuple[str, ...]) -> UserMessage:
    """`/intern ask task:…` addresses the bot explicitly: it starts the thread's session."""
    return UserMessage(conversation=here.conversation, user=user, text=mentions.translate(task.strip()),
                       event_key=f"{PLATFORM}:{interaction_id}", mentioned=True, user_groups=roles)


def stop_message(here: Where, *, user: str, interaction_id: str, roles: tuple[str, ...]) -> UserMessage:
    """`/intern stop` is Discord's spelling of typing `stop` in the session's thread."""
    return UserMessage(conversation=here.conversation, user=user, text="stop",
                       event_key=f"{PLATFORM}:{interaction_id}", mentioned=False, user_groups=roles)


def command(here: Where, *, user: str, name: str, args: str, roles: tuple[str, ...]) -> Command:
    return Command(conversation=here.conversation, user=user, name=name,  # type: ignore[arg-type]
                   args=mentions.translate(args.strip()),
                   user_groups=roles)


def click(custom_id: str, *, user: str, guild_id: int | None, interaction_id: str, roles: tuple[str, ...],
          channel_id: int | None = None, message_id: int | None = None,
          ) -> ApprovalClick | StopClick | JobCancelClick | FeedbackClick | None:
    """A card button press; None when the id is not one of ours or the press came from outside a guild."""
    m = CUSTOM_ID.fullmatch(custom_id)
    if m is None or guild_id is None:
        return None
    key = f"{PLATFORM}:{interaction_id}"
    if m["action"] == "feedback":
        vote, _, session_id = m["value"].partition(":")
        if vote not in ("up", "down") or not session_id or channel_id is None or message_id is None:
            return None
        return FeedbackClick(session_id[:64], vote, user, str(guild_id), PLATFORM, str(channel_id),  # type: ignore[arg-type]
                             str(message_id), key)
    if m["action"] == "stop":
        return StopClick(m["value"], user, str(guild_id), PLATFORM, key, user_groups=roles)
    if m["action"] == "cancel_job":
        return JobCancelClick(m["value"][:64], user, str(guild_id), PLATFORM, key, user_groups=roles)
    # Cards live in the session's thread: the thread is the channel the button was pressed in.
    card = (MessageRef(PLATFORM, str(channel_id), str(message_id), str(channel_id))
            if channel_id is not None and message_id is not None else None)
    return ApprovalClick(m["value"], user, str(guild_id), PLATFORM, m["action"], key,  # type: ignore[arg-type]
                         user_groups=roles, card=card)


def thread_name(task: str) -> str:
    """A thread title from the task: its first line, squeezed, within Discord's 100 characters."""
    first = next((line for line in task.splitlines() if line.strip()), "")
    name = " ".join(first.split())
    if len(name) > THREAD_NAME_LIMIT:
        name = name[:THREAD_NAME_LIMIT - 1].rstrip() + "…"
    return name or "Intern session"
