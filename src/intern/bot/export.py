"""`intern sessions …` and `intern audit`: read-only views of the database."""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import func, select

from intern.agent.guardrails.redaction import Redactor
from intern.bot.models import AuditEvent, Feedback, Message, Session
from intern.bot.settings import Settings
from intern.bot.store import connect, ensure_schema

AUDIT_FIELDS = ("at", "kind", "actor", "workspace", "channel", "session_id", "approval_id", "job_id",
                "spec_sha256", "detail")


async def _db(settings: Settings) -> Any:
    db = connect(settings.database_url)
    await ensure_schema(db, auto_migrate=False)
    return db


def _redactor(settings: Settings) -> Redactor:
    """Rows are redacted when stored; an export is redacted again, so rows written before a secret
    was configured (or by an older version) do not carry it out."""
    return Redactor(settings.secret_values())


def parse_since(value: str | None, command: str = "intern audit") -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(f"{command}: --since {value!r} is not an ISO date or time (e.g. 2026-11-01)") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def audit_row(e: AuditEvent) -> dict[str, Any]:
    return {"at": e.at.isoformat(), "kind": e.kind, "actor": e.actor, "platform": e.platform,
            "workspace": e.workspace, "channel": e.channel, "session_id": e.session_id,
            "approval_id": e.approval_id, "job_id": e.job_id, "spec_sha256": e.spec_sha256, "detail": e.detail}


async def export_audit(settings: Settings, *, since: str | None, fmt: str, out: TextIO = sys.stdout) -> int:
    start = parse_since(since)
    db = await _db(settings)
    try:
        q = select(AuditEvent).order_by(AuditEvent.id)
        if start is not None:
            q = q.where(AuditEvent.at >= start)
        async with db.session() as s:
            rows = (await s.execute(q)).scalars().all()
    finally:
        await db.dispose()
    redactor = _redactor(settings)
    if fmt == "csv":
        w = csv.DictWriter(out, fieldnames=[*AUDIT_FIELDS[:3], "platform", *AUDIT_FIELDS[3:]])
        w.writeheader()
        for e in rows:
            r = redactor.redact_obj(audit_row(e))
            r["detail"] = json.dumps(r["detail"], ensure_ascii=False, sort_keys=True)
            w.writerow(r)
    else:
        for e in rows:
            out.write(json.dumps(redactor.redact_obj(audit_row(e)), ensure_ascii=False) + "\n")
    return 0


async def list_sessions(settings: Settings, *, limit: int, out: TextIO = sys.stdout) -> int:
    db = await _db(settings)
    try:
        async with db.session() as s:
            rows = (await s.execute(select(Session).order_by(Session.created_at.desc()).limit(limit))).scalars().all()
    finally:
        await db.dispose()
    for r in rows:
        out.write(f"{r.id}  {r.created_at:%Y-%m-%d %H:%M}  {r.platform}:{r.channel}:{r.thread}  {r.status:<16} "
                  f"by {r.started_by}  LLM ${r.llm_cost_usd:.2f}\n")
    if not rows:
        out.write("No sessions yet.\n")
    return 0


async def _load(settings: Settings, session_id: str) -> tuple[Session, list[Message]] | None:
    db = await _db(settings)
    try:
        async with db.session() as s:
            sess = await s.get(Session, session_id)
            if sess is None:
                return None
            msgs = (await s.execute(select(Message).where(Message.session_id == session_id)
                                    .order_by(Message.seq))).scalars().all()
            return sess, list(msgs)
    finally:
        await db.dispose()


def usage_line(s: Session) -> str:
    """The session's model usage: every input token, how many of them the provider's prompt cache
    served (and how many were written to it), output tokens, and the cost at the cache's prices."""
    share = f" ({s.cache_read_tokens / s.prompt_tokens:.0%})" if s.prompt_tokens else ""
    return (f"Model usage: input {s.prompt_tokens:,} tokens, of which cached input {s.cache_read_tokens:,}{share} "
            f"and written to the cache {s.cache_write_tokens:,} · output {s.completion_tokens:,} tokens · "
            f"cost ${s.llm_cost_usd:.4f}")


