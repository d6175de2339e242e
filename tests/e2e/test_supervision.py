"""A running job supervised through `intern serve` on Slack: the status card follows its progress,
metrics, GPU and cost; alerts (NaN, stall, idle GPU, timeout) are raised once each with a Cancel
button only the right people may use; the chart is uploaded into the thread when the job ends and on
`@intern chart`."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from intern.bot.models import AuditEvent, Job, JobAlert, WorkItem
from intern.standins.hub import HubStandIn
from intern.standins.hub_jobs import JobsState, jobs_state
from intern.standins.llm import LLMStandIn, text_reply
from intern.standins.slack import SlackStandIn, block_action, mention_event
from tests.e2e.harness import APPROVER, OTHER, REQUESTER, Harness, count, job_rule, wait_until
from tests.e2e.test_slack_flow import click, mention_until_card

PNG = b"\x89PNG\r\n\x1a\n"


def supervising_rule() -> Any:
    """The job rule, plus an answer to alerts that names the alert it was told about."""
    launch = job_rule()

    def rule(request: dict[str, Any]) -> Any:
        messages = request.get("messages") or []
        last = messages[-1] if messages else {}
        content = last.get("content") if isinstance(last.get("content"), str) else json.dumps(last.get("content"))
        if request.get("tools") is not None and last.get("role") == "user" and "[job alert]" in (content or ""):
            kind = "diverged" if "diverged" in content else "other"
            return text_reply(f"Alert seen ({kind}): I suggest halving the learning rate and relaunching.")
        return launch(request)

    return rule


@pytest.fixture
async def harness(migrated_url: str, stands: tuple[SlackStandIn, HubStandIn, LLMStandIn]) -> AsyncIterator[Harness]:
    slack, hub, llm = stands
    llm.rule = supervising_rule()
    h = Harness(migrated_url, slack, hub, llm, extra_env={"INTERN_JOB_STALL_MINUTES": "0.05"})
    await h.start()
    assert h.proc is not None
    h.proc.rt.gpu_idle_seconds = 2.0
    jobs_state(hub).metrics_interval = 0.1
    try:
        yield h
    finally:
        await h.stop()


async def running_job(h: Harness) -> tuple[str, str, JobsState]:
    thread, approval = await mention_until_card(h)
    await h.sender.send_interaction(click(h, "intern_approve", approval, APPROVER, thread))
    jobs = jobs_state(h.hub)
    await wait_until(lambda: len(jobs.created) == 1, timeout=20)
    job_id = jobs.created[0].job_id
    await wait_until(lambda: any("launched" in t for t in h.slack.texts(thread_ts=thread)))
    jobs.set_stage(job_id, "RUNNING")
    await wait_until(lambda: any("is running" in t for t in h.slack.texts(thread_ts=thread)))
    return thread, job_id, jobs


def status_card(h: Harness, thread: str) -> Any:
    posted = next(m for m in h.slack.posted(thread_ts=thread) if "Intern status" in str(m.blocks))
    return h.slack.message(posted.channel, posted.ts)


def alert_cards(h: Harness, thread: str) -> list[Any]:
    return [m for m in h.slack.posted(thread_ts=thread) if "intern_cancel_job" in str(m.blocks)]


async def stored_points(h: Harness, metric: str, n: int) -> bool:
    assert h.proc is not None
    async with h.proc.rt.db.session() as db:
        job = (await db.execute(select(Job))).scalar_one()
    return len((job.metric_points or {}).get(metric, [])) >= n


def cancel_click(h: Harness, card: Any, job_id: str, user: str, thread: str) -> dict[str, Any]:
    return block_action("intern_cancel_job", job_id, user=user, team=h.slack.team_id, channel=card.channel,
                        message_ts=card.ts, thread_ts=thread)


async def test_card_follows_progress_metrics_gpu_and_cost_then_the_chart_is_uploaded(harness: Harness) -> None:
    h = harness
    thread, job_id, jobs = await running_job(h)
    jobs.set_gpu(job_id, utilization=87, memory_used_bytes=19_000_000_000)
    jobs.append_logs(job_id, " 10%|█         | 100/1000 [00:50<07:30,  2.00it/s]",
                     "{'loss': 1.42, 'grad_norm': 0.83, 'learning_rate': 1.9e-05, 'epoch': 0.25}")
    await wait_until(lambda: "step 100/1000 (10%)" in str(status_card(h, thread).blocks), timeout=15)
    shown = str(status_card(h, thread).blocks)
    for part in ("RUNNING", "ETA 7m30s", "loss 1.42", "grad_norm 0.83", "lr 1.90e-05", "GPU 87%", "19.0/24 GB",
                 "cost so far $", "elapsed"):
        assert part in shown, part
    edits_before = len(status_card(h, thread).edits)
    for step, loss in ((200, 1.13), (300, 0.95), (400, 0.87)):
        jobs.append_logs(job_id, f" {step // 10}%|██        | {step}/1000 [01:40<06:40,  2.00it/s]",
                         f"{{'loss': {loss}, 'grad_norm': 0.5, 'learning_rate': 1.5e-05, 'epoch': {step / 1000}}}")
    await wait_until(lambda: "loss 0.87" in str(status_card(h, thread).blocks), timeout=15)
    # Progress edits to one card are at least a second apart (Slack's and Discord's limits).
    stamps = [float(e["edited_ts"]) for e in status_card(h, thread).edits[edits_before:]]
    assert all(b - a >= 0.95 for a, b in itertools.pairwise(stamps)), stamps
    # `@intern chart` while the job runs charts what the process following it has read so far.
    await h.sender.send_event(mention_event("chart", user=OTHER, thread_ts=thread))
    await wait_until(lambda: h.slack.method_calls("files.completeUploadExternal"), timeout=20)
    jobs.set_stage(job_id, "COMPLETED")
    await wait_until(lambda: len(h.slack.method_calls("files.completeUploadExternal")) == 2, timeout=20)
    assert len(h.slack.method_calls("files.getUploadURLExternal")) == 2
    uploads = [f for f in h.slack.files.values() if f.completed]
    assert [f.filename for f in uploads] == [f"job-{job_id}-metrics.png"] * 2
    assert all(f.content and f.content.startswith(PNG) and f.thread_ts == thread for f in uploads)
    shared = [m for m in h.slack.posted(thread_ts=thread) if m.files]
    assert "so far (4 logged points)" in shared[0].text and "over its 4 logged points" in shared[1].text
    assert "Qwen/Qwen2.5-0.5B" in shared[1].text  # the model the approved script trains
    async with h.proc.rt.db.session() as db:  # type: ignore[union-attr]
        job = (await db.execute(select(Job))).scalar_one()
    assert [p[1] for p in job.metric_points["loss"]] == [1.42, 1.13, 0.95, 0.87]
    assert [p[0] for p in job.metric_points["loss"]] == [100, 200, 300, 400]
    assert job.live["gpu"]["utilization"] == 87


async def test_a_nan_loss_raises_one_alert_that_wakes_the_agent_and_only_the_right_people_cancel(
        harness: Harness) -> None:
    h = harness
    thread, job_id, jobs = await running_job(h)
    jobs.set_gpu(job_id, utilization=95)
    jobs.append_logs(job_id, "{'loss': nan, 'grad_norm': nan, 'learning_rate': 2e-05, 'epoch': 0.1}")
    await wait_until(lambda: alert_cards(h, thread), timeout=15)
    [card] = alert_cards(h, thread)
    assert job_id in str(card.blocks) and "diverged" in str(card.blocks)
    button = next(e for b in card.blocks if b["type"] == "actions" for e in b["elements"])
    assert (button["action_id"], button["value"]) == ("intern_cancel_job", job_id)
    await wait_until(lambda: any("Alert seen (diverged)" in t for t in h.slack.texts(thread_ts=thread)), timeout=20)
    assert await count(h, WorkItem, WorkItem.kind == "job_alert") == 1
    # The same problem again is not a second alert.
    jobs.append_logs(job_id, "{'loss': nan, 'grad_norm': nan, 'learning_rate': 2e-05, 'epoch': 0.2}")
    await wait_until(lambda: count(h, Job, Job.live.is_not(None)), timeout=10)

    await h.sender.send_interaction(cancel_click(h, card, job_id, OTHER, thread))
    await wait_until(lambda: h.slack.ephemerals(user=OTHER), timeout=10)
    assert "Only the person who asked for this job" in h.slack.ephemerals(user=OTHER)[-1].text
    assert jobs.job(job_id).stage == "RUNNING"
    await h.sender.send_interaction(cancel_click(h, card, job_id, REQUESTER, thread))
    await wait_until(lambda: jobs.job(job_id).stage == "CANCELED", timeout=10)
    await wait_until(lambda: any("canceled after" in t for t in h.slack.texts(thread_ts=thread)), timeout=20)
    assert "Cancelling job" in h.slack.ephemerals(user=REQUESTER)[-1].text
    assert len(alert_cards(h, thread)) == 1
    assert await count(h, JobAlert) == 1
    assert await count(h, AuditEvent, AuditEvent.kind == "job_cancel_refused", AuditEvent.actor == OTHER) == 1
    assert await count(h, AuditEvent, AuditEvent.kind == "job_cancel_requested", AuditEvent.actor == REQUESTER) == 1


async def test_stall_idle_gpu_and_a_projected_finish_past_the_timeout_each_alert_once(harness: Harness) -> None:
    h = harness
    thread, job_id, jobs = await running_job(h)
    # 2 h timeout; 20 of 1,000 steps took 40 s and tqdm expects 32 more minutes... per 20 steps: far too slow
    jobs.append_logs(job_id, "  2%|▏         | 20/1000 [00:40<5:26:40, 20.00s/it]")
    await wait_until(lambda: len(alert_cards(h, thread)) == 3, timeout=20)  # timeout, idle GPU (0%), stall (3 s)
    texts = " ".join(str(c.blocks) for c in alert_cards(h, thread))
    assert "will not finish before its timeout" in texts and "GPU idle" in texts and "no log output" in texts
    async with h.proc.rt.db.session() as db:  # type: ignore[union-attr]
        kinds = sorted((await db.execute(select(JobAlert.kind))).scalars().all())
    assert kinds == ["gpu_idle", "stall", "timeout"]
    jobs.append_logs(job_id, "  3%|▎         | 30/1000 [01:00<5:23:20, 20.00s/it]")
    jobs.set_stage(job_id, "COMPLETED")
    await wait_until(lambda: any("completed after" in t for t in h.slack.texts(thread_ts=thread)), timeout=20)
    assert len(alert_cards(h, thread)) == 3
    assert await count(h, WorkItem, WorkItem.kind == "job_alert") == 3
    assert not h.slack.method_calls("files.completeUploadExternal")  # no metric logged: no chart
