"""Discord's part of `intern doctor` (the `PlatformChecks` port): whether DISCORD_TOKEN works."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from intern.bot.findings import NETWORK_TIMEOUT, Finding

if TYPE_CHECKING:
    from intern.bot.settings import Settings
    from intern.bot.store import Database


class DiscordChecks:
    area = "Discord"

    def settings(self, s: Settings) -> list[Finding]:
        return []

    async def stored(self, db: Database, s: Settings) -> list[Finding]:
        return []

    async def connection(self, s: Settings) -> list[Finding]:
        token = s.discord_token.get_secret_value() if s.discord_token is not None else ""
        if not token:
            return []
        url = f"{s.discord_api_url}/users/@me"
        try:
            async with httpx.AsyncClient(timeout=NETWORK_TIMEOUT, trust_env=False) as http:
                r = await http.get(url, headers={"Authorization": f"Bot {token}", "User-Agent": "intern-doctor"})
        except Exception as exc:
            return [Finding("Discord", "fail", f"cannot reach {url} ({type(exc).__name__}: {exc})",
                            "check DISCORD_API_URL and the network/proxy")]
        if r.status_code in (401, 403):
            return [Finding("Discord", "fail", f"GET /users/@me was refused (HTTP {r.status_code})",
                            "copy a current bot token from the Discord developer portal into DISCORD_TOKEN")]
        if r.status_code != 200:
            return [Finding("Discord", "fail", f"GET /users/@me answered HTTP {r.status_code}",
                            "check DISCORD_API_URL")]
        me = r.json()
        return [Finding("Discord", "ok", f"DISCORD_TOKEN works: bot {me.get('username')} ({me.get('id')})")]
