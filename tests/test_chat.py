"""`intern chat` driven as a person drives it: a real subprocess reading lines, Ctrl-C as SIGINT, the
real agent and litellm against the scripted model stand-in."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from intern.adapters.console.chat import card_answer
from intern.adapters.console.render import plain
from intern.standins.hub import HubStandIn
from intern.standins.llm import LLMStandIn
from tests.test_cli import clean_env

KEY = "sk-chat-0123456789abcdefghijkl"


class Terminal:
    """One `intern chat` process: what it printed so far, lines typed into it, Ctrl-C sent to it."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.output = ""
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := await self.proc.stdout.read(4096):
            self.output += chunk.decode(errors="replace")

    async def wait_for(self, text: str, *, after: int = 0, timeout: float = 60.0) -> int:
        """Wait until `text` appears past position `after`; returns the position just after it."""
        deadline = asyncio.get_running_loop().time() + timeout
        while (at := self.output.find(text, after)) < 0:
            if asyncio.get_running_loop().time() > deadline or self.proc.returncode is not None:
                raise AssertionError(f"{text!r} never appeared; the terminal shows:\n{self.output[-3000:]}")
            await asyncio.sleep(0.05)
        return at + len(text)

    def type(self, line: str) -> int:
        assert self.proc.stdin is not None
        mark = len(self.output)
        self.proc.stdin.write(line.encode() + b"\n")
        return mark

    def ctrl_c(self) -> int:
        mark = len(self.output)
        self.proc.send_signal(signal.SIGINT)
        return mark

    async def exited(self, timeout: float = 30.0) -> int:
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await self._reader
        return code


@pytest.fixture
async def stands() -> AsyncIterator[tuple[LLMStandIn, HubStandIn]]:
    async with LLMStandIn(api_key=KEY) as llm, HubStandIn() as hub:
        yield llm, hub  # type: ignore[misc]


@contextlib.asynccontextmanager
async def terminal(tmp: Path, llm: LLMStandIn, hub: HubStandIn, **env_extra: str) -> AsyncIterator[Terminal]:
    env = clean_env(tmp, INTERN_MODEL="openai/scripted", INTERN_LLM_API_BASE=f"{llm.url}/v1",
                    INTERN_LLM_API_KEY=KEY, HF_TOKEN=hub.token, HF_ENDPOINT=hub.url, **env_extra)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "intern.bot.cli", "chat", env=env, cwd=tmp, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    term = Terminal(proc)
    try:
        await term.wait_for("you> ")
        yield term
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_ctrl_c_stops_the_turn_at_once_and_a_second_one_quits(
        stands: tuple[LLMStandIn, HubStandIn], tmp_path: Path) -> None:
    llm, hub = stands
    llm.enqueue_text("a slow answer that never comes", delay=60)
    llm.enqueue_text("Here is the *second* answer for <@local-user>, see <https://hf.co/docs|the docs>.")
    async with terminal(tmp_path, llm, hub) as term:
        term.type("plan a long fine-tune")
        await wait_until(lambda: len(llm.chat_requests) == 1)
        started = asyncio.get_running_loop().time()
        mark = term.ctrl_c()
        at = await term.wait_for("(stopping the turn; Ctrl-C again to quit)", after=mark)
        await term.wait_for("you> ", after=at)
        await term.wait_for("Stopped by @local-user", after=mark, timeout=15)
        assert asyncio.get_running_loop().time() - started < 10
        assert term.proc.returncode is None  # back at the prompt, not gone

        mark = term.type("and now something quick")
        at = await term.wait_for("intern> Here is the second answer for @local-user, see the docs "
                                 "(https://hf.co/docs).", after=mark)
        await term.wait_for("you> ", after=at)  # the prompt comes back under the answer

        mark = term.ctrl_c()
        await term.wait_for("(nothing is running; Ctrl-C again or Ctrl-D to quit)", after=mark)
        mark = term.ctrl_c()
        await term.wait_for("(bye)", after=mark)
        assert await term.exited() == 0
    assert len(llm.chat_requests) == 2


