"""Inbound: dedupe, persist, enqueue — in one short transaction, before the platform is acked.

Nothing else runs here: the agent works in `worker.py`, from the durable queue.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from intern.bot import audit
from intern.bot.chat import Command, Conversation, UserMessage
from intern.bot.models import InboundEvent, Session, WorkItem
from intern.bot.runtime import Runtime
from intern.bot.sessions import active_session, add_message, create_session

log = logging.getLogger(__name__)

COMMANDS = ("status", "policy", "budget")
STOP_WORDS = {"stop", "stop.", "stop!"}
NEW_SESSION_WORDS = {"continue in a new session", "new session"}


@dataclass(frozen=True)
class Accepted:
    outcome: Literal["queued", "duplicate", "ignored", "command", "stop", "new_session", "refused"]
    session_id: str | None = None
    command: Command | None = None
    message: str | None = None  # for "refused": told privately to the sender


def parse_command(text: str) -> tuple[str, str] | None:
    words = text.strip().split(maxsplit=1)
    if words and words[0].lower() in COMMANDS:
        return words[0].lower(), words[1] if len(words) > 1 else ""
    return None


def is_stop(text: str) -> bool:
    return text.strip().lower() in STOP_WORDS


async def claim_event(db: AsyncSession, key: str, kind: str) -> bool:
    """Insert the dedupe key; False when this delivery was seen before."""
    try:
        async with db.begin_nested():
            db.add(InboundEvent(key=key, kind=kind))
            await db.flush()
    except IntegrityError:
        return False
    return True


def enqueue(db: AsyncSession, session_id: str, kind: str, payload: dict[str, object] | None = None) -> None:
    db.add(WorkItem(session_id=session_id, kind=kind, payload=payload or {}))


class Inbox:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def receive_message(self, msg: UserMessage) -> Accepted:
        text = msg.text.strip()
        for attempt in range(3):
            try:
                result = await self._receive(msg, text)
            except IntegrityError:
                # Two deliveries raced to create the thread's session; the retry finds it.
                if attempt == 2:
                    raise
                continue
            if result.outcome in ("queued", "stop", "new_session"):
                self.rt.poke()
            return result
        raise AssertionError("unreachable")

    async def _receive(self, msg: UserMessage, text: str) -> Accepted:
        async with self.rt.db.transaction() as db:
            session = await active_session(db, msg.conversation)
            if session is None and not msg.mentioned:
                return Accepted("ignored")
            cmd = parse_command(text) if msg.mentioned else None
            if not await claim_event(db, msg.event_key, "message"):
                return Accepted("duplicate", session.id if session else None)
            if cmd is not None:
                return Accepted("command", session.id if session else None,
                                Command(msg.conversation, msg.user, cmd[0], cmd[1]))  # type: ignore[arg-type]
            if session is not None and is_stop(text):
                return await self._stop(db, session, msg.user, msg.event_key)
            if session is not None and text.lower() in NEW_SESSION_WORDS:
                return await self._new_session(db, session, msg)
            if session is None:
                session = await create_session(db, msg.conversation, msg.user, self.rt.settings.model)
                audit.record(db, "session_started", actor=msg.user, platform=session.platform,
                             workspace=session.workspace, channel=session.channel, session_id=session.id)
            await self._store_user_message(db, session, msg, text)
            return Accepted("queued", session.id)

    async def _store_user_message(self, db: AsyncSession, session: Session, msg: UserMessage, text: str) -> None:
        content = self.rt.redactor.redact(text) or "(empty message)"
        await add_message(db, session.id, {"role": "user", "content": f"[<@{msg.user}>] {content}"},
                          author=msg.user, source_key=msg.event_key)
        enqueue(db, session.id, "message", {"user": msg.user})

    async def _stop(self, db: AsyncSession, session: Session, user: str, key: str) -> Accepted:
        session.stop_requested = True
        enqueue(db, session.id, "stop", {"user": user, "event_key": key})
        return Accepted("stop", session.id)

    async def _new_session(self, db: AsyncSession, old: Session, msg: UserMessage) -> Accepted:
        """Continue in a fresh session seeded with the old one's latest summary (the old one is kept)."""
        old.active = False
        old.status = "ended"
        await db.flush()
        new = await create_session(db, msg.conversation, msg.user, self.rt.settings.model, seeded_from=old.id)
        enqueue(db, new.id, "seed", {"from": old.id, "user": msg.user})
        audit.record(db, "session_started", actor=msg.user, platform=new.platform, workspace=new.workspace,
                     channel=new.channel, session_id=new.id, seeded_from=old.id)
        return Accepted("new_session", new.id)

    async def stop_session(self, session_id: str, user: str, key: str) -> Accepted:
        async with self.rt.db.transaction() as db:
            if not await claim_event(db, key, "stop"):
                return Accepted("duplicate", session_id)
            session = await db.get(Session, session_id)
            if session is None:
                return Accepted("ignored")
            result = await self._stop(db, session, user, key)
        self.rt.poke()
        return result


async def find_session(rt: Runtime, session_id: str) -> Session | None:
    async with rt.db.session() as db:
        return (await db.execute(select(Session).where(Session.id == session_id))).scalar_one_or_none()


MENTION_RE = re.compile(r"<@([A-Z0-9]+)>")


def strip_mention(text: str, bot_user_id: str | None) -> str:
    if bot_user_id:
        text = text.replace(f"<@{bot_user_id}>", " ")
    return re.sub(r"\s+", " ", text).strip() if "\n" not in text else text.strip()


def conversation_key(conv: Conversation) -> str:
    return f"{conv.platform}:{conv.workspace}:{conv.channel}:{conv.thread}"
