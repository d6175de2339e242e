"""`intern serve` keeps the documentation index fresh by itself: one process at a time (a lease in the
database) runs `intern docs index` as a child against the docs stand-in; searches keep the index they
have until the new one is complete; then every process opens the new generation."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from intern.agent.docs.index import read_meta
from intern.bot.docs_refresh import LEASE, DocsRefresher
from intern.bot.models import Lease
from intern.bot.settings import Settings
from intern.bot.wiring import build_runtime, close_runtime
from tests.docs.test_index import site  # noqa: F401 (the docs site the Hub stand-in serves)

CRAWL = [sys.executable, "-m", "intern.bot.cli", "docs", "index", "--endpoint", "trl", "--endpoint", "peft"]


async def runtime(url: str, docs: Path, hub: Any) -> Any:
    settings = Settings(INTERN_DATABASE_URL=url, INTERN_DOCS_DIR=str(docs), HF_ENDPOINT=hub.url,  # type: ignore[call-arg]
                        INTERN_DOCS_MAX_AGE_HOURS=24)
    return await build_runtime(settings)


def crawled(hub: Any) -> int:
    return sum(1 for r in hub.requests if r.path.startswith("/docs/trl") and r.path.endswith(".md"))


async def test_one_process_refreshes_and_every_process_searches_the_new_index(
        migrated_url: str, tmp_path: Path, hub: Any, site: Path) -> None:  # noqa: F811
    docs = tmp_path / "docs"
    first, second = await runtime(migrated_url, docs, hub), await runtime(migrated_url, docs, hub)
    try:
        old = first.docs_index
        assert old is not None and old.source == "snapshot"  # a fresh install: only the shipped snapshot
        before = old.search("quokkaflux").hits
        assert before == []  # a word only the live docs have

        a = DocsRefresher(first, first_check=0, command=CRAWL)
        b = DocsRefresher(second, first_check=0, command=CRAWL)
        build = asyncio.create_task(a.tick())
        await _until(_held(first))
        # meanwhile: the other process on this host does not crawl too, and searches use the old index
        assert await b.tick() == "not due"
        assert first.docs_index is old and old.search("peft").hits
        assert await build == "built"
        assert crawled(hub) == 3  # one crawl of the set's pages, by one process

        assert first.docs_index is not old and first.docs_index.source == "live"
        [hit] = first.docs_index.search("quokkaflux").hits
        assert hit.path == "/docs/trl/index"
        assert await b.tick() == "not due"  # the second process opens the new generation, no second crawl
        assert second.docs_index.meta["generation"] == read_meta(docs)["generation"]  # type: ignore[index]
        assert crawled(hub) == 3
    finally:
        await close_runtime(first)
        await close_runtime(second)


async def test_processes_on_other_hosts_take_turns(migrated_url: str, tmp_path: Path, hub: Any,
                                                   site: Path) -> None:  # noqa: F811
    first = await runtime(migrated_url, tmp_path / "host-a", hub)
    second = await runtime(migrated_url, tmp_path / "host-b", hub)
    try:
        a = DocsRefresher(first, first_check=0, command=CRAWL)
        b = DocsRefresher(second, first_check=0, command=CRAWL)
        build = asyncio.create_task(a.tick())
        await _until(_held(first))
        assert await b.tick() == "busy"  # its own index is due, but one crawl at a time
        assert await build == "built"
        assert crawled(hub) == 3
        assert await b.tick() == "built"
        assert crawled(hub) == 6 and second.docs_index.source == "live"
    finally:
        await close_runtime(first)
        await close_runtime(second)


async def test_a_refresh_that_fails_keeps_the_index_and_waits(migrated_url: str, tmp_path: Path, hub: Any,
                                                              site: Path) -> None:  # noqa: F811
    hub.state["docs_down"] = {"trl", "peft"}
    rt = await runtime(migrated_url, tmp_path / "docs", hub)
    try:
        old = rt.docs_index
        refresher = DocsRefresher(rt, first_check=0, command=CRAWL)
        assert await refresher.tick() == "failed"
        assert rt.docs_index is old and old.source == "snapshot"
        served = len(hub.requests)
        assert await refresher.tick() == "not due"  # a failed attempt waits an hour before the next
        assert len(hub.requests) == served
    finally:
        await close_runtime(rt)


def _held(rt: Any) -> Any:
    async def check() -> bool:
        async with rt.db.session() as db:
            lease = (await db.execute(select(Lease).where(Lease.name == LEASE))).scalar_one_or_none()
        return lease is not None and lease.owner == rt.owner

    return check


async def _until(predicate: Any, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "never happened"
        await asyncio.sleep(0.02)
