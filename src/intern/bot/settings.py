"""The one place that reads the environment.

Every other module receives a `Settings` instance (or the values it needs) from the composition root.
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from intern.agent.tools.mcp import ServerConfig


def load_dotenv_into_environment(path: str | os.PathLike[str] = ".env") -> None:
    """Load `.env` into the process environment so provider keys reach litellm.

    Values already in the environment win: an operator's explicit export is never overridden.
    """
    from dotenv import load_dotenv

    load_dotenv(path, override=False)


class Settings(BaseSettings):
    # Errors never quote the value: several settings are secrets (INTERN_MCP_SERVERS may carry some).
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True,
                                      hide_input_in_errors=True)

    database_url: str = Field("sqlite:///intern.db", validation_alias="INTERN_DATABASE_URL")
    model: str | None = Field(None, validation_alias="INTERN_MODEL")
    research_model_override: str | None = Field(None, validation_alias="INTERN_RESEARCH_MODEL")
    llm_api_base: str | None = Field(None, validation_alias="INTERN_LLM_API_BASE")
    llm_api_key: SecretStr | None = Field(None, validation_alias="INTERN_LLM_API_KEY")

    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", validation_alias="SLACK_API_URL")
    slack_client_id: str | None = Field(None, validation_alias="SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(None, validation_alias="SLACK_CLIENT_SECRET")
    slack_teams_raw: str | None = Field(None, validation_alias="INTERN_SLACK_TEAMS")

    http_host: str = Field("0.0.0.0", validation_alias="INTERN_HTTP_HOST")
    http_port: int = Field(3000, validation_alias=AliasChoices("INTERN_HTTP_PORT", "PORT"))

    discord_token: SecretStr | None = Field(None, validation_alias="DISCORD_TOKEN")
    discord_api_url: str = Field("https://discord.com/api/v10", validation_alias="DISCORD_API_URL")
    discord_guild_ids: str | None = Field(None, validation_alias="DISCORD_GUILD_IDS")

    hf_token: SecretStr | None = Field(None, validation_alias="HF_TOKEN")
    hf_read_token: SecretStr | None = Field(None, validation_alias="INTERN_HF_READ_TOKEN")
    hf_endpoint: str = Field("https://huggingface.co", validation_alias="HF_ENDPOINT")
    hf_namespace: str | None = Field(None, validation_alias="INTERN_HF_NAMESPACE")
    runs_repo: str | None = Field(None, validation_alias="INTERN_RUNS_REPO")
    datasets_server_url: str = Field(
        "https://datasets-server.huggingface.co", validation_alias="INTERN_DATASETS_SERVER_URL"
    )
    semantic_scholar_url: str = Field(
        "https://api.semanticscholar.org", validation_alias="INTERN_SEMANTIC_SCHOLAR_URL"
    )
    arxiv_url: str = Field("https://arxiv.org", validation_alias="INTERN_ARXIV_URL")
    s2_api_key: SecretStr | None = Field(None, validation_alias="S2_API_KEY")

    job_poll_seconds: float = Field(15.0, gt=0, validation_alias="INTERN_JOB_POLL_SECONDS")
    job_stall_minutes: float = Field(20.0, gt=0, validation_alias="INTERN_JOB_STALL_MINUTES")
    approval_ttl_minutes: float = Field(60.0, gt=0, validation_alias="INTERN_APPROVAL_TTL_MINUTES")
    context_window_tokens: int | None = Field(None, gt=0, validation_alias="INTERN_CONTEXT_WINDOW_TOKENS")
    approvers_raw: str | None = Field(None, validation_alias="INTERN_APPROVERS")
    lease_seconds: float = Field(30.0, ge=2, validation_alias="INTERN_LEASE_SECONDS")
    max_iterations: int = Field(300, gt=0, validation_alias="INTERN_MAX_ITERATIONS")
    workers: int = Field(8, gt=0, validation_alias="INTERN_WORKERS")
    max_sessions_per_user_hour: int = Field(20, ge=0, validation_alias="INTERN_MAX_SESSIONS_PER_USER_HOUR")
    docs_dir: str | None = Field(None, validation_alias="INTERN_DOCS_DIR")
    docs_max_age_hours: float = Field(168.0, gt=0, validation_alias="INTERN_DOCS_MAX_AGE_HOURS")
    # on/off (true/false, yes/no, 1/0): mark the stable prefix of model requests for the provider's cache
    prompt_cache: bool = Field(True, validation_alias="INTERN_PROMPT_CACHE")
    mcp_servers: str | None = Field(None, validation_alias="INTERN_MCP_SERVERS")
    secret_key: SecretStr | None = Field(None, validation_alias="INTERN_SECRET_KEY")

    @field_validator("runs_repo")
    @classmethod
    def _runs_repo(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip()
        if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", v) or "--" in v or ".." in v:
            raise ValueError(f"INTERN_RUNS_REPO {v!r} is not a model repo id: use 'owner/name', e.g. 'my-org/intern-runs'")
        return v

    @field_validator("slack_api_url")
    @classmethod
    def _slash(cls, v: str) -> str:
        return v if v.endswith("/") else v + "/"

    @field_validator("hf_endpoint", "datasets_server_url", "semantic_scholar_url", "arxiv_url", "discord_api_url")
    @classmethod
    def _no_slash(cls, v: str) -> str:
        return v.rstrip("/")

    @field_validator("mcp_servers")
    @classmethod
    def _mcp_servers(cls, v: str | None) -> str | None:
        from intern.agent.tools.mcp import parse_servers

        parse_servers(v)  # McpConfigError (a ValueError) names INTERN_MCP_SERVERS and what is wrong
        return v

    @cached_property
    def mcp_server_configs(self) -> dict[str, ServerConfig]:
        from intern.agent.tools.mcp import parse_servers

        return parse_servers(self.mcp_servers)

    @property
    def research_model(self) -> str | None:
        return self.research_model_override or self.model

    @cached_property
    def approvers(self) -> frozenset[str]:
        raw = self.approvers_raw or ""
        return frozenset(p.strip() for p in raw.split(",") if p.strip())

    @cached_property
    def slack_teams(self) -> frozenset[str]:
        """INTERN_SLACK_TEAMS: the only Slack team ids served (empty: no limit beyond the installs)."""
        return frozenset(p.strip() for p in (self.slack_teams_raw or "").split(",") if p.strip())

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token and self.slack_signing_secret) or bool(
            self.slack_app_token and self.slack_bot_token
        ) or bool(self.slack_client_id and self.slack_client_secret and self.slack_signing_secret)

    @property
    def discord_enabled(self) -> bool:
        return self.discord_token is not None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def docs_path(self) -> Path:
        if self.docs_dir:
            return Path(self.docs_dir)
        return Path(os.path.expanduser("~/.cache/intern/docs"))

    def secret_values(self) -> list[str]:
        """Every configured secret, so the redactor can scrub them verbatim wherever they appear."""
        out: list[str] = []
        for v in (
            self.llm_api_key,
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.slack_client_secret,
            self.discord_token,
            self.hf_token,
            self.hf_read_token,
            self.s2_api_key,
            self.secret_key,
        ):
            if v is not None and len(v.get_secret_value()) >= 6:
                out.append(v.get_secret_value())
        if self.mcp_servers:
            from intern.agent.tools.mcp import secret_values

            out += [s for s in secret_values(self.mcp_server_configs) if len(s) >= 6]
        return out


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
