"""Repetition guard: the same call with the same result three times running, or a cycle of 2–5 calls
repeated twice. A call is its tool, its arguments (JSON-normalised) and its result, so polling that
sees a changing result (job logs growing, a status moving on) is never a loop.

The first detection is a warning the model can act on; a second detection soon after it stops the
turn. A warning is forgiven once the model has made enough progress since: a new loop much later
is warned about again rather than ending the turn at once.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from typing import Literal

Verdict = Literal["ok", "warn", "stop"]


def call_key(name: str, arguments: str, result: str) -> bytes:
    try:
        args = json.dumps(json.loads(arguments or "{}"), sort_keys=True, separators=(",", ":"))
    except json.JSONDecodeError:
        args = arguments
    h = hashlib.blake2b(digest_size=16)
    for part in (name, args, result):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.digest()


class RepetitionGuard:
    def __init__(self, repeat: int = 3, max_cycle: int = 5, forgive_after: int = 15) -> None:
        self.repeat, self.max_cycle, self.forgive_after = repeat, max_cycle, forgive_after
        # only the recent calls matter: the longest pattern is a cycle of max_cycle seen twice
        self.history: deque[bytes] = deque(maxlen=max(repeat, 2 * max_cycle))
        self.warned = False
        self.calls_since_warning = 0
        self._last = ""

    def observe(self, calls: list[tuple[str, str, str]]) -> Verdict:
        """Record one step's calls as (tool name, raw arguments, result text) and judge."""
        verdict: Verdict = "ok"
        for name, arguments, result in calls:
            self.history.append(call_key(name, arguments, result))
            self.calls_since_warning += 1
            pattern = self.detect()
            if pattern is not None:
                verdict = self._judge(pattern)
                if verdict == "stop":
                    return verdict
        return verdict

    def _judge(self, pattern: str) -> Verdict:
        self._last = pattern
        self.history.clear()  # the next detection needs fresh evidence
        if self.warned and self.calls_since_warning < self.forgive_after:
            return "stop"
        self.warned = True
        self.calls_since_warning = 0
        return "warn"

    def detect(self) -> str | None:
        h = list(self.history)
        n = self.repeat
        if len(h) >= n and len(set(h[-n:])) == 1:
            return f"the same call with the same result {n} times in a row"
        for size in range(2, self.max_cycle + 1):
            if len(h) >= 2 * size and h[-size:] == h[-2 * size:-size] and len(set(h[-size:])) > 1:
                return f"a cycle of {size} calls repeated twice with the same results"
        return None

    @property
    def reason(self) -> str:
        return self._last

    def message(self) -> str:
        return (f"You are repeating yourself: {self._last}. Repeating will not change the outcome. "
                "Step back: re-read the last results, try a different approach, or ask the team in the "
                "thread. If you repeat again, the turn will be stopped.")

    def stop_message(self) -> str:
        return (f"I stopped this turn because I was going round in circles ({self._last}), even after a "
                "warning. Tell me how to proceed, or what to try differently.")
