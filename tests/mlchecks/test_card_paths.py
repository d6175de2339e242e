"""The checks reach the card through `hf_jobs` — run, rerun and scheduled resume — and Slack and Discord
render the same lines."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from intern.adapters.discord.outbound import card_embed
from intern.adapters.slack.outbound import card_blocks
from intern.agent.context_deps import ToolContext
from intern.agent.tools.base import ApprovalInfo
from intern.agent.tools.jobs import JobsArgs, describe, handle, jobs_tool
from intern.bot.cards import approval_card
from intern.bot.models import Approval, utcnow
from tests.jobs.test_jobs_tool import Registry
from tests.mlchecks.cases.loops import SAVE_NO_PUSH_AFTER
from tests.mlchecks.cases.sft import SFT_05B, SFT_7B_FULL

L4X4_LINE = "Hardware l4x4: ≈ 64 GB needed, 24 GB per GPU: too small for a 7.6B model"


def args(**kw: Any) -> JobsArgs:
    return jobs_tool.parse(json.dumps(kw))  # type: ignore[return-value]


def levels(info: ApprovalInfo) -> dict[str, str]:
    return {c.text.split(":")[0]: c.level for c in info.checks}


def card_of(info: ApprovalInfo) -> Approval:
    return Approval(id="0b6e1c9e-0000-4000-8000-000000000001", session_id="s1", call_id="c1", tool="hf_jobs",
                    kind="spend", spec={}, spec_sha256="ab" * 32, card=asdict(info),
                    estimated_cost_usd=info.estimated_cost_usd, requester="U1", platform="slack", workspace="T1",
                    channel="C1", approvers=[], required_approvals=1, status="pending",
                    expires_at=utcnow() + timedelta(hours=1))


async def test_run_card_shows_the_estimate_on_slack_and_discord(ctx: ToolContext) -> None:
    info = await describe(ctx, args(operation="run", script=SFT_7B_FULL, hardware_flavor="l4x4", timeout="8h"))
    [hardware] = [c for c in info.checks if c.text.startswith("Hardware")]
    assert hardware.level == "error" and hardware.text.startswith(L4X4_LINE)
    card = approval_card(card_of(info), budget_left=None)
    slack_text = "\n".join(b["text"]["text"] for b in card_blocks(card)[0]
                           if b.get("type") == "section" and "text" in b)
    assert f"🛑 {L4X4_LINE}" in slack_text
    embed, _ = card_embed(card)
    discord_text = "\n".join(f.value or "" for f in embed.fields)
    assert f"🛑 {L4X4_LINE}" in discord_text


async def test_rerun_reads_the_launched_script_from_the_jobs_command(ctx: ToolContext) -> None:
    ctx.deps.jobs = registry = Registry()
    launched = await handle(ctx.for_call("c1"), args(operation="run", script=SFT_05B, hardware_flavor="t4-small",
                                                     timeout="2h"))
    job_id = launched.artifacts["job"]["hf_job_id"]
    registry.add(job_id)
    info = await describe(ctx, args(operation="rerun", job_id=job_id, timeout="2h"))
    found = levels(info)
    # the same lines as `run` gets: the T4 has no bf16, and the rest of the recipe is read
    assert found["bf16 (TRL's default when fp16 is not set) on t4-small"] == "error"
    assert found["Pushes to the Hub to acme/qwen2.5-0.5b-capybara"] == "ok"
    assert any(t.startswith("Hardware t4-small") for t in found)
    assert any(t.startswith("Timeout 2h fits") for t in found)


async def test_scheduled_resume_gets_the_same_checks(ctx: ToolContext) -> None:
    ctx.deps.jobs = registry = Registry()
    made = await handle(ctx.for_call("c1"), args(operation="scheduled run", script=SAVE_NO_PUSH_AFTER,
                                                 schedule="@daily", hardware_flavor="a10g-large", timeout="3h"))
    sid = made.artifacts["scheduled_job"]["id"]
    registry.add(sid, "scheduled")
    info = await describe(ctx, args(operation="scheduled resume", scheduled_job_id=sid))
    push = [c for c in info.checks if "save_strategy" in c.text]
    assert push and push[0].level == "error" and 'save_strategy="no" uploads nothing' in push[0].text
    assert any(c.text.startswith("Timeout 3h fits") for c in info.checks)


async def test_the_hubs_default_timeout_is_flagged_even_when_the_run_fits(ctx: ToolContext) -> None:
    info = await describe(ctx, args(operation="run", script=SFT_05B, hardware_flavor="a10g-small"))
    [line] = [c for c in info.checks if c.text.startswith("No timeout given")]
    assert line.level == "warn"
    assert line.text.startswith("No timeout given: the Hub default of 30 minutes applies, which fits: ≈ 6m")
