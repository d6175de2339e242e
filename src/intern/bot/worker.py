"""Workers: claim a session with a lease, work its queued items in order, one turn at a time.

A session is claimed with a compare-and-set on its lease (on PostgreSQL the candidate rows are picked
with `FOR UPDATE SKIP LOCKED`), so one session is never worked by two workers or two processes at
once. A heartbeat extends the lease and notices a stop request; a process that dies simply stops
heartbeating and another process takes the session over when the lease lapses. A process that cannot
renew its lease (the database is away) gives the turn up before the lease can lapse.

A work item that was running when its process died is worked again from the durable transcript:
tool calls without a result are executed again (launches find their job by label), a job report or a
seed is not added twice, and a turn whose final reply is already stored is not asked again — the
reply is only posted if its posting was never recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from intern.agent import events as ev
from intern.agent.context import ContextManager
from intern.agent.context_deps import AgentConfig, ToolContext, ToolDeps
from intern.agent.errors import TurnStopped
from intern.agent.loop import Agent, TurnOutcome, unanswered_calls
from intern.agent.plan import PlanState
from intern.agent.ports import JobRegistry, SpendGuard, TeamHistory
from intern.agent.prompts import system_prompt
from intern.bot import audit
from intern.bot.approvals import Approvals, ApprovedCode, Gate
from intern.bot.budgets import TurnBudget
from intern.bot.history import WorkspaceHistory
from intern.bot.inbox import claim_events, next_seqs
from intern.bot.jobs import LAUNCHING, Launches, launches_of
from intern.bot.models import InboundEvent, Job, Message, Session, WorkItem
from intern.bot.ownership import TurnJobs
from intern.bot.progress import ProgressSink, add_llm_spend
from intern.bot.runtime import Runtime
from intern.bot.sessions import DbTranscript, add_message, conversation_of, load_messages
from intern.bot.store import Backoff, is_transient, log_failure, retry_transient, rolled_back

log = logging.getLogger(__name__)

TERMINAL = ("COMPLETED", "CANCELED", "ERROR", "DELETED")
CLAIM_BATCH = 50
# A work item that keeps failing on database errors is given up after this many attempts.
MAX_TRANSIENT_ATTEMPTS = 12
# Tell the thread about an LLM outage from this retry on (the first retry of a blip goes unsaid).
TELL_LLM_RETRY_FROM = 2


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class TurnScope:
    """The turn running in this task (a context variable), for callbacks that only get the LLM call."""

    session: Session
    told_llm_outage: bool = False


current_turn: contextvars.ContextVar[TurnScope | None] = contextvars.ContextVar("intern_turn", default=None)


@dataclass(frozen=True)
class Claimable:
    id: str
    channel: str  # platform:workspace:channel
    user: str  # platform:starter


def fair_pick(candidates: list[Claimable], room: int, held: list[Claimable]) -> list[Claimable]:
    """Up to `room` of `candidates` (oldest first), fairly: each pick goes to the channel, then the
    user, holding the fewest sessions in hand, so one channel's or one user's long queue never keeps
    another's work waiting while slots come free. Nobody is kept waiting for fairness alone: work is
    taken whenever a slot is free."""
    channels = Counter(c.channel for c in held)
    users = Counter(c.user for c in held)
    left, chosen = list(candidates), []
    while left and len(chosen) < room:
        best = min(left, key=lambda c: (channels[c.channel], users[c.user]))  # ties: the oldest
        chosen.append(best)
        left.remove(best)
        channels[best.channel] += 1
        users[best.user] += 1
    return chosen


def tool_deps(rt: Runtime, llm: Any, team_history: TeamHistory | None, jobs: JobRegistry | None,
              budget: SpendGuard | None) -> ToolDeps:
    """What the tools of a turn get: this process's services, the turn's own model port (`llm`), the
    runs of its workspace, its view of the workspace's jobs and its budget."""
    return ToolDeps(llm=llm, cache=rt.cache, redactor=rt.redactor, launches=Launches(rt), sandboxes=rt.sandboxes,
                    docs_index=rt.docs_index, s2_api_key=rt.s2_api_key, team_history=team_history, jobs=jobs,
                    budget=budget, approved_code=ApprovedCode(rt))


