"""Sandboxes: the durable registry the sandbox tools use (`SandboxRegistry`), and the deleting of them.

Every sandbox is a row in `sandboxes`, written before its Space is created, so no crash can leave a
Space nobody knows about. Its token is stored encrypted with Fernet, under a key derived from
INTERN_SECRET_KEY. Without that setting the key is random per process: after a restart the old
sandboxes cannot be used again, so they are deleted and a new one starts when needed.

`sweep()` (the bot calls it every few seconds) deletes the Space of every sandbox that
- is marked deleting: a delete the Hub refused is retried, with a growing pause, until it succeeds;
- belongs to a session that ended;
- has not been used for `idle_ttl_seconds`;
- has been starting for longer than a start can take (the process that started it died).
On paid hardware it also reserves each further hour a sandbox lives in the spend ledger (the first
hour is reserved by its approval); a sandbox whose next hour the budget cannot cover is deleted.
`end_session()` deletes a stopped session's sandboxes at once.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Update, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from intern.agent.ports import SandboxRecord
from intern.agent.pricing import format_duration
from intern.bot import audit
from intern.bot import policy as policies
from intern.bot.models import Sandbox, Session, SpendEntry, new_id

if TYPE_CHECKING:
    from pydantic import SecretStr
    from sqlalchemy.engine import CursorResult

    from intern.bot.runtime import Runtime

log = logging.getLogger(__name__)

LIVE = ("creating", "running", "deleting")
HOUR = 3600.0


def now() -> datetime:
    return datetime.now(UTC)


def fernet_key(secret: SecretStr | None) -> tuple[bytes, bool]:
    """A Fernet key from the secret key setting (and True), or a random one for this process (and False)."""
    if secret is None or not secret.get_secret_value():
        return Fernet.generate_key(), False
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"intern sandbox token v1")
    return base64.urlsafe_b64encode(hkdf.derive(secret.get_secret_value().encode("utf-8"))), True


class SandboxManager:
    """The bot's `SandboxRegistry`; `rt.sandboxes`."""

    def __init__(self, rt: Runtime, *, idle_ttl_seconds: float = 1800.0, poll_seconds: float = 3.0,
                 start_timeout_seconds: float = 1200.0, retry_seconds: float = 15.0,
                 retry_max_seconds: float = 900.0) -> None:
        self.rt = rt
        self.idle_ttl_seconds = idle_ttl_seconds
        self.poll_seconds = poll_seconds
        self.start_timeout_seconds = start_timeout_seconds
        self.retry_seconds, self.retry_max_seconds = retry_seconds, retry_max_seconds
        key, durable = fernet_key(rt.settings.secret_key)
        if not durable:
            log.warning("INTERN_SECRET_KEY is not set: sandbox tokens are encrypted with a key that lives only in "
                        "this process, so after a restart existing sandboxes are deleted instead of reused")
        self._fernet = Fernet(key)
        self._locks: dict[str, asyncio.Lock] = {}
        self._retry_at: dict[str, float] = {}

    @property
    def creating_grace_seconds(self) -> float:
        return self.start_timeout_seconds + 600.0

    # ------------------------------------------------------------ the registry the tools use

    def session_lock(self, session_id: str) -> asyncio.Lock:
        return self._locks.setdefault(session_id, asyncio.Lock())

    async def record(self, *, session_id: str, space_id: str, hardware: str, hourly_usd: float,
                     token: str) -> str:
        sid = new_id()
        async with self.rt.db.transaction() as db:
            db.add(Sandbox(id=sid, session_id=session_id, space_id=space_id, hardware=hardware,
                           hourly_usd=hourly_usd, status="creating",
                           token_ciphertext=self._fernet.encrypt(token.encode("utf-8")).decode("ascii")))
        return sid

    async def mark_running(self, sandbox_id: str, url: str) -> bool:
        async with self.rt.db.transaction() as db:
            if await changed(db, update(Sandbox).where(Sandbox.id == sandbox_id, Sandbox.status == "creating")
                             .values(status="running", url=url, last_used_at=now())) != 1:
                return False
            row, session = await self._load(db, sandbox_id)
            audit.record(db, "sandbox_started", **scope(session), space_id=row.space_id, hardware=row.hardware,
                         hourly_usd=row.hourly_usd)
        return True

    async def starting(self, sandbox_id: str) -> bool:
        async with self.rt.db.session() as db:
            return await db.scalar(select(Sandbox.status).where(Sandbox.id == sandbox_id)) == "creating"

    async def live(self, session_id: str) -> SandboxRecord | None:
        async with self.rt.db.session() as db:
            row = (await db.execute(select(Sandbox).where(Sandbox.session_id == session_id,
                                                          Sandbox.status == "running")
                                    .order_by(Sandbox.created_at.desc()).limit(1))).scalar_one_or_none()
        if row is None:
            return None
        try:
            token = self._fernet.decrypt((row.token_ciphertext or "").encode("ascii")).decode("utf-8")
        except InvalidToken:
            await self._mark_deleting(row.id, "its token cannot be decrypted (INTERN_SECRET_KEY unset or changed "
                                              "since it was created)", expect=("running",))
            return None
        return SandboxRecord(row.id, row.session_id, row.space_id, row.hardware, row.hourly_usd, row.url, token)

    async def touch(self, sandbox_id: str) -> None:
        async with self.rt.db.transaction() as db:
            await db.execute(update(Sandbox).where(Sandbox.id == sandbox_id, Sandbox.status == "running")
                             .values(last_used_at=now()))

    async def discard(self, sandbox_id: str, reason: str) -> bool:
        if await self._mark_deleting(sandbox_id, reason, expect=LIVE):
            return await self._delete(sandbox_id)
        # Already deleted (the session was stopped while this sandbox started): a Space its start
        # created after that must still go, without turning the finished row back to "deleting".
        async with self.rt.db.session() as db:
            row = await db.get(Sandbox, sandbox_id)
        if row is None:
            return False
        hub = self.rt.hub
        try:
            await hub.call(hub.api.delete_repo, row.space_id, repo_type="space", missing_ok=True)
        except Exception as exc:
            if await self._mark_deleting(sandbox_id, reason, expect=("deleted",)):
                await self._failed(row, exc)  # the sweeper tries again
            return False
        return True

    # ------------------------------------------------------------ what the bot calls

    async def end_session(self, session_id: str) -> None:
        async with self.rt.db.session() as db:
            ids = (await db.execute(select(Sandbox.id).where(Sandbox.session_id == session_id,
                                                             Sandbox.status.in_(LIVE)))).scalars().all()
        for sid in ids:
            await self.discard(sid, "the session was stopped")
        self._locks.pop(session_id, None)

    async def sweep(self) -> None:
        async with self.rt.db.session() as db:
            rows = (await db.execute(select(Sandbox, Session).join(Session, Session.id == Sandbox.session_id)
                                     .where(Sandbox.status.in_(LIVE)))).all()
        for row, session in rows:
            try:
                await self._sweep_one(row, session)
            except Exception:
                log.exception("sweeping sandbox %s failed", row.id)

    async def _sweep_one(self, row: Sandbox, session: Session) -> None:
        reason = self.due(row, session, now())
        if reason is None and row.status == "running" and row.hourly_usd > 0:
            reason = await self.reserve_hours(row, session)
        if reason is None:
            return
        if row.status == "deleting":
            if self._retry_at.get(row.id, 0.0) > time.monotonic():
                return
        elif not await self._mark_deleting(row.id, reason, expect=(row.status,)):
            return  # changed meanwhile (started, or taken by someone else)
        await self._delete(row.id)

    def due(self, row: Sandbox, session: Session, at: datetime) -> str | None:
        """Why this sandbox should be deleted now, or None."""
        if row.status == "deleting":
            return row.last_error or "deletion pending"
        if not session.active or session.status == "ended":
            return "the session ended"
        if row.status == "running" and row.last_used_at < at - timedelta(seconds=self.idle_ttl_seconds):
            return f"unused for {format_duration(self.idle_ttl_seconds)}"
        if row.status == "creating" and row.created_at < at - timedelta(seconds=self.creating_grace_seconds):
            return "its start never finished"
        return None

    async def reserve_hours(self, row: Sandbox, session: Session) -> str | None:
        """Reserve every hour this paid sandbox has started, beyond the first; a reason to delete it when the
        budget cannot cover the next one."""
        started = int((now() - row.created_at).total_seconds() // HOUR) + 1
        if started < 2:
            return None
        prefix = f"sandbox:{row.id}:h"
        async with self.rt.db.transaction() as db:
            have = set((await db.execute(select(SpendEntry.ref).where(SpendEntry.ref.like(prefix + "%"))))
                       .scalars().all())
            missing = [n for n in range(2, started + 1) if f"{prefix}{n}" not in have]
            if not missing:
                return None
            pol = await policies.effective(db, session.platform, session.workspace, session.channel,
                                           self.rt.settings.approvers)
            budget = await policies.budget_view(db, pol, session.platform, session.workspace, session.channel)
            if not budget.allows(row.hourly_usd * len(missing)):
                return f"the budget cannot cover another hour at ${row.hourly_usd:.2f}"
            for n in missing:
                db.add(SpendEntry(platform=session.platform, workspace=session.workspace, channel=session.channel,
                                  session_id=session.id, user_id=session.current_requester or session.started_by,
                                  kind="sandbox", ref=f"{prefix}{n}", amount_usd=row.hourly_usd, final=True,
                                  month=policies.month_of()))
        return None

    # ------------------------------------------------------------ deleting

    async def _mark_deleting(self, sandbox_id: str, reason: str, *, expect: tuple[str, ...] | None) -> bool:
        q = update(Sandbox).where(Sandbox.id == sandbox_id)
        if expect is not None:
            q = q.where(Sandbox.status.in_(expect))
        async with self.rt.db.transaction() as db:
            return await changed(db, q.values(status="deleting", last_error=reason, deleted_at=None)) > 0

    async def _delete(self, sandbox_id: str) -> bool:
        async with self.rt.db.session() as db:
            row = await db.get(Sandbox, sandbox_id)
        if row is None or row.status != "deleting":
            return row is not None and row.status == "deleted"  # another sweep finished it
        hub = self.rt.hub
        try:
            await hub.call(hub.api.delete_repo, row.space_id, repo_type="space", missing_ok=True)
        except Exception as exc:
            await self._failed(row, exc)
            return False
        self._retry_at.pop(sandbox_id, None)
        async with self.rt.db.transaction() as db:
            done = await changed(db, update(Sandbox).where(Sandbox.id == sandbox_id, Sandbox.status == "deleting")
                                 .values(status="deleted", deleted_at=now(),
                                         delete_attempts=Sandbox.delete_attempts + 1))
            if done == 1:
                row, session = await self._load(db, sandbox_id)
                audit.record(db, "sandbox_deleted", **scope(session), space_id=row.space_id,
                             hardware=row.hardware, reason=row.last_error, attempts=row.delete_attempts)
        return True

    async def _failed(self, row: Sandbox, exc: Exception) -> None:
        attempts = row.delete_attempts + 1
        reason = (row.last_error or "deleting").split("; delete failed:")[0]
        pause = min(self.retry_max_seconds, self.retry_seconds * 2 ** (attempts - 1))
        self._retry_at[row.id] = time.monotonic() + pause
        log.warning("deleting sandbox Space %s failed (attempt %d, next in %.0f s): %s", row.space_id, attempts,
                    pause, exc)
        async with self.rt.db.transaction() as db:
            await db.execute(update(Sandbox).where(Sandbox.id == row.id).values(
                delete_attempts=Sandbox.delete_attempts + 1,
                last_error=f"{reason}; delete failed: {type(exc).__name__}: {exc}"[:2000]))

    async def _load(self, db: AsyncSession, sandbox_id: str) -> tuple[Sandbox, Session]:
        row = await db.get(Sandbox, sandbox_id, populate_existing=True)
        assert row is not None
        session = await db.get(Session, row.session_id)
        assert session is not None
        return row, session


async def changed(db: AsyncSession, statement: Update) -> int:
    """Rows an UPDATE changed: the outcome of a compare-and-set."""
    result = cast("CursorResult[Any]", await db.execute(statement))
    return int(result.rowcount or 0)


def scope(session: Session) -> dict[str, str]:
    return {"platform": session.platform, "workspace": session.workspace, "channel": session.channel,
            "session_id": session.id}
