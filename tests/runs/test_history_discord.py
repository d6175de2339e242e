"""Through the real bot on Discord, with two servers: `/intern history words:…` lists the server's own
runs, and a run of one server is never shown (command or card) in the other."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from intern.bot.models import RunRecord
from intern.standins.discord import DiscordStandIn
from intern.standins.hub import HubStandIn
from intern.standins.hub_jobs import jobs_state
from intern.standins.llm import LLMStandIn
from tests.discord.conftest import assert_interactions_deferred_privately_in_time
from tests.discord.harness import DiscordHarness, cards, custom_id, people_in
from tests.e2e.harness import job_rule, wait_until
from tests.runs.test_history_slack import OOM_TAIL


@pytest.fixture
async def two_servers(migrated_url: str) -> AsyncIterator[tuple[DiscordHarness, str, str]]:
    async with DiscordStandIn() as d, HubStandIn() as hub, LLMStandIn() as llm:
        people = people_in(d)  # type: ignore[arg-type]
        other = d.add_guild("Other Lab", owner=people.bystander)  # type: ignore[attr-defined]
        other_channel = d.add_text_channel(other, "training")  # type: ignore[attr-defined]
        for user in (people.requester, people.approver):
            d.add_member(other, user)  # type: ignore[attr-defined]
        llm.rule = job_rule()  # type: ignore[attr-defined]
        h = DiscordHarness(migrated_url, d, hub, llm, people)  # type: ignore[arg-type]
        await h.start()
        try:
            yield h, other, other_channel
        finally:
            await h.stop()
        assert_interactions_deferred_privately_in_time(d)  # type: ignore[arg-type]


async def ask(h: DiscordHarness, channel: str, guild: str, task: str) -> tuple[str, str]:
    """`/intern ask` in `channel`; the new thread and the text of its approval card."""
    d = h.discord
    before = {t["id"] for t in d.threads()}
    await d.answered(await d.slash(h.people.requester, "ask", channel=channel, guild=guild, task=task))
    thread = next(t["id"] for t in d.threads() if t["id"] not in before)
    await wait_until(lambda: cards(d, thread), timeout=20)
    return thread, cards(d, thread)[0].text()


async def history(h: DiscordHarness, channel: str, guild: str, words: str | None = None) -> str:
    options = {"words": words} if words is not None else {}
    [answer] = await h.discord.answered(await h.discord.slash(h.people.bystander, "history", channel=channel,
                                                              guild=guild, **options))
    assert answer.ephemeral_to == h.people.bystander
    return answer.content


async def test_history_and_similar_runs_stay_inside_their_server(
        two_servers: tuple[DiscordHarness, str, str]) -> None:
    h, other, other_channel = two_servers
    d = h.discord
    thread = (await ask(h, d.channel_id, d.guild_id, "fine-tune a small model on my dataset"))[0]
    card = cards(d, thread)[0]
    await d.answered(await d.click(card, custom_id(card, "approve"), h.people.approver))
    jobs = jobs_state(h.hub)
    await wait_until(lambda: len(jobs.created) == 1, timeout=20)
    job_id = jobs.created[0].job_id
    jobs.set_stage(job_id, "RUNNING")
    jobs.append_logs(job_id, *OOM_TAIL)
    jobs.set_stage(job_id, "ERROR", "Job failed with exit code: 1")

    async def failed() -> bool:
        async with h.rt.db.session() as db:
            r = (await db.execute(select(RunRecord))).scalar_one_or_none()
        return r is not None and r.outcome == "failed"

    await wait_until(failed, timeout=20)

    here = await history(h, d.channel_id, d.guild_id, "qwen")
    assert "**Runs of this workspace matching \"qwen\"**" in here  # Slack's *bold* reads as bold here
    assert "Qwen/Qwen2.5-0.5B" in here and "failed (CUDA out of memory)" in here and "a10g-large" in here
    assert "CUDA out of memory" in await history(h, thread, d.guild_id)  # from the session's thread too
    assert "No runs in this workspace yet" in await history(h, other_channel, other)
    assert "No runs of this workspace matching" in await history(h, other_channel, other, "qwen")

    today = datetime.now(UTC).strftime("%Y-%m-%d")
    similar = f"Similar run failed: {job_id} on {today}: CUDA out of memory on a10g-large"
    _, elsewhere = await ask(h, other_channel, other, "fine-tune a small model on our data")
    assert "Similar run failed" not in elsewhere
    _, again = await ask(h, d.channel_id, d.guild_id, "fine-tune it once more")
    assert similar in again
