"""One documentation page as the crawler finds it and the index stores it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    set: str
    path: str  # URL path on the Hub, e.g. /docs/trl/sft_trainer
    title: str  # from the sidebar
    section: str  # the sidebar group the page sits in
    order: int  # position in the sidebar
    markdown: str
