"""The composition root: settings in, a running process out. The only place in `bot/` that imports
adapters; it plugs in those whose credentials are set."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from intern.bot.settings import Settings

log = logging.getLogger("intern")


def prepare_environment(settings: Settings) -> None:
    """huggingface_hub and litellm read a few variables at import time: set them first."""
    os.environ["HF_ENDPOINT"] = settings.hf_endpoint
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def build_tools(settings: Settings, extra: Sequence[Any] = ()) -> Any:
    """The agent's tools; `extra` (the tools of connected MCP servers) go in before `research` is built,
    so that it can offer the read-only ones."""
    from intern.agent.tools.base import ToolRegistry
    from intern.agent.tools.datasets import inspect_dataset_tool
    from intern.agent.tools.docs import explore_docs_tool, fetch_docs_tool, find_api_tool
    from intern.agent.tools.history import history_tool
    from intern.agent.tools.jobs import jobs_tool
    from intern.agent.tools.papers import papers_tool
    from intern.agent.tools.plan import plan_tool
    from intern.agent.tools.repos import repo_files_tool, repo_git_tool

    tools = [plan_tool, jobs_tool, inspect_dataset_tool, papers_tool, explore_docs_tool, fetch_docs_tool,
             find_api_tool, repo_files_tool, repo_git_tool, history_tool]
    with contextlib.suppress(ImportError):
        from intern.agent.tools.sandbox import sandbox_tools

        tools.extend(sandbox_tools)
    registry = ToolRegistry([*tools, *extra])
    with contextlib.suppress(ImportError):
        from intern.agent.tools.research import research_tool

        registry.add(research_tool(registry))
    return registry


def platform_checks() -> list[Any]:
    """Each chat adapter's part of `intern doctor` (`intern.bot.findings.PlatformChecks`), in report order."""
    from intern.adapters.discord.checks import DiscordChecks
    from intern.adapters.slack.checks import SlackChecks

    return [SlackChecks(), DiscordChecks()]


def configure_logging(settings: Settings, redactor: Any, level: int = logging.INFO) -> None:
    from intern.agent.guardrails.redaction import RedactingFilter, redact_every_record

    redact_every_record(redactor)
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    for h in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in h.filters):
            h.addFilter(RedactingFilter(redactor))
    for noisy in ("LiteLLM", "litellm", "httpx", "httpx2", "httpcore", "aiohttp.access", "slack_bolt", "discord",
                  "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def build_runtime(settings: Settings, db: Any | None = None) -> Any:
    prepare_environment(settings)
    import httpx

    from intern.agent.guardrails.redaction import Redactor
    from intern.agent.hub import HubClient
    from intern.agent.llm import LiteLLM
    from intern.agent.pricing import PriceTable, flavor_from_hub
    from intern.bot.cache import DbCache
    from intern.bot.runtime import Runtime
    from intern.bot.store import connect

    db = db or connect(settings.database_url)
    token = settings.hf_token.get_secret_value() if settings.hf_token else None
    hub = HubClient(endpoint=settings.hf_endpoint, token=token, namespace=settings.hf_namespace,
                    read_token=settings.hf_read_token.get_secret_value() if settings.hf_read_token else None)

    async def fetch_flavors() -> list[Any]:
        items = await hub.call(hub.api.list_jobs_hardware)
        return [flavor_from_hub(i) for i in items]

    llm = LiteLLM(api_base=settings.llm_api_base,
                  api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
                  prompt_cache=settings.prompt_cache)
    mcp = await connect_mcp(settings)
    rt = Runtime(settings=settings, db=db, hub=hub, prices=PriceTable(fetch_flavors), llm=llm,
                 tools=build_tools(settings, mcp.tools if mcp else ()),
                 redactor=Redactor(settings.secret_values()),
                 http=httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=False,
                                        trust_env=False),
                 cache=DbCache(db), lease_seconds=settings.lease_seconds,
                 heartbeat_seconds=min(5.0, settings.lease_seconds / 4))
    rt.mcp = mcp
    rt.s2_api_key = settings.s2_api_key.get_secret_value() if settings.s2_api_key else None
    from intern.bot.sandboxes import SandboxManager

    rt.sandboxes = SandboxManager(rt)
    with contextlib.suppress(Exception):
        from intern.agent.docs import open_index

        rt.docs_index = open_index(settings.docs_path, max_age_hours=settings.docs_max_age_hours)
    return rt


async def connect_mcp(settings: Settings) -> Any:
    """The servers INTERN_MCP_SERVERS names, connected (those that answer), or None when it names none."""
    if not settings.mcp_server_configs:
        return None
    from intern.agent.tools.mcp import connect_servers

    return await connect_servers(settings.mcp_server_configs)


