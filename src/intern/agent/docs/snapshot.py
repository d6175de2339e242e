"""The documentation snapshot shipped with Intern, and the toctree format it shares with the real docs.

Each Hugging Face documentation set is built from a `_toctree.yml` (the sidebar: nested groups with a
`title` and `sections`, pages given by `local` path and `title`) plus one markdown file per page.
The snapshot keeps that layout under `intern/docs_snapshot/`, mirroring the URL paths:
`docs/trl/_toctree.yml` and `docs/trl/sft_trainer.md` are served as `/docs/trl/sft_trainer`.
Its pages are short summaries written for Intern, so a fresh install can search before the first
`intern docs index`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from intern.agent.docs.page import Page
from intern.agent.docs.sets import SETS_BY_NAME


@dataclass(frozen=True)
class TocEntry:
    section: str
    local: str
    title: str


@dataclass
class SnapshotSet:
    name: str
    path: str  # URL path prefix, e.g. /docs/trl
    toc: list[TocEntry]
    pages: dict[str, str] = field(default_factory=dict)  # local -> markdown

    def pages_in_order(self) -> Iterator[tuple[int, TocEntry, str]]:
        for order, entry in enumerate(self.toc):
            if entry.local in self.pages:
                yield order, entry, self.pages[entry.local]


def snapshot_root() -> Traversable:
    return resources.files("intern") / "docs_snapshot"


def parse_toctree(data: Any, group: str = "") -> list[TocEntry]:
    """Flatten a toctree: every page with the title of the innermost group that holds it."""
    entries: list[TocEntry] = []
    for item in data or []:
        if not isinstance(item, dict):
            continue
        title = str(item.get("title", ""))
        if "local" in item:
            entries.append(TocEntry(group, str(item["local"]), title))
        if "sections" in item:
            entries.extend(parse_toctree(item["sections"], title or group))
    return entries


def load_set(directory: Traversable | Path, name: str, url_path: str) -> SnapshotSet:
    toc = parse_toctree(yaml.safe_load((directory / "_toctree.yml").read_text(encoding="utf-8")))
    pages = {}
    for entry in toc:
        page = directory
        for part in f"{entry.local}.md".split("/"):
            page = page / part
        if page.is_file():
            pages[entry.local] = page.read_text(encoding="utf-8")
    return SnapshotSet(name, url_path, toc, pages)


def load_snapshot(root: Traversable | Path | None = None) -> list[SnapshotSet]:
    """Every set in the snapshot (or in a directory laid out the same way, for tests)."""
    root = root if root is not None else snapshot_root()
    sets = []
    for kind in ("docs", "learn"):
        base = root / kind
        if not base.is_dir():
            continue
        for directory in sorted(base.iterdir(), key=lambda d: d.name):
            if directory.is_dir() and (directory / "_toctree.yml").is_file():
                known = SETS_BY_NAME.get(directory.name)
                url_path = known.path if known else f"/{kind}/{directory.name}"
                sets.append(load_set(directory, directory.name, url_path))
    return sets


def snapshot_pages(root: Traversable | Path | None = None) -> Iterator[Page]:
    for snap in load_snapshot(root):
        for order, entry, markdown in snap.pages_in_order():
            yield Page(snap.name, f"{snap.path}/{entry.local}", entry.title, entry.section, order, markdown)


def snapshot_openapi_text() -> str:
    return (snapshot_root() / "openapi.json").read_text(encoding="utf-8")
