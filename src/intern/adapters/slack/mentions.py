"""Slack's mention syntax ↔ the core's neutral `Mention`s. Pure functions.

Slack writes a person as `<@U123>` (`<@U123|name>` in slash commands, which escape mentions) and a
user group as `<!subteam^S123>` (`<!subteam^S123|@handle>`). A policy stores a person as the bare id
and a group as `<!subteam^S123>`.
"""

from __future__ import annotations

import re

from intern.bot.chat import Mention, spell_mentions, without_tokens

USER = re.compile(r"<@([UWB][A-Z0-9]+)(?:\|([^>]*))?>")
GROUP = re.compile(r"<!subteam\^([A-Z0-9]+)(?:\|([^>]*))?>")


def translate(text: str) -> str:
    """Platform text → neutral text: each person and user group mention becomes a `Mention` token."""
    text = without_tokens(text)
    if "<" not in text:
        return text
    text = USER.sub(lambda m: str(Mention("user", m[1], m[2] or "")), text)
    return GROUP.sub(lambda m: str(Mention("group", m[1], m[2] or "")), text)


def spell_one(mention: Mention) -> str:
    label = f"|{mention.label}" if mention.label else ""
    if mention.kind == "user":
        return f"<@{mention.id}{label}>"
    if mention.kind == "group":
        return f"<!subteam^{mention.id}{label}>"
    return "@" + (mention.label or mention.id)  # a Discord role has no Slack spelling


def spell(text: str) -> str:
    return spell_mentions(text, spell_one)


def key_of(mention: Mention) -> str:
    return mention.id if mention.kind == "user" else f"<!subteam^{mention.id}>"


def mention_of_key(key: str) -> Mention:
    m = GROUP.fullmatch(key)
    if m:
        return Mention("group", m[1])
    m = USER.fullmatch(key)
    return Mention.user(m[1] if m else key)
