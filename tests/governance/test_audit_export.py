"""`intern audit` and `intern sessions export` over a database the real bot filled through Slack."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from intern.bot.export import AUDIT_FIELDS, export_audit, export_session
from intern.bot.models import Approval, Session
from intern.bot.settings import Settings
from intern.standins.hub_jobs import jobs_state
from tests.e2e.harness import Harness, wait_until
from tests.governance.helpers import (
    ADMIN,
    APPROVER_1,
    BYSTANDER,
    REQUESTER,
    approval_id_in,
    click,
    command,
    first_card,
    private_reply,
    reply_in_thread,
    rt,
    start_task,
)

CONTRACT_KINDS = {"approval_requested", "approval_refused", "approval_decided", "approval_expired", "job_launched",
                  "job_finished", "job_cancelled", "policy_changed"}


async def fill(bot: Harness) -> dict[str, Any]:
    """One of everything the contract names: a policy change, a refused click, an approved job that
    finishes, an approval that expires, and a job cancelled by `stop`."""
    assert (await command(bot, f"policy approvers add <@{APPROVER_1}>", ADMIN)).public
    done_thread = await start_task(bot)
    done = approval_id_in(await first_card(bot, done_thread))
    assert done
    await click(bot, "intern_approve", done, BYSTANDER, done_thread)
    await private_reply(bot, BYSTANDER)
    await click(bot, "intern_approve", done, APPROVER_1, done_thread)
    jobs = jobs_state(bot.hub)
    await wait_until(lambda: len(jobs.created) == 1, timeout=20)
    finished_job = jobs.created[0].job_id
    jobs.set_stage(finished_job, "COMPLETED")
    await wait_until(lambda: any("completed after" in t for t in bot.slack.texts(thread_ts=done_thread)), timeout=20)

    late_thread = await start_task(bot, "train something else")
    late = approval_id_in(await first_card(bot, late_thread))
    async with rt(bot).db.transaction() as db:  # an hour passes without a decision
        await db.execute(update(Approval).where(Approval.id == late)
                         .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    await wait_until(lambda: any("expired" in t for t in bot.slack.texts(thread_ts=late_thread)), timeout=20)

    stop_thread = await start_task(bot, "a third run")
    stopped = approval_id_in(await first_card(bot, stop_thread))
    assert stopped
    await click(bot, "intern_approve", stopped, APPROVER_1, stop_thread)
    await wait_until(lambda: len(jobs.created) == 2, timeout=20)
    cancelled_job = jobs.created[1].job_id
    jobs.set_stage(cancelled_job, "RUNNING")
    await wait_until(lambda: any("is running" in t for t in bot.slack.texts(thread_ts=stop_thread)), timeout=20)
    await reply_in_thread(bot, "stop", REQUESTER, stop_thread)
    await wait_until(lambda: jobs.job(cancelled_job).stage == "CANCELED", timeout=20)
    await wait_until(lambda: any("Stopped by" in t for t in bot.slack.texts(thread_ts=stop_thread)), timeout=20)
    # The job's end is recorded when the watcher sees it cancelled on the Hub.
    await wait_until(lambda: any("canceled after" in t for t in bot.slack.texts(thread_ts=stop_thread)), timeout=20)
    return {"done": done, "late": late, "stopped": stopped, "finished_job": finished_job,
            "cancelled_job": cancelled_job, "thread": done_thread}


def settings_of(bot: Harness) -> Settings:
    return Settings(**bot.env())  # type: ignore[arg-type]


async def jsonl(bot: Harness, since: str | None = None) -> list[dict[str, Any]]:
    out = io.StringIO()
    assert await export_audit(settings_of(bot), since=since, fmt="jsonl", out=out) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def one(events: list[dict[str, Any]], kind: str, **match: Any) -> dict[str, Any]:
    found = [e for e in events if e["kind"] == kind and all(e.get(k) == v for k, v in match.items())]
    assert found, (kind, match, [e["kind"] for e in events])
    return found[0]


async def test_the_audit_export_has_the_contract_fields_for_every_kind(bot: Harness) -> None:
    ids = await fill(bot)
    events = await jsonl(bot)
    assert CONTRACT_KINDS <= {e["kind"] for e in events}
    for e in events:
        assert set(AUDIT_FIELDS) <= set(e)
        datetime.fromisoformat(e["at"])
        assert e["workspace"] == bot.slack.team_id
    sha = one(events, "approval_requested", approval_id=ids["done"])
    assert sha["actor"] == REQUESTER and len(sha["spec_sha256"]) == 64 and sha["session_id"]
    assert sha["channel"] == "C0GENERAL" and sha["detail"]["cost"] == 3.0
    refused = one(events, "approval_refused", approval_id=ids["done"])
    assert refused["actor"] == BYSTANDER and "designated approvers" in refused["detail"]["reason"]
    decided = one(events, "approval_decided", approval_id=ids["done"])
    assert decided["actor"] == APPROVER_1 and decided["detail"]["decision"] == "approved"
    assert decided["detail"]["cost"] == 3.0 and decided["spec_sha256"] == sha["spec_sha256"]
    expired = one(events, "approval_expired", approval_id=ids["late"])
    assert expired["actor"] == "intern" and expired["spec_sha256"] and expired["session_id"]
    launched = one(events, "job_launched", job_id=ids["finished_job"])
    assert launched["approval_id"] == ids["done"] and launched["detail"]["cost"] == 3.0
    finished = one(events, "job_finished", job_id=ids["finished_job"])
    assert finished["detail"]["stage"] == "COMPLETED" and "cost" in finished["detail"]
    cancelled = one(events, "job_cancelled", job_id=ids["cancelled_job"])
    assert cancelled["session_id"] and cancelled["channel"] == "C0GENERAL"
    assert cancelled["detail"]["stage"] == "CANCELED" and "cost" in cancelled["detail"]
    assert [e for e in events if e["kind"] == "job_cancelled"] == [cancelled]
    asked = one(events, "job_cancel_requested", job_id=ids["cancelled_job"])
    assert asked["actor"] == REQUESTER and asked["detail"]["by"] == "stop"
    changed = one(events, "policy_changed")
    assert changed["actor"] == ADMIN and changed["detail"]["after"] == {"approvers": [APPROVER_1]}

    out = io.StringIO()
    assert await export_audit(settings_of(bot), since=None, fmt="csv", out=out) == 0
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == len(events) and set(AUDIT_FIELDS) <= set(rows[0])
    for row, event in zip(rows, events, strict=True):
        assert row["kind"] == event["kind"] and json.loads(row["detail"]) == event["detail"]


async def test_since_keeps_the_later_events_and_a_bad_date_is_refused(bot: Harness) -> None:
    assert (await command(bot, f"policy approvers add <@{APPROVER_1}>", ADMIN)).public
    await asyncio.sleep(0.05)
    cut = datetime.now(UTC)
    await asyncio.sleep(0.05)
    assert (await command(bot, "policy budget 100", ADMIN)).public
    later = await jsonl(bot, since=cut.isoformat())
    assert [e["detail"].get("change") for e in later] == ["budget: $100.00"]
    assert await jsonl(bot, since=(cut + timedelta(days=1)).date().isoformat()) == []
    assert len(await jsonl(bot, since=cut.date().isoformat())) == 2
    with pytest.raises(SystemExit, match="not an ISO date"):
        await jsonl(bot, since="the 3rd of May")


async def test_the_cli_writes_csv_and_session_exports(bot: Harness) -> None:
    thread = await start_task(bot, f"fine-tune with my token {bot.hub.token} please")
    await first_card(bot, thread)
    async with rt(bot).db.session() as db:
        session = (await db.execute(select(Session).where(Session.thread == thread))).scalar_one()

    env = {**os.environ, **bot.env()}
    code, out, _ = await cli(env, "audit", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {"session_started", "approval_requested"} <= {r["kind"] for r in rows}

    code, out, _ = await cli(env, "sessions", "export", session.id, "--format", "jsonl")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["type"] == "session" and lines[0]["id"] == session.id and lines[0]["started_by"] == REQUESTER
    roles = [m["role"] for m in lines[1:]]
    assert roles[:2] == ["user", "assistant"] and all(m["type"] == "message" for m in lines[1:])
    assert lines[2]["message"]["tool_calls"][0]["function"]["name"] == "hf_jobs"
    assert bot.hub.token not in out and "fine-tune with my token" in out

    code, md, _ = await cli(env, "sessions", "export", session.id, "--format", "md")
    assert code == 0 and md.startswith(f"# Session {session.id}") and "## 1. user" in md and "hf_jobs(" in md
    assert bot.hub.token not in md
    code, _, err = await cli(env, "sessions", "export", "no-such-session")
    assert code == 1 and "no session" in err


async def test_session_export_in_process_matches_the_transcript(bot: Harness) -> None:
    thread = await start_task(bot)
    await first_card(bot, thread)
    async with rt(bot).db.session() as db:
        session = (await db.execute(select(Session).where(Session.thread == thread))).scalar_one()
    out = io.StringIO()
    assert await export_session(settings_of(bot), session.id, "jsonl", out) == 0
    seqs = [json.loads(line).get("seq") for line in out.getvalue().splitlines()[1:]]
    assert seqs == sorted(seqs) and seqs[0] == 1


async def cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "intern.bot.cli", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return int(proc.returncode or 0), out.decode(), err.decode()
