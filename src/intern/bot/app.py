"""The application facade the adapters call, and the background loops of one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from intern.bot import audit
from intern.bot import policy as policies
from intern.bot.approvals import Approvals
from intern.bot.chat import (
    ApprovalClick,
    Command,
    FeedbackClick,
    JobCancelClick,
    Reply,
    StopClick,
    UserMessage,
)
from intern.bot.commands import run_command
from intern.bot.inbox import NEW_SESSION_WORDS, Accepted, Inbox, is_stop
from intern.bot.jobs import JobWatcher
from intern.bot.models import Session
from intern.bot.runtime import Runtime
from intern.bot.schedules import check_schedules
from intern.bot.sessions import active_session
from intern.bot.store import log_failure
from intern.bot.worker import Worker

log = logging.getLogger(__name__)


class BotApp:
    def __init__(self, rt: Runtime, *, workers: int | None = None) -> None:
        self.rt = rt
        self.inbox = Inbox(rt)
        self.approvals = Approvals(rt)
        self.worker = Worker(rt, slots=workers)
        self.watcher = JobWatcher(rt)
        rt.job_watcher = self.watcher
        self._tasks: list[asyncio.Task[Any]] = []
        self._background: set[asyncio.Task[Any]] = set()

    # --- inbound (called by adapters) -----------------------------------------------------------

    async def on_message(self, msg: UserMessage) -> Accepted:
        # Ending a session (and sweeping its sandboxes) takes the same right whether it is called
        # stopping it or continuing in a new one.
        # (The limit on new sessions per user is applied where sessions are created: in the inbox.)
        text = msg.text.strip()
        ending = "stop" if is_stop(text) else "new" if text.lower() in NEW_SESSION_WORDS else None
        if ending:
            async with self.rt.db.session() as db:
                s = await active_session(db, msg.conversation)
            if s is not None:
                refusal = await self.stop_refusal(s.id, msg.user, msg.user_groups, ending)
                if refusal:
                    return Accepted("refused", s.id, message=refusal)
        return await self.inbox.receive_message(msg)

    async def on_click(self, click: ApprovalClick) -> Reply:
        try:
            return await self.approvals.click(click)
        except Exception:
            log.exception("approval click failed")
            return Reply("Something went wrong recording your decision; nothing was changed. Try again.", ok=False)

    async def on_stop(self, click: StopClick) -> Reply:
        from intern.bot.approvals import is_uuid

        if not is_uuid(click.session_id):
            return Reply("This Stop button does not belong to a known session.", ok=False)
        async with self.rt.db.session() as db:
            s = await db.get(Session, click.session_id)
        if s is None or s.workspace != click.workspace or s.platform != click.platform:
            return Reply("This Stop button does not belong to a known session.", ok=False)
        refusal = await self.stop_refusal(s.id, click.user, click.user_groups)
        if refusal:
            return Reply(refusal, ok=False)
        result = await self.inbox.stop_session(s.id, click.user, click.event_key)
        if result.outcome == "duplicate":
            return Reply("Stop already requested.")
        return Reply("Stopping: the turn, its jobs and its pending approvals are being cancelled.")

    async def on_cancel_job(self, click: JobCancelClick) -> Reply:
        from intern.bot.alerts import cancel_from_click

        try:
            return await cancel_from_click(self.rt, click, self.approvals.is_member)
        except Exception:
            log.exception("job cancel click failed")
            return Reply("Something went wrong on my side; the job was not cancelled. Try again.", ok=False)

    async def on_feedback(self, click: FeedbackClick) -> Reply:
        from intern.bot.feedback import record

        try:
            return await record(self.rt, click)
        except Exception:
            log.exception("feedback click failed")
            return Reply("Something went wrong recording your feedback; try again.", ok=False)

    async def on_command(self, cmd: Command) -> Reply:
        try:
            return await run_command(self.rt, cmd)
        except Exception:
            log.exception("command %s failed", cmd.name)
            return Reply(f"Sorry, `{cmd.name}` failed on my side; nothing was changed.", ok=False)

    async def stop_refusal(self, session_id: str, user: str, groups: tuple[str, ...],
                           ending: str = "stop") -> str | None:
        async with self.rt.db.session() as db:
            s = await db.get(Session, session_id)
            if s is None:
                return "Unknown session."
            pol = await policies.effective(db, s.platform, s.workspace, s.channel, self.rt.settings.approvers)
        if user == s.started_by or user in pol.global_admins or user in pol.admins:
            return None
        if await self.approvals.is_member(s.platform, s.workspace, user, pol.approvers, groups):
            return None
        async with self.rt.db.transaction() as db:
            audit.record(db, "stop_refused", actor=user, platform=s.platform, workspace=s.workspace,
                         channel=s.channel, session_id=s.id, asked=ending)
        if ending == "new":
            return ("Only the person who started this session, an approver or an administrator can end it and "
                    "continue in a new session. Nothing was changed.")
        return "Only the person who started this session, an approver or an administrator can stop it."

    def spawn(self, coro: Any) -> None:
        """Run something after the platform was acked, keeping a reference until it ends."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- background -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.worker.run(), name="worker"),
            asyncio.create_task(self.watcher.run(), name="job-watcher"),
            asyncio.create_task(self.sweep(), name="sweeper"),
        ]

    async def sweep(self) -> None:
        while True:
            try:
                await self.approvals.expire_due()
                await self.approvals.post_missing_cards()
                await check_schedules(self.rt)
                if self.rt.sandboxes is not None:
                    await self.rt.sandboxes.sweep()
            except Exception as exc:
                log_failure(log, exc, "sweep", "trying again at the next one")
            await asyncio.sleep(self.rt.sweep_seconds)

    async def stop(self, timeout: float = 20.0) -> None:
        """Graceful stop (SIGTERM): no new work is taken; turns in hand get `timeout` seconds to end
        (hosts usually kill 30 s after SIGTERM), the rest are put back in the queue; every lease is
        released so that another process takes the sessions and jobs over at once."""
        await self.worker.drain(timeout)
        await self.watcher.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for t in list(self._background):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(t, timeout=5)
