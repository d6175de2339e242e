"""A blank database upgraded to head matches the models (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from intern.bot.models import Base
from intern.bot.store import async_url, connect, current_revision, ensure_schema, head_revision, upgrade
from intern.migrations.schema import include_object


def _diff(conn: Any) -> list[Any]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include_object})
    return compare_metadata(ctx, Base.metadata)


async def test_blank_database_upgraded_to_head_matches_the_models(database_url: str) -> None:
    await upgrade(database_url)
    engine = create_async_engine(async_url(database_url))
    async with engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    await engine.dispose()
    assert diff == []


async def test_upgrade_is_idempotent_and_recorded(database_url: str) -> None:
    await upgrade(database_url)
    await upgrade(database_url)
    db = connect(database_url)
    try:
        assert await current_revision(db) == head_revision(database_url)
    finally:
        await db.dispose()


async def test_postgres_refuses_an_outdated_schema_and_sqlite_migrates_itself(database_url: str) -> None:
    from intern.bot.store import SchemaOutdated

    db = connect(database_url)
    try:
        if db.is_postgres:
            try:
                await ensure_schema(db, auto_migrate=False)
            except SchemaOutdated as exc:
                assert "intern db upgrade" in str(exc)
            else:
                raise AssertionError("an unmigrated PostgreSQL database was accepted")
        else:
            await ensure_schema(db, auto_migrate=False)
            assert await current_revision(db) == head_revision(database_url)
    finally:
        await db.dispose()
