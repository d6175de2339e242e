"""`intern doctor`: check every setting and every service Intern talks to, and say how to fix what is
missing. Exits non-zero when something required fails. Never prints a secret: every line goes through
the redactor built from the configured secrets, and no check echoes a token.

Each chat platform's checks are its adapter's (the `PlatformChecks` port); the composition root
(wiring.py) says which platforms there are.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, TextIO

from intern.bot.findings import NETWORK_TIMEOUT, Finding, PlatformChecks
from intern.bot.settings import Settings

MARK = {"ok": "[ok]  ", "warn": "[warn]", "fail": "[FAIL]"}

Check = Callable[[Settings, bool], Awaitable[list[Finding]]]


async def run_doctor(settings: Settings, *, live_llm: bool = False, out: TextIO | None = None) -> int:
    from intern.agent.guardrails.redaction import Redactor
    from intern.bot.wiring import configure_logging, prepare_environment

    out = out or sys.stdout
    redactor = Redactor(settings.secret_values())
    prepare_environment(settings)
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    configure_logging(settings, redactor, level=logging.WARNING)  # library warnings go through the redactor too
    findings: list[Finding] = []
    try:
        for check in CHECKS:
            area = check.__name__.removeprefix("check_").replace("_", " ").title()
            findings += await guarded(area, partial(check, settings, live_llm))
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
    out.write(redactor.redact(report(findings)))
    out.flush()
    return 1 if any(f.status == "fail" for f in findings) else 0


async def guarded(area: str, check: Callable[[], Awaitable[list[Finding]]]) -> list[Finding]:
    """A check that breaks is itself a finding, never a crash of the doctor."""
    try:
        return await asyncio.wait_for(check(), timeout=NETWORK_TIMEOUT * 4)
    except Exception as exc:
        return [Finding(area, "fail", f"the check itself failed: {type(exc).__name__}: {exc}",
                        "run `intern doctor` again; if it persists, report it with this line")]


def report(findings: list[Finding]) -> str:
    lines = ["Intern doctor", ""]
    for f in findings:
        lines.append(f"{MARK[f.status]} {f.area}: {f.text}")
        if f.fix and f.status != "ok":
            lines.append(f"       fix: {f.fix}")
    fails = sum(f.status == "fail" for f in findings)
    warns = sum(f.status == "warn" for f in findings)
    lines.append("")
    if fails:
        lines.append(f"{fails} problem(s) must be fixed before Intern can work (marked FAIL); {warns} warning(s).")
    else:
        lines.append(f"Everything required is in place; {warns} warning(s).")
    return "\n".join(lines) + "\n"


def secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None and value.get_secret_value() else None


# --- settings ---------------------------------------------------------------------------------------

async def check_settings(s: Settings, live_llm: bool) -> list[Finding]:
    out = [model_setting(s), approvers_setting(s), *chat_settings(s)]
    if not s.hf_token:
        out.append(Finding("Settings", "fail", "HF_TOKEN is not set: Intern cannot launch jobs, write to the Hub or "
                           "read private repos", "create a token with write access at "
                           f"{s.hf_endpoint}/settings/tokens and set HF_TOKEN"))
    out += sandbox_token_settings(s)
    if not s.secret_key and not (s.slack_client_id or s.slack_client_secret):
        out.append(Finding("Settings", "warn", "INTERN_SECRET_KEY is not set: sandbox tokens are encrypted with a "
                           "key that lives only as long as the process, so sandboxes are not reused after a restart",
                           "set INTERN_SECRET_KEY to a long random string and keep it"))
    return out


def sandbox_token_settings(s: Settings) -> list[Finding]:
    read, write = secret(s.hf_read_token), secret(s.hf_token)
    if read and read == write:
        return [Finding("Settings", "fail", "INTERN_HF_READ_TOKEN is the same token as HF_TOKEN: the write token "
                        "never goes into a sandbox, so sandboxes get no token at all",
                        f"create a read-only token at {s.hf_endpoint}/settings/tokens for INTERN_HF_READ_TOKEN")]
    if write and not read:
        return [Finding("Settings", "warn", "INTERN_HF_READ_TOKEN is not set: sandboxes (private Spaces) cannot be "
                        "reached, and code in them cannot load gated models or private data. The write token "
                        "(HF_TOKEN) is never used for them",
                        f"create a read-only token at {s.hf_endpoint}/settings/tokens and set INTERN_HF_READ_TOKEN")]
    return []


def model_setting(s: Settings) -> Finding:
    if not s.model:
        return Finding("Settings", "fail", "INTERN_MODEL is not set: there is no language model to run the agent",
                       "set INTERN_MODEL to a litellm model id, e.g. anthropic/claude-sonnet-4-5, openai/gpt-4.1 "
                       "or ollama/qwen3")
    return Finding("Settings", "ok", f"INTERN_MODEL is {s.model}"
                   + (f", research model {s.research_model}" if s.research_model != s.model else ""))


def approvers_setting(s: Settings) -> Finding:
    if not s.approvers:
        return Finding("Settings", "warn", "INTERN_APPROVERS is empty: nobody administers policy, and spending and "
                       "Hub writes are refused in every channel that names no approvers of its own",
                       "set INTERN_APPROVERS to the Slack/Discord user ids of your administrators, comma-separated")
    return Finding("Settings", "ok", f"INTERN_APPROVERS names {len(s.approvers)} global administrator(s)")


def chat_settings(s: Settings) -> list[Finding]:
    out = [finding for platform in chat_checks() for finding in platform.settings(s)]
    if not (s.slack_enabled or s.discord_enabled):
        out.append(Finding("Settings", "warn", "no chat is configured: `intern serve` has nothing to serve "
                           "(`intern chat` and `intern demo` work without one)",
                           "set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (create the app from slack/manifest.yml), "
                           "or DISCORD_TOKEN"))
    return out


# --- database ---------------------------------------------------------------------------------------

async def check_database(s: Settings, live_llm: bool) -> list[Finding]:
    from sqlalchemy import text

    from intern.bot.dbcheck import DatabaseProblem, check_sqlite_location, explain, parse, sqlite_file
    from intern.bot.store import connect, current_revision, head_revision, safe_url

    try:
        url = parse(s.database_url)
        path = sqlite_file(url)
        if path is not None:
            if not await asyncio.to_thread(path.exists):
                await asyncio.to_thread(check_sqlite_location, path, must_exist=False)
                return [Finding("Database", "warn", f"{safe_url(s.database_url)} does not exist yet",
                                "nothing to do: `intern serve`, `chat` and `demo` create and migrate it at start")]
            await asyncio.to_thread(check_sqlite_location, path, must_exist=True)
    except DatabaseProblem as problem:
        return [Finding("Database", "fail", problem.what, problem.fix)]
    where = safe_url(s.database_url)
    db = connect(s.database_url, pool_size=1)
    try:
        async with db.session() as session:
            await asyncio.wait_for(session.execute(text("SELECT 1")), timeout=NETWORK_TIMEOUT)
        current, head = await current_revision(db), head_revision(s.database_url)
        out = [schema_finding(where, current, head, db.is_postgres)]
        for platform in chat_checks():
            out += await platform.stored(db, s)
        return out
    except Exception as exc:
        problem = explain(exc, url)
        if problem is not None:
            return [Finding("Database", "fail", problem.what, problem.fix)]
        return [Finding("Database", "fail", f"cannot reach {where}: {type(exc).__name__}: {exc}",
                        "check INTERN_DATABASE_URL (host, port, user, database name) and that the server is up")]
    finally:
        await db.dispose()


def schema_finding(where: str, current: str | None, head: str | None, postgres: bool) -> Finding:
    if current == head:
        return Finding("Database", "ok", f"{where} is reachable; schema at the latest revision ({head})")
    text = f"{where} is reachable but its schema is at {current or 'nothing'}, and this version needs {head}"
    if postgres:
        return Finding("Database", "fail", text + "; `intern serve` refuses to start on it",
                       "run `intern db upgrade` (or start with `intern serve --migrate`)")
    return Finding("Database", "warn", text, "nothing to do on SQLite: it is migrated at start (or run "
                   "`intern db upgrade` now)")


# --- the language model -----------------------------------------------------------------------------

async def check_llm(s: Settings, live_llm: bool) -> list[Finding]:
    if not s.model:
        return []
    from intern.agent.llm import litellm_module

    litellm = litellm_module()
    key = secret(s.llm_api_key)
    out: list[Finding] = []
    for model in dict.fromkeys(m for m in (s.model, s.research_model) if m):
        try:
            provider = litellm.get_llm_provider(model)[1]
        except Exception:
            out.append(Finding("LLM", "fail", f"`{model}` is not a model id litellm knows how to call",
                               "use provider/model, e.g. anthropic/claude-sonnet-4-5 or openai/gpt-4.1 "
                               "(INTERN_MODEL / INTERN_RESEARCH_MODEL)"))
            continue
        env = await asyncio.to_thread(litellm.validate_environment, model=model, api_key=key,
                                      api_base=s.llm_api_base)
        missing = list(env.get("missing_keys") or [])
        if not missing:
            out.append(Finding("LLM", "ok", f"`{model}` ({provider}): credentials are configured"))
        elif s.llm_api_base:
            out.append(Finding("LLM", "warn", f"`{model}` goes to INTERN_LLM_API_BASE with no key; fine for a "
                               "local server that needs none", f"set INTERN_LLM_API_KEY (or {missing[0]}) if it "
                               "does"))
        else:
            out.append(Finding("LLM", "fail", f"`{model}` ({provider}) has no credentials: {', '.join(missing)} "
                               "not set", f"set {missing[0]} (or INTERN_LLM_API_KEY)"))
    if s.llm_api_base:
        out.append(await endpoint_answers(s.llm_api_base))
    if live_llm and not any(f.status == "fail" for f in out):
        out.append(await live_call(s, key))
    return out


async def endpoint_answers(base: str) -> Finding:
    """A connection to INTERN_LLM_API_BASE, not a model call (which may cost money): any HTTP answer
    means a server is there."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=NETWORK_TIMEOUT, trust_env=False) as http:
            r = await http.get(base)
    except httpx.HTTPError as exc:
        from intern.agent.llm import connection_reason

        return Finding("LLM", "fail", f"INTERN_LLM_API_BASE {base} cannot be reached ({connection_reason(exc)})",
                       "start the model server there, or fix INTERN_LLM_API_BASE")
    return Finding("LLM", "ok", f"INTERN_LLM_API_BASE {base} answers (HTTP {r.status_code})")


