"""Slack installs over OAuth: one app, many workspaces, each with its own bot token.

Enabled when SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set. bolt serves `/slack/install` and
`/slack/oauth_redirect`; slack_sdk's SQLAlchemy stores keep installations and OAuth states in tables
of their own (`slack_installations`, `slack_bots`, `slack_oauth_states`, created here, outside our
Alembic metadata) on the bot's own database. Tokens are encrypted at rest with Fernet under a key
derived from INTERN_SECRET_KEY; without that setting OAuth mode refuses to start.
"""

from __future__ import annotations

import base64
import copy
import logging
import time
from typing import Any, TypeVar

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from sqlalchemy import MetaData, Table, Text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

# What the app asks for when a workspace installs it (DECISIONS.md, "Inbound"); slack/manifest.yml
# lists the same.
BOT_SCOPES = ("app_mentions:read", "chat:write", "channels:history", "groups:history", "im:history",
              "reactions:write", "users:read", "usergroups:read", "files:write", "commands")
TOKEN_FIELDS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")
STATE_SECONDS = 600
TOKEN_CACHE_SECONDS = 60.0
T = TypeVar("T", Installation, Bot)


class SlackSetupError(RuntimeError):
    """Slack settings that cannot work together; the message names the setting to fix."""


class TokenCipher:
    """Fernet under a key derived from INTERN_SECRET_KEY (its own derivation: a key for Slack tokens
    is never the key for anything else)."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise SlackSetupError("INTERN_SECRET_KEY is required for Slack OAuth installs: bot tokens are "
                                  "stored encrypted with it. Set it to a long random string and keep it.")
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"intern slack token v1")
        self._fernet = Fernet(base64.urlsafe_b64encode(hkdf.derive(secret.encode("utf-8"))))

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, value: str) -> str:
        return self._fernet.decrypt(value.encode("ascii")).decode("utf-8")


class _Tables(AsyncSQLAlchemyInstallationStore):
    """slack_sdk's tables with room for an encrypted token (a Fernet token is about 2.7x the plain one)."""

    @classmethod
    def build_installations_table(cls, metadata: MetaData, table_name: str) -> Table:
        return _widen(super().build_installations_table(metadata, table_name))

    @classmethod
    def build_bots_table(cls, metadata: MetaData, table_name: str) -> Table:
        return _widen(super().build_bots_table(metadata, table_name))


def _widen(table: Table) -> Table:
    for name in TOKEN_FIELDS:
        if name in table.c:
            table.c[name].type = Text()
    return table


class EncryptedInstallationStore(AsyncInstallationStore):
    """slack_sdk's SQLAlchemy installation store, with every token encrypted before it is written and
    decrypted after it is read."""

    def __init__(self, client_id: str, engine: AsyncEngine, cipher: TokenCipher,
                 teams: frozenset[str] = frozenset()) -> None:
        self.inner = _Tables(client_id=client_id, engine=engine, logger=log)
        self.cipher = cipher
        self.teams = teams  # INTERN_SLACK_TEAMS: when set, the only teams that may install

    @property
    def logger(self) -> logging.Logger:
        return log

    async def create_tables(self) -> None:
        await self.inner.create_tables()

    def _sealed(self, item: T) -> T:
        out = copy.copy(item)
        for name in TOKEN_FIELDS:
            if getattr(out, name, None):
                setattr(out, name, self.cipher.encrypt(getattr(out, name)))
        return out

    def _opened(self, item: T | None) -> T | None:
        if item is None:
            return None
        for name in TOKEN_FIELDS:
            value = getattr(item, name, None)
            if value:
                try:
                    setattr(item, name, self.cipher.decrypt(value))
                except InvalidToken:
                    log.error("a stored Slack %s cannot be decrypted: INTERN_SECRET_KEY changed? Reinstall the "
                              "app in workspace %s", name, item.team_id)
                    return None
        return item

    def _allowed(self, team_id: str | None) -> None:
        if self.teams and team_id not in self.teams:
            # bolt answers the install with its failure page; nothing is stored.
            raise PermissionError(f"Slack team {team_id} may not install this Intern (INTERN_SLACK_TEAMS)")

    async def async_save(self, installation: Installation) -> None:
        self._allowed(installation.team_id)
        await self.inner.async_save(self._sealed(installation))

    async def async_save_bot(self, bot: Bot) -> None:
        self._allowed(bot.team_id)
        await self.inner.async_save_bot(self._sealed(bot))

    async def async_find_bot(self, *, enterprise_id: str | None, team_id: str | None,
                             is_enterprise_install: bool | None = False) -> Bot | None:
        return self._opened(await self.inner.async_find_bot(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install))

    async def async_find_installation(self, *, enterprise_id: str | None, team_id: str | None,
                                      user_id: str | None = None,
                                      is_enterprise_install: bool | None = False) -> Installation | None:
        return self._opened(await self.inner.async_find_installation(
            enterprise_id=enterprise_id, team_id=team_id, user_id=user_id,
            is_enterprise_install=is_enterprise_install))

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.inner.async_delete_bot(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(self, *, enterprise_id: str | None, team_id: str | None,
                                        user_id: str | None = None) -> None:
        await self.inner.async_delete_installation(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id)


class SlackOAuth:
    """Everything OAuth mode needs: bolt's settings and the bot token of each workspace."""

    def __init__(self, *, client_id: str, client_secret: str, secret_key: str, engine: AsyncEngine,
                 api_url: str, teams: frozenset[str] = frozenset()) -> None:
        if not client_id or not client_secret:
            raise SlackSetupError("Slack OAuth needs both SLACK_CLIENT_ID and SLACK_CLIENT_SECRET.")
        self.installations = EncryptedInstallationStore(client_id, engine, TokenCipher(secret_key), teams)
        self.states = AsyncSQLAlchemyOAuthStateStore(expiration_seconds=STATE_SECONDS, engine=engine, logger=log)
        self.settings = AsyncOAuthSettings(
            client_id=client_id, client_secret=client_secret, scopes=list(BOT_SCOPES), user_scopes=[],
            installation_store=self.installations, installation_store_bot_only=True,
            state_store=self.states, state_expiration_seconds=STATE_SECONDS,
            authorization_url=authorize_url(api_url), logger=log)
        # Without the cache bolt calls auth.test on every event, inside Slack's 3 s deadline.
        self.settings.authorize = AsyncInstallationStoreAuthorize(
            logger=log, client_id=client_id, client_secret=client_secret, installation_store=self.installations,
            bot_only=True, cache_enabled=True)
        self._tokens: dict[str, tuple[float, str]] = {}

    async def create_tables(self) -> None:
        await self.installations.create_tables()
        await self.states.create_tables()

    async def bot_token(self, workspace: str) -> str | None:
        """The bot token of the workspace's latest install (cached briefly: every post asks)."""
        cached = self._tokens.get(workspace)
        if cached is not None and time.monotonic() - cached[0] < TOKEN_CACHE_SECONDS:
            return cached[1]
        bot = await self.installations.async_find_bot(enterprise_id=None, team_id=workspace)
        token = bot.bot_token if bot is not None else None
        if token is not None:  # a workspace not installed yet may be installed a second later
            self._tokens[workspace] = (time.monotonic(), token)
        return token

    def forget(self) -> None:
        """After an install or an uninstall: read the tokens afresh."""
        self._tokens.clear()


def authorize_url(api_url: str) -> str:
    """Slack's authorize page sits beside its Web API (`…/api/` → `…/oauth/v2/authorize`)."""
    base = api_url.rstrip("/")
    base = base[: -len("/api")] if base.endswith("/api") else base
    return f"{base}/oauth/v2/authorize"


def oauth_from_settings(settings: Any, engine: AsyncEngine) -> SlackOAuth | None:
    """OAuth mode when SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set; raises SlackSetupError when it
    is half configured or INTERN_SECRET_KEY is missing."""
    client_id = settings.slack_client_id
    secret = settings.slack_client_secret.get_secret_value() if settings.slack_client_secret else None
    if not client_id and not secret:
        return None
    if not settings.slack_signing_secret:
        raise SlackSetupError("Slack OAuth needs SLACK_SIGNING_SECRET too (it verifies every request from Slack).")
    key = settings.secret_key.get_secret_value() if settings.secret_key else ""
    return SlackOAuth(client_id=client_id or "", client_secret=secret or "", secret_key=key, engine=engine,
                      api_url=settings.slack_api_url, teams=settings.slack_teams)