async def warm_up(rt: Any) -> None:
    """Import litellm and load its tokenizer off the event loop before serving: done lazily inside
    the first turn, the seconds it takes would stall every request in flight."""
    from intern.agent.llm import litellm_module

    def load() -> None:
        litellm_module()
        rt.tools.schemas()  # pydantic builds the tool schemas once (tens of ms): not in the first turn
        with contextlib.suppress(Exception):
            rt.llm.count_tokens(rt.settings.model or "gpt-4o", [{"role": "user", "content": "warm up"}])
            rt.llm.context_window(rt.settings.model or "gpt-4o")

    await asyncio.to_thread(load)
    # litellm leaves a great many long-lived objects behind; out of the collector's sight they no longer
    # slow every full collection while hundreds of turns run.
    gc.collect()
    gc.freeze()
    # The first completion initialises provider clients and pricing lazily; do it now, offline.
    with contextlib.suppress(Exception):
        litellm = litellm_module()
        await litellm.acompletion(model=rt.settings.model or "gpt-4o", mock_response="ok",
                                  messages=[{"role": "user", "content": "warm up"}])


async def close_runtime(rt: Any) -> None:
    if rt.mcp is not None:
        await rt.mcp.aclose()
    await rt.http.aclose()
    await rt.hub.streams.aclose()
    rt.hub.close()
    await rt.db.dispose()


@dataclass
class Process:
    """One `intern serve` process: the bot, its adapters and its HTTP server."""

    settings: Settings
    rt: Any = None
    bot: Any = None
    runner: Any = None
    socket_handler: Any = None
    discord: Any = None
    slack_oauth: Any = None
    docs_refresh: asyncio.Task[None] | None = None
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self, *, migrate: bool = False) -> None:
        from aiohttp import web

        from intern.bot.app import BotApp
        from intern.bot.store import ensure_schema

        self.rt = await build_runtime(self.settings)
        configure_logging(self.settings, self.rt.redactor)
        await ensure_schema(self.rt.db, auto_migrate=migrate)
        self.bot = BotApp(self.rt)
        await warm_up(self.rt)
        http = web.Application(client_max_size=8 * 1024 * 1024)
        http.router.add_get("/healthz", self.healthz)
        self.attach_adapters(http)
        if self.slack_oauth is not None:
            await self.slack_oauth.create_tables()
        await self.bot.start()
        self.runner = web.AppRunner(http, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, self.settings.http_host, self.settings.http_port).start()
        log.info("intern serving on %s:%s (%s)", self.settings.http_host, self.settings.http_port,
                 ", ".join(self.rt.adapters) or "no chat")
        if self.socket_handler is not None:
            self.socket_handler = await self.socket_handler.start_socket_mode()
        if self.discord is not None:
            await self.discord.start()
        from intern.bot.docs_refresh import DocsRefresher

        self.docs_refresh = asyncio.create_task(DocsRefresher(self.rt).run(), name="docs-refresh")

    def attach_adapters(self, http: Any) -> None:
        s = self.settings
        if s.slack_enabled:
            from intern.adapters.slack.app import SlackAdapter
            from intern.adapters.slack.oauth import oauth_from_settings

            self.slack_oauth = oauth_from_settings(s, self.rt.db.engine)
            slack = SlackAdapter(bot_token=s.slack_bot_token.get_secret_value() if s.slack_bot_token else None,
                                 signing_secret=s.slack_signing_secret.get_secret_value()
                                 if s.slack_signing_secret else "",
                                 api_url=s.slack_api_url, bot=self.bot,
                                 app_token=s.slack_app_token.get_secret_value() if s.slack_app_token else None,
                                 oauth=self.slack_oauth, teams=s.slack_teams)
            self.rt.adapters["slack"] = slack
            if s.slack_app_token:
                self.socket_handler = slack
            else:
                slack.add_routes(http)
        if s.discord_enabled:
            from intern.adapters.discord.client import DiscordAdapter

            self.discord = DiscordAdapter(settings=s, bot=self.bot)
            self.rt.adapters["discord"] = self.discord

    async def healthz(self, request: Any) -> Any:
        from aiohttp import web
        from sqlalchemy import text

        try:
            async with self.rt.db.session() as db:
                await db.execute(text("SELECT 1"))
        except Exception:
            return web.json_response({"ok": False, "database": "unreachable"}, status=503)
        return web.json_response({"ok": True, "adapters": sorted(self.rt.adapters)})

    async def stop(self) -> None:
        if self.docs_refresh is not None:
            self.docs_refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.docs_refresh
        if self.runner is not None:
            await self.runner.cleanup()
        if self.socket_handler is not None and hasattr(self.socket_handler, "close_async"):
            with contextlib.suppress(Exception):
                await self.socket_handler.close_async()
        if self.discord is not None:
            with contextlib.suppress(Exception):
                await self.discord.close()
        if self.bot is not None:
            await self.bot.stop()
        if self.rt is not None:
            for adapter in self.rt.adapters.values():
                if hasattr(adapter, "aclose"):
                    with contextlib.suppress(Exception):
                        await adapter.aclose()
            await close_runtime(self.rt)


async def serve(settings: Settings, *, migrate: bool) -> int:
    from intern.adapters.slack.oauth import SlackSetupError

    proc = Process(settings)
    try:
        await proc.start(migrate=migrate)
    except SlackSetupError as exc:
        print(f"intern serve: {exc}", file=sys.stderr)
        await proc.stop()
        return 2
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, done.set)
    await done.wait()
    log.info("shutting down: finishing the work in hand")
    await proc.stop()
    return 0
