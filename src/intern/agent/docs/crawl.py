"""Building the index from the live Hugging Face documentation (`intern docs index`).

How the documentation is laid out on the Hub (the URL scheme used here):

- A set lives at `<HF_ENDPOINT>/docs/<name>` (libraries) or `<HF_ENDPOINT>/learn/<name>` (courses,
  cookbook); see `sets.DOCS_SETS`. Its bare URL redirects to the set's first page
  (`/docs/trl` -> `/docs/trl/index`).
- Every page is HTML with the set's sidebar, a `<nav>` whose class list contains `flex-auto`: group
  titles followed by links to the set's pages (`/docs/trl/sft_trainer`), in toctree order. Links
  to the default version carry no version; pinned versions look like `/docs/<name>/v1.2.0/en/<page>`.
- The same page is served as markdown at the page URL plus `.md` (`/docs/trl/sft_trainer.md`);
  when that fails, the HTML page's main content is converted with markdownify.

Crawling: one GET per set for the sidebar, then one per page (a few at a time), on the Hub host
only, without the user's token (the documentation is public). A set that cannot be crawled keeps
the pages the previous index had for it; if nothing at all could be crawled, the current index
stays as it is and DocsCrawlError is raised.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag

import httpx
from bs4 import BeautifulSoup, Tag

from intern.agent.docs.index import IndexStats, Page, open_index, read_meta, write_index
from intern.agent.docs.sets import DOCS_SETS, SETS_BY_NAME, DocsSet
from intern.agent.docs.web import FetchError, HostNotAllowed, HostPolicy, html_to_markdown, safe_get

log = logging.getLogger(__name__)

Progress = Callable[[str], Any]
CONCURRENCY = 8
RETRIES = 3
RETRY_DELAY_S = 0.5  # doubled after each failed attempt
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class DocsCrawlError(Exception):
    """Nothing could be crawled; the index on disk was left as it was. `failed`: set -> reason."""

    def __init__(self, message: str, failed: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.failed = dict(failed or {})


@dataclass(frozen=True)
class SidebarLink:
    title: str
    section: str
    path: str


class _Crawler:
    def __init__(self, http: httpx.AsyncClient, hf_endpoint: str, progress: Progress | None) -> None:
        self.http = http
        self.base = hf_endpoint.rstrip("/")
        self.policy = HostPolicy(self.base)
        self.progress = progress or (lambda _line: None)
        self.limit = asyncio.Semaphore(CONCURRENCY)
        self.failed_pages = 0

    async def get(self, url: str, accept: str | None = None) -> tuple[str, str, str]:
        """(final url, content type, text), retrying what a busy server answers with."""
        for attempt in range(RETRIES):
            try:
                async with self.limit:
                    got = await safe_get(self.http, url, policy=self.policy, accept=accept)
                if not _same_origin(got.url, self.base):
                    raise FetchError(url, None, f"{url} redirected off the Hub to {got.url}")
                return got.url, got.content_type, got.text
            except FetchError as exc:
                if attempt == RETRIES - 1 or (exc.status is not None and exc.status not in RETRY_STATUSES):
                    raise
                await asyncio.sleep(RETRY_DELAY_S * 2**attempt)
        raise AssertionError("unreachable")

    async def crawl_set(self, docs_set: DocsSet) -> list[Page]:
        final_url, _, html = await self.get(self.base + docs_set.path)
        links = sidebar_links(html, docs_set.path, final_url)
        if not links:
            raise FetchError(final_url, None, f"no sidebar links for {docs_set.name} at {final_url}")
        pages = await asyncio.gather(*(self.crawl_page(docs_set, i, link) for i, link in enumerate(links)))
        found = [p for p in pages if p is not None]
        self.progress(f"{docs_set.name}: {len(found)} of {len(links)} pages")
        if not found:
            raise FetchError(final_url, None, f"none of the {len(links)} pages of {docs_set.name} could be read")
        return found

    async def crawl_page(self, docs_set: DocsSet, order: int, link: SidebarLink) -> Page | None:
        url = self.base + link.path
        try:
            markdown = await self.page_markdown(url)
        except (FetchError, HostNotAllowed) as exc:
            log.info("docs page %s skipped: %s", url, exc)
            self.failed_pages += 1
            return None
        return Page(docs_set.name, link.path, link.title, link.section, order, markdown)

    async def page_markdown(self, url: str) -> str:
        try:
            _, content_type, text = await self.get(url + ".md", accept="text/markdown, text/plain")
            if "html" not in content_type and text.strip():
                return text
        except FetchError as exc:
            if exc.status is None or exc.status >= 500:
                raise
        _, _, html = await self.get(url, accept="text/html")
        return html_to_markdown(html)


def _same_origin(url: str, base: str) -> bool:
    a, b = httpx.URL(url), httpx.URL(base)
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def sidebar_links(html: str, set_path: str, page_url: str) -> list[SidebarLink]:
    """The set's pages from its sidebar, in order, each with the group title it sits under."""
    soup = BeautifulSoup(html, "lxml")
    nav = _sidebar(soup, set_path)
    if nav is None:
        return []
    links: list[SidebarLink] = []
    seen: set[str] = set()
    section = ""
    for element in nav.descendants:
        if not isinstance(element, Tag):
            continue
        if element.name in ("h1", "h2", "h3", "h4", "h5", "h6"):
            section = element.get_text(" ", strip=True)
        elif element.name == "a" and element.get("href"):
            path = _page_path(str(element["href"]), page_url, set_path)
            if path and path not in seen:
                seen.add(path)
                links.append(SidebarLink(element.get_text(" ", strip=True) or path.rsplit("/", 1)[-1],
                                         section, path))
    return links


def _sidebar(soup: BeautifulSoup, set_path: str) -> Tag | None:
    navs = [n for n in soup.find_all("nav") if isinstance(n, Tag)]
    flex = [n for n in navs if "flex-auto" in (n.get("class") or [])]
    candidates = flex or navs
    best = max(candidates, key=lambda n: _count_links(n, set_path), default=None)
    return best if best is not None and _count_links(best, set_path) else None


def _count_links(nav: Tag, set_path: str) -> int:
    return sum(1 for a in nav.find_all("a", href=True) if str(a["href"]).split("#")[0].startswith(set_path + "/"))


LANGUAGES = frozenset({"ar", "de", "es", "fr", "hi", "it", "ja", "ko", "pt", "ru", "te", "tr", "vi", "zh",
                       "zh-hans", "zh-hant"})


def _page_path(href: str, page_url: str, set_path: str) -> str | None:
    """The canonical path of a sidebar link: the default version, in English; None for other pages."""
    absolute = httpx.URL(page_url).join(urldefrag(href)[0])
    if not _same_origin(str(absolute), page_url):
        return None
    path = absolute.path.rstrip("/")
    if not path.startswith(set_path + "/") or path.endswith(".md"):
        return None
    rest = path[len(set_path) + 1:].split("/")
    if len(rest) > 2 and (rest[0] == "main" or re.fullmatch(r"v\d[\w.\-]*", rest[0])) and re.fullmatch(
            r"[a-z]{2}(-[a-z]+)?", rest[1]):
        if rest[1] != "en":
            return None
        rest = rest[2:]  # a pinned version of the page: index it under its plain URL
    if rest[0] in LANGUAGES:
        return None
    return f"{set_path}/{'/'.join(rest)}"


async def build_index(docs_dir: Path, *, hf_endpoint: str, http: httpx.AsyncClient,
                      endpoints: list[str] | None = None, progress: Progress | None = None) -> IndexStats:
    """Crawl the live documentation sets (all of DOCS_SETS, or `endpoints`) into a new index."""
    started = time.perf_counter()
    chosen = _chosen_sets(endpoints)
    crawler = _Crawler(http, hf_endpoint, progress)
    results = await asyncio.gather(*(crawler.crawl_set(s) for s in chosen), return_exceptions=True)

    pages: list[Page] = []
    failed: dict[str, str] = {}
    for docs_set, result in zip(chosen, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, FetchError | HostNotAllowed | httpx.HTTPError):
                raise result
            failed[docs_set.name] = str(result)
        else:
            pages.extend(result)
    if not pages:
        raise DocsCrawlError("no documentation could be crawled: " + "; ".join(f"{k}: {v}" for k, v in failed.items()),
                             failed)

    kept = _carry_over(docs_dir, pages, crawled={s.name for s in chosen} - set(failed))
    stats = write_index(docs_dir, pages, source="live", hf_endpoint=hf_endpoint, failed_sets=failed,
                        failed_pages=crawler.failed_pages, kept_from_previous=kept)
    stats = dataclasses.replace(stats, seconds=time.perf_counter() - started)
    crawler.progress(f"indexed {stats.pages} pages from {len(stats.sets)} sets in {stats.seconds:.1f}s")
    return stats


def _chosen_sets(endpoints: Sequence[str] | None) -> list[DocsSet]:
    if endpoints is None:
        return list(DOCS_SETS)
    unknown = [e for e in endpoints if e not in SETS_BY_NAME]
    if unknown:
        raise ValueError(f"unknown documentation sets: {', '.join(unknown)}")
    return [SETS_BY_NAME[e] for e in endpoints]


def _carry_over(docs_dir: Path, pages: list[Page], crawled: set[str]) -> dict[str, int]:
    """Pages of the current index for sets not crawled this time (failed, or not asked for)."""
    if read_meta(docs_dir) is None:
        return {}
    previous = open_index(docs_dir)
    kept: dict[str, int] = {}
    try:
        for name in previous.set_counts():
            if name in crawled:
                continue
            old = previous.stored_pages(name)
            pages.extend(old)
            kept[name] = len(old)
    finally:
        previous.close()
    return kept
