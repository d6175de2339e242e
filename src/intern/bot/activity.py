"""What the thread shows while a turn works: "is thinking…", then the step in hand; nothing once the
turn ends or waits on a card. One platform call per change, none when nothing changed, and at most one
a second (Slack's status method has a rate limit of its own)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from intern.bot.chat import Conversation

THINKING = "is thinking…"
MIN_INTERVAL = 1.0
BY_TOOL = {
    "hf_papers": "is reading papers…", "research": "is researching the literature…",
    "hf_inspect_dataset": "is inspecting the dataset…",
    "explore_hf_docs": "is reading the docs…", "fetch_hf_docs": "is reading the docs…",
    "find_hf_api": "is reading the Hub's API…",
    "hf_jobs": "is working on the job…", "team_history": "is checking the team's earlier runs…",
    "hf_repo_files": "is working on the Hub repo…", "hf_repo_git": "is working on the Hub repo…",
    "plan": "is planning…",
}


def status_for(tool: str) -> str:
    if tool.startswith("sandbox_"):
        return "is working in the sandbox…"
    return BY_TOOL.get(tool, f"is using {tool}…")


class Activity:
    def __init__(self, adapter: Callable[[], Any], conv: Conversation) -> None:
        self.adapter, self.conv = adapter, conv  # the adapter is looked up when needed
        self.shown = ""
        self.wanted = ""
        self._at = -MIN_INTERVAL
        self._later: asyncio.Task[None] | None = None

    async def show(self, status: str) -> None:
        """Show `status` now, or (within a second of the last call) as soon as a second has passed;
        clearing ("") is never delayed."""
        self.wanted = status
        wait = MIN_INTERVAL - (time.monotonic() - self._at)
        if status and wait > 0:
            if self._later is None or self._later.done():
                self._later = asyncio.create_task(self._show_later(wait))
            return
        await self._send()

    async def _show_later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        await self._send()

    async def _send(self) -> None:
        if self.wanted == self.shown:
            return
        self.shown, self._at = self.wanted, time.monotonic()
        await self.adapter().set_activity(self.conv, self.shown)

    def close(self) -> None:
        if self._later is not None and not self._later.done():
            self._later.cancel()
