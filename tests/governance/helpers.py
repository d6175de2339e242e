"""Driving the real bot through signed Slack requests for the governance tests: commands, cards, clicks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from intern.bot.models import Approval, AuditEvent, ChannelPolicy
from intern.standins.llm import text_reply, tool_calls_reply
from intern.standins.slack import PostedMessage, block_action, mention_event, message_event
from tests.e2e.harness import Harness, wait_until

ADMIN = "U0ADMIN"  # in INTERN_APPROVERS: a global administrator
CHANNEL_ADMIN = "U0CHADMIN"
APPROVER_1, APPROVER_2, APPROVER_3 = "U0APPR1", "U0APPR2", "U0APPR3"
REQUESTER = "U0REQ"
BYSTANDER = "U0NOBODY"
CHANNEL = "C0GENERAL"


@dataclass(frozen=True)
class Answer:
    public: bool
    text: str


def rt(h: Harness) -> Any:
    assert h.proc is not None
    return h.proc.rt


async def command(h: Harness, words: str, user: str, channel: str = CHANNEL) -> Answer:
    """`@intern <words>` as a new top-level message; the bot's answer, public in the thread or private."""
    event = mention_event(words, user=user, channel=channel)
    assert (await h.sender.send_event(event)).status == 200
    thread = event["ts"]

    def answered() -> list[PostedMessage]:
        return [m for m in h.slack.messages if m.thread_ts == thread and m.channel == channel]

    await wait_until(answered, timeout=10)
    reply = answered()[0]
    return Answer(reply.ephemeral_user is None, reply.text)


async def policy_row(h: Harness, channel: str = CHANNEL) -> ChannelPolicy | None:
    async with rt(h).db.session() as db:
        return (await db.execute(select(ChannelPolicy).where(ChannelPolicy.channel == channel))).scalar_one_or_none()


async def audit_events(h: Harness, kind: str | None = None) -> list[AuditEvent]:
    async with rt(h).db.session() as db:
        q = select(AuditEvent).order_by(AuditEvent.id)
        if kind:
            q = q.where(AuditEvent.kind == kind)
        return list((await db.execute(q)).scalars().all())


async def approval(h: Harness, approval_id: str) -> Approval:
    async with rt(h).db.session() as db:
        a = await db.get(Approval, approval_id)
    assert a is not None
    return a


async def count(h: Harness, model: type, *where: Any) -> int:
    async with rt(h).db.session() as db:
        return int((await db.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


# --- cards ------------------------------------------------------------------------------------------

def button_value(message: PostedMessage, action_id: str = "intern_approve") -> str | None:
    for block in message.blocks or []:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return str(element["value"])
    return None


def pending_cards(h: Harness, thread: str) -> list[PostedMessage]:
    return [m for m in h.slack.posted(thread_ts=thread) if button_value(m) is not None]


def card_text(message: PostedMessage) -> str:
    """Everything a person reads on a card: header, fields, lines, footer."""
    parts: list[str] = []
    for block in message.blocks or []:
        text = block.get("text")
        if isinstance(text, dict):
            parts.append(str(text.get("text", "")))
        for f in block.get("fields", []) or []:
            parts.append(str(f.get("text", "")))
        if block.get("type") == "context":
            parts.extend(str(e.get("text", "")) for e in block.get("elements", []))
    return "\n".join(parts)


def card_of(h: Harness, approval_id: str) -> PostedMessage:
    """The card of one approval (found by the id in its footer), as it reads now."""
    for m in h.slack.posted():
        if approval_id in card_text(m):
            return m
    raise AssertionError(f"no card for approval {approval_id}")


async def start_task(h: Harness, text: str = "fine-tune a small model on my dataset", user: str = REQUESTER,
                     channel: str = CHANNEL) -> str:
    event = mention_event(text, user=user, channel=channel)
    assert (await h.sender.send_event(event)).status == 200
    return str(event["ts"])


async def first_card(h: Harness, thread: str, timeout: float = 20) -> PostedMessage:
    await wait_until(lambda: any(approval_id_in(m) for m in h.slack.posted(thread_ts=thread)), timeout=timeout)
    return next(m for m in h.slack.posted(thread_ts=thread) if approval_id_in(m))


def approval_id_in(message: PostedMessage) -> str | None:
    found = re.search(r"[Aa]pproval ([0-9a-f-]{36})", card_text(message))
    return found.group(1) if found else None


async def click(h: Harness, action: str, approval_id: str, user: str, thread: str, *, team: str | None = None,
                channel: str = CHANNEL) -> None:
    card = card_of(h, approval_id)
    payload = block_action(action, approval_id, user=user, team=team or h.slack.team_id, channel=channel,
                           message_ts=card.ts, thread_ts=thread)
    assert (await h.sender.send_interaction(payload)).status == 200


async def private_reply(h: Harness, user: str, after: int = 0, timeout: float = 10) -> str:
    """The next ephemeral message to `user` after the first `after` ones."""
    await wait_until(lambda: len(h.slack.ephemerals(user=user)) > after, timeout=timeout)
    return h.slack.ephemerals(user=user)[after].text


async def reply_in_thread(h: Harness, text: str, user: str, thread: str) -> None:
    assert (await h.sender.send_event(message_event(text, user=user, thread_ts=thread))).status == 200


def launch_args(*, flavor: str = "a10g-large", timeout: str = "2h", script: str | None = None,
                operation: str = "run", schedule: str | None = None) -> dict[str, Any]:
    args: dict[str, Any] = {
        "operation": operation, "hardware_flavor": flavor, "timeout": timeout, "dependencies": ["trl"],
        "script": script or ("from trl import SFTTrainer, SFTConfig\n"
                             "from datasets import load_dataset\n"
                             "ds = load_dataset('trl-lib/Capybara', split='train')\n"
                             "cfg = SFTConfig(output_dir='out', push_to_hub=True, hub_model_id='team/qwen-sft')\n"
                             "SFTTrainer(model='Qwen/Qwen2.5-0.5B', train_dataset=ds, args=cfg).train()\n"),
    }
    if schedule:
        args["schedule"] = schedule
    return args


def tool_rule(calls: list[tuple[str, dict[str, Any]]], *, usage: tuple[int, int] | None = None) -> Any:
    """A scripted model: on a person's message, make these tool calls (one step); on tool results, say
    what came back so the test can read it in the thread."""

    def rule(request: dict[str, Any]) -> Any:
        if request.get("tools") is None:
            return text_reply("Summary of the session so far.")
        last = request["messages"][-1]
        if last.get("role") == "tool":
            results = [m for m in request["messages"] if m.get("role") == "tool"]
            return text_reply("Tool results: " + " | ".join(str(m.get("content"))[:300] for m in results[-len(calls):]))
        if last.get("role") == "user" and "[job update]" in str(last.get("content")):
            return text_reply("The job is over.")
        return tool_calls_reply(list(calls), text="Requesting the action.", usage=usage)

    return rule
