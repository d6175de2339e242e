"""The on-disk index: fresh install from the snapshot, crawling the docs stand-in, reopening in a new
process without a crawl, staleness and refreshes, failures that keep what was there."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from intern.agent.docs import DocsCrawlError, build_index, crawl, needs_refresh, open_index, refresh_if_needed
from intern.agent.docs.crawl import sidebar_links
from intern.agent.docs.index import read_meta
from intern.agent.docs.snapshot import load_snapshot, snapshot_pages

SRC = str(Path(__file__).resolve().parents[2] / "src")
SITE: dict[str, list[tuple[str, str, str, str]]] = {
    "trl": [
        ("Getting started", "index", "TRL", "# TRL\n\nPost-training with the quokkaflux method.\n"),
        ("Trainers", "sft_trainer", "SFT", "# SFT Trainer\n\n## Packing\n\nPacking joins marmalade examples.\n"),
        ("Trainers", "dpo_trainer", "DPO", "# DPO Trainer\n\nPreferences with a tangerine reference.\n"),
    ],
    "peft": [
        ("Get started", "index", "PEFT", "# PEFT\n\nAdapters for the periwinkle models.\n"),
        ("Guides", "developer_guides/lora", "LoRA", "# LoRA\n\nLow rank updates, called saffron here.\n"),
    ],
}


def write_site(root: Path, site: dict[str, list[tuple[str, str, str, str]]]) -> None:
    for name, pages in site.items():
        base = root / "docs" / name
        groups: dict[str, list[dict[str, str]]] = {}
        for section, local, title, markdown in pages:
            groups.setdefault(section, []).append({"local": local, "title": title})
            (base / f"{local}.md").parent.mkdir(parents=True, exist_ok=True)
            (base / f"{local}.md").write_text(markdown, encoding="utf-8")
        toc = [{"sections": entries, "title": section} for section, entries in groups.items()]
        (base / "_toctree.yml").write_text(yaml.safe_dump(toc), encoding="utf-8")


@pytest.fixture
def site(tmp_path: Path, hub: Any) -> Path:
    root = tmp_path / "site"
    write_site(root, SITE)
    hub.state["docs_sets"] = load_snapshot(root)
    return root


@pytest.fixture(autouse=True)
def _no_retry_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crawl, "RETRY_DELAY_S", 0.0)


@pytest.fixture
async def plain_http() -> Any:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def _age(docs_dir: Path, hours: float) -> None:
    meta_path = docs_dir / "current.json"
    meta = json.loads(meta_path.read_text())
    meta["built_at"] = (datetime.now(UTC) - timedelta(hours=hours)).isoformat()
    meta_path.write_text(json.dumps(meta))


# --- fresh install ---------------------------------------------------------------------------------


def test_fresh_install_indexes_the_snapshot_quickly_and_once(tmp_path: Path) -> None:
    started, started_cpu = time.perf_counter(), time.process_time()
    index = open_index(tmp_path / "docs", max_age_hours=24)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    try:
        # The requirement is under a second; CPU time is asserted strictly because the wall clock
        # also counts whatever else a shared CI machine is doing.
        assert cpu < 1.0 and elapsed < 3.0
        assert index.source == "snapshot"
        assert index.meta["pages"] == len(list(snapshot_pages())) >= 40
        assert index.search("SFTConfig packing", sets=["trl"]).hits
    finally:
        index.close()
    again = open_index(tmp_path / "docs", max_age_hours=24)
    assert again.meta["generation"] == index.meta["generation"]
    again.close()


def test_an_unusable_index_falls_back_to_the_snapshot(tmp_path: Path) -> None:
    docs_dir = tmp_path / "docs"
    open_index(docs_dir).close()
    meta = read_meta(docs_dir)
    assert meta is not None
    meta["generation"] = "gen-missing"
    (docs_dir / "current.json").write_text(json.dumps(meta))
    index = open_index(docs_dir)
    try:
        assert index.source == "snapshot" and index.meta["generation"] != "gen-missing"
    finally:
        index.close()


def test_an_unwritable_docs_dir_still_gives_a_working_index(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "docs"
    not_a_dir.write_text("a file where the directory should be")
    index = open_index(not_a_dir)
    try:
        assert index.source == "snapshot" and index.docs_dir != not_a_dir
        assert index.search("LoraConfig rank", sets=["peft"]).hits
    finally:
        index.close()


# --- crawling ---------------------------------------------------------------------------------------


async def test_build_index_crawls_sidebars_and_markdown(tmp_path: Path, hub: Any, site: Path,
                                                        plain_http: httpx.AsyncClient) -> None:
    hub.state["docs_html_only"] = {"/docs/peft/developer_guides/lora"}
    lines: list[str] = []
    stats = await build_index(tmp_path / "docs", hf_endpoint=hub.url, http=plain_http,
                              endpoints=["trl", "peft"], progress=lines.append)
    assert stats.source == "live" and stats.pages == 5 and stats.sets == {"trl": 3, "peft": 2}
    assert stats.failed_sets == {} and stats.failed_pages == 0
    assert "trl: 3 of 3 pages" in lines
    paths = [r.path for r in hub.requests]
    assert "/docs/trl" in paths and "/docs/trl/index" in paths  # the redirect to the first page
    assert "/docs/trl/sft_trainer.md" in paths
    assert "/docs/peft/developer_guides/lora" in paths  # no markdown: the HTML was converted
    assert all("Authorization" not in r.headers for r in hub.requests)

    index = open_index(tmp_path / "docs")
    try:
        [hit] = index.search("marmalade", sets=["trl"]).hits
        assert (hit.path, hit.title, hit.section, hit.heading) == ("/docs/trl/sft_trainer", "SFT Trainer",
                                                                 "Trainers", "Packing")
        [lora] = index.search("saffron").hits
        assert lora.path == "/docs/peft/developer_guides/lora" and lora.title == "LoRA"
        assert [h.title for h in index.toc(["trl"])] == ["TRL", "SFT Trainer", "DPO Trainer"]
        assert index.meta["hf_endpoint"] == hub.url
    finally:
        index.close()


async def test_reopening_in_a_new_process_does_not_crawl(tmp_path: Path, hub: Any, site: Path,
                                                         plain_http: httpx.AsyncClient) -> None:
    docs_dir = tmp_path / "docs"
    await build_index(docs_dir, hf_endpoint=hub.url, http=plain_http, endpoints=["trl", "peft"])
    served = len(hub.requests)
    probe = (
        "import json, sys, time\n"
        "t = time.process_time()\n"
        "from intern.agent.docs import open_index\n"
        f"ix = open_index({str(docs_dir)!r}, max_age_hours=24)\n"
        "opened = time.process_time() - t\n"
        "hits = ix.search('tangerine reference').hits\n"
        "print(json.dumps({'opened': opened, 'source': ix.source, 'paths': [h.path for h in hits]}))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", probe, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    result = json.loads(stdout)
    assert result["source"] == "live"
    assert result["paths"] == ["/docs/trl/dpo_trainer"]
    assert result["opened"] < 1.0
    assert len(hub.requests) == served


async def test_an_index_of_an_older_version_is_reindexed_not_replaced(tmp_path: Path, hub: Any, site: Path,
                                                                     plain_http: httpx.AsyncClient) -> None:
    docs_dir = tmp_path / "docs"
    await build_index(docs_dir, hf_endpoint=hub.url, http=plain_http, endpoints=["trl", "peft"])
    _age(docs_dir, 30)
    old = read_meta(docs_dir)
    assert old is not None
    old["version"] = old["version"] - 1  # as written by the previous release
    (docs_dir / "current.json").write_text(json.dumps(old))
    served = len(hub.requests)

    index = open_index(docs_dir, max_age_hours=24)
    try:
        meta = index.meta
        assert meta["version"] == old["version"] + 1 and meta["generation"] != old["generation"]
        # The crawled pages and their age survive: no crawl, not the snapshot, still due at 24 h.
        assert index.source == "live" and meta["built_at"] == old["built_at"] and index.stale
        assert meta["sets"] == old["sets"] == {"trl": 3, "peft": 2}
        assert [h.path for h in index.search("tangerine reference").hits] == ["/docs/trl/dpo_trainer"]
        assert [h.path for h in index.toc(["peft"])] == ["/docs/peft/index", "/docs/peft/developer_guides/lora"]
    finally:
        index.close()
    assert len(hub.requests) == served


async def test_a_set_that_fails_keeps_its_previous_pages(tmp_path: Path, hub: Any, site: Path,
                                                         plain_http: httpx.AsyncClient) -> None:
    docs_dir = tmp_path / "docs"
    await build_index(docs_dir, hf_endpoint=hub.url, http=plain_http, endpoints=["trl", "peft"])
    hub.state["docs_down"] = {"peft"}
    stats = await build_index(docs_dir, hf_endpoint=hub.url, http=plain_http, endpoints=["trl", "peft"])
    assert "peft" in stats.failed_sets and "503" in stats.failed_sets["peft"]
    assert stats.kept_from_previous == {"peft": 2}
    assert stats.sets == {"trl": 3, "peft": 2}
    index = open_index(docs_dir)
    try:
        assert [h.path for h in index.search("periwinkle").hits] == ["/docs/peft/index"]
    finally:
        index.close()


async def test_crawling_one_set_keeps_the_others(tmp_path: Path, hub: Any, site: Path,
                                                 plain_http: httpx.AsyncClient) -> None:
    docs_dir = tmp_path / "docs"
    await build_index(docs_dir, hf_endpoint=hub.url, http=plain_http, endpoints=["trl", "peft"])
    stats = await build_index(docs_dir, hf_endpoint=hub.url, http=plain_http, endpoints=["trl"])
    assert stats.sets == {"trl": 3, "peft": 2} and stats.kept_from_previous == {"peft": 2}


async def test_when_nothing_can_be_crawled_the_index_is_left_alone(tmp_path: Path, hub: Any, site: Path,
                                                                   plain_http: httpx.AsyncClient) -> None:
    docs_dir = tmp_path / "docs"
    await build_index(docs_dir, hf_endpoint=hub.url, http=plain_http, endpoints=["trl", "peft"])
    before = (docs_dir / "current.json").read_text()
    hub.state["docs_down"] = {"trl", "peft"}
    with pytest.raises(DocsCrawlError, match="trl"):
        await build_index(docs_dir, hf_endpoint=hub.url, http=plain_http, endpoints=["trl", "peft"])
    assert (docs_dir / "current.json").read_text() == before


async def test_a_redirect_off_the_hub_is_not_crawled(tmp_path: Path, hub: Any, site: Path, other: Any,
                                                     plain_http: httpx.AsyncClient) -> None:
    hub.state["docs_redirects"] = {"/docs/peft": f"{other.url}/docs/peft/index"}
    stats = await build_index(tmp_path / "docs", hf_endpoint=hub.url, http=plain_http, endpoints=["trl", "peft"])
    assert "peft" in stats.failed_sets and stats.sets == {"trl": 3}
    assert other.requests == []


async def test_unknown_sets_are_refused(tmp_path: Path, hub: Any, plain_http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="nonsense"):
        await build_index(tmp_path, hf_endpoint=hub.url, http=plain_http, endpoints=["nonsense"])


async def test_readers_of_the_old_generation_keep_working(tmp_path: Path, hub: Any, site: Path,
                                                          plain_http: httpx.AsyncClient) -> None:
    docs_dir = tmp_path / "docs"
    old = open_index(docs_dir)
    try:
        await build_index(docs_dir, hf_endpoint=hub.url, http=plain_http, endpoints=["trl", "peft"])
        assert old.search("SFTConfig packing", sets=["trl"]).hits  # still the snapshot, still readable
        await build_index(docs_dir, hf_endpoint=hub.url, http=plain_http, endpoints=["trl", "peft"])
        assert len(list(docs_dir.glob("gen-*"))) == 2  # the current one and the one before
    finally:
        old.close()


def test_sidebar_parsing_follows_group_titles() -> None:
    html = """<html><body><nav class="navbar"><a href="/models">Models</a></nav>
    <nav class="top-0 flex-auto overflow-y-auto"><h3>Get started</h3><a href="/docs/x/index">X</a>
    <div><h4>Guides</h4><a href="/docs/x/a#part">A</a><a href="https://elsewhere.example/docs/x/b">B</a>
    <a href="/docs/x/a">A again</a><a href="c">C</a></div></nav></body></html>"""
    links = sidebar_links(html, "/docs/x", "https://huggingface.co/docs/x/index")
    assert [(link.section, link.title, link.path) for link in links] == [
        ("Get started", "X", "/docs/x/index"), ("Guides", "A", "/docs/x/a"), ("Guides", "C", "/docs/x/c")]


def test_sidebar_links_to_other_versions_and_languages_fold_into_the_default() -> None:
    html = """<nav class="flex-auto"><h3>Docs</h3><a href="/docs/x/v4.1.0/en/quicktour">Quick</a>
    <a href="/docs/x/quicktour">Quick again</a><a href="/docs/x/main/en/new_page">New</a>
    <a href="/docs/x/main/zh/index">Chinese</a><a href="/docs/x/ko/index">Korean</a>
    <a href="/docs/x/main_classes/trainer">Trainer</a></nav>"""
    links = sidebar_links(html, "/docs/x", "https://huggingface.co/docs/x/index")
    assert [link.path for link in links] == ["/docs/x/quicktour", "/docs/x/new_page", "/docs/x/main_classes/trainer"]


# --- staleness and refresh -------------------------------------------------------------------------


async def test_stale_index_is_refreshed_once(tmp_path: Path, hub: Any, site: Path,
                                             plain_http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crawl, "DOCS_SETS", tuple(s for s in crawl.DOCS_SETS if s.name in SITE))
    docs_dir = tmp_path / "docs"
    await build_index(docs_dir, hf_endpoint=hub.url, http=plain_http)
    assert not open_index(docs_dir, max_age_hours=24).stale
    assert not needs_refresh(docs_dir, max_age_hours=24)
    assert await refresh_if_needed(docs_dir, max_age_hours=24, hf_endpoint=hub.url, http=plain_http) is None

    _age(docs_dir, hours=30)
    old = open_index(docs_dir, max_age_hours=24)
    assert old.stale and 29 < old.age_hours < 31
    old.close()
    served = len(hub.requests)
    stats = await refresh_if_needed(docs_dir, max_age_hours=24, hf_endpoint=hub.url, http=plain_http)
    assert stats is not None and stats.pages == 5 and len(hub.requests) > served
    assert not open_index(docs_dir, max_age_hours=24).stale

    served = len(hub.requests)
    assert await refresh_if_needed(docs_dir, max_age_hours=24, hf_endpoint=hub.url, http=plain_http) is None
    assert len(hub.requests) == served


async def test_snapshot_index_is_due_and_a_failed_refresh_waits(tmp_path: Path, hub: Any, site: Path,
                                                                plain_http: httpx.AsyncClient,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crawl, "DOCS_SETS", tuple(s for s in crawl.DOCS_SETS if s.name in SITE))
    docs_dir = tmp_path / "docs"
    open_index(docs_dir).close()
    assert needs_refresh(docs_dir, max_age_hours=24)
    hub.state["docs_down"] = {"trl", "peft"}
    with pytest.raises(DocsCrawlError):
        await refresh_if_needed(docs_dir, max_age_hours=24, hf_endpoint=hub.url, http=plain_http)
    served = len(hub.requests)
    assert await refresh_if_needed(docs_dir, max_age_hours=24, hf_endpoint=hub.url, http=plain_http) is None
    assert len(hub.requests) == served
    assert open_index(docs_dir).source == "snapshot"