async def live_call(s: Settings, key: str | None) -> Finding:
    from intern.agent.errors import LLMConfigError, TurnStopped
    from intern.agent.llm import LiteLLM

    llm = LiteLLM(api_base=s.llm_api_base, api_key=key, max_attempts=2, base_delay=0.5, timeout=NETWORK_TIMEOUT * 2)
    started = time.monotonic()
    try:
        reply = await llm.complete(model=s.model or "", tools=None,
                                   messages=[{"role": "user", "content": "Reply with the single word OK."}])
    except LLMConfigError as exc:
        return Finding("LLM", "fail", f"a live call failed: {exc}", f"fix {exc.setting}")
    except TurnStopped as exc:
        return Finding("LLM", "fail", f"a live call failed: {exc}", "check INTERN_LLM_API_BASE and the provider's "
                       "status")
    except Exception as exc:
        return Finding("LLM", "fail", f"a live call failed: {type(exc).__name__}: {exc}",
                       "check INTERN_MODEL, INTERN_LLM_API_BASE and the key")
    took = time.monotonic() - started
    return Finding("LLM", "ok", f"a live call to `{s.model}` answered in {took:.1f}s "
                   f"({reply.usage.prompt_tokens}+{reply.usage.completion_tokens} tokens)")


# --- chat platforms ---------------------------------------------------------------------------------

def chat_checks() -> list[PlatformChecks]:
    """Each chat adapter's own checks, through the `PlatformChecks` port."""
    from intern.bot.wiring import platform_checks

    return platform_checks()


async def check_chat(s: Settings, live_llm: bool) -> list[Finding]:
    """Whether each configured platform's credentials work (each platform guarded on its own)."""
    out: list[Finding] = []
    for platform in chat_checks():
        out += await guarded(platform.area, partial(platform.connection, s))
    return out


# --- the Hub and the documentation index ------------------------------------------------------------

async def check_hub(s: Settings, live_llm: bool) -> list[Finding]:
    token = secret(s.hf_token)
    if not token:
        return []
    from intern.agent.hub import HubClient

    hub = HubClient(endpoint=s.hf_endpoint, token=token, namespace=s.hf_namespace)
    try:
        me = await asyncio.wait_for(hub.call(hub.api.whoami), timeout=NETWORK_TIMEOUT)
    except Exception as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        refused = status in (401, 403)
        return [Finding("Hub", "fail", f"whoami at {s.hf_endpoint} failed: {type(exc).__name__}"
                        + (f" (HTTP {status})" if status else ""),
                        "HF_TOKEN was refused: create a new token with write access" if refused
                        else "check HF_ENDPOINT and the network/proxy")]
    finally:
        hub.close()
    name = str(me.get("name"))
    orgs = [str(o.get("name")) for o in me.get("orgs") or []]
    out = [Finding("Hub", "ok", f"HF_TOKEN works at {s.hf_endpoint}: {name}"
                   + (f" (orgs: {', '.join(orgs)})" if orgs else ""))]
    if s.hf_namespace and s.hf_namespace not in (name, *orgs):
        out.append(Finding("Hub", "fail", f"INTERN_HF_NAMESPACE={s.hf_namespace} is neither the token's user nor "
                           "one of its organizations, so jobs there would be refused",
                           f"set INTERN_HF_NAMESPACE to {name} or an organization the token belongs to"))
    return out


