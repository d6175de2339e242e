"""`intern doctor` against the stand-ins: what works, what is missing and how to fix it, the exit code,
and never a secret on screen."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from slack_sdk.oauth.installation_store.models.installation import Installation
from sqlalchemy.ext.asyncio import create_async_engine

from intern.adapters.slack.oauth import EncryptedInstallationStore, TokenCipher
from intern.agent.docs.index import Page, write_index
from intern.bot.doctor import run_doctor
from intern.bot.settings import Settings
from intern.bot.store import async_url
from intern.standins.discord import DiscordStandIn
from intern.standins.hub import HubStandIn
from intern.standins.llm import LLMStandIn
from intern.standins.slack import SlackStandIn

LLM_KEY = "sk-doctor-0123456789abcdefghijklmn"
SECRET_KEY = "doctor-secret-key-0123456789abcdef"
SIGNING = "0123456789abcdef0123456789abcdef"


@dataclass
class Stands:
    slack: SlackStandIn
    discord: DiscordStandIn
    hub: HubStandIn
    llm: LLMStandIn


@pytest.fixture
async def stands() -> AsyncIterator[Stands]:
    async with SlackStandIn() as slack, DiscordStandIn() as discord, HubStandIn() as hub, \
            LLMStandIn(api_key=LLM_KEY) as llm:
        yield Stands(slack, discord, hub, llm)  # type: ignore[arg-type]


def full_env(st: Stands, database_url: str, docs: Path) -> dict[str, str]:
    return {
        "INTERN_DATABASE_URL": database_url, "INTERN_MODEL": "openai/standin-model",
        "INTERN_LLM_API_BASE": f"{st.llm.url}/v1", "INTERN_LLM_API_KEY": LLM_KEY,
        "SLACK_BOT_TOKEN": st.slack.token, "SLACK_SIGNING_SECRET": SIGNING, "SLACK_API_URL": f"{st.slack.url}/api/",
        "DISCORD_TOKEN": st.discord.token, "DISCORD_API_URL": st.discord.api_url,
        "HF_TOKEN": st.hub.token, "HF_ENDPOINT": st.hub.url, "INTERN_APPROVERS": "U0ADMIN",
        "INTERN_SECRET_KEY": SECRET_KEY, "INTERN_DOCS_DIR": str(docs),
    }


def secrets_of(env: dict[str, str]) -> list[str]:
    names = ("INTERN_LLM_API_KEY", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "DISCORD_TOKEN",
             "HF_TOKEN", "INTERN_SECRET_KEY", "SLACK_CLIENT_SECRET")
    return [env[n] for n in names if env.get(n)]


async def doctor(env: dict[str, str], live_llm: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    code = await run_doctor(Settings(**env), live_llm=live_llm, out=out)  # type: ignore[arg-type]
    text = out.getvalue()
    for value in secrets_of(env):
        assert value not in text
    return code, text


def live_docs(path: Path) -> None:
    write_index(path, [Page("trl", "/docs/trl/index", "TRL", "Get started", 0, "# TRL\nTrain with SFT.")],
                source="live")


async def test_everything_in_place_passes_with_a_live_llm_call(stands: Stands, migrated_url: str,
                                                              tmp_path: Path) -> None:
    live_docs(tmp_path / "docs")
    stands.llm.enqueue_text("OK")
    code, text = await doctor(full_env(stands, migrated_url, tmp_path / "docs"), live_llm=True)
    assert code == 0, text
    assert "[FAIL]" not in text and "Everything required is in place" in text
    for line in ("[ok]   Settings: INTERN_MODEL is openai/standin-model",
                 "schema at the latest revision",
                 "[ok]   LLM: `openai/standin-model` (openai): credentials are configured",
                 "[ok]   LLM: a live call to `openai/standin-model` answered",
                 f"[ok]   Slack: SLACK_BOT_TOKEN works: @intern in Stand-in Team ({stands.slack.team_id})",
                 "[ok]   Discord: DISCORD_TOKEN works: bot intern",
                 f"[ok]   Hub: HF_TOKEN works at {stands.hub.url}: {stands.hub.user}",
                 "[ok]   Docs: index at"):
        assert line in text, (line, text)
    assert len(stands.llm.chat_requests) == 1
    assert [r.path for r in stands.slack.calls("/api/auth.test")]


async def test_without_live_llm_no_model_call_is_made(stands: Stands, migrated_url: str, tmp_path: Path) -> None:
    code, _ = await doctor(full_env(stands, migrated_url, tmp_path / "docs"))
    assert code == 0 and stands.llm.chat_requests == []


async def test_a_bare_configuration_says_what_is_missing_and_how_to_fix_it(tmp_path: Path) -> None:
    env = {"INTERN_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}", "INTERN_DOCS_DIR": str(tmp_path / "docs")}
    code, text = await doctor(env)
    assert code == 1
    assert "[FAIL] Settings: INTERN_MODEL is not set" in text and "fix: set INTERN_MODEL" in text
    assert "[FAIL] Settings: HF_TOKEN is not set" in text and "settings/tokens" in text
    assert "[warn] Settings: INTERN_APPROVERS is empty" in text
    assert "[warn] Settings: no chat is configured" in text and "slack/manifest.yml" in text
    assert "[warn] Database:" in text and "does not exist yet" in text
    assert "[warn] Docs: no documentation index" in text and "intern docs index" in text
    assert "2 problem(s) must be fixed" in text
    assert not (tmp_path / "none.db").exists()  # the doctor looks, it does not create


async def test_refused_credentials_fail_and_are_never_printed(stands: Stands, migrated_url: str,
                                                             tmp_path: Path) -> None:
    env = full_env(stands, migrated_url, tmp_path / "docs")
    env.update({"SLACK_BOT_TOKEN": "xoxb-wrong-token-0000-aaaaaaaa", "DISCORD_TOKEN": "wrong.discord.token-000000",
                "HF_TOKEN": "hf_wrongTokenwrongTokenwrongToken000", "INTERN_LLM_API_KEY": "sk-wrong-0123456789abcdef"})
    code, text = await doctor(env, live_llm=True)
    assert code == 1
    assert "[FAIL] Slack: auth.test with SLACK_BOT_TOKEN was refused: invalid_auth" in text
    assert "[FAIL] Discord: GET /users/@me was refused (HTTP 401)" in text
    assert "[FAIL] Hub: whoami" in text and "(HTTP 401)" in text and "HF_TOKEN was refused" in text
    assert "[FAIL] LLM: a live call failed" in text and "fix: fix INTERN_LLM_API_KEY" in text


async def test_an_unreachable_database_fails(stands: Stands, tmp_path: Path) -> None:
    env = full_env(stands, "postgresql://intern:pw-not-shown-123@127.0.0.1:1/intern", tmp_path / "docs")
    code, text = await doctor(env)
    assert code == 1
    assert "[FAIL] Database: cannot reach postgresql+asyncpg://intern:" in text and "@127.0.0.1:1/intern" in text
    assert "pw-not-shown-123" not in text and "fix: check INTERN_DATABASE_URL" in text


async def test_a_blank_database_fails_on_postgres_and_is_fine_on_sqlite(stands: Stands, database_url: str,
                                                                       backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":  # an existing but empty SQLite file is migrated at start
        await asyncio.to_thread(Path(database_url.removeprefix("sqlite:///")).touch)
    code, text = await doctor(full_env(stands, database_url, tmp_path / "docs"))
    assert "schema is at nothing" in text
    if backend == "postgres":
        assert code == 1 and "[FAIL] Database:" in text and "intern db upgrade" in text
    else:
        assert code == 0 and "[warn] Database:" in text


async def test_slack_oauth_needs_the_secret_key_and_reports_installs(stands: Stands, migrated_url: str,
                                                                    tmp_path: Path) -> None:
    env = full_env(stands, migrated_url, tmp_path / "docs")
    del env["SLACK_BOT_TOKEN"], env["INTERN_SECRET_KEY"]
    env.update({"SLACK_CLIENT_ID": stands.slack.client_id, "SLACK_CLIENT_SECRET": stands.slack.client_secret})
    code, text = await doctor(env)
    assert code == 1 and "Slack OAuth installs are half configured: INTERN_SECRET_KEY missing" in text

    env["INTERN_SECRET_KEY"] = SECRET_KEY
    code, text = await doctor(env)
    assert code == 0 and "[warn] Slack: no workspace has installed the app over OAuth yet" in text

    engine = create_async_engine(async_url(migrated_url))
    store = EncryptedInstallationStore(stands.slack.client_id, engine, TokenCipher(SECRET_KEY))
    await store.create_tables()
    await store.async_save(Installation(app_id="A0STANDIN", team_id="T0AAAA", bot_token="xoxb-installed-aaaa-1234",
                                        bot_id="B0A", bot_user_id="U0BOTA", user_id="U0ALICE"))
    await engine.dispose()
    code, text = await doctor(env)
    assert code == 0 and "[ok]   Slack: 1 workspace(s) installed the app over OAuth; their tokens decrypt" in text
    assert "xoxb-installed-aaaa-1234" not in text

    env["INTERN_SECRET_KEY"] = "another-key-entirely-0123456789"
    code, text = await doctor(env)
    assert code == 1 and "1 stored bot token(s) do not decrypt with INTERN_SECRET_KEY" in text


async def test_a_namespace_the_token_cannot_use_fails(stands: Stands, migrated_url: str, tmp_path: Path) -> None:
    env = {**full_env(stands, migrated_url, tmp_path / "docs"), "INTERN_HF_NAMESPACE": "someone-else"}
    code, text = await doctor(env)
    assert code == 1 and "INTERN_HF_NAMESPACE=someone-else is neither the token's user" in text


async def test_the_cli_exits_non_zero_and_prints_the_fixes(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERN_", "SLACK_", "DISCORD_", "HF_TOKEN"))}
    env.update({"INTERN_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "INTERN_DOCS_DIR": str(tmp_path / "d")})
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "intern.bot.cli", "doctor", env=env,
                                                cwd=tmp_path, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 1
    assert "INTERN_MODEL is not set" in out.decode() and "fix:" in out.decode()


async def test_sandbox_tokens_say_what_is_missing_and_never_accept_the_write_token(
        stands: Stands, migrated_url: str, tmp_path: Path) -> None:
    env = full_env(stands, migrated_url, tmp_path / "docs")
    _, text = await doctor(env)
    assert "INTERN_HF_READ_TOKEN is not set: sandboxes (private Spaces) cannot be reached" in text
    assert "set INTERN_HF_READ_TOKEN" in text
    code, text = await doctor({**env, "INTERN_HF_READ_TOKEN": env["HF_TOKEN"]})
    assert code != 0 and "INTERN_HF_READ_TOKEN is the same token as HF_TOKEN" in text
    _, text = await doctor({**env, "INTERN_HF_READ_TOKEN": "hf_readOnlyTokenForSandboxes0123456789ab"})
    assert "INTERN_HF_READ_TOKEN" not in text and "hf_readOnly" not in text
