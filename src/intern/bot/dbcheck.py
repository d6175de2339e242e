"""Database settings and servers an operator must fix, each told in one line: what is wrong, which
setting, and how to fix it.

`verify` runs before a command touches the database: it reads `INTERN_DATABASE_URL`, checks a SQLite
file's folder, connects once, and turns whatever fails into a `DatabaseProblem` (never a traceback).
Commands that only read (`intern sessions`, `intern audit`) pass `must_exist`, so that a mistyped URL
is reported instead of silently creating an empty database there.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

SETTING = "INTERN_DATABASE_URL"
FORMS = "sqlite:///path/to/intern.db or postgresql://user:password@host:5432/dbname"
CONNECT_TIMEOUT = 10.0
_DRIVERS = {"sqlite": {"", "pysqlite", "aiosqlite"}, "postgresql": {"", "asyncpg", "psycopg2", "psycopg"}}


@dataclass
class DatabaseProblem(Exception):
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.what}; {self.fix}"


def parse(url: str) -> URL:
    """The URL, if it names a database Intern can use (the text itself is never echoed: it may hold a
    password)."""
    text = url.strip()
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://"):]
    try:
        u = make_url(text)
    except ArgumentError:
        raise DatabaseProblem(f"{SETTING} is not a database URL", f"set it to {FORMS}") from None
    backend, _, driver = u.drivername.partition("+")
    if backend not in _DRIVERS:
        raise DatabaseProblem(f"{SETTING} names a {backend!r} database, which Intern does not support",
                              f"use SQLite or PostgreSQL: {FORMS}")
    if driver not in _DRIVERS[backend]:
        raise DatabaseProblem(f"{SETTING} asks for the {driver!r} driver, which Intern does not use",
                              f"leave the driver out ({backend}://…): Intern picks its own")
    if backend == "postgresql" and not u.database:
        raise DatabaseProblem(f"{SETTING} names no database on the PostgreSQL server",
                              f"end the URL with the database name, e.g. {FORMS.split(' or ')[1]}")
    if backend == "sqlite" and not u.database:
        raise DatabaseProblem(f"{SETTING} names no SQLite file", "use sqlite:///intern.db (a relative path) "
                              "or sqlite:////absolute/path/intern.db")
    return u


def where(u: URL) -> str:
    from intern.bot.store import safe_url

    return safe_url(u.render_as_string(hide_password=False))


def sqlite_file(u: URL) -> Path | None:
    if not u.drivername.startswith("sqlite") or u.database in (None, "", ":memory:"):
        return None
    return Path(u.database)


def check_sqlite_location(path: Path, *, must_exist: bool) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    shown = f"sqlite:///{path}"
    if not path.exists():
        if must_exist:
            raise DatabaseProblem(f"there is no Intern database at {shown} (the file does not exist)",
                                  f"check {SETTING}, or create one with `intern db upgrade`")
        if not folder.is_dir():
            raise DatabaseProblem(f"the folder {folder} of the SQLite database in {SETTING} does not exist",
                                  f"create it (mkdir -p {folder}) or point {SETTING} at another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatabaseProblem(f"the folder {folder} of the SQLite database in {SETTING} is read-only "
                              "(SQLite writes its journal beside the file)",
                              f"make it writable for this user or point {SETTING} at a writable path")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise DatabaseProblem(f"the SQLite database {path} in {SETTING} cannot be read and written by this user",
                              f"fix its permissions or point {SETTING} at another file")


def explain(exc: BaseException, u: URL) -> DatabaseProblem | None:
    """What an operator should read for a failed connection; None for errors that are not about the
    setting or the server (a bug keeps its traceback)."""
    for cause in _chain(exc):
        problem = _explain_one(cause, u)
        if problem is not None:
            return problem
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [getattr(e, "orig", None), e.__cause__, e.__context__]
    return seen


def _explain_one(exc: BaseException, u: URL) -> DatabaseProblem | None:
    if u.drivername.startswith("sqlite"):
        return _explain_sqlite(exc, u)
    server = f"PostgreSQL at {u.host or 'localhost'}:{u.port or 5432}"
    reach = f"cannot reach {where(u)}"
    pg = _asyncpg_errors()
    if pg is not None:
        if isinstance(exc, pg.InvalidCatalogNameError):
            return DatabaseProblem(f"the database {u.database!r} does not exist on {server}",
                                   f"create it (createdb -h {u.host or 'localhost'} -p {u.port or 5432} "
                                   f"{u.database}) or fix the database name in {SETTING}")
        if isinstance(exc, (pg.InvalidPasswordError, pg.InvalidAuthorizationSpecificationError)):
            return DatabaseProblem(f"{server} refused user {u.username or '(none)'}: "
                                   f"{str(exc).splitlines()[0][:160]}",
                                   f"fix the user or password in {SETTING}")
    if isinstance(exc, socket.gaierror):
        return DatabaseProblem(f"the host {u.host!r} in {SETTING} does not resolve",
                               f"fix the host name in {SETTING}")
    if isinstance(exc, ConnectionRefusedError) or (isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED):
        return DatabaseProblem(f"{reach}: connection refused",
                               f"check {SETTING} (host and port) and that the server is up")
    if isinstance(exc, TimeoutError):
        return DatabaseProblem(f"{reach}: no answer within {CONNECT_TIMEOUT:.0f} s",
                               f"check {SETTING} (host and port) and the network between them")
    if isinstance(exc, OSError) and exc.errno is not None:
        return DatabaseProblem(f"{reach}: {os.strerror(exc.errno)}",
                               f"check {SETTING} (host and port) and that the server is up")
    return None


def _explain_sqlite(exc: BaseException, u: URL) -> DatabaseProblem | None:
    if not isinstance(exc, sqlite3.Error):
        return None
    path = sqlite_file(u)
    text = str(exc)
    if "readonly" in text.replace("-", "").replace(" ", "") or "read-only" in text:
        return DatabaseProblem(f"the SQLite database {path} in {SETTING} is read-only",
                               f"make the file and its folder writable, or point {SETTING} elsewhere")
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in text:
        return DatabaseProblem(f"{path} in {SETTING} is not a SQLite database",
                               f"point {SETTING} at Intern's database file (or a new path)")
    if isinstance(exc, sqlite3.OperationalError):
        return DatabaseProblem(f"SQLite cannot open {path} in {SETTING} ({text})",
                               f"check that its folder exists and is writable, or point {SETTING} elsewhere")
    return None


def _asyncpg_errors() -> object | None:
    try:
        from asyncpg import exceptions
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return None
    return exceptions


async def verify(url: str, *, must_exist: bool = False) -> None:
    """Raise a DatabaseProblem unless the database at `url` can be used (and, with `must_exist`, holds
    Intern's tables)."""
    from intern.bot.store import connect, current_revision

    u = parse(url)
    path = sqlite_file(u)
    if path is not None:
        await asyncio.to_thread(check_sqlite_location, path, must_exist=must_exist)
    db = connect(url, pool_size=1)
    try:
        try:
            revision = await asyncio.wait_for(current_revision(db), timeout=CONNECT_TIMEOUT)
        except Exception as exc:
            problem = explain(exc, u)
            if problem is None:
                raise
            raise problem from None
        if must_exist and revision is None:
            raise DatabaseProblem(f"there is no Intern database at {where(u)} (it holds no Intern tables)",
                                  f"check {SETTING}, or create the schema with `intern db upgrade`")
    finally:
        await db.dispose()
