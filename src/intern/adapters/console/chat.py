"""`intern chat`: a session in the terminal. Same agent, same database, same approval cards; the
person at the terminal is both requester and approver (single-user mode) and answers cards at the
prompt."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import sys
import threading
import uuid
from typing import Any, TextIO

from intern.adapters.console.render import plain, render_card, spell, spell_one
from intern.bot.chat import (
    ApprovalClick,
    Card,
    Conversation,
    Mention,
    MessageRef,
    UserMessage,
    spell_card,
    without_tokens,
)

PLATFORM = "console"
WORKSPACE = "local"
CHANNEL = "terminal"


class ConsoleAdapter:
    platform = PLATFORM
    card_edits_per_second: float | None = None

    def __init__(self, out: TextIO = sys.stdout, color: bool | None = None) -> None:
        self.out = out
        self.color = bool(color if color is not None else getattr(out, "isatty", lambda: False)())
        self.pending: dict[str, str] = {}  # approval id -> card title, in arrival order
        self.working = False  # a turn of this terminal's session is under way
        self.at_prompt = False  # the prompt is shown and waits for a line
        self._ids = itertools.count(1)

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        if self.at_prompt:  # what arrived while you were typing: the prompt goes under it again
            self.out.write(PROMPT)
        self.out.flush()

    def prompt(self) -> None:
        self.at_prompt = True
        self.out.write(PROMPT)
        self.out.flush()

    def spell(self, text: str) -> str:
        return spell(text)

    def mention_key(self, mention: Mention) -> str:
        return mention.id

    def mention_of_key(self, key: str) -> Mention:
        return Mention.user(key)  # one person at the terminal; no groups

    async def post(self, conv: Conversation, text: str) -> MessageRef:
        self.say(f"\nintern> {plain(spell(text), color=self.color)}")
        return MessageRef(PLATFORM, conv.channel, str(next(self._ids)), conv.thread)

    async def post_answer(self, conv: Conversation, text: str, session_id: str) -> MessageRef:
        self.working = False  # the turn's final answer: what is left of it (saving) is not worth a stop
        return await self.post(conv, text)  # no buttons in a terminal: the answer alone

    async def set_activity(self, conv: Conversation, status: str) -> None:
        # no indicator in a terminal, but it says (sooner than the throttled status card) whether a
        # turn is under way, which is what Ctrl-C stops
        self.working = bool(status)

    async def post_card(self, conv: Conversation, card: Card) -> MessageRef:
        card = spell_card(card, spell_one)
        ref = MessageRef(PLATFORM, conv.channel, str(next(self._ids)), conv.thread)
        self._track(card)
        if card.state != "running":  # the status card would flood a terminal; show it when it ends
            self.say("\n" + render_card(card, color=self.color))
        return ref

    async def update_card(self, ref: MessageRef, card: Card) -> None:
        card = spell_card(card, spell_one)
        self._track(card)
        if card.state not in ("running",):
            self.say("\n" + render_card(card, color=self.color))

    def _track(self, card: Card) -> None:
        if card.state == "done":  # the status card's last edit; its throttled "running" edits can come late
            self.working = False
        for b in card.buttons:
            if b.action == "approve":
                self.pending[b.value] = card.title
        if not any(b.action == "approve" for b in card.buttons):
            for aid in [a for a in self.pending if a in (card.footer or "")]:
                self.pending.pop(aid, None)

    async def post_private(self, conv: Conversation, user: str, text: str) -> None:
        self.say(f"\n(private) {plain(spell(text), color=self.color)}")

    async def attach_file(self, conv: Conversation, filename: str, content: str, title: str) -> None:
        self.say(f"\n[{title}: {len(content)} characters, kept in the session's card]")

    async def post_file(self, conv: Conversation, filename: str, data: bytes, *, title: str, comment: str) -> None:
        """A terminal shows no pictures: the file is saved and its path printed."""
        import tempfile
        from pathlib import Path

        folder = Path(tempfile.gettempdir()) / "intern-files"
        folder.mkdir(exist_ok=True)
        path = folder / Path(filename).name
        path.write_bytes(data)
        self.say(f"\nintern> {spell(comment)}\n[{spell(title)}: saved as {path}]")

    async def members_of(self, workspace: str, group_ref: str) -> set[str]:
        return set()


PROMPT = "\nyou> "
INTERRUPT = object()  # Ctrl-C, queued among the lines typed


class Keyboard:
    """Lines typed at the terminal and Ctrl-C presses, in the order they happen.

    Lines are read by a daemon thread: a read blocked in the default executor would keep the process
    alive after the person asked to quit. Ctrl-C is taken by the event loop's signal handler, so it
    never interrupts a database write half-way."""

    def __init__(self, stdin: TextIO = sys.stdin) -> None:
        self.stdin = stdin
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()

    def start(self) -> None:
        threading.Thread(target=self._read, name="intern-chat-stdin", daemon=True).start()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            self.loop.add_signal_handler(signal.SIGINT, self.queue.put_nowait, INTERRUPT)

    def close(self) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            self.loop.remove_signal_handler(signal.SIGINT)

    def _read(self) -> None:
        while True:
            try:
                line = self.stdin.readline()
            except (OSError, ValueError):
                line = ""
            self.loop.call_soon_threadsafe(self.queue.put_nowait, line or None)
            if not line:
                return

    async def next(self) -> object:
        return await self.queue.get()


APPROVE_WORDS = {"approve": "approve", "deny": "deny", "y": "approve", "yes": "approve", "n": "deny",
                 "no": "deny"}


def card_answer(text: str, pending: bool) -> str | None:
    """`approve` or `deny` when the line answers a card. `approve`/`deny` are always taken as card
    answers; a bare y/yes/n/no only while a card waits (otherwise it is an answer to the model)."""
    words = text.split()
    word = words[0].lower() if words else ""
    if word in ("approve", "deny"):
        return word
    if pending and len(words) == 1 and word in APPROVE_WORDS:
        return APPROVE_WORDS[word]
    return None


async def run_chat(settings: Any, *, user: str) -> int:
    from intern.bot.app import BotApp
    from intern.bot.models import ChannelPolicy
    from intern.bot.policy import load_row
    from intern.bot.sessions import abandon_work
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
    # What an earlier `intern chat` left unfinished (it was interrupted, or killed) is not replayed here.
    await abandon_work(rt, PLATFORM, WORKSPACE, "the terminal session it belonged to ended")
    async with rt.db.transaction() as db:  # single-user mode: you approve your own requests
        row = await load_row(db, PLATFORM, WORKSPACE, CHANNEL)
        if row is None:
            db.add(ChannelPolicy(platform=PLATFORM, workspace=WORKSPACE, channel=CHANNEL, approvers=[user],
                                 admins=[user], approvals_required=1, self_approval=True))
        else:
            row.approvers, row.self_approval, row.approvals_required = [user], True, 1
    bot = BotApp(rt)
    await bot.start()
    thread = f"chat-{uuid.uuid4().hex[:12]}"
    conv = Conversation(PLATFORM, WORKSPACE, CHANNEL, thread)
    keyboard = Keyboard()
    keyboard.start()
    console.say("Intern in your terminal. Type a task; `approve` / `deny` answers a card; `stop` or Ctrl-C stops "
                "the turn; Ctrl-C twice or Ctrl-D quits.")
    try:
        await converse(bot, console, keyboard, conv, user)
    finally:
        keyboard.close()
        console.at_prompt = False
        await bot.stop(timeout=5)
        await abandon_work(rt, PLATFORM, WORKSPACE, "the terminal session it belonged to ended")
        await close_runtime(rt)
    return 0


async def converse(bot: Any, console: ConsoleAdapter, keyboard: Keyboard, conv: Conversation, user: str) -> None:
    n = itertools.count(1)
    interrupted = False
    console.prompt()
    while True:
        item = await keyboard.next()
        console.at_prompt = False
        if item is None:
            console.say("")
            return
        if item is INTERRUPT:
            if interrupted:
                console.say("\n(bye)")
                return
            interrupted = True
            if console.working:
                await bot.on_message(UserMessage(conv, user, "stop", f"console:{conv.thread}:{next(n)}",
                                                 mentioned=True))
                console.working = False
                console.say("\n(stopping the turn; Ctrl-C again to quit)")
            else:
                console.say("\n(nothing is running; Ctrl-C again or Ctrl-D to quit)")
            console.prompt()
            continue
        interrupted = False
        text = str(item).strip()
        if text:
            await answer(bot, console, conv, user, text, f"console:{conv.thread}:{next(n)}")
        console.prompt()


async def answer(bot: Any, console: ConsoleAdapter, conv: Conversation, user: str, text: str, key: str) -> None:
    decision = card_answer(text, bool(console.pending))
    if decision is not None:
        if not console.pending:
            console.say("(no approval card is waiting)")
            return
        aid = next(iter(console.pending))
        reply = await bot.on_click(ApprovalClick(aid, user, WORKSPACE, PLATFORM, decision, key))  # type: ignore[arg-type]
        console.pending.pop(aid, None)
        console.say(f"({plain(reply.text)})")
        return
    accepted = await bot.on_message(UserMessage(conv, user, without_tokens(text), key, mentioned=True))
    if accepted.outcome == "command" and accepted.command is not None:
        console.say(plain((await bot.on_command(accepted.command)).text, color=console.color))
    elif accepted.outcome == "refused" and accepted.message:
        console.say(f"(private) {plain(accepted.message)}")
    elif accepted.outcome == "queued":
        console.working = True
