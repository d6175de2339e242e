"""`hf_jobs` through the real HfApi against the Hub stand-in: every operation, secrets injected,
idempotent launches, argument errors the model can act on."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from intern.agent.context_deps import AgentConfig, ToolContext, ToolDeps
from intern.agent.errors import ToolArgumentError, ToolFeedback
from intern.agent.hub import HubClient
from intern.agent.plan import PlanState
from intern.agent.ports import JobAccess, JobKind
from intern.agent.pricing import PriceTable, flavor_from_hub
from intern.agent.tools.base import canonical_spec, spec_hash
from intern.agent.tools.jobs import JobsArgs, clean_logs, describe, handle, jobs_tool, policy
from intern.agent.tools.jobs_args import runs_per_month
from intern.agent.tools.jobs_hub import APPROVAL_LABEL
from intern.standins.hub import HubStandIn
from intern.standins.hub_jobs import jobs_state
from intern.standins.hub_models import register_model

SCRIPT = ("from trl import SFTTrainer, SFTConfig\nfrom datasets import load_dataset\n"
          "ds = load_dataset('trl-lib/Capybara', split='train')\n"
          "SFTTrainer(model='Qwen/Qwen2.5-7B', train_dataset=ds, args=SFTConfig(output_dir='o')).train()\n")


class Events:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def emit(self, event: Any) -> None:
        self.seen.append(event)


class Registry:
    """The bot's record of launched jobs, as the tool sees it through its port (a set per kind)."""

    def __init__(self) -> None:
        self.known: dict[str, set[str]] = {"job": set(), "scheduled": set()}
        self.controls = True

    def add(self, hub_id: str, kind: JobKind = "job") -> None:
        self.known[kind].add(hub_id)

    async def access(self, hub_id: str, kind: JobKind) -> JobAccess:
        if hub_id not in self.known[kind]:
            return JobAccess(False, refusal=f"{hub_id} is not a job of this workspace")
        return JobAccess(True, self.controls, refusal=None if self.controls else "another channel's job")

    async def ours(self, hub_ids: list[str], kind: JobKind) -> set[str]:
        return set(hub_ids) & self.known[kind]


@pytest.fixture
async def ctx(hub: HubStandIn) -> AsyncIterator[ToolContext]:
    client = HubClient(endpoint=hub.url, token=hub.token)

    async def fetch() -> list[Any]:
        return [flavor_from_hub(i) for i in await client.call(client.api.list_jobs_hardware)]

    config = AgentConfig(model="m", research_model="m", hf_endpoint=hub.url,
                         datasets_server_url=f"{hub.url}/no-viewer")
    async with httpx.AsyncClient() as http:
        yield ToolContext(session_id="sess-1", config=config, hub=client, http=http, prices=PriceTable(fetch),
                          plan=PlanState(), events=Events(), deps=ToolDeps(jobs=Registry()))
    client.close()


def args(**kw: Any) -> JobsArgs:
    return jobs_tool.parse(json.dumps(kw))  # type: ignore[return-value]


async def test_run_inline_script_injects_the_token_as_a_secret_and_labels_the_approval(
        ctx: ToolContext, hub: HubStandIn) -> None:
    ctx = ctx.for_call("call-1", approval_id="11111111-2222-3333-4444-555555555555")
    result = await handle(ctx, args(operation="run", script=SCRIPT, dependencies=["trl", "datasets"],
                                    hardware_flavor="a10g-large", timeout="2h"))
    assert not result.is_error, result.content
    created = jobs_state(hub).created
    assert len(created) == 1
    spec = created[0]
    assert spec.flavor == "a10g-large" and spec.timeout_seconds == 7200
    assert spec.secret_names == ["HF_TOKEN"]
    assert spec.labels[APPROVAL_LABEL] == "11111111-2222-3333-4444-555555555555"
    assert spec.labels["intern-session"] == "sess-1"
    command = " ".join(spec.command)
    assert "--with trl" in command and "--with datasets" in command
    encoded = command.split("echo ", 1)[1].split(" ", 1)[0]
    assert base64.b64decode(encoded).decode() == SCRIPT  # exactly the approved script runs
    assert hub.token not in result.content
    art = result.artifacts["job"]
    assert art["hf_job_id"] == spec.job_id and art["estimated_cost_usd"] == pytest.approx(3.0)


