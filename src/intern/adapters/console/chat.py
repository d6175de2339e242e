"""`intern chat`: a session in the terminal. Same agent, same database, same approval cards; the
person at the terminal is both requester and approver (single-user mode) and answers cards at the
prompt."""

from __future__ import annotations

import asyncio
import itertools
import sys
from typing import Any, TextIO

from intern.adapters.console.render import render_card
from intern.bot.chat import ApprovalClick, Card, Conversation, MessageRef, UserMessage

PLATFORM = "console"
WORKSPACE = "local"
CHANNEL = "terminal"


class ConsoleAdapter:
    platform = PLATFORM

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self.pending: dict[str, str] = {}  # approval id -> card title, in arrival order
        self._ids = itertools.count(1)

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    async def post(self, conv: Conversation, text: str) -> MessageRef:
        self.say(f"\nintern> {text}")
        return MessageRef(PLATFORM, conv.channel, str(next(self._ids)), conv.thread)

    async def post_card(self, conv: Conversation, card: Card) -> MessageRef:
        ref = MessageRef(PLATFORM, conv.channel, str(next(self._ids)), conv.thread)
        self._track(card)
        if card.state != "running":  # the status card would flood a terminal; show it when it ends
            self.say("\n" + render_card(card))
        return ref

    async def update_card(self, ref: MessageRef, card: Card) -> None:
        self._track(card)
        if card.state not in ("running",):
            self.say("\n" + render_card(card))

    def _track(self, card: Card) -> None:
        for b in card.buttons:
            if b.action == "approve":
                self.pending[b.value] = card.title
        if not any(b.action == "approve" for b in card.buttons):
            for aid in [a for a in self.pending if a in (card.footer or "")]:
                self.pending.pop(aid, None)

    async def post_private(self, conv: Conversation, user: str, text: str) -> None:
        self.say(f"\n(private) {text}")

    async def attach_file(self, conv: Conversation, filename: str, content: str, title: str) -> None:
        self.say(f"\n[{title}: {len(content)} characters, kept in the session's card]")

    async def members_of(self, workspace: str, group_ref: str) -> set[str]:
        return set()


async def _ainput(prompt: str) -> str | None:
    try:
        return await asyncio.to_thread(input, prompt)
    except EOFError:
        return None


async def run_chat(settings: Any, *, user: str) -> int:
    from intern.bot.app import BotApp
    from intern.bot.models import ChannelPolicy
    from intern.bot.policy import load_row
    from intern.bot.store import SchemaOutdated, ensure_schema
    from intern.bot.wiring import build_runtime, close_runtime, configure_logging

    if not settings.model:
        print("intern chat: set INTERN_MODEL (a litellm model id such as anthropic/claude-sonnet-4-5) and the "
              "provider's key (or INTERN_LLM_API_KEY).", file=sys.stderr)
        return 2
    rt = await build_runtime(settings)
    configure_logging(settings, rt.redactor, level=30)
    try:
        await ensure_schema(rt.db, auto_migrate=False)
    except SchemaOutdated as exc:
        print(f"intern chat: {exc}", file=sys.stderr)
        await close_runtime(rt)
        return 2
    console = ConsoleAdapter()
    rt.adapters[PLATFORM] = console
    async with rt.db.transaction() as db:  # single-user mode: you approve your own requests
        row = await load_row(db, PLATFORM, WORKSPACE, CHANNEL)
        if row is None:
            db.add(ChannelPolicy(platform=PLATFORM, workspace=WORKSPACE, channel=CHANNEL, approvers=[user],
                                 admins=[user], approvals_required=1, self_approval=True))
        else:
            row.approvers, row.self_approval, row.approvals_required = [user], True, 1
    bot = BotApp(rt)
    await bot.start()
    thread = f"chat-{asyncio.get_running_loop().time():.0f}"
    conv = Conversation(PLATFORM, WORKSPACE, CHANNEL, thread)
    console.say("Intern in your terminal. Type a task; `approve` / `deny` answers a card; `stop` stops; "
                "Ctrl-D quits.")
    n = itertools.count(1)
    try:
        while True:
            line = await _ainput("\nyou> ")
            if line is None:
                break
            text = line.strip()
            if not text:
                continue
            word = text.split(maxsplit=1)[0].lower()
            if console.pending and word in ("approve", "deny", "y", "n", "yes", "no"):
                aid = next(iter(console.pending))
                decision = "approve" if word in ("approve", "y", "yes") else "deny"
                reply = await bot.on_click(ApprovalClick(aid, user, WORKSPACE, PLATFORM, decision,  # type: ignore[arg-type]
                                                         f"console:{thread}:{next(n)}"))
                console.pending.pop(aid, None)
                console.say(f"({reply.text})")
                continue
            accepted = await bot.on_message(UserMessage(conv, user, text, f"console:{thread}:{next(n)}",
                                                        mentioned=True))
            if accepted.outcome == "command" and accepted.command is not None:
                console.say((await bot.on_command(accepted.command)).text)
    finally:
        await bot.stop(timeout=5)
        await close_runtime(rt)
    return 0
