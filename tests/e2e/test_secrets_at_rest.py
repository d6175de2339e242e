"""A job that prints its environment puts no secret into the database or any export.

The real bot (slack_bolt, discord.py, litellm, huggingface_hub, SQLAlchemy) runs a session whose job
logs the configured Hub, Slack, Discord and LLM credentials (and secrets of known shapes); the model
reads the logs through `hf_jobs logs` and even quotes a token back. Afterwards every column of every
table is read back raw, and `intern sessions export` (jsonl, md) and `intern audit` (jsonl, csv) run
as commands: none of them holds a trace of any secret.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import inspect, text

from intern.standins.discord import DiscordStandIn
from intern.standins.hub import HubStandIn
from intern.standins.hub_jobs import jobs_state
from intern.standins.llm import LLMStandIn, text_reply, tool_calls_reply
from intern.standins.slack import SlackStandIn, mention_event
from tests.e2e.harness import APPROVER, LLM_KEY, REQUESTER, SIGNING_SECRET, Harness, wait_until
from tests.e2e.test_slack_flow import approval_id_of, cards, click

# Secrets nobody configured, recognised by their shape alone.
GITHUB_PAT = "ghp_" + "R8fK2mQ9xLw4Tz7Vb1Nc6Hy3Jd5Ps0Ga8Ue2"
AWS_KEY_ID = "AKIA" + "Q3V7NX2KD5TB8WZR"


def secrets_of(h: Harness, discord: DiscordStandIn) -> dict[str, str]:
    return {"HF_TOKEN": h.hub.token, "SLACK_BOT_TOKEN": h.slack.token, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "DISCORD_TOKEN": discord.token, "INTERN_LLM_API_KEY": LLM_KEY, "GITHUB_TOKEN": GITHUB_PAT,
            "AWS_ACCESS_KEY_ID": AWS_KEY_ID}


def leaks(blob: str, secrets: dict[str, str]) -> list[str]:
    """The names of the secrets `blob` holds whole, or whose last 16 characters it holds."""
    return [name for name, value in secrets.items() if value in blob or value[-16:] in blob]


def model_rule(hf_token: str) -> Any:
    """Launch a job; when it ends, read its logs; then answer, quoting a token as a careless model might."""

    def rule(request: dict[str, Any]) -> Any:
        messages = request.get("messages") or []
        if request.get("tools") is None:
            return text_reply("Summary of the session so far.")
        last = messages[-1]
        content = str(last.get("content") or "")
        if last.get("role") == "user" and "[job update]" in content:
            job_id = re.search(r"Job (\S+) finished", content).group(1)  # type: ignore[union-attr]
            return tool_calls_reply([("hf_jobs", {"operation": "logs", "job_id": job_id})], text="Reading the logs.")
        if last.get("role") == "tool" and "submitted" in content:
            return text_reply("The job is running.")
        if last.get("role") == "tool":
            return text_reply(f"The job printed its environment, including HF_TOKEN={hf_token}; rotate it.")
        return tool_calls_reply([("hf_jobs", {"operation": "run", "script": "import os\nprint(os.environ)\n",
                                              "hardware_flavor": "cpu-basic", "timeout": "10m"})],
                                text="Launching the job.")

    return rule


@pytest.fixture
async def setup(migrated_url: str) -> AsyncIterator[tuple[Harness, DiscordStandIn]]:
    async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm, DiscordStandIn() as discord:
        llm.rule = model_rule(hub.token)  # type: ignore[attr-defined]
        h = Harness(migrated_url, slack, hub, llm,  # type: ignore[arg-type]
                    extra_env={"DISCORD_TOKEN": discord.token, "DISCORD_API_URL": discord.api_url})  # type: ignore[attr-defined]
        await h.start()
        try:
            yield h, discord  # type: ignore[misc]
        finally:
            await h.stop()


async def every_value(h: Harness) -> list[tuple[str, str, str]]:
    """(table, column, value as text) for every column of every row of every table in the database."""
    assert h.proc is not None
    out: list[tuple[str, str, str]] = []
    async with h.proc.rt.db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        for table in tables:
            result = await conn.execute(text(f'SELECT * FROM "{table}"'))
            columns = list(result.keys())
            for row in result.all():
                for column, value in zip(columns, row, strict=True):
                    if value is not None:
                        shown = value if isinstance(value, str) else json.dumps(value, default=str)
                        out.append((table, column, shown))
    return out


async def cli(h: Harness, *args: str) -> str:
    env = {**os.environ, **h.env()}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "intern.bot.cli", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_a_job_printing_its_environment_leaves_no_secret_in_any_table_or_export(
        setup: tuple[Harness, DiscordStandIn]) -> None:
    h, discord = setup
    secrets = secrets_of(h, discord)
    event = mention_event("run a job that shows its environment", user=REQUESTER)
    assert (await h.sender.send_event(event)).status == 200
    thread = event["ts"]
    await wait_until(lambda: cards(h.slack, thread), timeout=20)
    approval = approval_id_of(cards(h.slack, thread)[0])
    await h.sender.send_interaction(click(h, "intern_approve", approval, APPROVER, thread))
    jobs = jobs_state(h.hub)
    await wait_until(lambda: len(jobs.created) == 1, timeout=20)
    job_id = jobs.created[0].job_id
    jobs.set_stage(job_id, "RUNNING")
    jobs.append_logs(job_id, "step 10 loss 1.23", *(f"{name}={value}" for name, value in secrets.items()),
                     f"Authorization: Bearer {h.hub.token}", f"login with {h.slack.token} and {discord.token}")
    await wait_until(lambda: any("is running" in t for t in h.slack.texts(thread_ts=thread)))
    jobs.set_stage(job_id, "ERROR", message=f"exited with code 1 (HF_TOKEN={h.hub.token})")
    await wait_until(lambda: any("rotate it" in t for t in h.slack.texts(thread_ts=thread)), timeout=30)

    values = await every_value(h)
    found = [(table, column, leaks(value, secrets)) for table, column, value in values if leaks(value, secrets)]
    assert found == []
    # the logs did reach the database, masked: the scan above looked at them
    stored = {(table, column) for table, column, value in values if "step 10 loss" in value}
    assert {("jobs", "log_tail"), ("work_items", "payload"), ("messages", "payload")} <= stored
    assert any("[REDACTED]" in value for table, column, value in values if (table, column) == ("jobs", "message"))

    assert h.proc is not None
    async with h.proc.rt.db.session() as db:
        session_id = (await db.execute(text("SELECT id FROM sessions"))).scalar_one()
    exports = await asyncio.gather(cli(h, "sessions", "export", session_id, "--format", "jsonl"),
                                   cli(h, "sessions", "export", session_id, "--format", "md"),
                                   cli(h, "audit", "--format", "jsonl"), cli(h, "audit", "--format", "csv"))
    for exported in exports:
        assert exported.strip() and leaks(exported, secrets) == []
    assert "step 10 loss" in exports[0] and "[REDACTED]" in exports[1]
    # and the thread saw no secret either
    assert leaks("\n".join(h.slack.texts(thread_ts=thread)), secrets) == [], h.slack.texts(thread_ts=thread)
