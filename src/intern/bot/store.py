"""Database engine and sessions. SQLite (WAL) by default, PostgreSQL in production.

The async driver is chosen here: aiosqlite for SQLite, asyncpg for PostgreSQL.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from intern.agent.errors import declare_retryable, retryable


def async_url(url: str) -> str:
    """Accept `sqlite:///x.db`, `postgres://…` and `postgresql://…`; return the async-driver URL."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    u = make_url(url)
    if u.drivername in ("postgresql", "postgresql+psycopg2", "postgresql+psycopg"):
        u = u.set(drivername="postgresql+asyncpg")
    elif u.drivername in ("sqlite", "sqlite+pysqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    return u.render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    return make_url(async_url(url)).render_as_string(hide_password=True)


class PriorityLock:
    """A FIFO lock whose priority waiters are served before the others."""

    def __init__(self) -> None:
        self._locked = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = 0

    @asynccontextmanager
    async def hold(self, priority: bool = False) -> AsyncIterator[None]:
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()

    async def acquire(self, priority: bool) -> None:
        if not self._locked and not self._waiters:
            self._locked = True
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._waiters, (0 if priority else 1, self._seq, future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # we were handed the lock just as we were cancelled: pass it on
            else:
                self._waiters = [w for w in self._waiters if w[2] is not future]
                heapq.heapify(self._waiters)
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)  # ownership passes directly; _locked stays True
                return
        self._locked = False


@dataclass
class Database:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    url: str
    # SQLite has one writer: queueing writers here is far cheaper than its busy-wait back-off.
    write_lock: PriorityLock | None = None
    # Awaited before every background (non-priority) write: the runtime makes it wait while inbound
    # deliveries are being stored, so turns already under way do not delay their acks.
    before_background_write: Callable[[], Awaitable[None]] | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as s:
            yield s

    @asynccontextmanager
    async def transaction(self, priority: bool = False) -> AsyncIterator[AsyncSession]:
        """A write transaction. On SQLite, writers queue here; `priority` (inbound deliveries waiting
        for their ack) goes ahead of background work."""
        if not priority and self.before_background_write is not None:
            await self.before_background_write()
        if self.write_lock is None:
            async with self.sessionmaker() as s, s.begin():
                yield s
            return
        async with self.write_lock.hold(priority), self.sessionmaker() as s, s.begin():
            yield s

    async def dispose(self) -> None:
        await self.engine.dispose()


# asyncpg waits 60 s for a connection by default and forever for a statement: a database that stops
# answering must surface as an error the loops back off from, well within a lease.
PG_CONNECT_TIMEOUT = 5.0
PG_COMMAND_TIMEOUT = 30.0


def connect(url: str, *, pool_size: int = 10, echo: bool = False) -> Database:
    aurl = async_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if aurl.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    else:
        declare_postgres_errors()
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800,
                      pool_timeout=PG_COMMAND_TIMEOUT,
                      connect_args={"timeout": PG_CONNECT_TIMEOUT, "command_timeout": PG_COMMAND_TIMEOUT})
    engine = create_async_engine(aurl, **kwargs)
    if aurl.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    lock = PriorityLock() if aurl.startswith("sqlite") else None
    return Database(engine, async_sessionmaker(engine, expire_on_commit=False), url, lock)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


# --- outages ------------------------------------------------------------------------------------

def _statement_error_is_retryable(exc: BaseException) -> bool:
    """The connection the statement ran on was lost, or the driver's error underneath may pass."""
    if not isinstance(exc, DBAPIError):
        return False
    return bool(exc.connection_invalidated) or (exc.orig is not None and retryable(exc.orig))


# What a retry after a pause can cure (`errors.retryable` decides): the server restarting, a dropped or
# refused connection, a timeout, a transaction PostgreSQL rolled back (deadlock, serialization).
# Constraint violations and bugs are not.
declare_retryable(True, OperationalError, InterfaceError)
declare_retryable(_statement_error_is_retryable, DBAPIError)


def declare_postgres_errors() -> None:
    """asyncpg's connection-level errors; SQLAlchemy's asyncpg adapter wraps them, as their cause."""
    from asyncpg import exceptions as pg

    declare_retryable(True, pg.PostgresConnectionError, pg.OperatorInterventionError, pg.InterfaceError,
                      pg.TooManyConnectionsError, pg.TransactionRollbackError)


def log_failure(logger: logging.Logger, exc: BaseException, what: str, then: str) -> bool:
    """A background loop's failure: a database outage (it passes) as one warning line, anything else
    with its traceback. True when it was an outage."""
    if retryable(exc):
        logger.warning("%s: database unavailable (%s); %s", what, type(exc).__name__, then)
        return True
    logger.error("%s failed; %s", what, then, exc_info=exc)
    return False


def rolled_back(exc: BaseException) -> bool:
    """PostgreSQL rolled the transaction back (deadlock victim, serialization failure): nothing of it
    was written, so it can simply be run again. (A lost connection leaves that uncertain.)"""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    try:
        from asyncpg import exceptions as pg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    return isinstance(orig, pg.TransactionRollbackError) or isinstance(
        getattr(orig, "__cause__", None), pg.TransactionRollbackError)


class Backoff:
    """Growing pauses for a loop whose database is away; one success resets it."""

    def __init__(self, first: float = 0.2, cap: float = 5.0) -> None:
        self.first, self.cap = first, cap
        self.failures = 0

    def next_delay(self) -> float:
        self.failures += 1
        return min(self.cap, self.first * 2 ** (self.failures - 1))

    async def pause(self) -> None:
        await asyncio.sleep(self.next_delay())

    def reset(self) -> None:
        self.failures = 0


async def retry_transient(work: Any, *, attempts: int = 8, first: float = 0.2, cap: float = 5.0) -> Any:
    """Run `work()` (a coroutine factory), retrying transient database errors with backoff."""
    backoff = Backoff(first, cap)
    for attempt in range(attempts):
        try:
            return await work()
        except Exception as exc:
            if not retryable(exc) or attempt == attempts - 1:
                raise
            await backoff.pause()
    raise AssertionError("unreachable")


# --- migrations ---------------------------------------------------------------------------------

def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("intern").joinpath("migrations")))
    cfg.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return cfg


def _upgrade_sync(url: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(url), "head")


async def upgrade(url: str) -> None:
    """Apply pending migrations. Alembic's async env runs its own loop, hence the thread."""
    await asyncio.to_thread(_upgrade_sync, url)


def head_revision(url: str) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


async def current_revision(db: Database) -> str | None:
    from sqlalchemy import text

    async with db.engine.connect() as conn:
        try:
            row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
        except Exception:
            return None
    return row[0] if row else None


class SchemaOutdated(RuntimeError):
    pass


async def ensure_schema(db: Database, *, auto_migrate: bool) -> None:
    """SQLite migrates itself; PostgreSQL refuses to run on an outdated schema unless asked."""
    head = head_revision(db.url)
    current = await current_revision(db)
    if current == head:
        return
    if auto_migrate or not db.is_postgres:
        await upgrade(db.url)
        return
    raise SchemaOutdated(
        f"The database schema is at {current or 'nothing'} but this version needs {head}. "
        "Run `intern db upgrade` (or `intern serve --migrate`) first."
    )
