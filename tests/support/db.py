"""Database fixtures: every database test runs on SQLite, and again on PostgreSQL when
INTERN_TEST_DATABASE_URL is set. Each PostgreSQL test gets a database of its own, created and dropped
here (the shared server is never restarted)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from intern.bot.store import Database, async_url, connect, upgrade

PG_ENV = "INTERN_TEST_DATABASE_URL"
BACKENDS = ["sqlite", "postgres"]


def pg_base_url() -> str | None:
    return os.environ.get(PG_ENV) or None


async def create_pg_database(base: str) -> str:
    name = f"intern_t_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(async_url(base), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return make_url(base).set(database=name).render_as_string(hide_password=False)


async def drop_pg_database(base: str, url: str) -> None:
    name = make_url(url).database
    admin = create_async_engine(async_url(base), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A blank database URL (not migrated)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'intern.db'}"
        return
    base = pg_base_url()
    if base is None:
        pytest.skip(f"{PG_ENV} is not set")
    url = await create_pg_database(base)
    try:
        yield url
    finally:
        await drop_pg_database(base, url)


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    await upgrade(database_url)
    return database_url


@pytest.fixture
async def db(migrated_url: str) -> AsyncIterator[Database]:
    database = connect(migrated_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def backend(database_url: str) -> str:
    return "postgres" if database_url.startswith("postgres") else "sqlite"
