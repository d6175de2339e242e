"""Inbound: dedupe, persist, enqueue — in one short transaction, before the platform is acked.

Nothing else runs here: the agent works in `worker.py`, from the durable queue.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, insert, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from intern.bot import audit
from intern.bot.batching import GroupCommit
from intern.bot.budgets import session_limit_message, sessions_started_last_hour
from intern.bot.chat import Command, Conversation, UserMessage, who
from intern.bot.models import AuditEvent, InboundEvent, Message, Session, WorkItem, utcnow
from intern.bot.runtime import Runtime
from intern.bot.sessions import active_session, add_message, create_session

log = logging.getLogger(__name__)

COMMANDS = ("status", "policy", "budget", "history", "chart")
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


async def claim_events(db: AsyncSession, keys: list[str], kind: str) -> set[str]:
    """Insert many dedupe keys in one statement; returns the keys that were new."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return set()
    dialect = db.bind.dialect.name
    table = InboundEvent.__table__
    ins = pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)
    # One cached statement run for many rows (SQLAlchemy batches it into multi-row INSERTs): no new
    # compilation for every batch size.
    stmt = ins.on_conflict_do_nothing(index_elements=["key"]).returning(table.c.key)
    at = utcnow()
    rows = [{"key": k, "kind": kind, "received_at": at} for k in keys]
    return set((await db.execute(stmt, rows)).scalars().all())


async def sessions_by_conversation(db: AsyncSession, convs: set[Conversation]) -> dict[Conversation, str]:
    if not convs:
        return {}
    keys = [(c.platform, c.workspace, c.channel, c.thread) for c in convs]
    rows = (await db.execute(select(Session.id, Session.platform, Session.workspace, Session.channel,
                                    Session.thread).where(
        Session.active.is_(True),
        tuple_(Session.platform, Session.workspace, Session.channel, Session.thread).in_(keys)))).all()
    return {Conversation(r.platform, r.workspace, r.channel, r.thread): r.id for r in rows}


async def next_seqs(db: AsyncSession, session_ids: set[str]) -> dict[str, int]:
    if not session_ids:
        return {}
    rows = (await db.execute(select(Message.session_id, func.max(Message.seq)).where(
        Message.session_id.in_(session_ids)).group_by(Message.session_id))).all()
    out = {sid: 1 for sid in session_ids}
    out.update({sid: (seq or 0) + 1 for sid, seq in rows})
    return out


def enqueue(db: AsyncSession, session_id: str, kind: str, payload: dict[str, object] | None = None) -> None:
    db.add(WorkItem(session_id=session_id, kind=kind, payload=payload or {}))