async def test_a_retried_launch_finds_the_job_instead_of_starting_another(ctx: ToolContext, hub: HubStandIn) -> None:
    ctx = ctx.for_call("call-1", approval_id="aaaaaaaa-2222-3333-4444-555555555555")
    a = args(operation="run", command=["python", "-c", "print(1)"], image="python:3.12", timeout="10m")
    first = await handle(ctx, a)
    second = await handle(ctx, a)
    assert len(jobs_state(hub).created) == 1
    assert first.artifacts["job"]["hf_job_id"] == second.artifacts["job"]["hf_job_id"]


async def test_a_hub_ignoring_the_label_filter_does_not_make_a_launch_adopt_another_approvals_job(
        ctx: ToolContext, hub: HubStandIn) -> None:
    jobs = jobs_state(hub)
    jobs.honour_label_filter = False  # the job list answers with every job of the namespace
    a = args(operation="run", command=["python", "-c", "print(1)"], image="python:3.12", timeout="10m")
    first = await handle(ctx.for_call("call-1", approval_id="aaaaaaaa-0000-0000-0000-000000000001"), a)
    second = await handle(ctx.for_call("call-2", approval_id="aaaaaaaa-0000-0000-0000-000000000002"), a)
    assert len(jobs.created) == 2
    assert first.artifacts["job"]["hf_job_id"] != second.artifacts["job"]["hf_job_id"]
    assert jobs.job(second.artifacts["job"]["hf_job_id"]).labels[APPROVAL_LABEL] == \
        "aaaaaaaa-0000-0000-0000-000000000002"
    again = await handle(ctx.for_call("call-2", approval_id="aaaaaaaa-0000-0000-0000-000000000002"), a)
    assert again.artifacts["job"]["hf_job_id"] == second.artifacts["job"]["hf_job_id"] and len(jobs.created) == 2


async def test_a_lost_launch_answer_is_not_taken_for_another_approvals_job(ctx: ToolContext, hub: HubStandIn) -> None:
    jobs = jobs_state(hub)
    jobs.honour_label_filter = False
    a = args(operation="run", command=["python", "-c", "print(1)"], image="python:3.12", timeout="10m")
    other = await handle(ctx.for_call("call-1", approval_id="bbbbbbbb-0000-0000-0000-000000000001"), a)
    jobs.fail_next(5, status=503, path_contains="/api/jobs/", method="POST")  # the launch never gets through
    with pytest.raises(ToolFeedback, match="no job with this approval's label"):
        await handle(ctx.for_call("call-2", approval_id="bbbbbbbb-0000-0000-0000-000000000002"), a)
    assert [j.job_id for j in jobs.created] == [other.artifacts["job"]["hf_job_id"]]


async def test_url_script_uses_uv_with_dependencies(ctx: ToolContext, hub: HubStandIn) -> None:
    url = "https://huggingface.co/datasets/team/scripts/resolve/main/train.py"
    await handle(ctx.for_call("c"), args(operation="run", script=url, dependencies=["trl"]))
    spec = jobs_state(hub).created[0]
    assert spec.command[:2] == ["uv", "run"] and url in spec.command and "trl" in spec.command
    assert spec.flavor == "cpu-basic" and spec.timeout_seconds == 1800  # the Hub's default 30 minutes


async def test_describe_prices_from_the_hub_and_shows_checks(ctx: ToolContext, hub: HubStandIn) -> None:
    register_model(hub, "Qwen/Qwen2.5-7B", parameters={"BF16": 7_615_616_512})
    info = await describe(ctx, args(operation="run", script=SCRIPT, hardware_flavor="t4-small", timeout="30m"))
    assert info.kind == "spend" and info.flavor == "t4-small" and info.timeout_seconds == 1800
    assert info.hourly_usd == pytest.approx(0.40, abs=0.01)
    assert info.estimated_cost_usd == pytest.approx(0.20, abs=0.01)
    assert ctx.prices.source == "hub"
    texts = " | ".join(c.text for c in info.checks)
    assert "No push to the Hub" in texts
    assert any(c.level == "error" and c.text.startswith("Hardware t4-small: ≈ ") and "7.6B model" in c.text
               for c in info.checks)
    assert info.body == SCRIPT


