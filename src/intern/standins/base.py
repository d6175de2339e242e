"""A small aiohttp server on 127.0.0.1 with a random port, recording every request it serves."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None


@dataclass
class StandIn:
    """Subclasses add routes in `setup(app)`; `start()` binds 127.0.0.1 on a free port."""

    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app = web.Application(middlewares=[self._record], client_max_size=64 * 1024 * 1024)
        self._runner: web.AppRunner | None = None
        self.setup(self.app)

    def setup(self, app: web.Application) -> None:  # pragma: no cover - overridden
        pass

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        rec = Recorded(request.method, request.path, dict(request.query), dict(request.headers), body)
        if body and request.content_type == "application/json":
            try:
                import json

                rec.json = json.loads(body)
            except ValueError:
                rec.json = None
        self.requests.append(rec)
        return await handler(request)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> StandIn:
        assert self.host in ("127.0.0.1", "localhost", "::1"), "stand-ins bind to loopback only"
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> StandIn:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def calls(self, path_suffix: str, method: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith(path_suffix) and (method is None or r.method == method)]

    async def wait_for(self, predicate: Any, within: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("stand-in condition not met")
            await asyncio.sleep(0.02)
