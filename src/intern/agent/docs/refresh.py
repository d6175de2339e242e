"""Refreshing the index when it is due: built from the snapshot, or older than the maximum age.

A failed refresh is remembered (`last_attempt.json`) so that a bot restarting in a loop, or one
without network, does not crawl again at every start; it tries again after RETRY_AFTER_HOURS.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from intern.agent.docs.crawl import Progress, build_index
from intern.agent.docs.index import IndexStats, read_meta

RETRY_AFTER_HOURS = 1.0


def needs_refresh(docs_dir: Path, *, max_age_hours: float, now: datetime | None = None) -> bool:
    now = now or datetime.now(UTC)
    meta = read_meta(docs_dir)
    if meta is not None and meta.get("source") == "live":
        age = now - datetime.fromisoformat(meta["built_at"])
        if age <= timedelta(hours=max_age_hours):
            return False
    last = _last_attempt(docs_dir)
    return last is None or now - last > timedelta(hours=RETRY_AFTER_HOURS)


async def refresh_if_needed(docs_dir: Path, *, max_age_hours: float, hf_endpoint: str,
                            http: httpx.AsyncClient, progress: Progress | None = None) -> IndexStats | None:
    """Crawl and rebuild when due; None when the index is fresh enough or a recent attempt failed."""
    docs_dir = Path(docs_dir)
    if not needs_refresh(docs_dir, max_age_hours=max_age_hours):
        return None
    record_attempt(docs_dir)
    return await build_index(docs_dir, hf_endpoint=hf_endpoint, http=http, progress=progress)


def _last_attempt(docs_dir: Path) -> datetime | None:
    try:
        data = json.loads((docs_dir / "last_attempt.json").read_text(encoding="utf-8"))
        return datetime.fromisoformat(data["at"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def record_attempt(docs_dir: Path) -> None:
    """Remember that a refresh was tried now (a failure waits RETRY_AFTER_HOURS before the next)."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    (docs_dir / "last_attempt.json").write_text(json.dumps({"at": datetime.now(UTC).isoformat()}), encoding="utf-8")
