"""The agent's transcript, written with group commit: the messages, LLM usage and final replies (the
intent to post one, then its outcome: see `replies.py`) that the turns of this process record at the
same moment go in one transaction, and each call still returns only once its record is stored.
Hundreds of turns at once would otherwise cost a transaction per message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import insert, select

from intern.agent import events as ev
from intern.bot.batching import GroupCommit
from intern.bot.effects import record_usages
from intern.bot.inbox import next_seqs
from intern.bot.models import Message, Session, utcnow
from intern.bot.replies import ReplyLedger, open_intents, reply_key, store_outcomes
from intern.bot.runtime import Runtime
from intern.bot.sessions import DbTranscript
from intern.bot.store import rolled_back

WRITE_ATTEMPTS = 3


# ("message", (session id, message)), ("usage", (session, user, event)), ("intent", session id) or
# ("outcomes", {reply key: posted})
Entry = tuple[str, Any]


class TranscriptWriter:
    """The agent's Transcript port for every turn of this process, with group commit: the messages
    (and LLM usage) that sessions record at the same moment are written in one transaction, and each
    call still returns only once its record is stored. Hundreds of turns at once would otherwise
    cost a transaction per message."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._batches: GroupCommit[Entry, Any] = GroupCommit(
            self._write_batch, self._alone, retryable=rolled_back, attempts=WRITE_ATTEMPTS, failed=self._failed)
        # The last seq written per session during its turn, so a batch need not look them up. An
        # inbound message taking a seq meanwhile makes the insert fail; the batch is then redone
        # message by message and the cache forgotten.
        self._seqs: dict[str, int] = {}
        self.replies = ReplyLedger(self)

    def of(self, session_id: str) -> SessionTranscript:
        return SessionTranscript(self, session_id)

    def forget(self, session_id: str) -> None:
        self._seqs.pop(session_id, None)

    async def load(self, session_id: str) -> list[dict[str, Any]]:
        """The session's transcript, as `load_messages` gives it; remembers its last seq."""
        async with self.rt.db.session() as db:
            rows = (await db.execute(select(Message.seq, Message.payload).where(Message.session_id == session_id)
                                     .order_by(Message.seq))).all()
        if rows:
            self._seqs[session_id] = rows[-1][0]
        return [dict(payload) for _, payload in rows]

    async def append(self, session_id: str, message: dict[str, Any]) -> None:
        await self._batches.submit(("message", (session_id, self.rt.redactor.redact_obj(message))))

    async def usage(self, session: Session, user: str, event: ev.UsageRecorded) -> None:
        await self._batches.submit(("usage", (session, user, event)))

    async def post_reply(self, session_id: str, post: Callable[[], Awaitable[Any]]) -> bool:
        """Post the session's latest reply with `post`, once (see `replies.py`)."""
        return await self.replies.post_once(session_id, post)

    async def reply_intent(self, session_id: str) -> tuple[str, str | None]:
        """The intent to post the session's latest reply (see `reply_key`): its key, and what was
        stored for it before (None when the intent is new)."""
        return await self._batches.submit(("intent", session_id))  # type: ignore[no-any-return]

    async def reply_outcomes(self, outcomes: dict[str, bool]) -> None:
        await self._batches.submit(("outcomes", outcomes))

    async def _write_batch(self, batch: list[Entry]) -> list[Any]:
        written: dict[str, int] = {}
        async with self.rt.db.transaction() as db:
            intents = await self._write(db, batch, written)
        self._seqs.update(written)
        return [intents[item] if kind == "intent" else None for kind, item in batch]

    def _failed(self, batch: list[Entry]) -> None:
        for kind, item in batch:
            if kind == "message":
                self.forget(item[0])

    async def _write(self, db: Any, batch: list[Entry], written: dict[str, int]) -> dict[str, tuple[str, str | None]]:
        messages = [item for kind, item in batch if kind == "message"]
        if messages:
            sids = {sid for sid, _ in messages}
            seqs = {sid: self._seqs[sid] + 1 for sid in sids if sid in self._seqs}
            seqs.update(await next_seqs(db, sids - set(seqs)))
            rows = []
            for sid, message in messages:
                rows.append({"session_id": sid, "seq": seqs[sid], "role": message["role"], "author": None,
                             "source_key": None, "payload": message, "created_at": utcnow()})
                seqs[sid] += 1
            await db.execute(insert(Message), rows)
            written.update({sid: seqs[sid] - 1 for sid in sids})
        # A reply's intent comes in the batch after the one that stored the reply: its seq is the cached
        # last one.
        written.update({sid: self._seqs[sid] for kind, sid in batch
                        if kind == "intent" and sid not in written and sid in self._seqs})
        usage = [item for kind, item in batch if kind == "usage"]
        if usage:
            await record_usages(db, usage)
        keys = {sid: f"reply:{sid}:{written[sid]}" if sid in written else await reply_key(db, sid)
                for kind, sid in batch if kind == "intent"}
        before = await open_intents(db, list(keys.values())) if keys else {}
        outcomes = {k: ok for kind, item in batch if kind == "outcomes" for k, ok in item.items()}
        if outcomes:
            await store_outcomes(db, outcomes)
        return {sid: (key, before[key]) for sid, key in keys.items()}

    async def _alone(self, entry: Entry) -> Any:
        kind, item = entry
        if kind == "message":
            await DbTranscript(self.rt, item[0]).append(item[1])
            return None
        async with self.rt.db.transaction() as db:
            if kind == "usage":
                await record_usages(db, [item])
            elif kind == "intent":
                key = await reply_key(db, item)
                return key, (await open_intents(db, [key]))[key]
            else:
                await store_outcomes(db, item)
        return None


class SessionTranscript:
    def __init__(self, writer: TranscriptWriter, session_id: str) -> None:
        self.writer, self.session_id = writer, session_id

    async def append(self, message: dict[str, Any]) -> None:
        await self.writer.append(self.session_id, message)

