"""Several real `intern serve` processes on one PostgreSQL database, the stand-ins they share, and
what a fault test needs around them: Slack's redelivery, a scripted multi-step model, a loopback TCP
proxy to cut the database away, and a look into the database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from intern.bot.store import Database, connect
from intern.standins.hub import HubStandIn
from intern.standins.llm import LLMStandIn, Reply, text_reply, tool_calls_reply
from intern.standins.slack import SlackEventSender, SlackStandIn
from tests.e2e.harness import APPROVER, REQUESTER, Harness, wait_until

__all__ = ["APPROVER", "REQUESTER", "Cluster", "PgProxy", "count", "deliver", "finals", "open_db", "started",
           "steps_rule", "wait_until"]


@dataclass
class Cluster:
    """`size` serve processes, each its own port, one database and one set of stand-ins."""

    database_url: str
    slack: SlackStandIn
    hub: HubStandIn
    llm: LLMStandIn
    tmp: Path
    size: int = 3
    env: dict[str, str] = field(default_factory=dict)
    approvers: str = f"{APPROVER},{REQUESTER}"
    nodes: list[Harness] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.nodes = [Harness(self.database_url, self.slack, self.hub, self.llm, approvers=self.approvers,  # type: ignore[arg-type]
                              extra_env=dict(self.env)) for _ in range(self.size)]

    async def start(self) -> None:
        await asyncio.gather(*(n.start_child(self.tmp) for n in self.nodes))

    async def stop(self) -> None:
        await asyncio.gather(*(n.kill_child(hard=True) for n in self.nodes), return_exceptions=True)

    def pid(self, i: int) -> int:
        child = self.nodes[i].child
        assert child is not None, f"node {i} is not running"
        return child.pid

    def kill9(self, i: int) -> None:
        """kill -9, synchronously (also usable from inside a stand-in's request handler)."""
        child = self.nodes[i].child
        assert child is not None
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        self.nodes[i].child = None

    def logs(self) -> str:
        return "\n".join(f"--- node {i} ---\n{n.child_log()[-6000:]}" for i, n in enumerate(self.nodes))


async def deliver(sender: SlackEventSender, event: dict[str, Any], *, event_id: str | None = None,
                  attempts: int = 40, pause: float = 0.25) -> list[int]:
    """Play Slack: send the event until it is acked with a 200 (Slack retries any other answer or a
    timeout, with X-Slack-Retry-Num); returns every status seen, 0 for a connection failure."""
    statuses: list[int] = []
    for attempt in range(attempts):
        try:
            r = await sender.send_event(event, event_id=event_id, retry_num=attempt or None)
            statuses.append(r.status)
            if r.status == 200:
                return statuses
        except (aiohttp.ClientError, OSError, TimeoutError):
            statuses.append(0)
        await asyncio.sleep(pause)
    raise AssertionError(f"event never acked: {statuses}")


TASK = re.compile(r"task (\w+)")


def steps_rule(*, tool_steps: int = 2, delay: float = 0.3) -> Any:
    """A scripted model for many sessions at once: `tool_steps` cheap read-only `plan` calls, then a
    final reply naming the task ("Finished task 7"). Each answer takes `delay` seconds."""

    def rule(request: dict[str, Any]) -> Reply:
        messages = request.get("messages") or []
        if request.get("tools") is None:
            return text_reply("Summary so far.", delay=delay)
        since_user = 0
        task = "?"
        for m in reversed(messages):
            if m.get("role") == "user":
                found = TASK.search(str(m.get("content")))
                task = found.group(1) if found else task
                break
            if m.get("role") == "tool":
                since_user += 1
        if since_user >= tool_steps:
            return text_reply(f"Finished task {task}.", delay=delay)
        step = since_user + 1  # the plan moves on at every call, as a real one does
        todos = [{"id": str(k), "content": f"step {k} of task {task}",
                  "status": "completed" if k < step or step == tool_steps else
                  "in_progress" if k == step else "pending"} for k in range(1, tool_steps + 1)]
        return tool_calls_reply([("plan", {"todos": todos})], delay=delay)

    return rule


def finals(slack: SlackStandIn, thread: str) -> list[str]:
    return [t for t in slack.texts(thread_ts=thread) if t.startswith("Finished task")]


async def count(db: Database, model: type, *where: object) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


class PgProxy:
    """A loopback TCP proxy in front of PostgreSQL. `cut()` is what a restart looks like from the
    app: every connection drops and new ones are refused; `restore()` listens again on the same port."""

    def __init__(self, target_url: str) -> None:
        url = make_url(target_url)
        self.target = (url.host or "127.0.0.1", url.port or 5432)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()
        self._url = url

    def url(self) -> str:
        return self._url.set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    async def start(self) -> PgProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._pipes):
            w.transport.abort()
        self._pipes.clear()
        await self._server.wait_closed()
        self._server = None

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        if self._server is not None:
            await self.cut()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._pipes.update((writer, up_writer))
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        self._pipes.difference_update((writer, up_writer))

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()


def open_db(url: str) -> Database:
    return connect(url, pool_size=2)


@contextlib.asynccontextmanager
async def started(cluster: Cluster) -> Any:
    try:
        await cluster.start()
        yield cluster
    finally:
        await cluster.stop()
