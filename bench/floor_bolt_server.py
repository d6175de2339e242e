"""The dependency floor for bench/ack.py: slack_bolt's AsyncApp behind aiohttp with a listener that
does nothing, answering the same signed requests. Run as a subprocess by bench/ack.py."""

from __future__ import annotations

import sys

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient


def main(port: int, api_url: str, token: str, secret: str) -> None:
    app = AsyncApp(client=AsyncWebClient(token=token, base_url=api_url), signing_secret=secret,
                   process_before_response=True)

    @app.event("app_mention")
    async def noop(body: dict) -> None:
        return None

    async def handle(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    http = web.Application()
    http.router.add_post("/slack/events", handle)
    http.router.add_get("/healthz", healthz)
    web.run_app(http, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])
