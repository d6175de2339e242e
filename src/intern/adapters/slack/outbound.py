"""Neutral outbound types → Slack Block Kit. Pure functions."""

from __future__ import annotations

from typing import Any

from intern.adapters.text import split_message
from intern.bot.chat import Card

SECTION_LIMIT = 3000  # characters in one section's text
FIELDS_PER_SECTION = 10
TEXT_CHUNK = 3900
ACTION_IDS = {"approve": "intern_approve", "deny": "intern_deny", "stop": "intern_stop",
              "cancel_job": "intern_cancel_job"}
STYLE = {"approve": "primary", "deny": "danger", "stop": "danger", "cancel_job": "danger"}


def cut_middle(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    note = "\n… (cut: the full text is attached to this thread) …\n"
    keep = limit - len(note)
    head = keep * 2 // 3
    return text[:head] + note + text[-(keep - head):], True


def code_block(label: str | None, body: str) -> tuple[str, bool]:
    fence = "```"
    prefix = f"*{label}*\n" if label else ""
    room = SECTION_LIMIT - len(prefix) - 2 * len(fence) - 2
    inner, cut = cut_middle(body.replace("```", "ʼʼʼ"), room)
    return f"{prefix}{fence}\n{inner}{fence}", cut


def card_blocks(card: Card) -> tuple[list[dict[str, Any]], bool]:
    """Blocks for a card, and whether the body had to be cut (then it is attached as a file)."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": card.title[:150], "emoji": True}}]
    for i in range(0, len(card.fields), FIELDS_PER_SECTION):
        chunk = card.fields[i:i + FIELDS_PER_SECTION]
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*{k}*\n{v}"[:2000]} for k, v in chunk]})
    cut = False
    if card.body:
        text, cut = code_block(card.body_label, card.body)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    if card.lines:
        text = "\n".join(card.lines)
        for start in range(0, len(text), SECTION_LIMIT):
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[start:start + SECTION_LIMIT]}})
    if card.buttons:
        blocks.append({"type": "actions", "block_id": "intern_actions", "elements": [
            {"type": "button", "action_id": ACTION_IDS[b.action], "value": b.value, "style": STYLE[b.action],
             "text": {"type": "plain_text", "text": b.label}} for b in card.buttons]})
    if card.footer:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": card.footer[:3000]}]})
    return blocks[:50], cut


FEEDBACK_ACTION = "intern_feedback"
REASON_CALLBACK = "intern_feedback_reason"


def answer_blocks(text: str, session_id: str) -> list[dict[str, Any]]:
    """The last piece of a final answer, with Slack's feedback buttons under it."""
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "context_actions", "block_id": "intern_feedback", "elements": [{
                "type": "feedback_buttons", "action_id": FEEDBACK_ACTION,
                "positive_button": {"text": {"type": "plain_text", "text": "👍"}, "value": f"up:{session_id}",
                                    "accessibility_label": "This answer was helpful"},
                "negative_button": {"text": {"type": "plain_text", "text": "👎"}, "value": f"down:{session_id}",
                                    "accessibility_label": "This answer was not helpful"}}]}]


def reason_modal(metadata: str) -> dict[str, Any]:
    """The optional reason of a down-vote: one text field."""
    return {"type": "modal", "callback_id": REASON_CALLBACK, "private_metadata": metadata,
            "title": {"type": "plain_text", "text": "What went wrong?"},
            "submit": {"type": "plain_text", "text": "Send"}, "close": {"type": "plain_text", "text": "Skip"},
            "blocks": [{"type": "input", "block_id": "reason", "optional": True,
                        "label": {"type": "plain_text", "text": "Tell the team what was wrong with this answer"},
                        "element": {"type": "plain_text_input", "action_id": "reason", "multiline": True,
                                    "max_length": 2000}}]}


def card_fallback_text(card: Card) -> str:
    return card.title[:3000]


def chunks(text: str, size: int = TEXT_CHUNK) -> list[str]:
    return split_message(text, size)
