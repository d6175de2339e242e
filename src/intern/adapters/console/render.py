"""Neutral cards and chat text → plain terminal text. Pure functions.

Messages are written for chat (Slack's mrkdwn: `*bold*`, `<@U123>`, `<https://x|label>`, `&lt;`); a
terminal shows them as a person would read them, in bold and dim where it can.
"""

from __future__ import annotations

import html
import re

from intern.adapters.slack import mentions as slack_mentions
from intern.bot.chat import Card, Mention, spell_mentions

BODY_LINES = 40
BOLD, DIM, RESET = "\033[1m", "\033[2m", "\033[0m"

_LINK = re.compile(r"<((?:https?|mailto):[^|>\s]+)(?:\|([^>]*))?>")
_USER = re.compile(r"<@([A-Za-z0-9_.-]+)(?:\|([^>]*))?>")
_GROUP = re.compile(r"<!subteam\^([A-Za-z0-9]+)(?:\|@?([^>]*))?>")
_ROLE = re.compile(r"<@&(\d+)>")
_CHANNEL = re.compile(r"<#([A-Za-z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_FENCE = re.compile(r"```\n?(.*?)\n?```", re.S)
_BOLD = re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])")
_CODE = re.compile(r"`([^`\n]+)`")


def spell_one(mention: Mention) -> str:
    """The console's text is chat text (Slack's mrkdwn): a mention is written as there, then shown plain."""
    if mention.kind == "role":
        return f"<@&{mention.id}>"
    return slack_mentions.spell_one(mention)


def spell(text: str) -> str:
    return spell_mentions(text, spell_one)


def plain(text: str, *, color: bool = False) -> str:
    """Slack mrkdwn and mention syntax as terminal text."""
    on, off = (BOLD, RESET) if color else ("", "")
    dim = DIM if color else ""
    text = _LINK.sub(lambda m: f"{m[2]} ({m[1]})" if m[2] and m[2] != m[1] else m[1], text)
    text = _USER.sub(lambda m: "@" + (m[2] or m[1]), text)
    text = _GROUP.sub(lambda m: "@" + (m[2] or m[1]), text)
    text = _ROLE.sub(lambda m: f"@role:{m[1]}", text)
    text = _CHANNEL.sub(lambda m: "#" + (m[2] or m[1]), text)
    text = _SPECIAL.sub(lambda m: "@" + m[1], text)
    text = _FENCE.sub(lambda m: "\n".join(f"    {dim}{line}{off}" for line in m[1].splitlines()), text)
    text = _BOLD.sub(lambda m: f"{on}{m[1]}{off}", text)
    text = _CODE.sub(lambda m: f"{on}{m[1]}{off}" if color else m[1], text)
    return html.unescape(text)


def render_card(card: Card, *, color: bool = False) -> str:
    lines = [f"┌─ {plain(card.title, color=color)}"]
    lines += [f"│ {k}: {plain(v, color=color)}" for k, v in card.fields]
    if card.body:
        body = card.body.splitlines()
        if len(body) > BODY_LINES:
            body = [*body[:BODY_LINES // 2], f"… ({len(body) - BODY_LINES} lines cut) …", *body[-BODY_LINES // 2:]]
        lines.append(f"│ {card.body_label or 'Text'}:")
        lines += [f"│   {b}" for b in body]
    lines += [f"│ {plain(x, color=color)}" for x in card.lines]
    if card.footer:
        lines.append(f"│ {plain(card.footer, color=color)}")
    if any(b.action == "approve" for b in card.buttons):
        lines.append("└─ answer `approve` or `deny`")
    else:
        lines.append("└─")
    return "\n".join(lines)
