"""Neutral cards: the approval card and the session's status card. Adapters render them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from intern.agent.pricing import format_duration
from intern.bot.chat import Button, Card, who
from intern.bot.models import Approval

CHECK_MARK = {"ok": "✅", "warn": "⚠️", "error": "🛑"}
STATE_TITLE = {
    "approved": "Approved", "denied": "Denied", "expired": "Expired — ask again", "cancelled": "Cancelled",
    "superseded": "Superseded by a newer request", "refused": "Refused by policy",
}


def money(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"${v:,.2f}" if v >= 0.01 or v == 0 else f"${v:,.4f}"


def when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else ""


def approval_card(a: Approval, *, budget_left: float | None, approvals_given: list[str] | None = None,
                  note: str | None = None) -> Card:
    info: dict[str, Any] = a.card
    fields: list[tuple[str, str]] = [("Action", info.get("title", a.tool))]
    fields.extend((str(k), str(v)) for k, v in info.get("fields", []))
    if info.get("hourly_usd") is not None:
        fields.append(("Price", f"{money(info['hourly_usd'])}/hour"))
    if info.get("schedule"):
        fields.append(("Schedule", str(info["schedule"])))
        if info.get("runs_per_month") is not None:
            fields.append(("Runs per month", str(info["runs_per_month"])))
    if a.estimated_cost_usd is not None:
        label = "Max cost per run" if info.get("schedule") else "Estimated max cost"
        fields.append((label, money(a.estimated_cost_usd)))
    fields.append(("Budget left this month", "no limit" if budget_left is None else money(budget_left)))
    fields.append(("Requested by", who(a.requester)))
    if a.required_approvals > 1:
        given = approvals_given or []
        named = ", ".join(who(u) for u in given) or "none yet"
        fields.append(("Approvals", f"{len(given)} of {a.required_approvals} ({named})"))
    lines = [f"{CHECK_MARK.get(c['level'], '•')} {c['text']}" for c in info.get("checks", [])]
    if budget_left is not None and a.estimated_cost_usd is not None and a.estimated_cost_usd > budget_left + 1e-9:
        lines.append(f"🛑 Over budget: this request may cost {money(a.estimated_cost_usd)} but only "
                     f"{money(budget_left)} is left this month; it cannot be approved.")
    if note:
        lines.append(note)
    card = Card(
        title=f"Approval needed: {info.get('title', a.tool)}",
        fields=fields,
        body=info.get("body"),
        body_label=info.get("body_label"),
        lines=lines,
        footer=f"Approval {a.id} · spec sha256 {a.spec_sha256[:12]} · expires {when(a.expires_at)}",
        state="pending",
    )
    if a.status == "pending":
        card.buttons = [Button("approve", a.id, "Approve"), Button("deny", a.id, "Deny")]
        return card
    card.state = a.status if a.status in ("approved", "denied", "expired", "cancelled", "superseded") else "info"
    verdict = STATE_TITLE.get(a.status, a.status)
    by = ""
    if a.auto_approved:
        by = " automatically (under the channel's auto-approve threshold)"
    elif a.decided_by and a.status in ("approved", "denied", "cancelled"):
        by = " by " + ", ".join(who(u) for u in a.decided_by.split(",") if u)
    card.title = f"{verdict}{by}: {info.get('title', a.tool)}"
    card.footer = f"{verdict}{by} at {when(a.decided_at)} · approval {a.id} · spec sha256 {a.spec_sha256[:12]}"
    if a.reason and a.status in ("denied", "cancelled"):
        card.lines.append(f"Reason: {a.reason}")
    return card


@dataclass
class StatusState:
    """What the status card shows; rebuilt from events, persisted on the session row."""

    phase: str = "Working"
    step: str = ""
    plan: list[dict[str, str]] = field(default_factory=list)
    jobs: dict[str, str] = field(default_factory=dict)
    research: dict[str, str] = field(default_factory=dict)
    llm_cost_usd: float = 0.0
    jobs_cost_usd: float = 0.0

    def card(self, session_id: str, *, done: bool = False) -> Card:
        marks = {"pending": "☐", "in_progress": "▶", "completed": "☑"}
        lines = [f"{marks.get(t.get('status', 'pending'), '•')} {t.get('content', '')}" for t in self.plan]
        lines += [f"Job {jid}: {state}" for jid, state in self.jobs.items()]
        lines += [f"Research {cid[-6:]}: {s}" for cid, s in self.research.items()]
        fields = [("Status", self.phase)]
        if self.step:
            fields.append(("Current step", self.step))
        fields.append(("Spend", f"LLM {money(self.llm_cost_usd)} · jobs {money(self.jobs_cost_usd)}"))
        card = Card(title="Intern status", fields=fields, lines=lines, state="done" if done else "running",
                    footer=f"Session {session_id}")
        if not done:
            card.buttons = [Button("stop", session_id, "Stop")]
        return card

    def to_json(self) -> dict[str, Any]:
        return {"phase": self.phase, "step": self.step, "plan": self.plan, "jobs": self.jobs,
                "research": self.research, "llm": self.llm_cost_usd, "jobs_cost": self.jobs_cost_usd}

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> StatusState:
        d = d or {}
        return cls(d.get("phase", "Working"), d.get("step", ""), list(d.get("plan", [])), dict(d.get("jobs", {})),
                   dict(d.get("research", {})), float(d.get("llm", 0.0)), float(d.get("jobs_cost", 0.0)))


def duration(seconds: float | None) -> str:
    return format_duration(seconds) if seconds else "0s"
