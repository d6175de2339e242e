"""Repetition guard: the same call with the same result three times running, or a cycle of 2–5 calls
repeated twice. Polling with changing results is not a loop."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

Verdict = Literal["ok", "warn", "stop"]


def _key(name: str, arguments: str, result: str) -> str:
    try:
        args = json.dumps(json.loads(arguments or "{}"), sort_keys=True)
    except json.JSONDecodeError:
        args = arguments
    return hashlib.sha1(f"{name}\0{args}\0{result}".encode()).hexdigest()


class RepetitionGuard:
    def __init__(self, repeat: int = 3, max_cycle: int = 5, warnings_before_stop: int = 1) -> None:
        self.repeat, self.max_cycle = repeat, max_cycle
        self.warnings_before_stop = warnings_before_stop
        self.history: list[str] = []
        self.warnings = 0
        self._last: str = ""

    def observe(self, calls: list[tuple[str, str, str]]) -> Verdict:
        for name, arguments, result in calls:
            self.history.append(_key(name, arguments, result))
        pattern = self.detect()
        if pattern is None:
            return "ok"
        self._last = pattern
        if self.warnings >= self.warnings_before_stop:
            return "stop"
        self.warnings += 1
        self.history.clear()  # the next detection needs fresh evidence
        return "warn"

    def detect(self) -> str | None:
        h = self.history
        n = self.repeat
        if len(h) >= n and len(set(h[-n:])) == 1:
            return f"the same call with the same result {n} times in a row"
        for size in range(2, self.max_cycle + 1):
            if len(h) >= 2 * size and h[-size:] == h[-2 * size:-size] and len(set(h[-size:])) > 1:
                return f"a cycle of {size} calls repeated twice with the same results"
        return None

    def message(self) -> str:
        return (f"You are repeating yourself: {self._last}. Repeating will not change the outcome. "
                "Step back: re-read the last results, try a different approach, or ask the team in the "
                "thread. If you repeat again, the turn will be stopped.")
