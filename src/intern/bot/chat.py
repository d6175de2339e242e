"""The chat-adapter port and the neutral types that cross it.

Adapters translate platform payloads into these inbound types and render these outbound types;
no business rule lives in an adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class Conversation:
    """Where a session lives: one thread of one channel of one workspace."""

    platform: str
    workspace: str
    channel: str
    thread: str

    @property
    def channel_scope(self) -> tuple[str, str, str]:
        return (self.platform, self.workspace, self.channel)


# --- inbound ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UserMessage:
    conversation: Conversation
    user: str
    text: str
    event_key: str  # platform message identity, e.g. slack:T1:C1:1595926230.009600
    mentioned: bool = False  # addressed to the bot explicitly (may start a session)
    files: tuple[dict[str, Any], ...] = ()
    user_groups: tuple[str, ...] = ()  # role / group ids the sender holds, when the platform sends them


@dataclass(frozen=True)
class ApprovalClick:
    approval_id: str
    user: str
    workspace: str
    platform: str
    decision: Literal["approve", "deny"]
    event_key: str
    user_groups: tuple[str, ...] = ()  # role / group ids the clicker holds, when the platform sends them


@dataclass(frozen=True)
class StopClick:
    session_id: str
    user: str
    workspace: str
    platform: str
    event_key: str
    user_groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobCancelClick:
    """The Cancel button of a job alert; `job_id` is the Hub's job id."""

    job_id: str
    user: str
    workspace: str
    platform: str
    event_key: str
    user_groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeedbackClick:
    """Thumbs up or down on a final answer (`message` names it); `reason` comes with a down-vote when
    the person gives one."""

    session_id: str
    vote: Literal["up", "down"]
    user: str
    workspace: str
    platform: str
    channel: str
    message: str  # the platform's id of the answer clicked (Slack ts, Discord message id)
    event_key: str
    reason: str | None = None


@dataclass(frozen=True)
class Command:
    """`@intern status|policy …|budget|history …|chart` (Slack) or `/intern status|policy|budget|history|chart`
    (Discord)."""

    conversation: Conversation
    user: str
    name: Literal["status", "policy", "budget", "history", "stop", "chart"]
    args: str = ""
    user_groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reply:
    """What the bot answers privately to whoever clicked or commanded."""

    text: str
    ok: bool = True
    said: bool = False  # the answer is already in the conversation (a chart posted there)


# --- outbound -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class MessageRef:
    platform: str
    channel: str
    id: str  # Slack ts, Discord message id
    thread: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"platform": self.platform, "channel": self.channel, "id": self.id, "thread": self.thread}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MessageRef:
        return cls(data["platform"], data["channel"], data["id"], data.get("thread"))


@dataclass(frozen=True)
class Button:
    action: Literal["approve", "deny", "stop", "cancel_job"]
    value: str  # approval id, session id or (cancel_job) the Hub's job id
    label: str


@dataclass
class Card:
    """An approval card or the status card, rendered by each adapter in its own way."""

    title: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    body: str | None = None
    body_label: str | None = None
    lines: list[str] = field(default_factory=list)  # checks, one per line
    footer: str | None = None
    buttons: list[Button] = field(default_factory=list)
    state: Literal["pending", "approved", "denied", "expired", "cancelled", "superseded", "info", "running",
                   "done", "error"] = "info"
    attachment: tuple[str, str] | None = None  # (filename, full text) when the body was cut


class ChatAdapter(Protocol):
    platform: str

    async def post(self, conv: Conversation, text: str) -> MessageRef: ...

    async def post_answer(self, conv: Conversation, text: str, session_id: str) -> MessageRef:
        """A final answer of the agent, with thumbs-up and thumbs-down buttons for `session_id`."""
        ...

    async def set_activity(self, conv: Conversation, status: str) -> None:
        """Show that a turn works in the conversation (`status`, e.g. "is thinking…"), or stop showing
        it (""). Best effort: never raises."""
        ...

    async def post_card(self, conv: Conversation, card: Card) -> MessageRef: ...

    async def update_card(self, ref: MessageRef, card: Card) -> None: ...

    async def post_private(self, conv: Conversation, user: str, text: str) -> None: ...

    async def attach_file(self, conv: Conversation, filename: str, content: str, title: str) -> None: ...

    async def post_file(self, conv: Conversation, filename: str, data: bytes, *, title: str, comment: str) -> None:
        """Post a file (a chart) in the conversation with a comment; raises when the platform refuses it."""
        ...

    async def members_of(self, workspace: str, group_ref: str) -> set[str]:
        """Resolve a user group (Slack `<!subteam^…>`) or role (Discord `<@&…>`) to member ids."""
        ...
