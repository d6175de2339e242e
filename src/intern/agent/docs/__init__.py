"""Documentation search over the Hugging Face docs: the on-disk index, the crawler, the OpenAPI search.

    open_index(docs_dir, max_age_hours=...)   fast; indexes the shipped snapshot on a fresh install
    await build_index(docs_dir, hf_endpoint=..., http=...)   crawls the live docs (`intern docs index`)
    await refresh_if_needed(...)              crawls only when the index is due
"""

from intern.agent.docs.crawl import DocsCrawlError, build_index
from intern.agent.docs.index import DocHit, DocsIndex, IndexStats, Page, SearchResult, open_index
from intern.agent.docs.refresh import needs_refresh, refresh_if_needed
from intern.agent.docs.sets import DOCS_SETS, DocsSet, resolve_endpoint

__all__ = [
    "DOCS_SETS",
    "DocHit",
    "DocsCrawlError",
    "DocsIndex",
    "DocsSet",
    "IndexStats",
    "Page",
    "SearchResult",
    "build_index",
    "needs_refresh",
    "open_index",
    "refresh_if_needed",
    "resolve_endpoint",
]
