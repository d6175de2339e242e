"""Helpers for the sandbox tests: the exec server run as the Space runs it, the bot's runtime and sandbox
manager around a tool context, and calls made the way the agent loop makes them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
from huggingface_hub import HfApi
from sqlalchemy import select

from intern.agent.cache import MemoryCache
from intern.agent.context_deps import ToolContext
from intern.agent.errors import ToolFeedback
from intern.agent.guardrails.redaction import Redactor
from intern.agent.hub import HubClient
from intern.agent.plan import PlanState
from intern.agent.pricing import PriceTable
from intern.agent.tools.base import Tool, ToolRegistry, ToolResult, canonical_spec
from intern.bot.models import Sandbox, Session
from intern.bot.runtime import Runtime
from intern.bot.sandboxes import SandboxManager
from intern.bot.settings import Settings
from intern.bot.store import Database
from intern.sandbox import TOKEN_ENV, TOKEN_HEADER, space_files
from intern.standins.hub import HubStandIn
from intern.standins.hub_spaces import SpacesState, spaces_state
from tests.support.ports import free_port

SECRET_KEY = "test-secret-key-for-sandbox-tokens-0123456789"


# ---------------------------------------------------------------- the exec server on its own

def write_space(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in space_files().items():
        (folder / name).write_bytes(data)
    return folder


def start_server(app: Path, workdir: Path, token: str) -> tuple[subprocess.Popen[bytes], int]:
    """`python server.py` in the app folder, as the Space's CMD runs it, listening on loopback only."""
    port = free_port()
    env = {**os.environ, TOKEN_ENV: token, "PORT": str(port), "INTERN_SANDBOX_HOST": "127.0.0.1",
           "INTERN_SANDBOX_WORKDIR": str(workdir)}
    proc = subprocess.Popen([sys.executable, "server.py"], cwd=app, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    return proc, port


@dataclass
class Server:
    url: str
    token: str
    workdir: Path
    proc: subprocess.Popen[bytes]
    client: httpx.AsyncClient

    async def post(self, route: str, payload: dict[str, Any], *, token: str | None = None) -> httpx.Response:
        return await self.client.post(f"{self.url}/{route}", json=payload,
                                      headers={TOKEN_HEADER: self.token if token is None else token}, timeout=60)

    async def ok(self, route: str, **payload: Any) -> dict[str, Any]:
        r = await self.post(route, payload)
        assert r.status_code == 200, r.text
        return cast(dict[str, Any], r.json())


# ---------------------------------------------------------------- the bot's side

class Events:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def emit(self, event: Any) -> None:
        self.seen.append(event)


@dataclass
class World:
    """The bot's runtime and sandbox manager, one chat session, and a tool context for it."""

    hub: HubStandIn
    db: Database
    rt: Runtime
    manager: SandboxManager
    session_id: str
    ctx: ToolContext

    @property
    def spaces(self) -> SpacesState:
        return spaces_state(self.hub)

    async def new_session(self, thread: str) -> ToolContext:
        async with self.db.transaction() as s:
            row = Session(platform="slack", workspace="T1", channel="C1", thread=thread, started_by="U1")
            s.add(row)
        return ToolContext(session_id=row.id, config=self.ctx.config, hub=self.ctx.hub, http=self.ctx.http,
                           prices=self.ctx.prices, plan=PlanState(), events=Events(), deps=self.ctx.deps)


def runtime(db: Database, hub: HubStandIn, http: httpx.AsyncClient, secret_key: str | None) -> Runtime:
    settings = Settings(INTERN_DATABASE_URL=db.url, HF_TOKEN=hub.token, HF_ENDPOINT=hub.url,  # type: ignore[call-arg]
                        INTERN_HF_NAMESPACE=hub.user, INTERN_SECRET_KEY=secret_key)
    client = HubClient(endpoint=hub.url, token=hub.token, namespace=hub.user)
    return Runtime(settings=settings, db=db, hub=client, prices=PriceTable(), llm=cast(Any, None),
                   tools=ToolRegistry(), redactor=Redactor(), http=http, cache=MemoryCache())


def fast(manager: SandboxManager) -> SandboxManager:
    manager.poll_seconds = 0.05
    manager.start_timeout_seconds = 30.0
    manager.retry_seconds = 0.0
    return manager


async def run(ctx: ToolContext, tool: Tool, **raw: Any) -> ToolResult:
    """One call as the agent loop makes it (an approval, when asked for, counts as granted)."""
    args = tool.parse(raw)
    if tool.policy(args) != "none":
        assert tool.describe is not None
        await tool.describe(ctx, args)
        args = tool.args.model_validate(canonical_spec(args))
    try:
        return await tool.handler(ctx, args)
    except ToolFeedback as exc:
        return ToolResult(str(exc), is_error=True)


async def rows(world: World) -> list[Sandbox]:
    async with world.db.session() as s:
        return list((await s.execute(select(Sandbox).order_by(Sandbox.created_at))).scalars().all())


async def hub_spaces(world: World) -> list[str]:
    """What the Hub lists, asked through HfApi (off the loop the stand-in runs on)."""
    api = HfApi(endpoint=world.hub.url, token=world.hub.token)
    return await asyncio.to_thread(lambda: [s.id for s in api.list_spaces(author=world.hub.user)])
