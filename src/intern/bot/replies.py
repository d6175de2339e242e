"""A turn's final reply goes out once: never twice, and never lost, whatever the database does around
the post.

The post (on the chat platform) and its record (in the database) cannot be one transaction, so the
reply's key (`reply_key`) is stored as an intent (`POSTING`) before the post, and becomes `POSTED`
once the post went through; a post that failed takes its intent back. Nothing is posted while the
intent cannot be stored: the turn fails like any turn whose database went away, and the retry posts.
This process keeps the outcome of each of its posts until the outcome is stored (retrying while the
database is away), so a turn worked again, here or in another process, never posts a reply that went
out. Before posting, a turn asks the ledger:

- no intent: the reply was never posted; post it.
- `POSTED`: it went out; nothing to do.
- an intent whose post this process made: that post's outcome (a failed one is posted again once its
  intent is taken back).
- an intent of another process: that process stores its post's outcome as soon as the database lets
  it; wait for it (`SETTLE_SECONDS`). An intent still open after that is one whose process died during
  the post: the reply is posted again (nothing lost; whether the dead process's post reached the
  platform cannot be known).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from sqlalchemy import delete, func, select, update

from intern.bot.inbox import claim_events
from intern.bot.models import InboundEvent, Message
from intern.bot.store import Backoff

log = logging.getLogger(__name__)

POSTING, POSTED = "reply_posting", "reply"
# How long a turn waits for another process to store the outcome of its post of the same reply.
SETTLE_SECONDS = 15.0
SETTLE_POLL_SECONDS = 0.5


async def reply_key(db: Any, session_id: str) -> str:
    """Names the session's latest model reply. Only the worker holding the lease appends assistant
    messages, so right after a reply is stored it is the latest one."""
    seq = (await db.execute(select(func.max(Message.seq)).where(
        Message.session_id == session_id, Message.role == "assistant"))).scalar()
    return f"reply:{session_id}:{seq or 0}"


async def open_intents(db: Any, keys: list[str]) -> dict[str, str | None]:
    """Store the intent to post each reply of `keys`; returns for each what was stored before (None
    when this call stored the intent)."""
    new = await claim_events(db, keys, POSTING)
    known = [k for k in keys if k not in new]
    kinds: dict[str, str] = {}
    if known:
        kinds = {k: kind for k, kind in (await db.execute(
            select(InboundEvent.key, InboundEvent.kind).where(InboundEvent.key.in_(known)))).all()}
    # A row gone meanwhile was an intent taken back just now: looked at again on the next try.
    return {k: None if k in new else kinds.get(k, POSTING) for k in keys}


async def store_outcomes(db: Any, outcomes: dict[str, bool]) -> None:
    """Each post's outcome: went out (`POSTED`), or failed (its intent taken back)."""
    posted = [k for k, ok in outcomes.items() if ok]
    if posted:
        await claim_events(db, posted, POSTED)
        await db.execute(update(InboundEvent).where(InboundEvent.key.in_(posted)).values(kind=POSTED)
                         .execution_options(synchronize_session=False))
    failed = [k for k, ok in outcomes.items() if not ok]
    if failed:
        await db.execute(delete(InboundEvent).where(InboundEvent.key.in_(failed), InboundEvent.kind == POSTING)
                         .execution_options(synchronize_session=False))


class ReplyStore(Protocol):
    """Where the ledger keeps intents and outcomes (the transcript writer, which group-commits them)."""

    async def reply_intent(self, session_id: str) -> tuple[str, str | None]: ...

    async def reply_outcomes(self, outcomes: dict[str, bool]) -> None: ...


class ReplyLedger:
    """The final replies this process posts: see the module's docstring."""

    def __init__(self, store: ReplyStore, settle_seconds: float = SETTLE_SECONDS) -> None:
        self.store, self.settle_seconds = store, settle_seconds
        # Posts whose outcome is not stored yet, by reply key (running, or done and waiting for the database).
        self._posts: dict[str, asyncio.Task[bool]] = {}
        self._keeper: asyncio.Task[None] | None = None

    async def post_once(self, session_id: str, post: Callable[[], Awaitable[Any]]) -> bool:
        """Post the session's latest reply with `post` unless it went out already; True when this call
        posted it. A database error before the post leaves it unposted (and raises); the post's own
        error is raised once its intent is taken back (or left to be taken back when the database
        allows). The post is not cut short by the turn's cancellation: its outcome is stored anyway."""
        waited = 0.0
        while True:
            key, before = await self.store.reply_intent(session_id)
            if before is None:
                break
            if before == POSTED:
                return False
            mine = self._posts.get(key)
            if mine is not None:
                if mine.done() and went_out(mine):
                    return False
                if not mine.done():
                    await asyncio.wait([mine])
                    continue
                # This process's post failed: post again once its intent is taken back.
            elif waited >= self.settle_seconds:
                log.warning("reply %s: the outcome of an earlier post was never stored (its process stopped "
                            "during the post); posting it again", key)
                break
            await asyncio.sleep(SETTLE_POLL_SECONDS)
            waited += SETTLE_POLL_SECONDS
        task = asyncio.ensure_future(self._post(key, post))
        self._posts[key] = task
        return await asyncio.shield(task)

    async def _post(self, key: str, post: Callable[[], Awaitable[Any]]) -> bool:
        me = asyncio.current_task()
        try:
            await post()
        except asyncio.CancelledError:
            # Only when the process stops: the outcome is unknown, the intent stays (see above).
            if self._posts.get(key) is me:
                del self._posts[key]
            raise
        except BaseException:
            await self._store(key, False, me)
            raise
        await self._store(key, True, me)
        return True

    async def _store(self, key: str, posted: bool, task: Any) -> None:
        try:
            await self.store.reply_outcomes({key: posted})
        except Exception as exc:
            log.warning("reply %s: could not store that it was %s (%s); kept until the database answers", key,
                        "posted" if posted else "not posted", type(exc).__name__)
            if self._keeper is None or self._keeper.done():
                self._keeper = asyncio.create_task(self._keep(), name="reply-outcomes")
            return
        if self._posts.get(key) is task:
            del self._posts[key]

    async def _keep(self) -> None:
        """Store the outcomes of posts whose own attempt failed, until the database takes them."""
        backoff = Backoff(first=0.2, cap=2.0)
        while True:
            await backoff.pause()
            done = {k: t for k, t in self._posts.items() if t.done() and not t.cancelled()}
            if not done:
                return
            try:
                await self.store.reply_outcomes({k: went_out(t) for k, t in done.items()})
            except Exception:
                continue
            backoff.reset()
            for k, t in done.items():
                if self._posts.get(k) is t:
                    del self._posts[k]
            log.info("stored the outcome of %d reply post(s)", len(done))

    @property
    def unsettled(self) -> int:
        """Posts whose outcome is not stored yet."""
        return len(self._posts)


def went_out(task: asyncio.Task[bool]) -> bool:
    return not task.cancelled() and task.exception() is None
