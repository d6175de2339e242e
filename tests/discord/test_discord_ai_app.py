"""Discord: the channel's typing indicator while a turn works, and feedback buttons on final answers
that keep working after a restart."""

from __future__ import annotations

import asyncio
import itertools

from sqlalchemy import select

from intern.bot.models import AuditEvent, Feedback, Session
from tests.discord.harness import DiscordHarness
from tests.e2e.harness import wait_until

ANSWER = "LoRA rank 16 on one A10G is enough for a 7B model with 4-bit weights."


async def ask_for_an_answer(h: DiscordHarness) -> tuple[str, str]:
    """`/intern ask`, a turn that takes a few seconds, and its final answer; returns (thread, answer id)."""
    d = h.discord
    h.llm.rule = None
    todos = [{"id": "1", "content": "size the run", "status": "completed"}]
    h.llm.enqueue_tool_calls([("plan", {"todos": todos})], delay=2.0)
    h.llm.enqueue_text(ANSWER, delay=9.0)  # longer than one typing indicator lasts
    before = {t["id"] for t in d.threads()}
    await d.answered(await d.slash(h.people.requester, "ask", task="how big a GPU for a 7B LoRA?"))
    thread = next(t["id"] for t in d.threads() if t["id"] not in before)
    await wait_until(lambda: ANSWER in d.texts(thread), timeout=60)
    answer = next(m for m in d.posted(thread) if m.content == ANSWER)
    return thread, answer.id


async def test_the_typing_indicator_runs_while_the_turn_works_and_stops_with_it(harness: DiscordHarness) -> None:
    thread, _ = await ask_for_an_answer(harness)
    beats = [t for channel, t in harness.discord.typing if channel == thread]
    assert len(beats) >= 2  # sent again before the ten seconds of the first ran out
    assert all(later - earlier < 10.0 for earlier, later in itertools.pairwise(beats))
    count = len(harness.discord.typing)
    await asyncio.sleep(9.0)
    assert len(harness.discord.typing) == count  # nothing once the answer is out


async def test_feedback_buttons_on_an_answer_work_after_a_restart(harness: DiscordHarness) -> None:
    d, p = harness.discord, harness.people
    _thread, answer_id = await ask_for_an_answer(harness)
    answer = d.message(answer_id)
    async with harness.rt.db.session() as db:
        sid = (await db.execute(select(Session.id))).scalar_one()
    assert answer.custom_ids() == [f"intern:feedback:up:{sid}", f"intern:feedback:down:{sid}"]
    assert [b["label"] for b in answer.buttons()] == ["👍", "👎"]

    await harness.restart()

    [reply] = await d.answered(await d.click(d.message(answer_id), f"intern:feedback:down:{sid}", p.bystander))
    assert reply.ephemeral_to == p.bystander and "👎" in reply.content
    [reply] = await d.answered(await d.click(d.message(answer_id), f"intern:feedback:down:{sid}", p.bystander))
    async with harness.rt.db.session() as db:
        rows = (await db.execute(select(Feedback.user_id, Feedback.vote, Feedback.message))).all()
        audits = (await db.execute(select(AuditEvent).where(AuditEvent.kind == "feedback"))).scalars().all()
    assert [tuple(r) for r in rows] == [(p.bystander, "down", answer_id)]  # once per person and answer
    assert len(audits) == 1 and audits[0].actor == p.bystander and audits[0].detail["vote"] == "down"
