"""The append-only audit trail."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from intern.bot.models import AuditEvent

BOT_ACTOR = "intern"


def record(
    db: AsyncSession,
    kind: str,
    *,
    actor: str = BOT_ACTOR,
    platform: str | None = None,
    workspace: str | None = None,
    channel: str | None = None,
    session_id: str | None = None,
    approval_id: str | None = None,
    job_id: str | None = None,
    spec_sha256: str | None = None,
    **detail: Any,
) -> None:
    """Add an audit event to the caller's transaction (it commits with the change it describes)."""
    db.add(AuditEvent(
        kind=kind, actor=actor, platform=platform, workspace=workspace, channel=channel,
        session_id=session_id, approval_id=approval_id, job_id=job_id, spec_sha256=spec_sha256,
        detail={k: v for k, v in detail.items() if v is not None},
    ))
