"""A turn's final reply goes out once whatever the database does around the post: the reply ledger
(`replies.py`) on the real transcript writer and database (SQLite, and PostgreSQL when set). The
database "going away" is its writes failing at the chosen moment; the post is a stand-in's."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from intern.bot.models import InboundEvent, Session
from intern.bot.replies import POSTED, POSTING, reply_key
from intern.bot.sessions import add_message
from intern.bot.store import Database
from intern.bot.transcripts import TranscriptWriter
from tests.test_inbound_priority import make_runtime


class Outage:
    """Makes the chosen writes of a transcript writer fail as if the database were away."""

    def __init__(self, writer: TranscriptWriter, *methods: str) -> None:
        self.down = False
        for name in methods:
            real = getattr(writer, name)

            async def failing(*args: Any, _real: Any = real) -> Any:
                if self.down:
                    raise ConnectionRefusedError(111, "Connect call failed")
                return await _real(*args)

            setattr(writer, name, failing)


class Platform:
    """The chat platform: what was posted, and a post that may be slow or fail."""

    def __init__(self) -> None:
        self.posts: list[str] = []
        self.fail = False
        self.delay = 0.0
        self.on_post: Any = None

    async def post(self, text: str = "the answer") -> None:
        if self.fail:
            raise ConnectionResetError("the platform went away")
        await asyncio.sleep(self.delay)
        self.posts.append(text)
        if self.on_post is not None:
            self.on_post()


@pytest.fixture
async def sid(db: Database) -> str:
    async with db.transaction() as tx:
        s = Session(platform="slack", workspace="T1", channel="C1", thread="1.1", started_by="U1")
        tx.add(s)
        await tx.flush()
        await add_message(tx, s.id, {"role": "user", "content": "please do it"})
        await add_message(tx, s.id, {"role": "assistant", "content": "the answer"})
        return str(s.id)


async def stored(db: Database, sid: str) -> str | None:
    async with db.session() as s:
        row = await s.get(InboundEvent, await reply_key(s, sid))
        return None if row is None else str(row.kind)


async def eventually(predicate: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_a_reply_posted_just_before_the_database_went_away_is_not_posted_again(db: Database, sid: str) -> None:
    writer, slack = TranscriptWriter(make_runtime(db)), Platform()
    outage = Outage(writer, "reply_outcomes")
    slack.on_post = lambda: setattr(outage, "down", True)  # away right after the platform took it
    assert await writer.post_reply(sid, slack.post) is True
    assert await stored(db, sid) == POSTING  # its outcome could not be stored

    # The turn is worked again while the outcome is still unstored: the reply does not go out again.
    assert await writer.post_reply(sid, slack.post) is False
    assert slack.posts == ["the answer"]

    outage.down = False  # the database is back: the outcome this process kept is stored
    await eventually(lambda: _is(db, sid, POSTED))
    assert writer.replies.unsettled == 0
    assert await writer.post_reply(sid, slack.post) is False
    assert slack.posts == ["the answer"]


async def test_another_process_waits_for_the_outcome_of_a_post_it_did_not_make(db: Database, sid: str) -> None:
    first, second, slack = TranscriptWriter(make_runtime(db)), TranscriptWriter(make_runtime(db)), Platform()
    outage = Outage(first, "reply_outcomes")
    slack.on_post = lambda: setattr(outage, "down", True)
    assert await first.post_reply(sid, slack.post) is True
    assert await stored(db, sid) == POSTING

    # The first process's lease lapsed; the second takes the turn over while the first still waits
    # for the database to store what it posted.
    takeover = asyncio.create_task(second.post_reply(sid, slack.post))
    await asyncio.sleep(1.0)
    assert not takeover.done() and slack.posts == ["the answer"]
    outage.down = False
    assert await asyncio.wait_for(takeover, 20) is False
    assert slack.posts == ["the answer"]
    assert await stored(db, sid) == POSTED


async def test_nothing_is_posted_while_the_intent_cannot_be_stored_and_the_retry_posts(
        db: Database, sid: str) -> None:
    writer, slack = TranscriptWriter(make_runtime(db)), Platform()
    outage = Outage(writer, "reply_intent")
    outage.down = True
    with pytest.raises(ConnectionRefusedError):
        await writer.post_reply(sid, slack.post)
    assert slack.posts == [] and await stored(db, sid) is None
    outage.down = False
    assert await writer.post_reply(sid, slack.post) is True
    assert slack.posts == ["the answer"] and await stored(db, sid) == POSTED


async def test_a_post_that_failed_takes_its_intent_back_and_goes_out_on_retry(db: Database, sid: str) -> None:
    writer, slack = TranscriptWriter(make_runtime(db)), Platform()
    slack.fail = True
    with pytest.raises(ConnectionResetError):
        await writer.post_reply(sid, slack.post)
    assert await stored(db, sid) is None
    slack.fail = False
    assert await writer.post_reply(sid, slack.post) is True
    assert await writer.post_reply(sid, slack.post) is False
    assert slack.posts == ["the answer"] and await stored(db, sid) == POSTED


async def test_a_failed_post_whose_intent_could_not_be_taken_back_goes_out_once_the_database_is_back(
        db: Database, sid: str) -> None:
    writer, slack = TranscriptWriter(make_runtime(db)), Platform()
    outage = Outage(writer, "reply_outcomes")
    outage.down, slack.fail = True, True
    with pytest.raises(ConnectionResetError):
        await writer.post_reply(sid, slack.post)
    assert await stored(db, sid) == POSTING
    slack.fail = False
    retry = asyncio.create_task(writer.post_reply(sid, slack.post))
    await asyncio.sleep(0.5)
    assert slack.posts == []  # not before the failed post's intent is taken back
    outage.down = False
    assert await asyncio.wait_for(retry, 20) is True
    assert slack.posts == ["the answer"] and await stored(db, sid) == POSTED


async def test_a_turn_cancelled_during_the_post_still_stores_its_outcome(db: Database, sid: str) -> None:
    writer, slack = TranscriptWriter(make_runtime(db)), Platform()
    slack.delay = 0.5
    turn = asyncio.create_task(writer.post_reply(sid, slack.post))
    await asyncio.sleep(0.1)
    turn.cancel()  # the lease keeper gave the turn up while the platform was taking the reply
    with pytest.raises(asyncio.CancelledError):
        await turn
    assert await writer.post_reply(sid, slack.post) is False  # the retry waits for the post under way
    assert slack.posts == ["the answer"]
    await eventually(lambda: _is(db, sid, POSTED))


async def test_an_intent_left_by_a_process_that_died_during_the_post_is_posted_after_a_while(
        db: Database, sid: str) -> None:
    async with db.transaction() as tx:
        tx.add(InboundEvent(key=await reply_key(tx, sid), kind=POSTING))
    writer, slack = TranscriptWriter(make_runtime(db)), Platform()
    writer.replies.settle_seconds = 1.0
    assert await writer.post_reply(sid, slack.post) is True
    assert slack.posts == ["the answer"] and await stored(db, sid) == POSTED


async def _is(db: Database, sid: str, kind: str) -> bool:
    return await stored(db, sid) == kind
