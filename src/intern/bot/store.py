"""Database engine and sessions. SQLite (WAL) by default, PostgreSQL in production.

The async driver is chosen here: aiosqlite for SQLite, asyncpg for PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


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


@dataclass
class Database:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    url: str

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
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as s, s.begin():
            yield s

    async def dispose(self) -> None:
        await self.engine.dispose()


def connect(url: str, *, pool_size: int = 10, echo: bool = False) -> Database:
    aurl = async_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if aurl.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800)
    engine = create_async_engine(aurl, **kwargs)
    if aurl.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return Database(engine, async_sessionmaker(engine, expire_on_commit=False), url)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


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
