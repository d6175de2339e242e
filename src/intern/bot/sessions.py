"""Sessions and their durable transcript."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from intern.bot import audit
from intern.bot.chat import Conversation
from intern.bot.models import Approval, Message, Session, WorkItem
from intern.bot.runtime import Runtime, owner_is_gone


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


async def abandon_work(rt: Runtime, platform: str, workspace: str, reason: str) -> int:
    """Drop what the platform's sessions left unfinished (queued or interrupted work items, pending
    approval cards), for a chat that lives only as long as its process (the terminal): what the person
    interrupted or left behind must not run again in the next one. Sessions another live process holds
    a lease on are left alone; a lease held by a process of this host that was killed is not waited
    for. Returns how many work items were dropped."""
    t = datetime.now(UTC)
    async with rt.db.session() as db:
        owners = (await db.execute(select(Session.lease_owner).distinct().where(
            Session.platform == platform, Session.workspace == workspace, Session.lease_owner.is_not(None),
            Session.lease_expires_at >= t))).scalars().all()
    dead = [o for o in owners if o and o != rt.owner and owner_is_gone(o)]
    idle = select(Session.id).where(Session.platform == platform, Session.workspace == workspace, or_(
        Session.lease_owner.is_(None), Session.lease_expires_at < t, Session.lease_owner == rt.owner,
        Session.lease_owner.in_(dead)))
    async with rt.db.transaction() as db:
        dropped = await db.execute(update(WorkItem).where(
            WorkItem.session_id.in_(idle), WorkItem.status.in_(("queued", "running"))).values(
            status="done", error=f"dropped: {reason}", lease_owner=None, finished_at=t))
        cards = (await db.execute(update(Approval).where(Approval.session_id.in_(idle), Approval.status == "pending")
                                  .values(status="cancelled", decided_by="intern", decided_at=t, reason=reason)
                                  .returning(Approval.id, Approval.session_id, Approval.channel,
                                             Approval.spec_sha256))).all()
        for aid, sid, channel, sha in cards:
            audit.record(db, "approval_cancelled", actor="intern", platform=platform, workspace=workspace,
                         channel=channel, session_id=sid, approval_id=aid, spec_sha256=sha, reason=reason)
    return int(dropped.rowcount or 0)


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