class Worker:
    def __init__(self, rt: Runtime, slots: int | None = None, poll_seconds: float = 1.0) -> None:
        self.rt = rt
        self.slots = slots or rt.settings.workers
        self.poll_seconds = poll_seconds
        self.running: dict[str, asyncio.Task[None]] = {}
        self.owners: dict[str, Claimable] = {}  # channel and starter of each session in hand
        self._held: dict[str, tuple[asyncio.Future[Any], bool]] = {}
        self._keeper: asyncio.Task[None] | None = None
        self._accepting = True
        self.transcripts = TranscriptWriter(rt)
        if getattr(rt.llm, "on_retry", "absent") is None:
            rt.llm.on_retry = self.llm_retrying  # type: ignore[attr-defined]

    async def run(self) -> None:
        backoff = Backoff(first=0.2, cap=5.0)
        while self._accepting:
            await self.rt.yield_to_inbound()
            claimed: list[str] = []
            if len(self.running) < self.slots:
                try:
                    claimed = await self.claim(self.slots - len(self.running))
                    backoff.reset()
                except Exception as exc:
                    await self.claim_failed(exc, backoff)
            for sid in claimed:
                self.running[sid] = asyncio.create_task(self.work_session(sid), name=f"session-{sid}")
            if claimed:
                continue
            self.rt.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.rt.wake.wait(), timeout=self.poll_seconds)

    async def claim_failed(self, exc: Exception, backoff: Backoff) -> None:
        if log_failure(log, exc, "claiming work", "retrying with backoff"):
            await asyncio.sleep(backoff.next_delay())

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

    async def claim(self, room: int = 1) -> list[str]:
        """Lease up to `room` sessions that have work; returns their ids. Fairly: see `fair_pick`."""
        t = now()
        free = or_(Session.lease_owner.is_(None), Session.lease_expires_at < t)
        has_work = exists().where(WorkItem.session_id == Session.id, WorkItem.status.in_(("queued", "running")),
                                  WorkItem.available_at <= t)
        pick = select(Session.id, Session.platform, Session.workspace, Session.channel, Session.started_by) \
            .where(free, has_work)
        if self.running:
            pick = pick.where(Session.id.not_in(list(self.running)))
        # A wider window than the room, to choose from fairly.
        pick = pick.order_by(Session.updated_at).limit(CLAIM_BATCH)
        if self.rt.db.is_postgres:
            pick = pick.with_for_update(skip_locked=True)
        async with self.rt.db.transaction() as db:
            rows = [Claimable(r[0], f"{r[1]}:{r[2]}:{r[3]}", f"{r[1]}:{r[4]}") for r in (await db.execute(pick)).all()]
            chosen = fair_pick(rows, room, list(self.owners.values()))
            if not chosen:
                return []
            res = await db.execute(update(Session).where(and_(Session.id.in_([c.id for c in chosen]), free)).values(
                lease_owner=self.rt.owner, lease_expires_at=t + timedelta(seconds=self.rt.lease_seconds))
                .returning(Session.id))
            ids = list(res.scalars().all())
        self.owners.update({c.id: c for c in chosen if c.id in ids})
        return ids

    async def work_session(self, sid: str) -> None:
        released = False
        try:
            item = await self.advance(sid, None)
            while item is not None:
                done = await self.with_heartbeat(sid, self.handle(sid, item), cancel_on_stop=item.kind != "stop")
                item = await self.advance(sid, item.id if done else None)
            released = True
        except Exception as exc:
            log_failure(log, exc, f"session {sid}", "the session is released")
        finally:
            if not released:
                await self.release(sid)
            self.running.pop(sid, None)
            self.owners.pop(sid, None)
            self.rt.poke()

    async def advance(self, sid: str, done_id: int | None) -> WorkItem | None:
        """In one transaction: record item `done_id` done, take the session's next item, and when
        there is none (or the process is stopping) release the session's lease."""
        async def once() -> WorkItem | None:
            async with self.rt.db.transaction() as db:
                if done_id is not None:
                    await db.execute(update(WorkItem).where(
                        WorkItem.id == done_id, WorkItem.lease_owner == self.rt.owner).values(
                        status="done", error=None, lease_owner=None, finished_at=now()))
                item = await self.take_next(db, sid) if self._accepting else None
                if item is None:
                    await db.execute(update(Session).where(Session.id == sid, Session.lease_owner == self.rt.owner)
                                     .values(lease_owner=None, lease_expires_at=None))
                return item

        return await retry_transient(once, attempts=6)  # type: ignore[no-any-return]

    async def take_next(self, db: Any, sid: str) -> WorkItem | None:
        item = (await db.execute(select(WorkItem).where(
            WorkItem.session_id == sid, WorkItem.status.in_(("queued", "running")),
            WorkItem.available_at <= now()).order_by(WorkItem.id).limit(1))).scalar_one_or_none()
        if item is None:
            return None
        item.status, item.lease_owner, item.attempts = "running", self.rt.owner, item.attempts + 1
        return item  # type: ignore[no-any-return]

    async def release(self, sid: str) -> None:
        async def once() -> None:
            async with self.rt.db.transaction() as db:
                await db.execute(update(Session).where(Session.id == sid, Session.lease_owner == self.rt.owner)
                                 .values(lease_owner=None, lease_expires_at=None))

        try:
            await retry_transient(once, attempts=4)
        except Exception:
            log.warning("session %s: lease not released (it lapses by itself)", sid)

    async def with_heartbeat(self, sid: str, work: Any, cancel_on_stop: bool = True) -> Any:
        """Run one item of a leased session and return what it returns (None when cancelled); the
        lease keeper renews the lease meanwhile and cancels the work when the session is stopped or
        its lease is lost."""
        task = asyncio.ensure_future(work)
        self._held[sid] = (task, cancel_on_stop)
        self.rt.active_turns = len(self._held)
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self.keep_leases(), name="lease-keeper")
        try:
            return await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
            return None
        finally:
            if self._held.get(sid, (None,))[0] is task:
                del self._held[sid]
            self.rt.active_turns = len(self._held)

    async def keep_leases(self) -> None:
        """One heartbeat for every session this process is working on: a single UPDATE per beat
        extends all their leases and reads their stop flags (a beat per session would cost a
        transaction per session per second)."""
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while self._held:
            await asyncio.sleep(min(self.rt.heartbeat_seconds, 1.0))
            held = dict(self._held)
            if not held:
                break
            try:
                flags = await self.renew(list(held))
            except Exception as exc:
                # Past this point another process may already hold the leases: give the turns up.
                if loop.time() - renewed > self.rt.lease_seconds * 0.75:
                    log.warning("leases not renewed for %.0fs (%s); giving %d turn(s) up", loop.time() - renewed,
                                type(exc).__name__, len(held))
                    for task, _ in held.values():
                        task.cancel()
                else:
                    log.warning("heartbeat failed (%s: %s)", type(exc).__name__, str(exc).splitlines()[0][:200])
                continue
            renewed = loop.time()
            for sid, (task, cancel_on_stop) in held.items():
                if self._held.get(sid, (None,))[0] is not task:
                    continue  # that item ended meanwhile (and its lease may have been released with it)
                if sid not in flags:
                    log.warning("session %s: lease lost, cancelling the turn", sid)
                    task.cancel()
                elif flags[sid] and cancel_on_stop:
                    task.cancel()

    async def renew(self, sids: list[str]) -> dict[str, bool]:
        """Extend the leases still ours; returns each one's stop flag. Rows are locked in id order,
        as every statement here that updates many sessions does, so that two cannot deadlock."""
        async with self.rt.db.transaction() as db:
            mine = select(Session.id).where(Session.id.in_(sids), Session.lease_owner == self.rt.owner)
            if self.rt.db.is_postgres:
                # FOR NO KEY UPDATE, the lock the UPDATE takes anyway: it does not wait on the key-share
                # locks that inserting messages takes on the same sessions.
                mine = mine.order_by(Session.id).with_for_update(key_share=True)
            ids = list((await db.execute(mine)).scalars().all())
            if not ids:
                return {}
            res = await db.execute(update(Session).where(Session.id.in_(ids)).values(
                lease_expires_at=now() + timedelta(seconds=self.rt.lease_seconds))
                .returning(Session.id, Session.stop_requested))
            return {row[0]: bool(row[1]) for row in res.all()}

    async def handle(self, sid: str, item: WorkItem) -> bool:
        """Work one item. True when it ended normally (the caller records it done with the next
        step); otherwise its outcome is recorded here."""
        try:
            if item.kind == "stop":
                await self.stop(sid, item)
            else:
                await self.turn(sid, item)
        except asyncio.CancelledError:
            stopping = await self.stop_requested(sid)
            await self.finish_item(item.id, "done" if stopping else "queued")
            if not stopping:
                raise
            return False
        except Exception as exc:
            await self.item_failed(sid, item, exc)
            return False
        return True

    async def item_failed(self, sid: str, item: WorkItem, exc: Exception) -> None:
        if is_transient(exc) and item.attempts < MAX_TRANSIENT_ATTEMPTS:
            # The database (or the connection to it) went away mid-turn: the transcript holds every
            # step taken, so the item is simply worked again a little later.
            delay = min(60.0, 0.5 * 2 ** item.attempts)
            log.warning("session %s: work item %s interrupted by %s; again in %.0fs", sid, item.id,
                        type(exc).__name__, delay)
            await self.finish_item(item.id, "queued", available_at=now() + timedelta(seconds=delay))
            return
        log.error("session %s: work item %s failed", sid, item.id, exc_info=exc)
        await self.finish_item(item.id, "failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        await self.tell(sid, "🛑 Something went wrong on my side while working on this "
                             f"({type(exc).__name__}). Your message is saved; reply to try again.")

    async def stop_requested(self, sid: str) -> bool:
        try:
            async with self.rt.db.session() as db:
                s = await db.get(Session, sid)
                return bool(s and s.stop_requested)
        except Exception as exc:
            if not is_transient(exc):
                raise
            return False

    async def finish_item(self, item_id: int, status: str, error: str | None = None,
                          available_at: datetime | None = None) -> None:
        """Record the item's end; only while it is still ours (a process that gave its lease up must
        not touch an item another process has taken over)."""
        values: dict[str, Any] = dict(status=status, error=error, lease_owner=None,
                                      finished_at=now() if status != "queued" else None)
        if available_at is not None:
            values["available_at"] = available_at

        async def once() -> None:
            async with self.rt.db.transaction() as db:
                await db.execute(update(WorkItem).where(WorkItem.id == item_id,
                                                        WorkItem.lease_owner == self.rt.owner).values(**values))

        try:
            await retry_transient(once, attempts=6)
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("work item %s: could not record %s (%s); it is worked again later", item_id, status,
                        type(exc).__name__)

    async def tell(self, sid: str, text: str) -> None:
        with contextlib.suppress(Exception):
            async with self.rt.db.session() as db:
                s = await db.get(Session, sid)
            if s is not None:
                await self.rt.adapter(s.platform).post(conversation_of(s), text)

    async def llm_retrying(self, attempt: int, delay: float, exc: BaseException) -> None:
        """LiteLLM.on_retry: a model outage that lasts is told in the thread, once per turn."""
        scope = current_turn.get()
        if scope is None or scope.told_llm_outage or attempt < TELL_LLM_RETRY_FROM:
            return
        scope.told_llm_outage = True
        s = scope.session
        describe = getattr(self.rt.llm, "outage", None)  # the LiteLLM port; test models have none
        what = describe(s.model or self.rt.settings.model or "", exc) if describe else \
            f"is not answering ({type(exc).__name__})"
        with contextlib.suppress(Exception):
            await self.rt.adapter(s.platform).post(
                conversation_of(s), f"⏳ The language model {what}. I keep retrying by "
                f"myself (next try in {delay:.0f}s); nothing you sent is lost and there is no need to repeat it.")

    # --- turns ----------------------------------------------------------------------------------

    async def served(self, sid: str, item: WorkItem) -> bool:
        """Whether the session's workspace is served. A request stored before the adapter knew (its
        workspace not yet learnt) is decided here: another workspace's session ends unanswered."""
        async with self.rt.db.session() as db:
            s = await db.get(Session, sid)
        assert s is not None
        check = getattr(self.rt.adapter(s.platform), "serves_workspace", None)
        if check is None or await check(s.workspace):
            return True
        log.warning("session %s belongs to workspace %r, which is not served here: dropped", sid, s.workspace[:32])
        async with self.rt.db.transaction() as db:
            await db.execute(update(Session).where(Session.id == sid).values(active=False, status="ended"))
            await db.execute(update(WorkItem).where(WorkItem.session_id == sid, WorkItem.status == "queued",
                                                    WorkItem.id != item.id)
                             .values(status="done", error="workspace not served", finished_at=now()))
            audit.record(db, "workspace_refused", platform=s.platform, workspace=s.workspace, channel=s.channel,
                         session_id=sid)
        return False

    async def turn(self, sid: str, item: WorkItem) -> None:
        if not await self.served(sid, item):
            return
        retry = item.attempts > 1
        async with self.rt.db.transaction() as db:
            s = await db.get(Session, sid)
            assert s is not None
            requester = self.requester_for(s, item)
            if item.kind == "job_finished":
                await self.add_once(db, sid, f"job_finished:{item.payload.get('job_id')}", retry,
                                    {"role": "user", "content": job_report(item.payload),
                                     "meta": {"kind": "job_event"}})
            if item.kind == "job_alert":
                from intern.bot.alerts import alert_report

                p = item.payload
                await self.add_once(db, sid, f"job_alert:{p.get('job_id')}:{p.get('kind')}", retry,
                                    {"role": "user", "content": alert_report(p), "meta": {"kind": "job_event"}})
            if item.kind == "seed":
                await self.seed(db, s, item, retry)
            if item.kind == "message":
                s.current_requester = requester
            if s.status == "waiting_approval" and item.kind in ("message", "job_finished", "job_alert"):
                return  # stored; the agent sees it when the pending cards are decided
            s.status = "active"
        if item.kind == "seed" and item.payload.get("from"):
            # Cards of the ended session can no longer be acted on: close them.
            await Approvals(self.rt).cancel_pending(str(item.payload["from"]), str(item.payload.get("user") or requester),
                                                    reason="continued in a new session")
        if retry and await self.finish_answered_turn(s, requester):
            return
        await self.run_agent(s, requester)

    async def add_once(self, db: Any, sid: str, key: str, retry: bool, payload: dict[str, Any]) -> None:
        """Add a system message to the transcript, once even when the item is worked again."""
        if retry and (await db.execute(select(Message.id).where(
                Message.session_id == sid, Message.source_key == key).limit(1))).first() is not None:
            return
        await add_message(db, sid, payload, source_key=key)

    async def finish_answered_turn(self, s: Session, requester: str) -> bool:
        """A retried item whose turn had already ended (its process died before recording that):
        post the final reply if its posting was never recorded, and do not ask the model again."""
        async with self.rt.db.session() as db:
            messages = await load_messages(db, s.id)
        if not messages or unanswered_calls(messages):
            return False
        last = messages[-1]
        if last.get("role") != "assistant" or last.get("tool_calls"):
            return False
        text = str(last.get("content") or "").strip()
        async with self.rt.db.session() as db:
            key = await reply_key(db, s.id)
            posted = await db.get(InboundEvent, key) is not None
        if text and not posted:
            log.info("session %s: posting the stored reply of an interrupted turn", s.id)
            sink = TurnSink(ProgressSink(self.rt, s, requester), self.rt, self.transcripts, s, requester)
            await sink.emit(ev.AssistantReply(text))
            await sink.inner.finish("Done")
        return True

    def requester_for(self, s: Session, item: WorkItem) -> str:
        return str(item.payload.get("user") or item.payload.get("requester") or s.current_requester or s.started_by)

    async def seed(self, db: Any, s: Session, item: WorkItem, retry: bool) -> None:
        from intern.agent.context import latest_summary

        key = f"seed:{item.payload['from']}"
        if retry and (await db.execute(select(Message.id).where(
                Message.session_id == s.id, Message.source_key == key).limit(1))).first() is not None:
            return
        old = await load_messages(db, item.payload["from"])
        found = latest_summary(old)
        summary = old[found[0]]["content"] if found else "(the previous session had no summary)"
        first = next((m for m in old if m.get("role") == "user" and not (m.get("meta") or {}).get("kind")), None)
        if first is not None:
            await add_message(db, s.id, dict(first))
        await add_message(db, s.id, {"role": "user", "content": f"[Continued from session {item.payload['from']}]\n"
                                     f"{summary}\n\nContinue the work from here.", "meta": {"kind": "seed"}},
                          source_key=key)

    def agent_config(self) -> AgentConfig:
        st = self.rt.settings
        return AgentConfig(model=st.model or "", research_model=st.research_model or st.model or "",
                           max_iterations=st.max_iterations, context_window_tokens=st.context_window_tokens,
                           hf_endpoint=st.hf_endpoint, namespace=st.hf_namespace, runs_repo=st.runs_repo,
                           datasets_server_url=st.datasets_server_url, semantic_scholar_url=st.semantic_scholar_url,
                           arxiv_url=st.arxiv_url)

    async def run_agent(self, s: Session, requester: str) -> None:
        current_turn.set(TurnScope(s))
        transcript = self.transcripts.of(s.id)
        messages = await self.transcripts.load(s.id)
        progress = ProgressSink(self.rt, s, requester)
        sink = TurnSink(progress, self.rt, self.transcripts, s, requester)
        config = self.agent_config()
        if not config.model:
            await self.rt.adapter(s.platform).post(conversation_of(s), "🛑 No language model is configured: set "
                                                   "INTERN_MODEL (e.g. `anthropic/claude-sonnet-4-5`).")
            return
        llm = YieldingLLM(self.rt.llm, self.rt)
        budget = TurnBudget(self.rt, s)
        ctx = ToolContext(session_id=s.id, config=config, hub=self.rt.hub, http=self.rt.http, prices=self.rt.prices,
                          plan=PlanState.from_messages(messages), events=sink,
                          deps=tool_deps(self.rt, llm, WorkspaceHistory(self.rt, s.platform, s.workspace),
                                         TurnJobs(self.rt, s, requester), budget))
        context = ContextManager(llm, transcript, window_override=config.context_window_tokens)
        namespace = config.namespace or (await self.safe_namespace())
        agent = Agent(llm=llm, tools=self.rt.tools, transcript=transcript,
                      gate=Gate(self.rt, s, requester), events=sink, ctx=ctx,
                      system_prompt=system_prompt(today=session_day(s), namespace=namespace,
                                                  flavors=self.rt.prices.all()),
                      model=s.model or config.model, context=context, redactor=self.rt.redactor,
                      max_iterations=config.max_iterations, budget=budget)
        try:
            outcome = await agent.run(messages)
        except TurnStopped as stop:
            outcome = TurnOutcome("stopped", message=stop.message)
            await self.rt.adapter(s.platform).post(conversation_of(s), f"🛑 {stop.message}")
        finally:
            self.transcripts.forget(s.id)
            await progress.close()
        if outcome.status == "suspended":  # `turn` already set it active otherwise
            async with self.rt.db.transaction() as db:
                await db.execute(update(Session).where(Session.id == s.id).values(status="waiting_approval"))
        await progress.finish({"suspended": "Waiting for approval", "done": "Done", "stopped": "Stopped",
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
            jobs = (await db.execute(select(Job).where(
                Job.session_id == sid, Job.kind == "job",
                or_(Job.hf_job_id.is_not(None), Job.stage == LAUNCHING),
                Job.stage.not_in(TERMINAL)))).scalars().all()
        assert s is not None
        cancelled_jobs = []
        for job in jobs:
            hf_job_id = job.hf_job_id or await self.launched_as(job)
            if hf_job_id is None:
                continue
            try:
                await self.rt.hub.call(self.rt.hub.api.cancel_job, job_id=hf_job_id, namespace=job.namespace)
                cancelled_jobs.append(hf_job_id)
            except Exception as exc:
                log.warning("could not cancel job %s: %s", hf_job_id, exc)
        if self.rt.sandboxes is not None:
            await self.rt.sandboxes.end_session(sid)
        async with self.rt.db.transaction() as db:
            await db.execute(update(Session).where(Session.id == sid).values(stop_requested=False, status="active"))
            for jid in cancelled_jobs:
                audit.record(db, "job_cancel_requested", actor=user, platform=s.platform, workspace=s.workspace,
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


    async def launched_as(self, job: Job) -> str | None:
        """The Hub id of a launch recorded only as an intent (its process died mid-launch)."""
        try:
            found = await launches_of(self.rt, job)
        except Exception as exc:
            log.warning("could not look up the launch of approval %s: %s", job.approval_id, exc)
            return None
        return str(found[0].id) if found else None


# ("message", (session id, message)), ("usage", (session, user, event)) or ("reply", session id)
Entry = tuple[str, Any, asyncio.Future[None]]


class TranscriptWriter:
    """The agent's Transcript port for every turn of this process, with group commit: the messages
    (and LLM usage) that sessions record at the same moment are written in one transaction, and each
    call still returns only once its record is stored. Hundreds of turns at once would otherwise
    cost a transaction per message."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._pending: list[Entry] = []
        self._writer: asyncio.Task[None] | None = None
        # The last seq written per session during its turn, so a batch need not look them up. An
        # inbound message taking a seq meanwhile makes the insert fail; the batch is then redone
        # message by message and the cache forgotten.
        self._seqs: dict[str, int] = {}

    def of(self, session_id: str) -> SessionTranscript:
        return SessionTranscript(self, session_id)

    def forget(self, session_id: str) -> None:
        self._seqs.pop(session_id, None)

    async def load(self, session_id: str) -> list[dict[str, Any]]:
        """The session's transcript, as `load_messages` gives it; remembers its last seq."""
        async with self.rt.db.session() as db:
            rows = (await db.execute(select(Message.seq, Message.payload).where(Message.session_id == session_id)
                                     .order_by(Message.seq))).all()
        if rows:
            self._seqs[session_id] = rows[-1][0]
        return [dict(payload) for _, payload in rows]

    async def append(self, session_id: str, message: dict[str, Any]) -> None:
        await self._record("message", (session_id, self.rt.redactor.redact_obj(message)))

    async def usage(self, session: Session, user: str, event: ev.UsageRecorded) -> None:
        await self._record("usage", (session, user, event))

    async def replied(self, session_id: str) -> None:
        """The session's latest reply was posted (see `reply_key`)."""
        await self._record("reply", session_id)

    async def _record(self, kind: str, item: Any) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((kind, item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        await future

    async def _drain(self) -> None:
        attempt = 0
        while self._pending:
            batch, self._pending = self._pending, []
            written: dict[str, int] = {}
            try:
                async with self.rt.db.transaction() as db:
                    await self._write(db, batch, written)
            except IntegrityError:
                # Another writer (an inbound message) took a seq meanwhile: each on its own, with retries.
                for kind, item, future in batch:
                    if kind == "message":
                        self.forget(item[0])
                    await _settle(future, self._alone(kind, item))
                continue
            except Exception as exc:
                if rolled_back(exc) and attempt < WRITE_ATTEMPTS:
                    # certainly not written (a deadlock victim): write it again
                    self._pending[:0] = batch
                    attempt += 1
                    await asyncio.sleep(0.05 * 2 ** attempt)
                    continue
                for kind, item, future in batch:
                    if kind == "message":
                        self.forget(item[0])
                    if not future.done():
                        future.set_exception(exc)
                attempt = 0
                continue
            attempt = 0
            self._seqs.update(written)
            for _, _, future in batch:
                if not future.done():
                    future.set_result(None)

    async def _write(self, db: Any, batch: list[Entry], written: dict[str, int]) -> None:
        messages = [item for kind, item, _ in batch if kind == "message"]
        if messages:
            sids = {sid for sid, _ in messages}
            seqs = {sid: self._seqs[sid] + 1 for sid in sids if sid in self._seqs}
            seqs.update(await next_seqs(db, sids - set(seqs)))
            rows = []
            for sid, message in messages:
                rows.append({"session_id": sid, "seq": seqs[sid], "role": message["role"], "author": None,
                             "source_key": None, "payload": message, "created_at": now()})
                seqs[sid] += 1
            await db.execute(insert(Message), rows)
            written.update({sid: seqs[sid] - 1 for sid in sids})
        # A reply is marked in the batch after the one that stored it: its seq is the cached last one.
        written.update({sid: self._seqs[sid] for kind, sid, _ in batch
                        if kind == "reply" and sid not in written and sid in self._seqs})
        usage = [item for kind, item, _ in batch if kind == "usage"]
        if usage:
            await record_usages(db, usage)
        replies = [f"reply:{sid}:{written[sid]}" if sid in written else await reply_key(db, sid)
                   for kind, sid, _ in batch if kind == "reply"]
        if replies:
            await claim_events(db, replies, "reply")

    async def _alone(self, kind: str, item: Any) -> None:
        if kind == "message":
            await DbTranscript(self.rt, item[0]).append(item[1])
            return
        async with self.rt.db.transaction() as db:
            if kind == "usage":
                await record_usages(db, [item])
            else:
                await claim_events(db, [await reply_key(db, item)], "reply")


SESSIONS = Session.__table__
ADD_USAGE = update(SESSIONS).where(SESSIONS.c.id == bindparam("b_id")).values(
    prompt_tokens=SESSIONS.c.prompt_tokens + bindparam("b_prompt"),
    completion_tokens=SESSIONS.c.completion_tokens + bindparam("b_completion"),
    cache_read_tokens=SESSIONS.c.cache_read_tokens + bindparam("b_read"),
    cache_write_tokens=SESSIONS.c.cache_write_tokens + bindparam("b_write"),
    llm_cost_usd=SESSIONS.c.llm_cost_usd + bindparam("b_cost"))


async def record_usages(db: Any, usage: list[tuple[Session, str, ev.UsageRecorded]]) -> None:
    """Token and cost counters of many sessions in one statement; LLM spend toward the budget."""
    rows = sorted(({"b_id": s.id, "b_prompt": e.prompt_tokens, "b_completion": e.completion_tokens,
                    "b_read": e.cache_read_tokens, "b_write": e.cache_write_tokens,
                    "b_cost": e.cost_usd} for s, _, e in usage), key=lambda r: str(r["b_id"]))
    await db.execute(ADD_USAGE, rows)  # in id order, like the lease keeper: no deadlock between them
    for s, user, e in usage:
        if e.cost_usd > 0:
            await add_llm_spend(db, s, user, e.cost_usd)


class SessionTranscript:
    def __init__(self, writer: TranscriptWriter, session_id: str) -> None:
        self.writer, self.session_id = writer, session_id

    async def append(self, message: dict[str, Any]) -> None:
        await self.writer.append(self.session_id, message)


async def _settle(future: asyncio.Future[None], work: Any) -> None:
    try:
        await work
    except Exception as exc:
        if not future.done():
            future.set_exception(exc)
        return
    if not future.done():
        future.set_result(None)


async def reply_key(db: Any, session_id: str) -> str:
    """Names the session's latest model reply. Only the worker holding the lease appends assistant
    messages, so right after a reply is stored it is the latest one."""
    seq = (await db.execute(select(func.max(Message.seq)).where(
        Message.session_id == session_id, Message.role == "assistant"))).scalar()
    return f"reply:{session_id}:{seq or 0}"


class TurnSink:
    """The turn's event sink, in front of the ProgressSink.

    - Each final reply is recorded as posted once the post succeeded, so that a turn worked again
      after a crash neither loses nor repeats its reply.
    - LLM usage goes through the group-commit writer with the transcript (the ProgressSink would
      spend a transaction on each model call); the status card's running cost is kept here.
    """

    def __init__(self, inner: ProgressSink, rt: Runtime, writer: TranscriptWriter, session: Session,
                 requester: str) -> None:
        self.inner, self.rt, self.writer = inner, rt, writer
        self.session, self.requester = session, requester

    async def emit(self, event: ev.AgentEvent) -> None:
        if isinstance(event, ev.UsageRecorded):
            self.inner.state.llm_cost_usd += event.cost_usd
            await self.writer.usage(self.session, self.requester, event)
            return
        await self.inner.emit(event)
        if isinstance(event, ev.AssistantReply):
            try:
                await self.writer.replied(self.session.id)
            except Exception:
                log.warning("session %s: could not record that a reply was posted", self.session.id)


class YieldingLLM:
    """The LLM port, letting inbound deliveries go first before each (CPU-heavy) model call.

    Token counts of long plain texts (the system prompt, the tool schemas: the same in every turn,
    and the costliest to tokenise) are remembered across turns."""

    def __init__(self, inner: Any, rt: Runtime) -> None:
        self.inner, self.rt = inner, rt

    async def complete(self, **kwargs: Any) -> Any:
        await self.rt.yield_to_inbound()
        return await self.inner.complete(**kwargs)

    def count_tokens(self, model: str, messages: list[dict[str, Any]]) -> int:
        if len(messages) == 1 and set(messages[0]) == {"role", "content"} and isinstance(messages[0]["content"], str) \
                and len(messages[0]["content"]) >= LONG_TEXT:
            return _count_text(self.inner, model, messages[0]["role"], messages[0]["content"])
        return int(self.inner.count_tokens(model, messages))

    def context_window(self, model: str) -> int:
        return int(self.inner.context_window(model))


LONG_TEXT = 2000
WRITE_ATTEMPTS = 3


@functools.lru_cache(maxsize=64)
def _count_text(llm: Any, model: str, role: str, text: str) -> int:
    return int(llm.count_tokens(model, [{"role": role, "content": text}]))


def session_day(s: Session) -> str:
    """The date the system prompt gives: the session's first day, so that the prompt (the start of every
    request's cached prefix) stays the same for the whole session."""
    return (s.created_at or now()).date().isoformat()


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