async def show_session(settings: Settings, session_id: str, out: TextIO = sys.stdout) -> int:
    """The session as markdown, with its model usage and the feedback its answers got."""
    loaded = await _load(settings, session_id)
    if loaded is None:
        print(f"intern: no session {session_id!r}", file=sys.stderr)
        return 1
    db = await _db(settings)
    try:
        async with db.session() as s:
            rows = (await s.execute(select(Feedback.vote, func.count()).where(Feedback.session_id == session_id)
                                    .group_by(Feedback.vote))).all()
    finally:
        await db.dispose()
    votes = {str(v): int(n) for v, n in rows}
    write_session(*loaded, "md", _redactor(settings), out, votes=votes)
    return 0


async def export_session(settings: Settings, session_id: str, fmt: str, out: TextIO = sys.stdout) -> int:
    loaded = await _load(settings, session_id)
    if loaded is None:
        print(f"intern: no session {session_id!r}", file=sys.stderr)
        return 1
    write_session(*loaded, fmt, _redactor(settings), out)
    return 0


async def export_sessions(settings: Settings, *, since: str | None, fmt: str, out: TextIO = sys.stdout,
                          out_dir: str | None = None) -> int:
    """Every session started since `since` (all of them without it), oldest first: one after the
    other on `out`, or one file each (`<session id>.<format>`) in `out_dir`."""
    from pathlib import Path

    start = parse_since(since, command="intern sessions export")
    db = await _db(settings)
    try:
        q = select(Session.id).order_by(Session.created_at, Session.id)
        if start is not None:
            q = q.where(Session.created_at >= start)
        async with db.session() as s:
            ids = list((await s.execute(q)).scalars().all())
    finally:
        await db.dispose()
    folder = Path(out_dir) if out_dir else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    redactor = _redactor(settings)
    for sid in ids:
        loaded = await _load(settings, sid)
        if loaded is None:
            continue
        if folder is None:
            write_session(*loaded, fmt, redactor, out)
            continue
        with (folder / f"{sid}.{'md' if fmt == 'md' else 'jsonl'}").open("w", encoding="utf-8") as f:
            write_session(*loaded, fmt, redactor, f)
    print(f"Exported {len(ids)} session(s)" + (f" to {folder}" if folder else "") + ".", file=sys.stderr)
    return 0


def write_session(sess: Session, msgs: list[Message], fmt: str, redactor: Redactor, out: TextIO, *,
                  votes: dict[str, int] | None = None) -> None:
    if fmt == "trace":
        from intern.bot.trace import write_trace

        write_trace(sess, msgs, redactor.redact_obj, out)
        return
    if fmt == "jsonl":
        out.write(json.dumps({"type": "session", "id": sess.id, "platform": sess.platform, "workspace": sess.workspace,
                              "channel": sess.channel, "thread": sess.thread, "started_by": sess.started_by,
                              "created_at": sess.created_at.isoformat(), "status": sess.status,
                              "llm_cost_usd": sess.llm_cost_usd, "prompt_tokens": sess.prompt_tokens,
                              "cache_read_tokens": sess.cache_read_tokens,
                              "cache_write_tokens": sess.cache_write_tokens,
                              "completion_tokens": sess.completion_tokens}) + "\n")
        for m in msgs:
            out.write(json.dumps({"type": "message", "seq": m.seq, "at": m.created_at.isoformat(), "role": m.role,
                                  "author": m.author, "message": redactor.redact_obj(m.payload)},
                                 ensure_ascii=False) + "\n")
        return
    out.write(f"# Session {sess.id}\n\n{sess.platform} · channel {sess.channel} · thread {sess.thread} · started by "
              f"{sess.started_by} at {sess.created_at:%Y-%m-%d %H:%M UTC} · status {sess.status}\n\n"
              f"{usage_line(sess)}\n\n")
    if votes is not None:
        out.write(f"Feedback on answers: {votes.get('up', 0)} 👍 · {votes.get('down', 0)} 👎\n\n")
    for m in msgs:
        p = redactor.redact_obj(m.payload)
        kind = (p.get("meta") or {}).get("kind")
        head = f"## {m.seq}. {p.get('role')}" + (f" ({kind})" if kind else "") + (f" — {p['name']}" if p.get("name") else "")
        out.write(head + "\n\n")
        if p.get("content"):
            out.write(str(p["content"]) + "\n\n")
        for call in p.get("tool_calls") or []:
            fn = call.get("function", {})
            out.write(f"```json\n{fn.get('name')}({fn.get('arguments')})\n```\n\n")
