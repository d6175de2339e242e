"""Discord buttons keep working across a restart of `intern serve` itself: the card is posted by one
process, that process is killed, and a new process on the same database (nothing shared in memory)
takes the click: an approval launches exactly one job, a job alert's Cancel cancels the job (and is
refused privately to a bystander), and the alert is not raised again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from intern.bot.models import AuditEvent, Job
from intern.bot.store import connect
from intern.standins.discord import DiscordStandIn
from intern.standins.hub import HubStandIn
from intern.standins.hub_jobs import jobs_state
from intern.standins.llm import LLMStandIn
from tests.discord.harness import DiscordHarness, ask_until_card, cards, custom_id, people_in
from tests.e2e.harness import free_port, job_rule, wait_until

# Two `intern serve` starts (each up to 90 s on a loaded machine) and the waits around them.
pytestmark = pytest.mark.timeout(360)


class Served:
    """`intern serve --migrate` as a process of its own, with the harness's settings."""

    def __init__(self, h: DiscordHarness, log: Path) -> None:
        self.h, self.log_path = h, log
        self.child: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.h.port = free_port()
        env = {**os.environ, **self.h.env()}
        with self.log_path.open("ab") as log:
            self.child = subprocess.Popen(  # noqa: ASYNC220 - a long-lived server, never awaited for output
                [sys.executable, "-m", "intern.bot.cli", "serve", "--migrate"], env=env,
                stdout=log, stderr=subprocess.STDOUT)
        deadline = asyncio.get_running_loop().time() + 90
        async with aiohttp.ClientSession() as session:
            while asyncio.get_running_loop().time() < deadline:
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(f"http://127.0.0.1:{self.h.port}/healthz") as r:
                        if r.status == 200:
                            return
                assert self.child.poll() is None, self.log_path.read_text(errors="replace")[-4000:]
                await asyncio.sleep(0.1)
        raise TimeoutError("intern serve did not start:\n" + self.log_path.read_text(errors="replace")[-4000:])

    async def kill(self) -> None:
        if self.child is not None:
            self.child.kill()
            await asyncio.to_thread(self.child.wait, 30)
            self.child = None


@pytest.fixture
async def served(migrated_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    async with DiscordStandIn() as discord, HubStandIn() as hub, LLMStandIn() as llm:
        llm.rule = job_rule()  # type: ignore[attr-defined]
        h = DiscordHarness(migrated_url, discord, hub, llm, people_in(discord))  # type: ignore[arg-type]
        s = Served(h, tmp_path / "serve.log")
        try:
            yield s
        finally:
            await s.kill()


async def test_a_card_posted_by_a_killed_process_is_approved_through_a_new_process(served: Served) -> None:
    h = served.h
    d, p = h.discord, h.people
    await served.start()
    await wait_until(lambda: d.identifies, timeout=90)
    thread, card = await ask_until_card(h)  # type: ignore[arg-type]
    approve = custom_id(card, "approve")
    await served.kill()  # kill -9: nothing is handed over

    await served.start()  # a new process on the same database
    await wait_until(lambda: len(d.identifies) >= 2, timeout=90)
    [answer] = await d.answered(await d.click(d.message(card.id), approve, p.approver), seconds=90)  # type: ignore[arg-type]
    assert answer.ephemeral_to == p.approver and "Approved" in answer.content
    jobs = jobs_state(h.hub)
    await wait_until(lambda: len(jobs.created) == 1, timeout=90)
    try:
        await wait_until(lambda: not d.message(card.id).custom_ids(), timeout=90)  # type: ignore[union-attr]
    except TimeoutError:
        raise AssertionError("the card kept its buttons:\n" + served.log_path.read_text(errors="replace")[-6000:]) \
            from None
    assert d.message(card.id).embeds[0]["title"].startswith(f"Approved by <@{p.approver}>")  # type: ignore[union-attr]
    assert not cards(d, thread)
    await wait_until(lambda: any("launched" in t for t in d.texts(thread)), timeout=90)
    [again] = await d.answered(await d.click(d.message(card.id), approve, p.approver), seconds=90)  # type: ignore[arg-type]
    assert "Already approved" in again.content
    await asyncio.sleep(1.0)
    assert len(jobs.created) == 1
    db = connect(h.database_url)
    try:
        async with db.session() as s:
            assert (await s.execute(select(func.count()).select_from(Job))).scalar_one() == 1
    finally:
        await db.dispose()


async def rows(url: str, model: type, *where: object) -> int:
    db = connect(url)
    try:
        async with db.session() as s:
            return int((await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one())
    finally:
        await db.dispose()


async def test_a_job_alerts_cancel_button_works_through_a_new_process(served: Served) -> None:
    h = served.h
    d, p = h.discord, h.people
    await served.start()
    await wait_until(lambda: d.identifies, timeout=90)
    thread, card = await ask_until_card(h)  # type: ignore[arg-type]
    await d.answered(await d.click(card, custom_id(card, "approve"), p.approver), seconds=90)
    jobs = jobs_state(h.hub)
    await wait_until(lambda: len(jobs.created) == 1, timeout=90)
    job_id = jobs.created[0].job_id
    jobs.set_stage(job_id, "RUNNING")
    await wait_until(lambda: rows(h.database_url, Job, Job.hf_job_id == job_id), timeout=90)
    jobs.set_gpu(job_id, utilization=90)
    jobs.append_logs(job_id, "[step 120] loss = nan")
    await wait_until(lambda: cards(d, thread, "cancel_job"), timeout=90)
    [alert] = cards(d, thread, "cancel_job")
    cancel = custom_id(alert, "cancel_job")
    assert cancel == f"intern:cancel_job:{job_id}"
    await served.kill()  # kill -9: nothing is handed over

    await served.start()  # a new process on the same database
    await wait_until(lambda: len(d.identifies) >= 2, timeout=90)
    [answer] = await d.answered(await d.click(d.message(alert.id), cancel, p.bystander), seconds=90)  # type: ignore[arg-type]
    assert answer.ephemeral_to == p.bystander and "Only the person who asked for this job" in answer.content
    assert jobs.job(job_id).stage == "RUNNING"
    [answer] = await d.answered(await d.click(d.message(alert.id), cancel, p.approver), seconds=90)  # type: ignore[arg-type]
    assert answer.ephemeral_to == p.approver and "Cancelling job" in answer.content
    await wait_until(lambda: jobs.job(job_id).stage == "CANCELED", timeout=90)
    await wait_until(lambda: any("canceled after" in t for t in d.texts(thread)), timeout=90)
    assert await rows(h.database_url, AuditEvent, AuditEvent.kind == "job_cancel_refused") == 1
    assert await rows(h.database_url, AuditEvent, AuditEvent.kind == "job_alert") == 1  # not raised again
