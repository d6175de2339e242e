"""Discord's mention syntax ↔ the core's neutral `Mention`s. Pure functions.

Discord writes a person as `<@123>` (older clients `<@!123>`) and a role as `<@&123>`. A policy stores
a person as the bare id and a role as `<@&123>`.
"""

from __future__ import annotations

import re

from intern.bot.chat import Mention, spell_mentions, without_tokens

USER = re.compile(r"<@!?(\d{5,25})>")
ROLE = re.compile(r"<@&(\d{5,25})>")


def translate(text: str) -> str:
    """Platform text → neutral text: each person and role mention becomes a `Mention` token."""
    text = without_tokens(text)
    if "<@" not in text:
        return text
    text = USER.sub(lambda m: str(Mention("user", m[1])), text)
    return ROLE.sub(lambda m: str(Mention("role", m[1])), text)


def spell_one(mention: Mention) -> str:
    if mention.kind == "user":
        return f"<@{mention.id}>"
    if mention.kind == "role":
        return f"<@&{mention.id}>"
    return "@" + (mention.label or mention.id)  # a Slack user group has no Discord spelling


def spell(text: str) -> str:
    return spell_mentions(text, spell_one)


def key_of(mention: Mention) -> str:
    return mention.id if mention.kind == "user" else f"<@&{mention.id}>"


def mention_of_key(key: str) -> Mention:
    m = ROLE.fullmatch(key)
    return Mention("role", m[1]) if m else Mention.user(key)