class Inbox:
    """Deliveries arriving together are written in one transaction (group commit): each request
    still returns only once its own rows are committed, but a burst costs one commit, not one each."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._batches: GroupCommit[UserMessage, Accepted] = GroupCommit(
            self._write_batch, self._receive_alone, gather_rounds=8)

    async def receive_message(self, msg: UserMessage) -> Accepted:
        self.rt.note_inbound()
        result = await self._batches.submit(msg)
        if result.outcome in ("queued", "stop", "new_session"):
            self.rt.poke()
        return result

    async def _write_batch(self, batch: list[UserMessage]) -> list[Accepted]:
        # A race with another process (same new thread) raises IntegrityError: each is then redone alone.
        async with self.rt.db.transaction(priority=True) as db:
            return await self._receive_batch(db, batch)

    async def _receive_alone(self, msg: UserMessage) -> Accepted:
        for attempt in range(3):
            try:
                async with self.rt.db.transaction() as db:
                    return await self._receive(db, msg)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _receive_batch(self, db: AsyncSession, batch: list[UserMessage]) -> list[Accepted]:
        """The common case — a plain message — in a handful of set-based statements for the whole
        batch; commands, stops and the rest go through `_receive` one by one (they are rare)."""
        found = await sessions_by_conversation(db, {m.conversation for m in batch})
        results: dict[int, Accepted] = {}
        plain: list[int] = []
        for i, m in enumerate(batch):
            text = m.text.strip()
            special = (m.mentioned and parse_command(text)) or is_stop(text) or text.lower() in NEW_SESSION_WORDS
            if special:
                results[i] = await self._receive(db, m)
                found.update(await sessions_by_conversation(db, {m.conversation}))
            elif m.conversation not in found and not m.mentioned:
                results[i] = Accepted("ignored")
            else:
                plain.append(i)
        claimed = await claim_events(db, [batch[i].event_key for i in plain], "message")
        fresh: list[int] = []  # the first delivery of each newly claimed key
        for i in plain:
            key = batch[i].event_key
            if key in claimed:
                claimed.discard(key)
                fresh.append(i)
            else:
                results[i] = Accepted("duplicate", found.get(batch[i].conversation))
        starters: dict[Conversation, str] = {}  # new conversation -> who started it (its first message)
        for i in fresh:
            if batch[i].conversation not in found:
                starters.setdefault(batch[i].conversation, batch[i].user)
        over = await self._over_limit(db, starters)
        for conv in over:
            del starters[conv]
        refusal = session_limit_message(self.rt.settings.max_sessions_per_user_hour)
        for i in [i for i in fresh if batch[i].conversation in over]:
            results[i] = Accepted("refused", message=refusal)
            fresh.remove(i)
        model, now = self.rt.settings.model, utcnow()
        new_sessions, audits = [], []
        for conv, starter in starters.items():
            sid = found[conv] = str(uuid.uuid4())
            new_sessions.append({
                "id": sid, "platform": conv.platform, "workspace": conv.workspace, "channel": conv.channel,
                "thread": conv.thread, "started_by": starter, "model": model, "current_requester": starter,
                "status": "active", "active": True, "prompt_tokens": 0, "completion_tokens": 0,
                "llm_cost_usd": 0.0, "stop_requested": False, "created_at": now, "updated_at": now})
            audits.append({"kind": "session_started", "actor": starter, "platform": conv.platform,
                           "workspace": conv.workspace, "channel": conv.channel, "session_id": sid, "at": now,
                           "detail": {}})
        if new_sessions:
            await db.execute(insert(Session.__table__), new_sessions)
            await db.execute(insert(AuditEvent.__table__), audits)
        created = {row["id"] for row in new_sessions}
        seqs = await next_seqs(db, {found[batch[i].conversation] for i in fresh} - created)
        seqs.update(dict.fromkeys(created, 1))
        messages, items = [], []
        for i in fresh:
            m, sid = batch[i], found[batch[i].conversation]
            messages.append({"session_id": sid, "seq": seqs[sid], "role": "user", "author": m.user,
                             "source_key": m.event_key, "created_at": utcnow(),
                             "payload": {"role": "user", "content": self._said(m, m.text.strip())}})
            seqs[sid] += 1
            items.append({"session_id": sid, "kind": "message", "payload": {"user": m.user}, "status": "queued",
                          "available_at": utcnow(), "attempts": 0, "created_at": utcnow()})
            results[i] = Accepted("queued", sid)
        if messages:
            await db.execute(insert(Message.__table__), messages)
            await db.execute(insert(WorkItem.__table__), items)
        return [results[i] for i in range(len(batch))]

    async def _over_limit(self, db: AsyncSession, starters: dict[Conversation, str]) -> set[Conversation]:
        """The new conversations whose starter has already started INTERN_MAX_SESSIONS_PER_USER_HOUR
        sessions in the last hour (counting the ones this batch starts before them)."""
        if not starters:
            return set()
        counts = await sessions_started_last_hour(db, {(c.platform, u) for c, u in starters.items()})
        limit, over = self.rt.settings.max_sessions_per_user_hour, set()
        for conv, user in starters.items():
            if counts[(conv.platform, user)] >= limit:
                over.add(conv)
            else:
                counts[(conv.platform, user)] += 1
        return over

    async def _receive(self, db: AsyncSession, msg: UserMessage) -> Accepted:
        text = msg.text.strip()
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
        starting = session is None or text.lower() in NEW_SESSION_WORDS
        if starting and await self._over_limit(db, {msg.conversation: msg.user}):
            return Accepted("refused", session.id if session else None,
                            message=session_limit_message(self.rt.settings.max_sessions_per_user_hour))
        if session is not None and text.lower() in NEW_SESSION_WORDS:
            return await self._new_session(db, session, msg)
        if session is None:
            session = await create_session(db, msg.conversation, msg.user, self.rt.settings.model)
            audit.record(db, "session_started", actor=msg.user, platform=session.platform,
                         workspace=session.workspace, channel=session.channel, session_id=session.id)
        await self._store_user_message(db, session, msg, text)
        return Accepted("queued", session.id)

    def _said(self, msg: UserMessage, text: str) -> str:
        """What the model reads of a message: its speaker and words as the platform writes them."""
        platform = msg.conversation.platform
        content = self.rt.redactor.redact(self.rt.spell(platform, text)) or "(empty message)"
        return f"[{self.rt.spell(platform, who(msg.user))}] {content}"

    async def _store_user_message(self, db: AsyncSession, session: Session, msg: UserMessage, text: str) -> None:
        await add_message(db, session.id, {"role": "user", "content": self._said(msg, text)},
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


def conversation_key(conv: Conversation) -> str:
    return f"{conv.platform}:{conv.workspace}:{conv.channel}:{conv.thread}"
