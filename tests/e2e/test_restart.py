"""Restarting the bot loses nothing: each "process" here is a real `intern serve` subprocess on the same
database, talking to the same stand-ins."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from intern.standins.hub import HubStandIn
from intern.standins.hub_jobs import JobsState, jobs_state
from intern.standins.llm import LLMStandIn
from intern.standins.slack import SlackStandIn, mention_event, message_event
from tests.e2e.harness import APPROVER, REQUESTER, Harness, job_rule, wait_until
from tests.e2e.test_slack_flow import approval_id_of, cards, click


@pytest.fixture
async def harness(migrated_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm:
        llm.rule = job_rule(flavor="a100-large", timeout="6h")
        h = Harness(migrated_url, slack, hub, llm, extra_env={"INTERN_LEASE_SECONDS": "3"})  # type: ignore[arg-type]
        try:
            yield h
        finally:
            await h.kill_child(hard=True)


async def test_card_survives_a_restart_and_the_click_launches_exactly_one_job(harness: Harness, tmp_path: Path) -> None:
    await harness.start_child(tmp_path)
    event = mention_event("fine-tune a 7B model on my dataset", user=REQUESTER)
    assert (await harness.sender.send_event(event)).status == 200
    thread = event["ts"]
    await wait_until(lambda: cards(harness.slack, thread), timeout=30)
    approval = approval_id_of(cards(harness.slack, thread)[0])

    await harness.kill_child()  # SIGTERM: a graceful stop, then a brand-new process
    await harness.start_child(tmp_path)

    r = await harness.sender.send_interaction(click(harness, "intern_approve", approval, APPROVER, thread))
    assert r.status == 200
    jobs = jobs_state(harness.hub)
    await wait_until(lambda: len(jobs.created) == 1, timeout=30)
    assert jobs.created[0].flavor == "a100-large"
    assert jobs.created[0].timeout_seconds == 6 * 3600
    assert jobs.created[0].labels.get("intern-approval") == approval


async def test_job_is_followed_after_a_hard_kill_and_the_conversation_continues(harness: Harness,
                                                                                tmp_path: Path) -> None:
    await harness.start_child(tmp_path)
    event = mention_event("train please", user=REQUESTER)
    await harness.sender.send_event(event)
    thread = event["ts"]
    await wait_until(lambda: cards(harness.slack, thread), timeout=30)
    approval = approval_id_of(cards(harness.slack, thread)[0])
    await harness.sender.send_interaction(click(harness, "intern_approve", approval, APPROVER, thread))
    jobs = jobs_state(harness.hub)
    await wait_until(lambda: len(jobs.created) == 1, timeout=30)
    job_id = jobs.created[0].job_id
    await wait_until(lambda: any("launched" in t for t in harness.slack.texts(thread_ts=thread)), timeout=30)

    await harness.kill_child(hard=True)  # kill -9: no goodbye
    jobs.set_stage(job_id, "RUNNING")
    jobs.set_stage(job_id, "COMPLETED")
    await harness.start_child(tmp_path)

    # the new process takes over the job once the dead one's lease lapses, and the agent reports
    await wait_until(lambda: any("All done" in t for t in harness.slack.texts(thread_ts=thread)), timeout=60)
    reply = message_event("thanks! what was the final loss?", user=REQUESTER, thread_ts=thread)
    harness.llm.rule = lambda req: __import__("intern.standins.llm", fromlist=["text_reply"]).text_reply(
        "The final loss was in the logs above.")
    await harness.sender.send_event(reply)
    await wait_until(lambda: any("final loss" in t for t in harness.slack.texts(thread_ts=thread)), timeout=30)
    assert len(jobs.created) == 1


async def running_job(harness: Harness, tmp_path: Path) -> tuple[str, str, JobsState]:
    """A served process, a thread, its approved job RUNNING on a busy GPU: (thread, Hub job id, the Hub's jobs)."""
    await harness.start_child(tmp_path)
    event = mention_event("train please", user=REQUESTER)
    await harness.sender.send_event(event)
    thread = event["ts"]
    await wait_until(lambda: cards(harness.slack, thread), timeout=30)
    approval = approval_id_of(cards(harness.slack, thread)[0])
    await harness.sender.send_interaction(click(harness, "intern_approve", approval, APPROVER, thread))
    jobs = jobs_state(harness.hub)
    await wait_until(lambda: len(jobs.created) == 1, timeout=30)
    job_id = jobs.created[0].job_id
    jobs.set_stage(job_id, "RUNNING")
    jobs.set_gpu(job_id, utilization=90)
    return thread, job_id, jobs


async def test_an_alert_is_raised_once_across_a_restart_and_the_new_process_charts_the_whole_run(
        harness: Harness, tmp_path: Path) -> None:
    thread, job_id, jobs = await running_job(harness, tmp_path)
    jobs.append_logs(job_id, "step 10 loss 2.5", "step 20 loss 2.1", "step 25 loss 1.9", "step 30 loss nan")
    alerts = lambda: [m for m in harness.slack.posted(thread_ts=thread) if "intern_cancel_job" in str(m.blocks)]  # noqa: E731
    await wait_until(alerts, timeout=30)

    await harness.kill_child()  # a new process replays the whole log, NaN included
    jobs.append_logs(job_id, "step 40 loss nan")
    await harness.start_child(tmp_path)
    jobs.set_stage(job_id, "COMPLETED")
    await wait_until(lambda: harness.slack.method_calls("files.completeUploadExternal"), timeout=60)
    assert len(alerts()) == 1
    [chart] = [f for f in harness.slack.files.values() if f.completed]
    assert chart.content is not None and chart.content.startswith(b"\x89PNG") and chart.thread_ts == thread


async def test_the_stall_clock_runs_from_the_last_line_logged_not_from_a_restart(harness: Harness,
                                                                                 tmp_path: Path) -> None:
    """A new process reads the whole log again; the lines keep the times the job logged them, so a
    job that went quiet before the restart is called stalled on time, not a stall period later."""
    stall = 15.0
    harness.extra_env["INTERN_JOB_STALL_MINUTES"] = str(stall / 60)
    thread, job_id, jobs = await running_job(harness, tmp_path)
    jobs.append_logs(job_id, "step 10 loss 2.5")  # and then nothing more
    quiet_since = time.time()
    await wait_until(lambda: any("step 10" in str(m.blocks) for m in harness.slack.posted(thread_ts=thread)),
                     timeout=20)

    await harness.kill_child()  # SIGTERM: the job is let go at once
    await asyncio.sleep(max(0.0, quiet_since + 9 - time.time()))
    restarted = time.time()
    await harness.start_child(tmp_path)
    alerts = lambda: [m for m in harness.slack.posted(thread_ts=thread) if "intern_cancel_job" in str(m.blocks)]  # noqa: E731
    await wait_until(alerts, timeout=40)
    raised = time.time()
    [alert] = alerts()
    assert "no new log line for" in str(alert.blocks)
    # Counted from the restart, the alert could not come before restarted + stall.
    assert raised - quiet_since >= stall - 1
    assert raised < restarted + stall - 2, (raised - quiet_since, restarted - quiet_since)
