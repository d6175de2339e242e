"""`intern docs index`: crawl the live documentation into the on-disk search index."""

from __future__ import annotations

import sys
from pathlib import Path
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
        except DocsCrawlError as exc:
            print(f"intern docs index: {nothing_crawled(exc.failed, settings.docs_path)}", file=sys.stderr)
            return 1
        except ValueError as exc:
            print(f"intern docs index: {exc}", file=sys.stderr)
            return 1
    print(f"Index at {stats.path}: {stats.pages} pages from {len(stats.sets)} documentation sets "
          f"in {stats.seconds:.1f}s.")
    if stats.failed_sets:
        print(f"Not reachable, kept from the previous index where there was one: {by_reason(stats.failed_sets)}",
              file=sys.stderr)
    return 0


def by_reason(failed: dict[str, str]) -> str:
    """`reason (sets)` for each distinct reason, the commonest first: one line however many sets failed."""
    groups: dict[str, list[str]] = {}
    for name, reason in failed.items():
        groups.setdefault(reason, []).append(name)
    parts = []
    for reason, names in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(sorted(names)[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        parts.append(f"{reason} ({shown})")
    return "; ".join(parts)


def nothing_crawled(failed: dict[str, str], path: Path) -> str:
    from intern.agent.docs.index import read_meta

    meta = read_meta(path)
    kept = ("the index there is left as it was" if meta and meta.get("source") == "live"
            else "searches keep using the shipped documentation snapshot")
    return (f"none of the {len(failed)} documentation set(s) could be fetched: {by_reason(failed)}. "
            f"The index at {path} is unchanged; {kept}.")
