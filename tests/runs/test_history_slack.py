"""Through the real bot on Slack: a job that fails is remembered with its error signature, listed by
`@intern history` and `/intern history`, found by the agent's `team_history`, shown on the App Home,
and named on the next card for the same model and dataset."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from intern.bot.models import RunRecord
from intern.standins.hub import HubStandIn
from intern.standins.hub_jobs import jobs_state
from intern.standins.llm import LLMStandIn
from intern.standins.slack import SlackStandIn, mention_event, slash_command
from tests.e2e.harness import APPROVER, REQUESTER, Harness, job_rule, wait_until
from tests.e2e.test_slack_flow import cards, click, mention_until_card
from tests.governance.helpers import card_text, tool_rule
from tests.governance.test_app_home import open_home

OOM_TAIL = (
    "{'loss': 2.3012, 'grad_norm': 4.21, 'learning_rate': 2e-05, 'epoch': 0.02}",
    "Traceback (most recent call last):",
    '  File "/tmp/intern_job.py", line 5, in <module>',
    "    SFTTrainer(model='Qwen/Qwen2.5-0.5B', train_dataset=ds, args=cfg).train()",
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 22.07 GiB "
    "of which 1.21 GiB is free.",
)


@pytest.fixture
async def harness(migrated_url: str) -> AsyncIterator[Harness]:
    async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm:
        llm.rule = job_rule()  # type: ignore[attr-defined]
        h = Harness(migrated_url, slack, hub, llm)  # type: ignore[arg-type]
        await h.start()
        try:
            yield h
        finally:
            await h.stop()


async def record(h: Harness) -> RunRecord | None:
    assert h.proc is not None
    async with h.proc.rt.db.session() as db:
        return (await db.execute(select(RunRecord))).scalar_one_or_none()


async def mention_answer(h: Harness, words: str) -> str:
    event = mention_event(words, user=REQUESTER)
    assert (await h.sender.send_event(event)).status == 200
    await wait_until(lambda: h.slack.texts(thread_ts=event["ts"]), timeout=10)
    return h.slack.texts(thread_ts=event["ts"])[0]


async def fail_a_run(h: Harness) -> str:
    thread, approval = await mention_until_card(h)
    assert (await h.sender.send_interaction(click(h, "intern_approve", approval, APPROVER, thread))).status == 200
    jobs = jobs_state(h.hub)
    await wait_until(lambda: len(jobs.created) == 1, timeout=20)
    job_id = jobs.created[0].job_id
    await wait_until(lambda: record(h), timeout=10)  # opened at launch
    opened = await record(h)
    assert opened is not None and opened.outcome == "running" and opened.hf_job_id == job_id
    jobs.set_stage(job_id, "RUNNING")
    jobs.append_logs(job_id, *OOM_TAIL)
    jobs.set_stage(job_id, "ERROR", "Job failed with exit code: 1")

    async def failed() -> bool:
        r = await record(h)
        return r is not None and r.outcome == "failed"

    await wait_until(failed, timeout=20)
    told = "Error signature: CUDA out of memory (kept in the team's run history: team_history)"
    await wait_until(lambda: any(told in json.dumps(r.json) for r in h.llm.requests), timeout=20)  # the agent is told
    return job_id


async def test_a_failed_run_is_remembered_listed_and_named_on_the_next_card(harness: Harness) -> None:
    job_id = await fail_a_run(harness)
    r = await record(harness)
    assert r is not None
    assert (r.requester, r.task, r.channel) == (REQUESTER, "fine-tune a small model on my dataset", "C0GENERAL")
    assert (r.method, r.base_model, r.dataset, r.output_repo) == ("SFT", "Qwen/Qwen2.5-0.5B", "trl-lib/Capybara",
                                                                  "team/qwen-sft")
    assert (r.flavor, r.timeout_seconds, r.error_signature) == ("a10g-large", 7200, "CUDA out of memory")
    assert r.metrics["loss"] == 2.3012 and r.cost_usd is not None and r.url

    listed = await mention_answer(harness, "history qwen")
    assert "Runs of this workspace matching \"qwen\"" in listed
    row = next(line for line in listed.splitlines() if job_id in line or (r.url or "-") in line)
    for cell in (f"<@{REQUESTER}>", "Qwen/Qwen2.5-0.5B", "trl-lib/Capybara", "a10g-large",
                 "failed (CUDA out of memory)", "loss 2.301", datetime.now(UTC).strftime("%Y-%m-%d")):
        assert cell in row, (cell, row)
    assert "No runs of this workspace matching \"llama\"" in await mention_answer(harness, "history llama")
    assert "failed (CUDA out of memory)" in await mention_answer(harness, "history failed")
    assert "No runs" in await mention_answer(harness, "history completed")

    answer = await harness.sender.send_slash_command(slash_command(
        "/intern", "history capybara", user_id=REQUESTER, team_id=harness.slack.team_id, channel_id="C0GENERAL"))
    assert answer.status == 200 and "CUDA out of memory" in answer.json()["text"]

    home = await open_home(harness, REQUESTER)
    assert "Latest runs in this workspace" in home and "failed (CUDA out of memory)" in home
    assert "• failed: $" in home and "• total: $" in home

    thread, _ = await mention_until_card(harness, "fine-tune it again please")
    text = card_text(cards(harness.slack, thread)[0])
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert f"Similar run failed: {job_id} on {today}: CUDA out of memory on a10g-large" in text


async def test_the_agent_reads_the_workspace_history_with_its_tool(harness: Harness) -> None:
    job_id = await fail_a_run(harness)
    harness.llm.rule = tool_rule([("team_history", {"query": "qwen capybara", "status": "failed"})])
    event = mention_event("what did we try before?", user=REQUESTER)
    assert (await harness.sender.send_event(event)).status == 200
    await wait_until(lambda: any("Tool results" in t for t in harness.slack.texts(thread_ts=event["ts"])), timeout=20)
    said = next(t for t in harness.slack.texts(thread_ts=event["ts"]) if "Tool results" in t)
    assert f"job {job_id}: failed: CUDA out of memory" in said
    assert "SFT of Qwen/Qwen2.5-0.5B on trl-lib/Capybara (train)" in said
    tools = [t["function"]["name"] for t in harness.llm.requests[-1].json["tools"]]
    assert "team_history" in tools
