"""Waiting out a busy server: how long to keep asking, and its Retry-After header (seconds, or an HTTP date)."""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait that a Retry-After value asks for; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep asking Semantic Scholar after 429s and 5xx answers."""

    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0  # a longer Retry-After is reported to the model instead of waited out
    budget: float = 60.0  # total seconds of waiting for one request
