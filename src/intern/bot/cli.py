"""`intern` — the command line. Heavy modules are imported inside each command so `--help` is fast."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any


def _settings() -> Any:
    from intern.bot.settings import load_dotenv_into_environment, load_settings

    load_dotenv_into_environment()
    try:
        return load_settings()
    except Exception as exc:  # pydantic ValidationError: say which setting is wrong
        print(f"intern: invalid settings:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _database(settings: Any, *, must_exist: bool = False) -> None:
    """Stop with one clear line (raised as DatabaseProblem, printed by `main`) when the database
    setting or server is wrong, before any command touches it."""
    from intern.bot.dbcheck import verify

    asyncio.run(verify(settings.database_url, must_exist=must_exist))


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        return 130


def cmd_serve(args: argparse.Namespace) -> int:
    from intern.bot.store import SchemaOutdated
    from intern.bot.wiring import serve

    settings = _settings()
    if not (settings.slack_enabled or settings.discord_enabled):
        print("intern serve: no chat credentials are set, so there is nothing to serve.\n"
              "Set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN for Socket Mode), or DISCORD_TOKEN.\n"
              "To try Intern without a chat, run `intern chat` or `intern demo`.", file=sys.stderr)
        return 2
    if not settings.model:
        print("intern serve: INTERN_MODEL is not set, so every turn will stop with a message asking for it.\n"
              "Set INTERN_MODEL to a litellm model id (e.g. anthropic/claude-sonnet-4-5); "
              "`intern doctor` checks the rest.", file=sys.stderr)
    _database(settings)
    try:
        return _run(serve(settings, migrate=args.migrate))
    except SchemaOutdated as exc:
        print(f"intern serve: {exc}", file=sys.stderr)
        return 2


def cmd_chat(args: argparse.Namespace) -> int:
    from intern.adapters.console.chat import run_chat

    settings = _settings()
    _database(settings)
    return _run(run_chat(settings, user=args.user))


def cmd_demo(args: argparse.Namespace) -> int:
    from intern.demo import run_demo

    return _run(run_demo(fast=args.fast))


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from intern.bot.store import safe_url, upgrade

    settings = _settings()
    _database(settings)
    _run_async(upgrade(settings.database_url))
    print(f"Database {safe_url(settings.database_url)} is at the latest schema.")
    return 0


def _run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def cmd_doctor(args: argparse.Namespace) -> int:
    from intern.bot.doctor import run_doctor

    return _run(run_doctor(_settings(), live_llm=args.live_llm))


def _export_problem(args: argparse.Namespace) -> str | None:
    if args.all and args.id:
        return "give a session id or --all, not both"
    if not args.all and not args.id:
        return "give a session id (see `intern sessions list`) or --all"
    if not args.all and (args.since or args.out):
        return "--since and --out go with --all"
    return None


def cmd_sessions(args: argparse.Namespace) -> int:
    from intern.bot import export

    problem = _export_problem(args) if args.sessions_cmd == "export" else None
    if problem:
        print(f"intern sessions export: {problem}", file=sys.stderr)
        return 2
    settings = _settings()
    _database(settings, must_exist=True)
    if args.sessions_cmd == "list":
        return _run(export.list_sessions(settings, limit=args.limit))
    if args.sessions_cmd == "show":
        return _run(export.show_session(settings, args.id))
    if args.all:
        return _run(export.export_sessions(settings, since=args.since, fmt=args.format, out_dir=args.out))
    return _run(export.export_session(settings, args.id, args.format))


def cmd_audit(args: argparse.Namespace) -> int:
    from intern.bot import export

    settings = _settings()
    _database(settings, must_exist=True)
    return _run(export.export_audit(settings, since=args.since, fmt=args.format))


def cmd_docs_index(args: argparse.Namespace) -> int:
    from intern.bot.docs_cli import build_docs_index

    return _run(build_docs_index(_settings(), endpoints=args.endpoint or None))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="intern", description="Intern: the ML-engineering agent in your team's chat.")
    sub = p.add_subparsers(dest="command")

    def add(name: str, fn: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.set_defaults(fn=fn)
        return sp

    s = add("serve", cmd_serve, "Run the bot: every configured chat adapter, the workers and the job watcher.")
    s.add_argument("--migrate", action="store_true", help="apply database migrations first")
    c = add("chat", cmd_chat, "A session in this terminal (same agent, database and approval cards).")
    c.add_argument("--user", default="local-user", help="your user id in this terminal session")
    d = add("demo", cmd_demo, "A guided offline run of the whole pipeline with a scripted model and local stand-ins.")
    d.add_argument("--fast", action="store_true", help="no pauses between steps")
    db = add("db", lambda a: (db.print_help(), 2)[1], "Database commands.")
    dbsub = db.add_subparsers(dest="db_cmd", required=True)
    up = dbsub.add_parser("upgrade", help="apply Alembic migrations to INTERN_DATABASE_URL")
    up.set_defaults(fn=cmd_db_upgrade)
    doc = add("doctor", cmd_doctor, "Check settings, database, LLM, chat and Hub reachability; say how to fix gaps.")
    doc.add_argument("--live-llm", action="store_true", help="also make one tiny real LLM call")
    ss = add("sessions", cmd_sessions, "Inspect and export persisted sessions.")
    sssub = ss.add_subparsers(dest="sessions_cmd", required=True)
    ls = sssub.add_parser("list", help="recent sessions")
    ls.add_argument("--limit", type=int, default=50)
    ls.set_defaults(fn=cmd_sessions)
    sh = sssub.add_parser("show", help="one session's transcript")
    sh.add_argument("id")
    sh.set_defaults(fn=cmd_sessions)
    ex = sssub.add_parser("export", help="write a session (or --all of them) as JSONL, markdown or an agent trace")
    ex.add_argument("id", nargs="?", help="the session id (or --all)")
    ex.add_argument("--format", choices=("jsonl", "md", "trace"), default="jsonl",
                    help="trace: agent-trace JSONL, as the Hub's trace viewer reads it")
    ex.add_argument("--all", action="store_true", help="every session (started since --since, when given)")
    ex.add_argument("--since", help="with --all: sessions started at or after this ISO date or time (UTC)")
    ex.add_argument("--out", help="with --all: a folder to write one file per session into (default: stdout)")
    ex.set_defaults(fn=cmd_sessions)
    au = add("audit", cmd_audit, "Export the append-only audit log.")
    au.add_argument("--since", help="ISO date or time (UTC), e.g. 2026-11-01")
    au.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    docs = add("docs", lambda a: (docs.print_help(), 2)[1], "Documentation index commands.")
    docssub = docs.add_subparsers(dest="docs_cmd", required=True)
    di = docssub.add_parser("index", help="build or refresh the on-disk documentation index")
    di.add_argument("--endpoint", action="append", help="only these documentation sets (repeatable)")
    di.set_defaults(fn=cmd_docs_index)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.command is None:
        p.print_help()
        return 0
    from intern.bot.dbcheck import DatabaseProblem

    try:
        return int(args.fn(args) or 0)
    except DatabaseProblem as exc:
        words = [args.command, *(getattr(args, k, None) for k in ("db_cmd", "sessions_cmd", "docs_cmd"))]
        print(f"intern {' '.join(w for w in words if w)}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
