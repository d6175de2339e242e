"""`intern docs index`: crawl the live documentation into the on-disk search index."""

from __future__ import annotations

import sys
from typing import Any


async def build_docs_index(settings: Any, *, endpoints: list[str] | None) -> int:
    import httpx

    from intern.agent.docs import DocsCrawlError, build_index

    def say(line: str) -> None:
        print(line, flush=True)

    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=False,
                                 trust_env=False) as http:
        try:
            stats = await build_index(settings.docs_path, hf_endpoint=settings.hf_endpoint, http=http,
                                      endpoints=endpoints, progress=say)
        except (DocsCrawlError, ValueError) as exc:
            print(f"intern docs index: {exc}", file=sys.stderr)
            return 1
    print(f"Index at {stats.path}: {stats.pages} pages from {len(stats.sets)} documentation sets "
          f"in {stats.seconds:.1f}s.")
    if stats.failed_sets:
        print("Not reachable (kept from the previous index where there was one): "
              + ", ".join(sorted(stats.failed_sets)), file=sys.stderr)
    return 0
