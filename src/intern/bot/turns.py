"""One turn: build it (transcript, context, tools and their dependencies), run the agent, and end it.

A work item that was running when its process died is worked again from the durable transcript:
tool calls without a result are executed again (launches find their job by label), a job report or a
seed is not added twice, and a turn whose final reply is already stored is not asked again — the
reply is posted unless it went out (the reply ledger, `replies.py`, knows). A turn knows nothing of
leases.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from intern.agent import events as ev
from intern.agent.context import ContextManager
from intern.agent.context_deps import AgentConfig, ToolContext, ToolDeps
from intern.agent.errors import TurnStopped
from intern.agent.loop import Agent, TurnOutcome, unanswered_calls
from intern.agent.plan import PlanState
from intern.agent.ports import JobRegistry, RetryCallback, SpendGuard, TeamHistory
from intern.agent.prompts import system_prompt
from intern.bot import audit
from intern.bot.approvals import Approvals, ApprovedCode, Gate
from intern.bot.budgets import TurnBudget
from intern.bot.effects import TurnEffects, card_saver
from intern.bot.history import WorkspaceHistory
from intern.bot.jobs import Launches
from intern.bot.models import InboundEvent, Message, Session, WorkItem
from intern.bot.ownership import TurnJobs
from intern.bot.progress import ProgressSink
from intern.bot.replies import POSTED, reply_key
from intern.bot.runtime import Runtime
from intern.bot.sessions import add_message, conversation_of, load_messages
from intern.bot.transcripts import TranscriptWriter

log = logging.getLogger(__name__)

# Tell the thread about an LLM outage from this retry on (the first retry of a blip goes unsaid).
TELL_LLM_RETRY_FROM = 2


def now() -> datetime:
    return datetime.now(UTC)


def tool_deps(rt: Runtime, llm: Any, team_history: TeamHistory | None, jobs: JobRegistry | None,
              budget: SpendGuard | None) -> ToolDeps:
    """What the tools of a turn get: this process's services, the turn's own model port (`llm`), the
    runs of its workspace, its view of the workspace's jobs and its budget."""
    return ToolDeps(llm=llm, cache=rt.cache, redactor=rt.redactor, launches=Launches(rt), sandboxes=rt.sandboxes,
                    docs_index=rt.docs_index, s2_api_key=rt.s2_api_key, team_history=team_history, jobs=jobs,
                    budget=budget, approved_code=ApprovedCode(rt))


class Turns:
    """Runs the turns of this process's sessions; `transcripts` is the process's group-commit writer."""

    def __init__(self, rt: Runtime, transcripts: TranscriptWriter) -> None:
        self.rt, self.transcripts = rt, transcripts

    def card(self, s: Session) -> ProgressSink:
        return ProgressSink(self.rt, s, card_saver(self.rt))

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

    async def run(self, sid: str, item: WorkItem) -> None:
        """Work one turn item of session `sid` (a message, a job's end or alert, a seed)."""
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
        """A retried item whose turn had already ended (its process died, or its database went away,
        before recording that): post the final reply unless it went out, and do not ask the model
        again."""
        async with self.rt.db.session() as db:
            messages = await load_messages(db, s.id)
        if not messages or unanswered_calls(messages):
            return False
        last = messages[-1]
        if last.get("role") != "assistant" or last.get("tool_calls"):
            return False
        text = str(last.get("content") or "").strip()
        async with self.rt.db.session() as db:
            row = await db.get(InboundEvent, await reply_key(db, s.id))
        if text and (row is None or row.kind != POSTED):
            log.info("session %s: the stored reply of an interrupted turn goes out unless it did", s.id)
            card = self.card(s)
            await TurnEffects(self.rt, s, requester, self.transcripts, card).emit(ev.AssistantReply(text))
            await card.finish("Done")
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
        transcript = self.transcripts.of(s.id)
        messages = await self.transcripts.load(s.id)
        progress = self.card(s)
        sink = TurnEffects(self.rt, s, requester, self.transcripts, progress)
        config = self.agent_config()
        if not config.model:
            await self.rt.adapter(s.platform).post(conversation_of(s), "🛑 No language model is configured: set "
                                                   "INTERN_MODEL (e.g. `anthropic/claude-sonnet-4-5`).")
            return
        llm = TurnLLM(self.rt.llm, self.rt, RetryNotice(self.rt, s))
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


class RetryNotice:
    """Told by the LLM port before it waits to retry a failed call: an outage that lasts is said in
    the turn's thread, once per turn (the first retry of a blip goes unsaid)."""

    def __init__(self, rt: Runtime, session: Session) -> None:
        self.rt, self.session = rt, session
        self.told = False

    async def __call__(self, attempt: int, delay: float, exc: BaseException) -> None:
        if self.told or attempt < TELL_LLM_RETRY_FROM:
            return
        self.told = True
        s = self.session
        describe = getattr(self.rt.llm, "outage", None)  # the LiteLLM port; test models have none
        what = describe(s.model or self.rt.settings.model or "", exc) if describe else \
            f"is not answering ({type(exc).__name__})"
        with contextlib.suppress(Exception):
            await self.rt.adapter(s.platform).post(
                conversation_of(s), f"⏳ The language model {what}. I keep retrying by "
                f"myself (next try in {delay:.0f}s); nothing you sent is lost and there is no need to repeat it.")


class TurnLLM:
    """The LLM port as a turn uses it: inbound deliveries go first before each (CPU-heavy) model call,
    and the turn's retry notice is handed to each call.

    Token counts of long plain texts (the system prompt, the tool schemas: the same in every turn,
    and the costliest to tokenise) are remembered across turns."""

    def __init__(self, inner: Any, rt: Runtime, notice: RetryCallback) -> None:
        self.inner, self.rt, self.notice = inner, rt, notice

    async def complete(self, **kwargs: Any) -> Any:
        await self.rt.yield_to_inbound()
        return await self.inner.complete(**kwargs, on_retry=self.notice)

    def count_tokens(self, model: str, messages: list[dict[str, Any]]) -> int:
        if len(messages) == 1 and set(messages[0]) == {"role", "content"} and isinstance(messages[0]["content"], str) \
                and len(messages[0]["content"]) >= LONG_TEXT:
            return _count_text(self.inner, model, messages[0]["role"], messages[0]["content"])
        return int(self.inner.count_tokens(model, messages))

    def context_window(self, model: str) -> int:
        return int(self.inner.context_window(model))


LONG_TEXT = 2000


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
    if p.get("error_signature"):
        lines.append(f"Error signature: {p['error_signature']} (kept in the team's run history: team_history)")
    tail = p.get("log_tail") or []
    if tail:
        lines.append("Last log lines:\n" + "\n".join(tail[-15:]))
    lines.append("Continue the task: check the result (logs, the pushed repo) and report to the team.")
    return "\n".join(lines)
