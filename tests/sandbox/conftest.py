"""Fixtures for the sandbox tests: the exec server for real in a subprocess on loopback (laid out exactly
as in the Space), and the bot's sandbox registry on a real database with the tools' context around it,
talking through HfApi to the Hub stand-in, which builds and runs the Space's server itself."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from intern.agent.cache import MemoryCache
from intern.agent.context_deps import AgentConfig, ToolContext
from intern.agent.guardrails.redaction import Redactor
from intern.agent.hub import HubClient
from intern.agent.plan import PlanState
from intern.agent.pricing import PriceTable
from intern.agent.tools.base import ToolRegistry
from intern.bot.models import Session
from intern.bot.runtime import Runtime
from intern.bot.sandboxes import SandboxManager
from intern.bot.settings import Settings
from intern.bot.store import Database
from intern.sandbox import TOKEN_ENV, TOKEN_HEADER, space_files
from intern.standins.hub import HubStandIn
from intern.standins.hub_spaces import SpacesState, spaces_state

SECRET_KEY = "test-secret-key-for-sandbox-tokens-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_space(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in space_files().items():
        (folder / name).write_bytes(data)
    return folder


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


async def start_server(app: Path, workdir: Path, token: str) -> subprocess.Popen[bytes]:
    port = free_port()
    env = {**os.environ, TOKEN_ENV: token, "PORT": str(port), "INTERN_SANDBOX_HOST": "127.0.0.1",
           "INTERN_SANDBOX_WORKDIR": str(workdir)}
    proc = subprocess.Popen([sys.executable, "server.py"], cwd=app, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    proc.port = port  # type: ignore[attr-defined]
    return proc


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    app = write_space(tmp_path / "app")
    workdir = tmp_path / "work"
    token = secrets.token_urlsafe(32)
    proc = await start_server(app, workdir, token)
    url = f"http://127.0.0.1:{proc.port}"  # type: ignore[attr-defined]
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                if (await client.get(f"{url}/health")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        else:
            proc.kill()
            raise RuntimeError("the exec server did not start")
        yield Server(url, token, workdir, proc, client)
    proc.terminate()
    proc.wait(timeout=10)


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
    extra_contexts: list[ToolContext] = field(default_factory=list)

    @property
    def spaces(self) -> SpacesState:
        return spaces_state(self.hub)

    async def new_session(self, thread: str) -> ToolContext:
        async with self.db.transaction() as s:
            row = Session(platform="slack", workspace="T1", channel="C1", thread=thread, started_by="U1")
            s.add(row)
        return ToolContext(session_id=row.id, config=self.ctx.config, hub=self.ctx.hub, http=self.ctx.http,
                           prices=self.ctx.prices, plan=PlanState(), events=Events(), extras=self.ctx.extras)


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


@pytest.fixture
async def world(db: Database, hub: HubStandIn) -> AsyncIterator[World]:
    async with httpx.AsyncClient(trust_env=False) as http:
        rt = runtime(db, hub, http, SECRET_KEY)
        manager = fast(SandboxManager(rt))
        config = AgentConfig(model="test", research_model="test", hf_endpoint=hub.url, namespace=hub.user)
        ctx = ToolContext(session_id="", config=config, hub=rt.hub, http=http, prices=rt.prices, plan=PlanState(),
                          events=Events(), extras={"sandboxes": manager, "cache": MemoryCache()})
        w = World(hub, db, rt, manager, "", ctx)
        w.ctx = await w.new_session("1700000000.000100")
        w.session_id = w.ctx.session_id
        try:
            yield w
        finally:
            rt.hub.close()
