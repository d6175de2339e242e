"""Workers: claim a session with a lease, work its queued items in order, one turn at a time.

A session is claimed with a compare-and-set on its lease (on PostgreSQL the candidate row is picked
with `FOR UPDATE SKIP LOCKED`), so one session is never worked by two workers or two processes at
once. A heartbeat extends the lease and notices a stop request; a process that dies simply stops
heartbeating and another process takes the session over when the lease lapses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select, update

from intern.agent.context import ContextManager
from intern.agent.context_deps import AgentConfig, ToolContext
from intern.agent.errors import TurnStopped
from intern.agent.loop import Agent, TurnOutcome
from intern.agent.plan import PlanState
from intern.agent.prompts import system_prompt
from intern.bot import audit
from intern.bot.approvals import Approvals, Gate
from intern.bot.models import Job, Session, WorkItem
from intern.bot.progress import ProgressSink
from intern.bot.runtime import Runtime
from intern.bot.sessions import DbTranscript, add_message, conversation_of, load_messages

log = logging.getLogger(__name__)

TERMINAL = ("COMPLETED", "CANCELED", "ERROR", "DELETED")


def now() -> datetime:
    return datetime.now(UTC)


class Worker:
    def __init__(self, rt: Runtime, slots: int | None = None, poll_seconds: float = 1.0) -> None:
        self.rt = rt
        self.slots = slots or rt.settings.workers
        self.poll_seconds = poll_seconds
        self.running: dict[str, asyncio.Task[None]] = {}
        self._accepting = True

    async def run(self) -> None:
        while self._accepting:
            claimed = False
            await self.rt.yield_to_inbound()
            if len(self.running) < self.slots:
                try:
                    sid = await self.claim()
                except Exception:
                    log.exception("claiming work failed")
                    sid = None
                if sid is not None:
                    claimed = True
                    self.running[sid] = asyncio.create_task(self.work_session(sid), name=f"session-{sid}")
            if claimed:
                continue
            self.rt.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.rt.wake.wait(), timeout=self.poll_seconds)

    async def drain(self, timeout: float = 30.0) -> None:
        """Graceful stop: take no new work, let turns in hand finish (or release them)."""
        self._accepting = False
        self.rt.wake.set()
        tasks = list(self.running.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for t in pending:
                t.cancel()
            for t in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    async def claim(self) -> str | None:
        t = now()
        free = or_(Session.lease_owner.is_(None), Session.lease_expires_at < t)
        has_work = exists().where(WorkItem.session_id == Session.id, WorkItem.status.in_(("queued", "running")),
                                  WorkItem.available_at <= t)
        pick = select(Session.id).where(free, has_work).order_by(Session.updated_at).limit(1)
        if self.rt.db.is_postgres:
            pick = pick.with_for_update(skip_locked=True)
        async with self.rt.db.transaction() as db:
            sid = (await db.execute(pick)).scalar_one_or_none()
            if sid is None or sid in self.running:
                return None
            res = await db.execute(update(Session).where(and_(Session.id == sid, free)).values(
                lease_owner=self.rt.owner, lease_expires_at=t + timedelta(seconds=self.rt.lease_seconds)))
        return sid if res.rowcount == 1 else None

    async def work_session(self, sid: str) -> None:
        try:
            while True:
                item = await self.next_item(sid)
                if item is None:
                    break
                await self.with_heartbeat(sid, self.handle(sid, item), cancel_on_stop=item.kind != "stop")
        except Exception:
            log.exception("session %s: worker failed", sid)
        finally:
            await self.release(sid)
            self.running.pop(sid, None)
            self.rt.poke()

    async def next_item(self, sid: str) -> WorkItem | None:
        async with self.rt.db.transaction() as db:
            item = (await db.execute(select(WorkItem).where(
                WorkItem.session_id == sid, WorkItem.status.in_(("queued", "running")),
                WorkItem.available_at <= now()).order_by(WorkItem.id).limit(1))).scalar_one_or_none()
            if item is None:
                return None
            item.status, item.lease_owner, item.attempts = "running", self.rt.owner, item.attempts + 1
        return item

    async def release(self, sid: str) -> None:
        with contextlib.suppress(Exception):
            async with self.rt.db.transaction() as db:
                await db.execute(update(Session).where(Session.id == sid, Session.lease_owner == self.rt.owner)
                                 .values(lease_owner=None, lease_expires_at=None))

    async def with_heartbeat(self, sid: str, work: Any, cancel_on_stop: bool = True) -> None:
        task = asyncio.ensure_future(work)
        beat = asyncio.create_task(self.heartbeat(sid, task, cancel_on_stop))
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def heartbeat(self, sid: str, task: asyncio.Future[Any], cancel_on_stop: bool) -> None:
        while not task.done():
            await asyncio.sleep(min(self.rt.heartbeat_seconds, 1.0))
            try:
                async with self.rt.db.transaction() as db:
                    res = await db.execute(update(Session).where(
                        Session.id == sid, Session.lease_owner == self.rt.owner).values(
                        lease_expires_at=now() + timedelta(seconds=self.rt.lease_seconds))
                        .returning(Session.stop_requested))
                    row = res.first()
            except Exception:
                log.warning("heartbeat for session %s failed", sid)
                continue
            if row is None:
                log.warning("session %s: lease lost, cancelling the turn", sid)
                task.cancel()
                return
            if row[0] and cancel_on_stop:
                task.cancel()
                return

    async def handle(self, sid: str, item: WorkItem) -> None:
        try:
            if item.kind == "stop":
                await self.stop(sid, item)
            else:
                await self.turn(sid, item)
            await self.finish_item(item.id, "done")
        except asyncio.CancelledError:
            stopping = await self.stop_requested(sid)
            await self.finish_item(item.id, "done" if stopping else "queued")
            if not stopping:
                raise
        except Exception as exc:
            log.exception("session %s: work item %s failed", sid, item.id)
            await self.finish_item(item.id, "failed", error=f"{type(exc).__name__}: {exc}"[:2000])
            await self.tell(sid, "🛑 Something went wrong on my side while working on this "
                                 f"({type(exc).__name__}). Your message is saved; reply to try again.")

    async def stop_requested(self, sid: str) -> bool:
        async with self.rt.db.session() as db:
            s = await db.get(Session, sid)
            return bool(s and s.stop_requested)

    async def finish_item(self, item_id: int, status: str, error: str | None = None) -> None:
        async with self.rt.db.transaction() as db:
            await db.execute(update(WorkItem).where(WorkItem.id == item_id).values(
                status=status, error=error, finished_at=now() if status != "queued" else None,
                lease_owner=None))

    async def tell(self, sid: str, text: str) -> None:
        with contextlib.suppress(Exception):
            async with self.rt.db.session() as db:
                s = await db.get(Session, sid)
            if s is not None:
                await self.rt.adapter(s.platform).post(conversation_of(s), text)

    # --- turns ----------------------------------------------------------------------------------

    async def turn(self, sid: str, item: WorkItem) -> None:
        async with self.rt.db.transaction() as db:
            s = await db.get(Session, sid)
            assert s is not None
            requester = self.requester_for(s, item)
            if item.kind == "job_finished":
                await add_message(db, sid, {"role": "user", "content": job_report(item.payload),
                                            "meta": {"kind": "job_event"}})
            if item.kind == "seed":
                await self.seed(db, s, item)
            if item.kind == "message":
                s.current_requester = requester
            if s.status == "waiting_approval" and item.kind in ("message", "job_finished"):
                return  # stored; the agent sees it when the pending cards are decided
            s.status = "active"
        await self.run_agent(s, requester)

    def requester_for(self, s: Session, item: WorkItem) -> str:
        return str(item.payload.get("user") or item.payload.get("requester") or s.current_requester or s.started_by)

    async def seed(self, db: Any, s: Session, item: WorkItem) -> None:
        from intern.agent.context import latest_summary

        old = await load_messages(db, item.payload["from"])
        found = latest_summary(old)
        summary = old[found[0]]["content"] if found else "(the previous session had no summary)"
        first = next((m for m in old if m.get("role") == "user" and not (m.get("meta") or {}).get("kind")), None)
        if first is not None:
            await add_message(db, s.id, dict(first))
        await add_message(db, s.id, {"role": "user", "content": f"[Continued from session {item.payload['from']}]\n"
                                     f"{summary}\n\nContinue the work from here.", "meta": {"kind": "seed"}})

    def agent_config(self) -> AgentConfig:
        st = self.rt.settings
        return AgentConfig(model=st.model or "", research_model=st.research_model or st.model or "",
                           max_iterations=st.max_iterations, context_window_tokens=st.context_window_tokens,
                           hf_endpoint=st.hf_endpoint, namespace=st.hf_namespace,
                           datasets_server_url=st.datasets_server_url, semantic_scholar_url=st.semantic_scholar_url,
                           arxiv_url=st.arxiv_url)

    async def run_agent(self, s: Session, requester: str) -> None:
        sink = ProgressSink(self.rt, s, requester)
        transcript = DbTranscript(self.rt, s.id)
        async with self.rt.db.session() as db:
            messages = await load_messages(db, s.id)
        config = self.agent_config()
        if not config.model:
            await self.rt.adapter(s.platform).post(conversation_of(s), "🛑 No language model is configured: set "
                                                   "INTERN_MODEL (e.g. `anthropic/claude-sonnet-4-5`).")
            return
        llm = YieldingLLM(self.rt.llm, self.rt)
        ctx = ToolContext(session_id=s.id, config=config, hub=self.rt.hub, http=self.rt.http, prices=self.rt.prices,
                          plan=PlanState.from_messages(messages), events=sink,
                          extras={**self.rt.extras, "cache": self.rt.cache, "llm": llm,
                                  "redactor": self.rt.redactor})
        context = ContextManager(llm, transcript, window_override=config.context_window_tokens)
        namespace = config.namespace or (await self.safe_namespace())
        agent = Agent(llm=llm, tools=self.rt.tools, transcript=transcript,
                      gate=Gate(self.rt, s, requester), events=sink, ctx=ctx,
                      system_prompt=system_prompt(today=now().date().isoformat(), namespace=namespace,
                                                  flavors=self.rt.prices.all()),
                      model=s.model or config.model, context=context, redactor=self.rt.redactor,
                      max_iterations=config.max_iterations)
        try:
            outcome = await agent.run(messages)
        except TurnStopped as stop:
            outcome = TurnOutcome("stopped", message=stop.message)
            await self.rt.adapter(s.platform).post(conversation_of(s), f"🛑 {stop.message}")
        finally:
            await sink.close()
        status = "waiting_approval" if outcome.status == "suspended" else "active"
        async with self.rt.db.transaction() as db:
            await db.execute(update(Session).where(Session.id == s.id).values(status=status))
        await sink.finish({"suspended": "Waiting for approval", "done": "Done", "stopped": "Stopped",
                           "limit": "Paused"}[outcome.status])

    async def safe_namespace(self) -> str:
        try:
            return await self.rt.hub.namespace()
        except Exception:
            return "(unknown: the Hub did not answer)"

    # --- stop -----------------------------------------------------------------------------------

    async def stop(self, sid: str, item: WorkItem) -> None:
        user = str(item.payload.get("user", "intern"))
        approvals = Approvals(self.rt)
        cancelled_cards = await approvals.cancel_pending(sid, user)
        async with self.rt.db.session() as db:
            s = await db.get(Session, sid)
            jobs = (await db.execute(select(Job).where(Job.session_id == sid, Job.stage.not_in(TERMINAL),
                                                       Job.kind == "job"))).scalars().all()
        assert s is not None
        cancelled_jobs = []
        for job in jobs:
            try:
                await self.rt.hub.call(self.rt.hub.api.cancel_job, job_id=job.hf_job_id, namespace=job.namespace)
                cancelled_jobs.append(job.hf_job_id)
            except Exception as exc:
                log.warning("could not cancel job %s: %s", job.hf_job_id, exc)
        sandboxes = self.rt.extras.get("sandboxes")
        if sandboxes is not None:
            await sandboxes.end_session(sid)
        async with self.rt.db.transaction() as db:
            await db.execute(update(Session).where(Session.id == sid).values(stop_requested=False, status="active"))
            for jid in cancelled_jobs:
                audit.record(db, "job_cancelled", actor=user, platform=s.platform, workspace=s.workspace,
                             channel=s.channel, session_id=sid, job_id=jid, by="stop")
            audit.record(db, "session_stopped", actor=user, platform=s.platform, workspace=s.workspace,
                         channel=s.channel, session_id=sid, jobs=cancelled_jobs, cards=cancelled_cards)
            # the rest of the queue is dropped: the people asked to stop
            await db.execute(update(WorkItem).where(WorkItem.session_id == sid, WorkItem.status == "queued",
                                                    WorkItem.id > item.id, WorkItem.kind != "stop")
                             .values(status="done", error="dropped by stop", finished_at=now()))
        parts = [f"⏹️ Stopped by <@{user}>."]
        if cancelled_jobs:
            parts.append("Cancelled job(s): " + ", ".join(f"`{j}`" for j in cancelled_jobs) + ".")
        if cancelled_cards:
            parts.append(f"Closed {len(cancelled_cards)} pending approval card(s).")
        parts.append("Reply in this thread to continue.")
        await self.rt.adapter(s.platform).post(conversation_of(s), " ".join(parts))
        sink = ProgressSink(self.rt, s, user)
        await sink.finish("Stopped")


class YieldingLLM:
    """The LLM port, letting inbound deliveries go first before each (CPU-heavy) model call."""

    def __init__(self, inner: Any, rt: Runtime) -> None:
        self.inner, self.rt = inner, rt

    async def complete(self, **kwargs: Any) -> Any:
        await self.rt.yield_to_inbound()
        return await self.inner.complete(**kwargs)

    def count_tokens(self, model: str, messages: list[dict[str, Any]]) -> int:
        return int(self.inner.count_tokens(model, messages))

    def context_window(self, model: str) -> int:
        return int(self.inner.context_window(model))


def job_report(p: dict[str, Any]) -> str:
    from intern.agent.pricing import format_duration

    lines = [f"[job update] Job {p.get('job_id')} finished with stage {p.get('stage')} after "
             f"{format_duration(p.get('runtime_seconds') or 0)} (cost ${p.get('cost_usd', 0):.2f})."]
    if p.get("message"):
        lines.append(f"Status message: {p['message']}")
    tail = p.get("log_tail") or []
    if tail:
        lines.append("Last log lines:\n" + "\n".join(tail[-15:]))
    lines.append("Continue the task: check the result (logs, the pushed repo) and report to the team.")
    return "\n".join(lines)