async def test_scheduled_run_card_shows_schedule_and_runs_per_month(ctx: ToolContext, hub: HubStandIn) -> None:
    a = args(operation="scheduled run", command=["python", "-c", "print(1)"], image="python:3.12",
             schedule="0 3 * * *", hardware_flavor="cpu-upgrade", timeout="1h")
    assert policy(a) == "spend"
    info = await describe(ctx, a)
    assert info.schedule == "0 3 * * *" and info.runs_per_month == 30 and not info.auto_approvable
    result = await handle(ctx.for_call("c"), a)
    sid = result.artifacts["scheduled_job"]["id"]
    ctx.deps.jobs.add(sid, "scheduled")
    listed = await handle(ctx, args(operation="scheduled ps"))
    assert sid in listed.content
    for op in ("scheduled suspend", "scheduled inspect", "scheduled resume", "scheduled delete"):
        out = await handle(ctx, args(operation=op, scheduled_job_id=sid))
        assert not out.is_error, (op, out.content)
    assert policy(args(operation="scheduled resume", scheduled_job_id=sid)) == "spend"
    assert policy(args(operation="scheduled suspend", scheduled_job_id=sid)) == "none"
    assert policy(args(operation="scheduled delete", scheduled_job_id=sid)) == "hub_write"
    assert "No scheduled jobs" in (await handle(ctx, args(operation="scheduled ps"))).content


async def test_ps_inspect_logs_cancel_and_rerun(ctx: ToolContext, hub: HubStandIn) -> None:
    jobs = jobs_state(hub)
    jobs.log_idle_timeout = 0.2
    launched = await handle(ctx.for_call("c"), args(operation="run", command=["python", "train.py"],
                                                    image="python:3.12", hardware_flavor="t4-small"))
    jid = launched.artifacts["job"]["hf_job_id"]
    ctx.deps.jobs.add(jid)
    jobs.set_stage(jid, "RUNNING")
    jobs.append_logs(jid, "\x1b[32mDownloading torch\x1b[0m", "Installed 42 packages in 3s", "step 1 loss 2.0")
    assert jid in (await handle(ctx, args(operation="ps"))).content
    assert "RUNNING" in (await handle(ctx, args(operation="inspect", job_id=jid))).content
    logs = (await handle(ctx, args(operation="logs", job_id=jid))).content
    assert "step 1 loss 2.0" in logs and "\x1b" not in logs and "Installed 42 packages" not in logs
    cancelled = await handle(ctx, args(operation="cancel", job_id=jid))
    assert cancelled.artifacts == {"cancelled_job": jid}
    assert jobs.job(jid).stage == "CANCELED"
    assert policy(args(operation="rerun", job_id=jid)) == "spend"
    info = await describe(ctx, args(operation="rerun", job_id=jid))
    assert info.flavor == "t4-small" and "train.py" in (info.body or "")
    again = await handle(ctx.for_call("c2"), args(operation="rerun", job_id=jid))
    assert again.artifacts["job"]["hf_job_id"] != jid and len(jobs.created) == 2


async def test_hardware_lists_prices_per_hour(ctx: ToolContext) -> None:
    out = (await handle(ctx, args(operation="hardware"))).content
    assert "a100-large" in out and "$2.50/h" in out and "from the hub table" in out


async def test_unknown_job_is_a_clear_tool_error(ctx: ToolContext) -> None:
    ctx.deps.jobs.add("000000000000000000000000")
    with pytest.raises(ToolFeedback, match="not found"):
        await handle(ctx, args(operation="inspect", job_id="000000000000000000000000"))


async def test_jobs_intern_did_not_launch_for_this_workspace_are_refused_and_left_alone(
        ctx: ToolContext, hub: HubStandIn) -> None:
    jobs = jobs_state(hub)
    other = await handle(ctx.for_call("c"), args(operation="run", command=["python", "train.py"],
                                                 image="python:3.12"))
    jid = other.artifacts["job"]["hf_job_id"]  # in the namespace, but not in this workspace's record
    jobs.set_stage(jid, "RUNNING")
    for op in ("cancel", "logs", "inspect", "rerun"):
        with pytest.raises(ToolFeedback, match="not a job of this workspace"):
            await handle(ctx.for_call("c2"), args(operation=op, job_id=jid))
    with pytest.raises(ToolFeedback, match="not a job of this workspace"):
        await describe(ctx, args(operation="rerun", job_id=jid))
    assert jobs.job(jid).stage == "RUNNING" and len(jobs.created) == 1
    assert jid not in (await handle(ctx, args(operation="ps"))).content
    sched = await handle(ctx.for_call("c3"), args(operation="scheduled run", command=["python", "x.py"],
                                                  image="python:3.12", schedule="@daily"))
    sid = sched.artifacts["scheduled_job"]["id"]
    for op in ("scheduled suspend", "scheduled delete", "scheduled inspect", "scheduled resume"):
        with pytest.raises(ToolFeedback, match="not a job of this workspace"):
            await handle(ctx, args(operation=op, scheduled_job_id=sid))
    assert sid not in (await handle(ctx, args(operation="scheduled ps"))).content
    # Known but another channel's, and the requester has no say there: read yes, control no.
    ctx.deps.jobs.add(jid)
    ctx.deps.jobs.add(sid, "scheduled")
    ctx.deps.jobs.controls = False
    assert "RUNNING" in (await handle(ctx, args(operation="inspect", job_id=jid))).content
    for op, key in (("cancel", "job_id"), ("scheduled suspend", "scheduled_job_id"),
                    ("scheduled delete", "scheduled_job_id")):
        with pytest.raises(ToolFeedback, match="another channel"):
            await handle(ctx, args(operation=op, **{key: jid if key == "job_id" else sid}))
    with pytest.raises(ToolFeedback, match="another channel"):
        await describe(ctx, args(operation="scheduled delete", scheduled_job_id=sid))
    assert jobs.job(jid).stage == "RUNNING"


