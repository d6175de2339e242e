"""Neutral cards → plain terminal text. Pure functions."""

from __future__ import annotations

from intern.bot.chat import Card

BODY_LINES = 40


def render_card(card: Card) -> str:
    lines = [f"┌─ {card.title}"]
    lines += [f"│ {k}: {v}" for k, v in card.fields]
    if card.body:
        body = card.body.splitlines()
        if len(body) > BODY_LINES:
            body = [*body[:BODY_LINES // 2], f"… ({len(body) - BODY_LINES} lines cut) …", *body[-BODY_LINES // 2:]]
        lines.append(f"│ {card.body_label or 'Text'}:")
        lines += [f"│   {b}" for b in body]
    lines += [f"│ {x}" for x in card.lines]
    if card.footer:
        lines.append(f"│ {card.footer}")
    if any(b.action == "approve" for b in card.buttons):
        lines.append("└─ answer `approve` or `deny [reason]`")
    else:
        lines.append("└─")
    return "\n".join(lines)
