"""The chat-adapter port and the neutral types that cross it.

Adapters translate platform payloads into these inbound types and render these outbound types;
no business rule lives in an adapter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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


# --- mentions -----------------------------------------------------------------------------------

MentionKind = Literal["user", "group", "role"]  # a person, a user group (Slack), a role (Discord)
OPEN, CLOSE = "\ue000", "\ue001"  # private-use characters: no person types them (adapters drop them)
MENTION = re.compile(f"{OPEN}(user|group|role):([^{OPEN}{CLOSE}|]+)(?:\\|([^{OPEN}{CLOSE}]*))?{CLOSE}")


@dataclass(frozen=True)
class Mention:
    """A reference to a person, a user group or a role, in neutral form.

    In text (inbound messages and commands, and what the bot posts) a mention stands as `str(mention)`,
    a token the adapters write for each platform mention on the way in and spell in the platform's own
    syntax on the way out: the core never reads or writes that syntax."""

    kind: MentionKind
    id: str
    label: str = ""  # the name the platform sent along with it, echoed back as it came

    @classmethod
    def user(cls, id: str) -> Mention:
        return cls("user", id)

    @property
    def is_group(self) -> bool:
        return self.kind != "user"

    def __str__(self) -> str:
        return f"{OPEN}{self.kind}:{self.id}{'|' + self.label if self.label else ''}{CLOSE}"


def who(user: str) -> str:
    """A person's mention, to write into a text the bot posts."""
    return str(Mention.user(user))


def mention_in(word: str) -> Mention | None:
    """The mention `word` is (a token and nothing else), or None."""
    m = MENTION.fullmatch(word)
    return Mention(m[1], m[2], m[3] or "") if m else None  # type: ignore[arg-type]


def spell_mentions(text: str, spell: Callable[[Mention], str]) -> str:
    """`text` with each mention token replaced by `spell(mention)` (an adapter's own syntax)."""
    if OPEN not in text:
        return text
    return MENTION.sub(lambda m: spell(Mention(m[1], m[2], m[3] or "")), text)  # type: ignore[arg-type]


def without_tokens(text: str) -> str:
    """Platform text with the token characters taken out, so that no typed text reads as a mention."""
    return text.replace(OPEN, "").replace(CLOSE, "") if OPEN in text or CLOSE in text else text


def spell_card(card: Card, spell: Callable[[Mention], str]) -> Card:
    """A copy of `card` with the mentions of its title, fields, lines and footer spelled by `spell`."""
    def sp(text: str) -> str:
        return spell_mentions(text, spell)

    return replace(card, title=sp(card.title), fields=[(sp(k), sp(v)) for k, v in card.fields],
                   lines=[sp(line) for line in card.lines], footer=sp(card.footer) if card.footer else card.footer,
                   buttons=list(card.buttons))


# --- inbound ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UserMessage:
    conversation: Conversation
    user: str
    text: str  # people, user groups and roles in it are `Mention` tokens
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
    # The message the button was on, as the platform names it: a card whose post was never recorded
    # (its process died right after posting) is found through the click.
    card: MessageRef | None = None


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
    args: str = ""  # with `Mention` tokens, as UserMessage.text
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
    # How many message edits a second the platform allows one app in one workspace, sustained (None:
    # no limit per workspace; one edit a second per thread holds everywhere).
    card_edits_per_second: float | None

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
        """Resolve a user group or role, as `mention_key` stores it, to member ids."""
        ...

    def spell(self, text: str) -> str:
        """`text` as this platform writes it: each mention token in the platform's own syntax. What the
        model reads of the conversation is spelled so (and the model writes mentions so)."""
        ...

    def mention_key(self, mention: Mention) -> str:
        """How a policy stores `mention` (approvers, administrators): a person as their bare id, a group
        or role in a form of the platform's own that `mention_of_key` reads back."""
        ...

    def mention_of_key(self, key: str) -> Mention:
        """A stored key (a policy's, or one of INTERN_APPROVERS) back as a mention; a bare id is a person."""
        ...
