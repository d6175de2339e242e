"""The on-disk documentation index: writing a generation, opening the current one, searching it.

Layout of `docs_dir`:

    current.json          which generation is live, when and from what it was built
    gen-<stamp>/          a Whoosh index (one document per page) plus toc.json (sidebar order)
    .lock                 held while a generation is written

A generation is never modified once written; a rebuild writes a new one and switches `current.json`
atomically, so readers never see a half-built index. The previous generation is kept (a process
that opened it may still read it); older ones are removed.

Opening never crawls: an existing index opens in milliseconds; with none (a fresh install) the
shipped snapshot, a few dozen short pages, is indexed first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from whoosh import index as whoosh_index
from whoosh.fields import ID, NUMERIC, STORED, TEXT, Schema
from whoosh.query import Or, Query, Term
from whoosh.searching import Searcher

from intern.agent.docs.analysis import docs_analyzer, terms
from intern.agent.docs.page import Page
from intern.agent.docs.snapshot import snapshot_pages
from intern.agent.docs.text import SnippetPicker, headings, page_title, plain_text

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3  # an index written by another version is re-indexed from its stored pages when opened
INDEX_NAME = "docs"
# Every searched field is one more posting list to score per word, which is what Whoosh spends its
# time on: the sidebar group is searched as part of the body rather than as a field of its own.
FIELD_BOOSTS = {"title": 4.0, "headings": 2.0, "body": 1.0}
SEARCH_FIELDS = tuple(FIELD_BOOSTS)
# A query word found in more pages than this is "common": it still counts in titles, but its long
# posting lists in the other fields are not scored. Such words carry little weight in BM25 anyway,
# and scoring them is most of Whoosh's cost on a large index (see bench/docs_search.py).
COMMON_FRACTION = 0.15
COMMON_MIN_PAGES = 300


@dataclass(frozen=True)
class IndexStats:
    path: Path
    source: str  # "live" or "snapshot"
    built_at: datetime
    pages: int
    sets: dict[str, int]
    failed_sets: dict[str, str] = field(default_factory=dict)
    failed_pages: int = 0
    kept_from_previous: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class DocHit:
    set: str
    path: str
    title: str
    section: str
    heading: str | None
    anchor: str | None
    snippet: str
    score: float

    def url(self, base: str) -> str:
        return f"{base.rstrip('/')}{self.path}" + (f"#{self.anchor}" if self.anchor else "")


@dataclass(frozen=True)
class SearchResult:
    hits: list[DocHit]
    query_terms: list[str]


def docs_schema() -> Schema:
    analyzer = docs_analyzer()
    return Schema(
        set=ID(stored=True),
        path=ID(stored=True, unique=True),
        title=TEXT(analyzer=analyzer, phrase=False, field_boost=FIELD_BOOSTS["title"]),  # page heading + sidebar name
        display_title=STORED,
        section=STORED,
        headings=TEXT(analyzer=analyzer, phrase=False, field_boost=FIELD_BOOSTS["headings"]),
        body=TEXT(analyzer=analyzer, phrase=False),  # sidebar group, text and code
        sidebar_title=STORED,
        order=NUMERIC(stored=True),
        markdown=STORED,
    )


def _now() -> datetime:
    return datetime.now(UTC)


# --- writing ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(docs_dir: Path) -> Iterator[None]:
    docs_dir.mkdir(parents=True, exist_ok=True)
    with open(docs_dir / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_index(docs_dir: Path, pages: Iterable[Page], *, source: str, hf_endpoint: str | None = None,
                failed_sets: dict[str, str] | None = None, failed_pages: int = 0,
                kept_from_previous: dict[str, int] | None = None) -> IndexStats:
    """Index `pages` as a new generation and make it the current one."""
    with _locked(Path(docs_dir)):
        return _write_unlocked(Path(docs_dir), pages, source=source, hf_endpoint=hf_endpoint,
                               failed_sets=failed_sets or {}, failed_pages=failed_pages,
                               kept_from_previous=kept_from_previous or {})


def _write_unlocked(docs_dir: Path, pages: Iterable[Page], *, source: str, hf_endpoint: str | None,
                    failed_sets: dict[str, str], failed_pages: int, kept_from_previous: dict[str, int],
                    built_at: datetime | None = None) -> IndexStats:
    started = time.perf_counter()
    gen = f"gen-{_now().strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    gen_dir = docs_dir / gen
    gen_dir.mkdir(parents=True)
    try:
        counts, toc = _write_generation(gen_dir, pages)
        (gen_dir / "toc.json").write_text(json.dumps(toc), encoding="utf-8")
    except BaseException:
        shutil.rmtree(gen_dir, ignore_errors=True)
        raise
    built_at = built_at or _now()
    meta: dict[str, Any] = {
        "version": SCHEMA_VERSION, "generation": gen, "built_at": built_at.isoformat(),
        "source": source, "hf_endpoint": hf_endpoint, "pages": sum(counts.values()), "sets": counts,
        "failed_sets": failed_sets, "failed_pages": failed_pages, "kept_from_previous": kept_from_previous,
    }
    _write_json_atomically(docs_dir / "current.json", meta)
    _remove_old_generations(docs_dir, keep={gen, *_previous_generation(docs_dir, gen)})
    return IndexStats(gen_dir, source, built_at, meta["pages"], counts, failed_sets, failed_pages,
                      kept_from_previous, time.perf_counter() - started)


def _write_generation(gen_dir: Path, pages: Iterable[Page]) -> tuple[dict[str, int], dict[str, list[Any]]]:
    ix = whoosh_index.create_in(str(gen_dir), docs_schema(), indexname=INDEX_NAME)
    writer = ix.writer(limitmb=256)
    counts: dict[str, int] = {}
    toc: dict[str, list[Any]] = {}
    seen: set[str] = set()
    try:
        for page in pages:
            if page.path in seen:
                continue
            seen.add(page.path)
            writer.add_document(**document_fields(page))
            counts[page.set] = counts.get(page.set, 0) + 1
            toc.setdefault(page.set, []).append([page.order, page.path, _display_title(page), page.section])
    except BaseException:
        writer.cancel()
        raise
    writer.commit()
    ix.close()
    for entries in toc.values():
        entries.sort(key=lambda e: e[0])
    return counts, {name: [e[1:] for e in entries] for name, entries in toc.items()}


def _display_title(page: Page) -> str:
    return page_title(page.markdown) or page.title


def document_fields(page: Page) -> dict[str, Any]:
    """What is indexed and stored for a page."""
    title = _display_title(page)
    heads = [h.text for h in headings(page.markdown) if h.level > 1]
    body = "\n".join([page.section, plain_text(page.markdown)[:200_000]])
    return {
        "set": page.set, "path": page.path,
        "title": title if title == page.title else f"{title}\n{page.title}", "display_title": title,
        "section": page.section, "headings": "\n".join(heads), "body": body,
        "sidebar_title": page.title, "order": page.order, "markdown": page.markdown,
    }


def _write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _previous_generation(docs_dir: Path, new_gen: str) -> list[str]:
    gens = sorted(p.name for p in docs_dir.glob("gen-*") if p.is_dir() and p.name != new_gen)
    return gens[-1:]


def _remove_old_generations(docs_dir: Path, keep: set[str]) -> None:
    for path in docs_dir.glob("gen-*"):
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def read_meta(docs_dir: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((Path(docs_dir) / "current.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


# --- opening ---------------------------------------------------------------------------------------


def open_index(docs_dir: Path | str, *, max_age_hours: float = 168.0) -> DocsIndex:
    """Open the current index; on a fresh install (or an unusable index) index the shipped snapshot.

    Never crawls. `DocsIndex.stale` says whether the index is older than `max_age_hours`.
    """
    docs_dir = Path(docs_dir)
    meta = read_meta(docs_dir)
    if meta is not None and meta.get("version") == SCHEMA_VERSION:
        try:
            return DocsIndex(docs_dir, meta, max_age_hours=max_age_hours)
        except Exception as exc:  # a damaged index must not keep the bot from starting
            log.warning("documentation index in %s is unusable (%s); indexing the snapshot", docs_dir, exc)
    return _open_from_snapshot(docs_dir, max_age_hours)


def _open_from_snapshot(docs_dir: Path, max_age_hours: float) -> DocsIndex:
    try:
        with _locked(docs_dir):
            meta = read_meta(docs_dir)  # another process may have built it while we waited
            if meta is not None and meta.get("version") != SCHEMA_VERSION and _usable(docs_dir, meta):
                _reindex(docs_dir, meta)
                meta = read_meta(docs_dir)
            if meta is None or meta.get("version") != SCHEMA_VERSION or not _usable(docs_dir, meta):
                _write_unlocked(docs_dir, snapshot_pages(), source="snapshot", hf_endpoint=None,
                                failed_sets={}, failed_pages=0, kept_from_previous={})
                meta = read_meta(docs_dir)
    except OSError as exc:  # a read-only or full disk must not keep the bot from starting
        fallback = Path(tempfile.mkdtemp(prefix="intern-docs-"))
        log.warning("cannot write the documentation index in %s (%s); using %s", docs_dir, exc, fallback)
        write_index(fallback, snapshot_pages(), source="snapshot")
        docs_dir, meta = fallback, read_meta(fallback)
    assert meta is not None
    return DocsIndex(docs_dir, meta, max_age_hours=max_age_hours)


def _reindex(docs_dir: Path, meta: dict[str, Any]) -> None:
    """Re-index the pages stored in an index written by an older version, so that an upgrade keeps a
    crawled index (and its age) instead of falling back to the snapshot until the next crawl."""
    started = time.perf_counter()
    try:
        ix = whoosh_index.open_dir(str(docs_dir / meta["generation"]), indexname=INDEX_NAME)
        with ix.searcher() as searcher:
            pages = [_stored_page(d) for d in searcher.all_stored_fields()]
        ix.close()
        stats = _write_unlocked(
            docs_dir, sorted(pages, key=lambda p: (p.set, p.order)), source=meta["source"],
            hf_endpoint=meta.get("hf_endpoint"), failed_sets=meta.get("failed_sets", {}),
            failed_pages=meta.get("failed_pages", 0), kept_from_previous=meta.get("kept_from_previous", {}),
            built_at=datetime.fromisoformat(meta["built_at"]))
    except Exception as exc:  # the snapshot is the fallback
        log.warning("could not re-index the documentation index of an older version (%s)", exc)
        return
    log.info("re-indexed %d documentation pages for index version %d in %.1fs",
             stats.pages, SCHEMA_VERSION, time.perf_counter() - started)


def _stored_page(stored: dict[str, Any]) -> Page:
    """A page as the index stores it (everything needed to index it again)."""
    return Page(stored["set"], stored["path"], stored["sidebar_title"], stored["section"], stored["order"],
                stored["markdown"])


def _usable(docs_dir: Path, meta: dict[str, Any]) -> bool:
    try:
        whoosh_index.open_dir(str(docs_dir / meta["generation"]), indexname=INDEX_NAME).close()
    except Exception:
        return False
    return True


class DocsIndex:
    """A read-only view of one generation of the index."""

    def __init__(self, docs_dir: Path, meta: dict[str, Any], *, max_age_hours: float) -> None:
        self.docs_dir = docs_dir
        self.meta = meta
        self.max_age_hours = max_age_hours
        self.path = docs_dir / meta["generation"]
        self._ix = whoosh_index.open_dir(str(self.path), indexname=INDEX_NAME)
        self._searcher: Searcher = self._ix.searcher()
        self._common_above = max(COMMON_FRACTION * self._searcher.doc_count(), COMMON_MIN_PAGES)
        self._toc: dict[str, list[list[str]]] | None = None
        self._scopes: dict[tuple[str, ...], set[int] | None] = {}

    # what the index is
    @property
    def built_at(self) -> datetime:
        return datetime.fromisoformat(self.meta["built_at"])

    @property
    def source(self) -> str:
        return str(self.meta.get("source", "snapshot"))

    @property
    def age_hours(self) -> float:
        return (_now() - self.built_at).total_seconds() / 3600

    @property
    def stale(self) -> bool:
        return self.age_hours > self.max_age_hours

    def set_counts(self) -> dict[str, int]:
        return dict(self.meta.get("sets", {}))

    def describe(self) -> str:
        origin = "the live documentation" if self.source == "live" else "the snapshot shipped with Intern"
        return f"{self.meta.get('pages', 0)} pages from {origin}, built {self.built_at:%Y-%m-%d %H:%M} UTC"

    # reading
    def toc(self, sets: Sequence[str]) -> list[DocHit]:
        """Pages of the given sets in sidebar order."""
        if self._toc is None:
            self._toc = json.loads((self.path / "toc.json").read_text(encoding="utf-8"))
        return [DocHit(name, path, title, section, None, None, "", 0.0)
                for name in sets for path, title, section in self._toc.get(name, [])]

    def search(self, query: str, *, sets: Sequence[str] | None = None, limit: int = 10) -> SearchResult:
        words = terms(query)
        if not words:
            return SearchResult([], words)
        rare = self.rare_words(words)
        results = self._searcher.search(self._query(words, rare), limit=limit, filter=self.scope(sets))
        picker = SnippetPicker(rare)  # common words would only dilute the choice of passage
        return SearchResult([self._hit(hit, picker) for hit in results], words)

    def build_query(self, words: list[str]) -> Query | None:
        return self._query(words, self.rare_words(words)) if words else None

    def rare_words(self, words: list[str]) -> list[str]:
        """The words not in more than COMMON_FRACTION of the pages (at least the rarest one)."""
        df = {w: self._searcher.doc_frequency("body", w) for w in words}
        return [w for w in words if df[w] <= self._common_above] or [min(words, key=df.__getitem__)]

    @staticmethod
    def _query(words: list[str], rare: list[str]) -> Query:
        """Rare words in every field, common words in titles only.

        Plain words only: a question written by a model is full of colons, quotes and parentheses
        that a query syntax would misread.
        """
        subqueries: list[Query] = [Or([Term(f, w) for f in SEARCH_FIELDS]) for w in rare]
        subqueries += [Term("title", w) for w in words if w not in rare]
        return Or(subqueries)

    def scope(self, sets: Sequence[str] | None) -> set[int] | None:
        """The documents of these sets (None: no restriction), computed once: the index never changes."""
        key = tuple(sorted(set(sets or ())))
        if key not in self._scopes:
            present = set(self.meta.get("sets", {}))
            if not key or present <= set(key):
                self._scopes[key] = None
            else:
                self._scopes[key] = set(self._searcher.docs_for_query(Or([Term("set", s) for s in key])))
        return self._scopes[key]

    def searcher(self) -> Searcher:
        return self._searcher

    def page(self, path: str) -> dict[str, Any] | None:
        return self._searcher.document(path=path)

    def stored_pages(self, set_name: str) -> list[Page]:
        """Every stored page of a set (a rebuild keeps them when the set cannot be crawled)."""
        return [_stored_page(d) for d in self._searcher.documents(set=set_name)]

    def _hit(self, hit: Any, picker: SnippetPicker) -> DocHit:
        fields = hit.fields()
        heading, snippet = picker.pick(fields["markdown"])
        return DocHit(
            fields["set"], fields["path"], fields["display_title"], fields["section"],
            heading.text if heading and heading.level > 1 else None,
            heading.anchor if heading and heading.level > 1 else None, snippet, float(hit.score),
        )

    def close(self) -> None:
        self._searcher.close()
        self._ix.close()


def stats_from_meta(docs_dir: Path, meta: dict[str, Any]) -> IndexStats:
    return IndexStats(Path(docs_dir) / meta["generation"], meta.get("source", "snapshot"),
                      datetime.fromisoformat(meta["built_at"]), int(meta.get("pages", 0)),
                      dict(meta.get("sets", {})), dict(meta.get("failed_sets", {})),
                      int(meta.get("failed_pages", 0)))


def stats_dict(stats: IndexStats) -> dict[str, Any]:
    data = asdict(stats)
    data["path"] = str(stats.path)
    data["built_at"] = stats.built_at.isoformat()
    return data
