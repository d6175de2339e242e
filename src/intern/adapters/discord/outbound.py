"""Neutral outbound types → Discord messages: text pieces, embeds and card buttons. Pure functions."""

from __future__ import annotations

import io
import re

import discord

from intern.adapters.discord.components import CardButton
from intern.adapters.text import split_message
from intern.bot.chat import Card

TEXT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FIELDS_LIMIT = 25
FOOTER_LIMIT = 2048
EMBED_LIMIT = 6000  # title, description, field names and values and footer together
INLINE_UNDER = 60
COLOURS = {
    "pending": 0xF1C40F, "approved": 0x2ECC71, "done": 0x2ECC71, "denied": 0xE74C3C, "error": 0xE74C3C,
    "expired": 0x95A5A6, "cancelled": 0x95A5A6, "superseded": 0x95A5A6, "running": 0x3498DB, "info": 0x3498DB,
}
FENCE_LANGUAGE = {"script": "py", "diff": "diff", "command": "sh"}
CUT_NOTE = "\n… (cut: the full text is attached to this message) …\n"
SLACK_BOLD = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")
CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.DOTALL)


def chunks(text: str) -> list[str]:
    return split_message(text or "(empty)", TEXT_LIMIT)


def markdown(text: str) -> str:
    """The bot's own replies are written with Slack's `*bold*`; Discord reads that as italics."""
    parts = CODE.split(text)
    return "".join(p if i % 2 else SLACK_BOLD.sub(r"**\1**", p) for i, p in enumerate(parts))


def cut_middle(text: str, limit: int) -> tuple[str, bool]:
    """Head and tail of a text too long for `limit`, and whether it was cut."""
    if len(text) <= limit:
        return text, False
    keep = max(0, limit - len(CUT_NOTE))
    head = keep * 2 // 3
    return text[:head] + CUT_NOTE + text[len(text) - (keep - head):], True


def code_block(label: str | None, body: str, room: int) -> tuple[str, bool]:
    language = FENCE_LANGUAGE.get((label or "").lower(), "")
    prefix = f"**{label}**\n" if label else ""
    opening, closing = f"```{language}\n", "\n```"
    inner, cut = cut_middle(body.replace("```", "ʼʼʼ"), room - len(prefix) - len(opening) - len(closing))
    return f"{prefix}{opening}{inner}{closing}", cut


def line_fields(card: Card) -> list[tuple[str, str]]:
    """The card's lines as fields of at most 1,024 characters each."""
    if not card.lines:
        return []
    name = "Checks" if card.body is not None or any(b.action != "stop" for b in card.buttons) else "Progress"
    pieces = split_message("\n".join(card.lines), FIELD_VALUE_LIMIT)
    return [(name if i == 0 else f"{name} (continued)", p[:FIELD_VALUE_LIMIT]) for i, p in enumerate(pieces)]


def card_fields(card: Card) -> list[tuple[str, str, bool]]:
    fields = [((k or "\u200b")[:FIELD_NAME_LIMIT], (v or "—")[:FIELD_VALUE_LIMIT], len(v or "") <= INLINE_UNDER)
              for k, v in card.fields]
    fields += [(k, v, False) for k, v in line_fields(card)]
    if len(fields) > FIELDS_LIMIT:
        hidden = len(fields) - FIELDS_LIMIT + 1
        fields = [*fields[:FIELDS_LIMIT - 1], ("…", f"{hidden} more not shown", False)]
    return fields


def card_embed(card: Card) -> tuple[discord.Embed, bool]:
    """An embed for a card, and whether the body had to be cut (then the full text is attached)."""
    embed = discord.Embed(title=card.title[:TITLE_LIMIT] or "Intern", colour=COLOURS.get(card.state, COLOURS["info"]))
    for name, value, inline in card_fields(card):
        embed.add_field(name=name, value=value, inline=inline)
    if card.footer:
        embed.set_footer(text=card.footer[:FOOTER_LIMIT])
    while len(embed) > EMBED_LIMIT - 200 and embed.fields:
        embed.remove_field(-1)
    cut = False
    if card.body:
        room = min(DESCRIPTION_LIMIT, EMBED_LIMIT - len(embed))
        embed.description, cut = code_block(card.body_label, card.body, room)
    return embed, cut


def card_view(card: Card) -> discord.ui.View | None:
    """The card's buttons as dynamic items, or None for a card without buttons (a decided one)."""
    if not card.buttons:
        return None
    view = discord.ui.View(timeout=None)
    for button in card.buttons[:25]:
        view.add_item(CardButton(button.action, button.value, button.label))
    return view


def feedback_view(session_id: str) -> discord.ui.View:
    """Thumbs up and down under a final answer (dynamic items: they work after a restart)."""
    view = discord.ui.View(timeout=None)
    view.add_item(CardButton("feedback", f"up:{session_id}", "👍"))
    view.add_item(CardButton("feedback", f"down:{session_id}", "👎"))
    return view


def full_text_file(card: Card, cut: bool) -> discord.File | None:
    """The full body as a text file, when the card shows only its head and tail."""
    if card.attachment is not None:
        filename, content = card.attachment
    elif cut and card.body:
        filename = "full_" + (card.body_label or "text").lower().replace(" ", "_") + ".txt"
        content = card.body
    else:
        return None
    return text_file(filename, content)


def text_file(filename: str, content: str) -> discord.File:
    return discord.File(io.BytesIO(content.encode()), filename=filename)
