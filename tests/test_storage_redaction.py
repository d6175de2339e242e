"""Text that may quote a secret is redacted by its column's type, whichever statement writes it, and
an export redacts again what an older version stored in clear."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, text, update

from intern.agent.guardrails.redaction import Redactor
from intern.bot.export import export_audit, export_session
from intern.bot.models import (
    AuditEvent,
    CacheEntry,
    Job,
    Message,
    Session,
    WorkItem,
    attach_redactor,
    redact_stored_text,
)
from intern.bot.settings import Settings
from intern.bot.store import Database

TOKEN = "hf_" + "Zq8" * 12  # a configured token
SHAPED = "ghp_" + "k3J9sLq2Wm8Xv5Tn1Bc7Hd4Fy6Rp0Ga2Ue8"  # nobody configured this one; its shape gives it away

async def raw_values(db: Database, table: str) -> str:
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text(f'SELECT * FROM "{table}"'))).all()
    return json.dumps([[v if isinstance(v, str) else str(v) for v in row] for row in rows])


async def test_orm_core_insert_and_update_writes_are_all_redacted(db: Database) -> None:
    attach_redactor(db.engine, Redactor([TOKEN]))
    now = datetime.now(UTC)
    async with db.transaction() as s:
        s.add(Session(id="s1", platform="slack", workspace="T", channel="C", thread="1", started_by="U"))
        await s.flush()
        s.add(Message(session_id="s1", seq=1, role="tool", payload={"role": "tool", "content": f"HF_TOKEN={TOKEN}",
                                                                    TOKEN: "a key too"}))
        await s.execute(insert(WorkItem), [{"session_id": "s1", "kind": "job_finished",
                                            "payload": {"log_tail": [f"env: {TOKEN}", SHAPED]}, "created_at": now,
                                            "available_at": now}])
        s.add(Job(id="j1", session_id="s1", namespace="ns", flavor="cpu-basic", timeout_seconds=60, hourly_usd=0.0,
                  estimated_cost_usd=0.0, requester="U", platform="slack", workspace="T", channel="C"))
        await s.flush()
        await s.execute(update(Job).where(Job.id == "j1").values(log_tail=f"token {TOKEN}\n{SHAPED}",
                                                                 message=f"failed: {TOKEN}\n" + "step 1\n" * 800))
        s.add(AuditEvent(kind="job_finished", actor="intern", detail={"error": f"bad {TOKEN}"}))
        s.add(CacheEntry(key="k", value=json.dumps({"body": f"Bearer {TOKEN}"}), expires_at=now + timedelta(hours=1)))
    for table in ("messages", "work_items", "jobs", "audit_events", "cache_entries"):
        stored = await raw_values(db, table)
        assert TOKEN not in stored and SHAPED not in stored, table
        assert "[REDACTED]" in stored, table
    async with db.session() as s:
        job = await s.get(Job, "j1")
        entry = await s.get(CacheEntry, "k")
    assert job is not None and job.log_tail == "token [REDACTED]\n[REDACTED]"
    assert job.message == "failed: [REDACTED]\n" + "step 1\n" * 800  # a long text, redacted once
    assert entry is not None and json.loads(entry.value) == {"body": "Bearer [REDACTED]"}


async def test_without_an_attached_redactor_the_secret_shapes_still_apply(db: Database) -> None:
    async with db.transaction() as s:
        s.add(AuditEvent(kind="x", actor="intern", detail={"note": f"pushed with {SHAPED}"}))
    assert SHAPED not in await raw_values(db, "audit_events")


def test_a_stored_json_document_stays_json_when_a_mask_would_reach_across_its_quotes() -> None:
    document = json.dumps({"key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "next": 1})
    stored = redact_stored_text(Redactor(), document)
    assert json.loads(stored) == {"key": "[REDACTED]", "next": 1}
    plain = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    assert redact_stored_text(Redactor(), plain) == "[REDACTED]"


async def test_exports_redact_rows_an_older_version_stored_in_clear(db: Database) -> None:
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    payload = json.dumps({"role": "user", "content": f"my token is {TOKEN} and {SHAPED}"})
    async with db.engine.begin() as conn:  # raw SQL: what was written before the columns redacted
        await conn.execute(text("INSERT INTO sessions (id, platform, workspace, channel, thread, status, active, "
                                "started_by, prompt_tokens, completion_tokens, llm_cost_usd, stop_requested, "
                                "created_at, updated_at) VALUES ('s1', 'slack', 'T', 'C', '1', 'active', true, 'U', "
                                "0, 0, 0, false, :at, :at)"), {"at": datetime.fromisoformat(now)})
        await conn.execute(text("INSERT INTO messages (session_id, seq, role, payload, created_at) "
                                f"VALUES ('s1', 1, 'user', {cast_json(db, ':p')}, :at)"),
                           {"p": payload, "at": datetime.fromisoformat(now)})
        await conn.execute(text("INSERT INTO audit_events (at, kind, actor, detail) "
                                f"VALUES (:at, 'job_finished', 'intern', {cast_json(db, ':d')})"),
                           {"d": json.dumps({"error": f"HF_TOKEN={TOKEN}"}), "at": datetime.fromisoformat(now)})
    assert TOKEN in await raw_values(db, "messages")
    settings = Settings(database_url=db.url, hf_token=TOKEN)  # type: ignore[call-arg]
    outputs = []
    for fmt in ("jsonl", "md"):
        out = io.StringIO()
        assert await export_session(settings, "s1", fmt, out) == 0
        outputs.append(out.getvalue())
    for fmt in ("jsonl", "csv"):
        out = io.StringIO()
        assert await export_audit(settings, since=None, fmt=fmt, out=out) == 0
        outputs.append(out.getvalue())
    for output in outputs:
        assert TOKEN not in output and SHAPED not in output and "[REDACTED]" in output


def cast_json(db: Database, param: str) -> str:
    return f"CAST({param} AS JSONB)" if db.is_postgres else param
