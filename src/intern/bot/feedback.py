"""Thumbs up and down on the agent's answers.

A vote is stored once per answer and person (a later click on the other thumb changes it, the same
thumb again changes nothing), audited as `feedback`, and acknowledged privately. Anyone of the answer's
own workspace may vote; a click from elsewhere, or on a session that does not exist, changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from intern.bot import audit
from intern.bot.chat import FeedbackClick, Reply
from intern.bot.models import Feedback, Session
from intern.bot.runtime import Runtime

log = logging.getLogger(__name__)

REASON_LIMIT = 2000
THANKS = {"up": "Thanks for the 👍: noted for this session.",
          "down": "Thanks for the 👎: noted. Say in the thread what was wrong and I will try again."}
NOT_HERE = "These buttons do not belong to an answer of this workspace."


def parse_value(value: str) -> tuple[str, str] | None:
    """`up:<session id>` / `down:<session id>` → (vote, session id)."""
    vote, _, session_id = value.partition(":")
    if vote not in ("up", "down"):
        return None
    try:
        return vote, str(uuid.UUID(session_id))
    except ValueError:
        return None


async def record(rt: Runtime, click: FeedbackClick) -> Reply:
    async with rt.db.session() as db:
        s = await db.get(Session, click.session_id)
    if s is None or s.platform != click.platform or s.workspace != click.workspace:
        return Reply(NOT_HERE, ok=False)
    reason = rt.redactor.redact(click.reason.strip())[:REASON_LIMIT] if click.reason else None
    changed = await _store(rt, s, click, reason)
    if changed:
        async with rt.db.transaction() as db:
            audit.record(db, "feedback", actor=click.user, platform=s.platform, workspace=s.workspace,
                         channel=s.channel, session_id=s.id, vote=click.vote, message=click.message,
                         **({"reason": reason} if reason else {}))
    if reason:
        return Reply("Thanks: your reason is recorded with the 👎.")
    return Reply(THANKS[click.vote])


async def _store(rt: Runtime, s: Session, click: FeedbackClick, reason: str | None) -> bool:
    """True when this click stored a new vote, changed one, or added a reason."""
    key = (Feedback.platform == s.platform, Feedback.workspace == s.workspace, Feedback.channel == click.channel,
           Feedback.message == click.message, Feedback.user_id == click.user)
    for _ in range(2):
        try:
            async with rt.db.transaction() as db:
                row = (await db.execute(select(Feedback).where(*key))).scalar_one_or_none()
                if row is None:
                    db.add(Feedback(platform=s.platform, workspace=s.workspace, channel=click.channel,
                                    message=click.message, user_id=click.user, session_id=s.id, vote=click.vote,
                                    reason=reason))
                    return True
                if row.vote == click.vote and (reason is None or reason == row.reason):
                    return False
                values: dict[str, Any] = {"vote": click.vote}
                if reason is not None:
                    values["reason"] = reason
                elif row.vote != click.vote:
                    values["reason"] = None  # a reason belongs to the down-vote it came with
                await db.execute(update(Feedback).where(Feedback.id == row.id).values(**values))
                return True
        except IntegrityError:
            continue  # a twin delivery inserted it first: read it again
    return False


async def counts(rt: Runtime, *, session_id: str | None = None, platform: str | None = None,
                 workspace: str | None = None) -> dict[str, int]:
    """Votes by kind, for one session or one workspace."""
    q = select(Feedback.vote, func.count()).group_by(Feedback.vote)
    if session_id is not None:
        q = q.where(Feedback.session_id == session_id)
    if platform is not None:
        q = q.where(Feedback.platform == platform, Feedback.workspace == workspace)
    async with rt.db.session() as db:
        rows = (await db.execute(q)).all()
    found = {str(vote): int(n) for vote, n in rows}
    return {"up": found.get("up", 0), "down": found.get("down", 0)}