async def test_without_the_bots_record_no_job_id_is_acted_on(ctx: ToolContext) -> None:
    ctx.deps.jobs = None
    with pytest.raises(ToolFeedback, match="cannot tell"):
        await handle(ctx, args(operation="cancel", job_id="000000000000000000000000"))


@pytest.mark.parametrize("bad, message", [
    ({"operation": "run", "script": "print(1)", "timeout": "2 hours"}, "timeout"),
    ({"operation": "run", "script": "print(1)", "timeout": 7200.5}, "whole number of seconds"),
    ({"operation": "run", "script": "print(1)", "timeout": True}, "a string with a unit"),
    ({"operation": "run", "script": "print(1)", "timeout": "1.5"}, "a string with a unit"),
    ({"operation": "run", "script": "print(1)", "timeout": -60}, "longer than zero"),
    ({"operation": "run"}, "exactly one of `script`"),
    ({"operation": "run", "script": "x", "command": ["y"]}, "exactly one of `script`"),
    ({"operation": "logs"}, "needs `job_id`"),
    ({"operation": "scheduled run", "script": "x"}, "needs `schedule`"),
    ({"operation": "scheduled run", "script": "x", "schedule": "every day"}, "not a valid cron"),
    ({"operation": "run", "script": "x", "env": {"HF_TOKEN": "hf_x"}}, "secrets are injected"),
    ({"operation": "launch"}, "operation"),
])
def test_bad_arguments_are_explained(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolArgumentError, match=message):
        jobs_tool.parse(json.dumps(bad))


async def test_unknown_flavor_lists_the_known_ones(ctx: ToolContext) -> None:
    with pytest.raises(ToolArgumentError, match=r"Unknown hardware flavor 'h100'.*a10g-large"):
        await describe(ctx, args(operation="run", script="print(1)", hardware_flavor="h100"))


def test_runs_per_month() -> None:
    assert runs_per_month("@daily") == 30
    assert runs_per_month("0 * * * *") == 720
    assert runs_per_month("*/15 * * * *") == 2880


def test_clean_logs_strips_ansi_and_install_noise() -> None:
    lines = ["\x1b[1;31merror\x1b[0m", "Resolved 12 packages in 20ms", " + torch==2.4.0", "epoch 1\r"]
    assert clean_logs(lines) == ["error", "epoch 1"]


@pytest.mark.parametrize("timeout", [7200, "7200", 7200.0])
async def test_timeout_in_whole_seconds_is_taken_as_the_hub_takes_it(
        ctx: ToolContext, hub: HubStandIn, timeout: Any) -> None:
    ctx = ctx.for_call("call-1", approval_id="11111111-2222-3333-4444-555555555555")
    a = args(operation="run", script=SCRIPT, hardware_flavor="a10g-large", timeout=timeout)
    info = await describe(ctx, a)
    assert info.timeout_seconds == 7200 and info.estimated_cost_usd == pytest.approx(3.0)
    result = await handle(ctx, a)
    assert not result.is_error, result.content
    assert jobs_state(hub).created[0].timeout_seconds == 7200


def test_a_timeout_spec_hashes_the_same_whichever_form_carries_it() -> None:
    def hashed(timeout: Any) -> str:
        a = args(operation="run", script="print(1)", hardware_flavor="a10g-large", timeout=timeout)
        return spec_hash("hf_jobs", canonical_spec(a))

    # A timeout with a unit is kept as written: approvals already in the database keep their hash.
    assert hashed("2h") == "015f8ab2a24953dfe7eabb625b190c38dcf5307dabd91e1a4dc16bbc7e54f299"
    assert hashed(7200) == hashed("7200") == hashed(7200.0) == hashed(" 7200 ")
    assert args(operation="run", script="x", timeout=5400).timeout == "5400"
