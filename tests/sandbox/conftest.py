"""Fixtures for the sandbox tests: the exec server for real in a subprocess on loopback (laid out exactly
as in the Space), and the bot's sandbox registry on a real database with the tools' context around it,
talking through HfApi to the Hub stand-in, which builds and runs the Space's server itself."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from intern.agent.cache import MemoryCache
from intern.agent.context_deps import AgentConfig, ToolContext, ToolDeps
from intern.agent.plan import PlanState
from intern.bot.sandboxes import SandboxManager
from intern.bot.store import Database
from intern.standins.hub import HubStandIn
from tests.sandbox.support import SECRET_KEY, Events, Server, World, fast, runtime, start_server, write_space


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    app = write_space(tmp_path / "app")
    workdir = tmp_path / "work"
    token = secrets.token_urlsafe(32)
    proc, port = start_server(app, workdir, token)
    url = f"http://127.0.0.1:{port}"
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


@pytest.fixture
async def world(db: Database, hub: HubStandIn) -> AsyncIterator[World]:
    async with httpx.AsyncClient(trust_env=False) as http:
        rt = runtime(db, hub, http, SECRET_KEY)
        manager = fast(SandboxManager(rt))
        config = AgentConfig(model="test", research_model="test", hf_endpoint=hub.url, namespace=hub.user)
        ctx = ToolContext(session_id="", config=config, hub=rt.hub, http=http, prices=rt.prices, plan=PlanState(),
                          events=Events(), deps=ToolDeps(sandboxes=manager, cache=MemoryCache()))
        w = World(hub, db, rt, manager, "", ctx)
        w.ctx = await w.new_session("1700000000.000100")
        w.session_id = w.ctx.session_id
        try:
            yield w
        finally:
            rt.hub.close()