async def test_an_interrupted_message_is_not_replayed_by_the_next_chat(
        stands: tuple[LLMStandIn, HubStandIn], tmp_path: Path) -> None:
    llm, hub = stands
    llm.enqueue_text("never seen", delay=60)
    lease = 15.0  # the killed chat's lease on its session is still held when the next chat starts
    async with terminal(tmp_path, llm, hub, INTERN_LEASE_SECONDS=str(lease)) as term:
        term.type("the task that was interrupted")
        await wait_until(lambda: len(llm.chat_requests) == 1)
        os.kill(term.proc.pid, signal.SIGKILL)  # the worst case: no chance to tidy up
        killed = asyncio.get_running_loop().time()
        await term.exited()
    llm.enqueue_text("fresh answer")
    async with terminal(tmp_path, llm, hub, INTERN_LEASE_SECONDS=str(lease)) as term:
        # once the lease has lapsed, a replay would have asked the model by now
        if asyncio.get_running_loop().time() - killed < lease:  # dropped at once, not left for its lease to lapse
            with contextlib.closing(sqlite3.connect(tmp_path / "cli.db")) as db:
                assert db.execute("SELECT status, error FROM work_items").fetchall() == [
                    ("done", "dropped: the terminal session it belonged to ended")]
        await asyncio.sleep(max(3.0, killed + lease + 3.0 - asyncio.get_running_loop().time()))
        assert len(llm.chat_requests) == 1
        mark = term.type("a new task")
        await term.wait_for("intern> fresh answer", after=mark)
        assert "the task that was interrupted" not in str(llm.chat_requests[-1]["messages"])
        term.proc.stdin.close()  # type: ignore[union-attr]  # Ctrl-D
        assert await term.exited() == 0


async def test_approve_with_no_card_says_so_and_asks_no_model(
        stands: tuple[LLMStandIn, HubStandIn], tmp_path: Path) -> None:
    llm, hub = stands
    async with terminal(tmp_path, llm, hub) as term:
        for word in ("approve", "deny it"):
            mark = term.type(word)
            at = await term.wait_for("(no approval card is waiting)", after=mark)
            await term.wait_for("you> ", after=at)
        assert llm.chat_requests == []
        term.proc.stdin.close()  # type: ignore[union-attr]  # Ctrl-D
        assert await term.exited() == 0


async def wait_until(cond: object, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.05)


def test_card_answers_are_told_from_messages_to_the_model() -> None:
    assert card_answer("approve", pending=False) == "approve"
    assert card_answer("Deny: too big", pending=True) is None  # not the word "deny" on its own
    assert card_answer("deny too big", pending=True) == "deny"
    assert card_answer("yes", pending=True) == "approve" and card_answer("n", pending=True) == "deny"
    assert card_answer("yes", pending=False) is None  # an answer to a question the model asked
    assert card_answer("no, use a smaller model", pending=True) is None


def test_chat_text_reads_plainly_in_a_terminal() -> None:
    assert plain("⏹️ Stopped by <@U0ABC>.") == "⏹️ Stopped by @U0ABC."
    assert plain("ask <!subteam^S0123|@ml-team> or <@&112233>") == "ask @ml-team or @role:112233"
    assert plain("in <#C0123|general>: <https://huggingface.co/x|the model> and <https://a.b/c>") == \
        "in #general: the model (https://huggingface.co/x) and https://a.b/c"
    assert plain("*Job* `abc` 3 &lt; 4 &amp; 2*3*4") == "Job abc 3 < 4 & 2*3*4"
    assert plain("```\nprint(1)\n```") == "    print(1)"
    assert plain("*bold*", color=True) == "\033[1mbold\033[0m"


async def test_history_in_the_terminal_lists_this_workspaces_runs(
        stands: tuple[LLMStandIn, HubStandIn], tmp_path: Path) -> None:
    """The team memory answers in `intern chat` too, without asking the model; runs of other
    workspaces stay out."""
    from sqlalchemy import update

    from intern.adapters.console.chat import PLATFORM, WORKSPACE
    from intern.bot import runs
    from intern.bot.models import Job
    from intern.bot.store import connect, upgrade
    from tests.runs.helpers import finish_kwargs, launched_job

    llm, hub = stands
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    await upgrade(url)
    db = connect(url)
    try:
        for platform, workspace, job_id in ((PLATFORM, WORKSPACE, "job-mine-1"), ("slack", "T0OTHER", "job-theirs")):
            job = await launched_job(db, platform=platform, workspace=workspace, hf_job_id=job_id)
            async with db.transaction() as s:
                await runs.open_record(s, job_id, lambda t: t)
                await runs.close_record(s, job, **finish_kwargs("oom"))  # type: ignore[arg-type]
                await s.execute(update(Job).where(Job.id == job.id).values(stage="ERROR", notified_finished=True))
    finally:
        await db.dispose()
    async with terminal(tmp_path, llm, hub) as term:
        mark = term.type("history qwen")
        at = await term.wait_for('Runs of this workspace matching "qwen" (newest first, 1 shown)', after=mark)
        await term.wait_for("you> ", after=at)
        shown = term.output[mark:]  # the other workspace's run would make it 2
        assert "Qwen/Qwen2.5-7B · trl-lib/Capybara · a10g-large" in shown
        assert "failed (CUDA out of memory)" in shown
        assert llm.chat_requests == []
        term.proc.stdin.close()  # type: ignore[union-attr]
        assert await term.exited() == 0