async def check_docs(s: Settings, live_llm: bool) -> list[Finding]:
    from intern.agent.docs.index import SCHEMA_VERSION, read_meta

    path = s.docs_path
    meta = await asyncio.to_thread(read_meta, path)
    rebuild = ("`intern serve` builds it in the background (one process at a time), or run `intern docs index` "
               "now")
    if meta is None or meta.get("version") != SCHEMA_VERSION:
        return [Finding("Docs", "warn", f"no documentation index at {path} yet: the small shipped snapshot is "
                        "indexed at first start", rebuild)]
    built = datetime.fromisoformat(str(meta["built_at"]))
    age_hours = (datetime.now(UTC) - built).total_seconds() / 3600
    sets = sorted(meta.get("sets") or {})
    shown = ", ".join(sets[:6]) + (f" and {len(sets) - 6} more" if len(sets) > 6 else "")
    what = f"{meta.get('pages', 0)} pages in {len(sets)} set(s) ({shown})"
    age = f"{age_hours:.0f}h" if age_hours < 48 else f"{age_hours / 24:.0f} day(s)"
    if meta.get("source") != "live":
        return [Finding("Docs", "warn", f"the index at {path} holds only the shipped snapshot: {what}", rebuild)]
    if age_hours > s.docs_max_age_hours:
        return [Finding("Docs", "warn", f"the index at {path} is {age} old: {what} (INTERN_DOCS_MAX_AGE_HOURS is "
                        f"{s.docs_max_age_hours:g})", rebuild)]
    return [Finding("Docs", "ok", f"index at {path}: {what} from the live docs, built {age} ago")]


# --- MCP servers ------------------------------------------------------------------------------------

async def check_mcp(s: Settings, live_llm: bool) -> list[Finding]:
    """Connect to every server INTERN_MCP_SERVERS names, list its tools, and disconnect."""
    if not s.mcp_server_configs:
        return []
    from intern.agent.tools.mcp import connect_servers

    conns = await connect_servers(s.mcp_server_configs, timeout=NETWORK_TIMEOUT)
    try:
        out: list[Finding] = []
        for name, cfg in s.mcp_server_configs.items():
            if name in conns.skipped:
                out.append(Finding("MCP", "warn", f"server {name!r} ({cfg.where()}) cannot be reached: "
                                   f"{conns.skipped[name]}; Intern starts without its tools",
                                   "check its entry in INTERN_MCP_SERVERS (command and args, or url and "
                                   "headers) and that the server runs"))
                continue
            tools = conns.servers[name].tools
            free = sum(t.read_only for t in tools)
            out.append(Finding("MCP", "ok", f"server {name!r} ({cfg.where()}): {len(tools)} tool(s), {free} "
                               f"read-only, {len(tools) - free} behind approval"))
        return out
    finally:
        await conns.aclose()


CHECKS: tuple[Check, ...] = (check_settings, check_database, check_llm, check_chat, check_hub, check_docs,
                             check_mcp)

