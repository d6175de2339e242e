"""Three families of errors, decided by type, never by message text.

- ToolArgumentError and friends: feedback to the model (it can correct itself).
- TurnStopped: a terminal outcome for the turn, told to the thread.
- InfraError: the outside world failed; `retryable` says whether to try again.
"""

from __future__ import annotations


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


class InfraError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable
