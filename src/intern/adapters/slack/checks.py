"""Slack's part of `intern doctor` (the `PlatformChecks` port): its settings, the OAuth installs it
stores, and whether its tokens work."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from intern.bot.findings import NETWORK_TIMEOUT, Finding

if TYPE_CHECKING:
    from intern.bot.settings import Settings
    from intern.bot.store import Database


def secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None and value.get_secret_value() else None


class SlackChecks:
    area = "Slack"

    def settings(self, s: Settings) -> list[Finding]:
        out: list[Finding] = []
        if s.slack_bot_token and not (s.slack_signing_secret or s.slack_app_token):
            out.append(Finding("Settings", "fail", "SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is not, so "
                               "Slack requests cannot be verified", "copy the signing secret from the Slack app's "
                               "Basic Information page into SLACK_SIGNING_SECRET (or set SLACK_APP_TOKEN for "
                               "Socket Mode)"))
        if s.slack_app_token and not s.slack_bot_token:
            out.append(Finding("Settings", "fail", "SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not",
                               "install the app and set SLACK_BOT_TOKEN (xoxb-…)"))
        if s.slack_client_id or s.slack_client_secret:
            out += oauth_settings(s)
        return out

    async def stored(self, db: Database, s: Settings) -> list[Finding]:
        return [await installs_finding(db, s)] if s.slack_client_id else []

    async def connection(self, s: Settings) -> list[Finding]:
        out: list[Finding] = []
        for name, token, method in (("SLACK_BOT_TOKEN", secret(s.slack_bot_token), "auth.test"),
                                    ("SLACK_APP_TOKEN", secret(s.slack_app_token), "apps.connections.open")):
            if not token:
                continue
            client = AsyncWebClient(token=token, base_url=s.slack_api_url, timeout=int(NETWORK_TIMEOUT))
            try:
                resp = await client.api_call(method)
            except SlackApiError as exc:
                out.append(Finding("Slack", "fail", f"{method} with {name} was refused: {exc.response.get('error')}",
                                   f"copy a current {name} from the Slack app's settings (it may have been "
                                   "revoked or belong to another app)"))
                continue
            except Exception as exc:
                out.append(Finding("Slack", "fail", f"cannot reach the Slack API at {s.slack_api_url} "
                                   f"({type(exc).__name__}: {exc})", "check SLACK_API_URL and the network/proxy"))
                continue
            if method == "auth.test":
                out.append(Finding("Slack", "ok", f"{name} works: @{resp.get('user')} in {resp.get('team')} "
                                   f"({resp.get('team_id')})"))
            else:
                out.append(Finding("Slack", "ok", f"{name} works: Socket Mode can connect"))
        return out


def oauth_settings(s: Settings) -> list[Finding]:
    missing = [name for name, value in (("SLACK_CLIENT_ID", s.slack_client_id),
                                        ("SLACK_CLIENT_SECRET", s.slack_client_secret),
                                        ("SLACK_SIGNING_SECRET", s.slack_signing_secret),
                                        ("INTERN_SECRET_KEY", s.secret_key)) if not value]
    if missing:
        return [Finding("Settings", "fail", "Slack OAuth installs are half configured: " + ", ".join(missing)
                        + " missing", "set " + " and ".join(missing) + " (INTERN_SECRET_KEY encrypts the stored "
                        "bot tokens; keep it: changing it makes every workspace reinstall)")]
    return [Finding("Settings", "ok", "Slack OAuth installs are enabled (/slack/install)")]


async def installs_finding(db: Database, s: Settings) -> Finding:
    """OAuth mode: how many workspaces installed the app, and whether their tokens still decrypt."""
    from sqlalchemy import text

    from intern.adapters.slack.oauth import SlackSetupError, TokenCipher

    try:
        async with db.session() as session:
            rows = (await session.execute(text("SELECT team_id, bot_token FROM slack_bots"))).all()
    except Exception:
        rows = []
    if not rows:
        return Finding("Slack", "warn", "no workspace has installed the app over OAuth yet",
                       "open https://<your host>/slack/install in a browser signed in to the workspace")
    try:
        cipher = TokenCipher(secret(s.secret_key) or "")
    except SlackSetupError:
        return Finding("Slack", "fail", f"{len({r[0] for r in rows})} workspace install(s) stored, but "
                       "INTERN_SECRET_KEY is not set, so their tokens cannot be read", "set INTERN_SECRET_KEY to "
                       "the value used when they installed")
    unreadable = 0
    for _, token in rows:
        try:
            cipher.decrypt(str(token))
        except Exception:
            unreadable += 1
    teams = len({r[0] for r in rows})
    if unreadable:
        return Finding("Slack", "fail", f"{unreadable} stored bot token(s) do not decrypt with INTERN_SECRET_KEY",
                       "restore the INTERN_SECRET_KEY used when they installed, or have those workspaces "
                       "install the app again")
    return Finding("Slack", "ok", f"{teams} workspace(s) installed the app over OAuth; their tokens decrypt")
