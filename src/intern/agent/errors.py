"""Three families of errors, decided by type, never by message text.

- ToolArgumentError and friends: feedback to the model (it can correct itself).
- TurnStopped: a terminal outcome for the turn, told to the thread.
- Infrastructure errors: the outside world failed. They stay the library's own exceptions (their
  types, HTTP statuses and causes are what callers and messages read), and `retryable` alone decides
  whether trying again after a pause may cure one, from one table of exception types. Each port
  declares the types of the library it wraps (`declare_retryable`) when it is set up: the Hub client
  those of huggingface_hub and httpx, the database layer those of SQLAlchemy and asyncpg.
"""

from __future__ import annotations

from collections.abc import Callable


class ToolFeedback(Exception):
    """A tool could not do what was asked; the message goes back to the model as the tool result."""


class ToolArgumentError(ToolFeedback):
    """The arguments the model gave are invalid."""


class TurnStopped(Exception):
    """The turn ends here; `message` is told to the thread."""

    def __init__(self, message: str, *, reason: str = "stopped") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class LLMConfigError(TurnStopped):
    """Authentication or request errors that only a setting change can fix."""

    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(message, reason="llm_config")
        self.setting = setting


class ContextOverflow(Exception):
    """The provider says the prompt does not fit; compaction should run."""


# An exception type's verdict: always retryable, never, or decided from what the exception carries
# (an HTTP status, an invalidated connection).
Verdict = bool | Callable[[BaseException], bool]

_VERDICTS: dict[type[BaseException], Verdict] = {
    ToolFeedback: False,
    TurnStopped: False,
    ContextOverflow: False,
    # A connection refused, reset or timed out, a host unreachable (ConnectionError and TimeoutError
    # are OSErrors too): database drivers report a lost connection as a bare OSError.
    OSError: True,
}


def declare_retryable(verdict: Verdict, *kinds: type[BaseException]) -> None:
    """A port says how the exceptions of the library it wraps are to be taken (idempotent)."""
    for kind in kinds:
        _VERDICTS[kind] = verdict


def retryable(exc: BaseException) -> bool:
    """Whether the same request, tried again after a pause, may succeed: a server restarting or
    overloaded, a dropped connection, a timeout, a transaction the database rolled back. The verdict
    of the most specific declared class of `exc` decides; an exception with none takes the verdict of
    the one it was raised from (a driver's error wrapped by its adapter); otherwise it is final."""
    for candidate in (exc, exc.__cause__):
        if candidate is None:
            continue
        verdict = _verdict(candidate)
        if verdict is not None:
            return verdict
    return False


def _verdict(exc: BaseException) -> bool | None:
    for kind in type(exc).__mro__:
        verdict = _VERDICTS.get(kind)
        if verdict is not None:
            return verdict if isinstance(verdict, bool) else verdict(exc)
    return None
