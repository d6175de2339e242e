"""Sessions and their durable transcript."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from intern.bot.chat import Conversation
from intern.bot.models import Message, Session
from intern.bot.runtime import Runtime


async def active_session(db: AsyncSession, conv: Conversation) -> Session | None:
    return (await db.execute(select(Session).where(
        Session.platform == conv.platform, Session.workspace == conv.workspace,
        Session.channel == conv.channel, Session.thread == conv.thread, Session.active.is_(True),
    ))).scalar_one_or_none()


async def create_session(db: AsyncSession, conv: Conversation, user: str, model: str | None,
                         seeded_from: str | None = None) -> Session:
    """Create the thread's active session inside the caller's transaction.

    Two deliveries racing to create it both reach the unique index; the loser's transaction fails
    and its caller retries, finding the winner's session.
    """
    s = Session(platform=conv.platform, workspace=conv.workspace, channel=conv.channel,
                thread=conv.thread, started_by=user, model=model, current_requester=user,
                seeded_from=seeded_from)
    db.add(s)
    await db.flush()
    return s


def conversation_of(s: Session) -> Conversation:
    return Conversation(s.platform, s.workspace, s.channel, s.thread)


async def next_seq(db: AsyncSession, session_id: str) -> int:
    cur = (await db.execute(select(func.max(Message.seq)).where(Message.session_id == session_id))).scalar()
    return (cur or 0) + 1


async def add_message(db: AsyncSession, session_id: str, payload: dict[str, Any], *, author: str | None = None,
                      source_key: str | None = None) -> Message:
    msg = Message(session_id=session_id, seq=await next_seq(db, session_id), role=payload["role"],
                  author=author, source_key=source_key, payload=payload)
    db.add(msg)
    await db.flush()
    return msg


async def load_messages(db: AsyncSession, session_id: str) -> list[dict[str, Any]]:
    rows = (await db.execute(select(Message.payload).where(Message.session_id == session_id)
                             .order_by(Message.seq))).scalars().all()
    return [dict(r) for r in rows]


class DbTranscript:
    """The agent's Transcript port: every message is redacted, then stored, before the loop goes on."""

    def __init__(self, rt: Runtime, session_id: str) -> None:
        self.rt, self.session_id = rt, session_id

    async def append(self, message: dict[str, Any]) -> None:
        clean = self.rt.redactor.redact_obj(message)
        for attempt in range(3):
            try:
                async with self.rt.db.transaction() as db:
                    await add_message(db, self.session_id, clean)
                return
            except IntegrityError:
                if attempt == 2:
                    raise


def is_integrity_error(exc: BaseException) -> bool:
    return isinstance(exc, IntegrityError)
