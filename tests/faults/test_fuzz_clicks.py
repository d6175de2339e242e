"""Hostile approval clicks into the click handler every adapter ends in (`BotApp.on_click`, then
`Approvals.click`): an id altered in case, length or content (NUL bytes included), a user that only
looks like an approver, another workspace or platform, claimed group memberships, repeats. Nothing
raises, and an approval is decided only by a click that is exactly right — the real id, the card's
platform and workspace, a designated approver who is not the requester."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intern.bot.app import BotApp
from intern.bot.approvals import Approvals
from intern.bot.chat import ApprovalClick
from intern.bot.models import Approval, ApprovalDecision, Session
from intern.bot.settings import Settings
from intern.bot.wiring import build_runtime, close_runtime

APPROVERS = ("U0APPROVER", "U0APPROVER2")
REQUESTER = "U0REQUESTER"
TEAM, PLATFORM = "T0TEAM", "slack"


@pytest.fixture
async def bot(pg_url: str) -> AsyncIterator[BotApp]:
    rt = await build_runtime(Settings(INTERN_DATABASE_URL=pg_url,  # type: ignore[call-arg]
                                      INTERN_APPROVERS=",".join([*APPROVERS, REQUESTER])))
    try:
        yield BotApp(rt)
    finally:
        await close_runtime(rt)


async def pending_approval(a: Approvals) -> str:
    sid, aid = str(uuid.uuid4()), str(uuid.uuid4())
    async with a.rt.db.transaction() as db:
        db.add(Session(id=sid, platform=PLATFORM, workspace=TEAM, channel="C0CHAN", thread=f"{uuid.uuid4().int}",
                       started_by=REQUESTER))
        await db.flush()
        db.add(Approval(id=aid, session_id=sid, call_id="call_1", tool="hf_jobs", kind="spend",
                        spec={"operation": "run"}, spec_sha256="0" * 64, card={}, estimated_cost_usd=1.0,
                        requester=REQUESTER, platform=PLATFORM, workspace=TEAM, channel="C0CHAN",
                        approvers=[*APPROVERS, REQUESTER], expires_at=datetime.now(UTC) + timedelta(hours=1)))
    return aid


def variant(real: str) -> st.SearchStrategy[str]:
    return st.one_of(st.just(real), st.sampled_from([real.upper(), f" {real}", f"{real}\n", real[:-1], real + "0",
                                                     real.replace("-", ""), f"{{{real}}}", str(uuid.uuid4()),
                                                     "' OR '1'='1", "", "\x00", "a" * 300]),
                     st.text(max_size=60))


clicks = st.lists(st.fixed_dictionaries({
    "id_is_real": st.booleans(), "id": st.data(),
    "user": st.one_of(st.sampled_from([*APPROVERS, REQUESTER, "U0EVIL", "u0approver", " U0APPROVER",
                                       "<@U0APPROVER>", "U0APPROVER ", ""]), st.text(max_size=20)),
    "workspace": st.one_of(st.sampled_from([TEAM, "T0OTHER", "", TEAM.lower()]), st.text(max_size=10)),
    "platform": st.sampled_from([PLATFORM, "discord", "SLACK", "", "console"]),
    "decision": st.sampled_from(["approve", "deny"]),
    "groups": st.lists(st.sampled_from([*APPROVERS, "S0ADMINS", "<!subteam^S0ADMINS>", ""]), max_size=3),
}), min_size=1, max_size=5)


def legit(c: ApprovalClick, real: str) -> bool:
    return (c.approval_id == real and c.platform == PLATFORM and c.workspace == TEAM and c.user in APPROVERS
            and c.decision in ("approve", "deny"))


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(specs=clicks)
async def test_hostile_clicks_never_crash_and_never_authorize(bot: BotApp, specs: list[dict[str, Any]]) -> None:
    approvals = bot.approvals
    real = await pending_approval(approvals)
    sent = []
    for i, spec in enumerate(specs):
        aid = real if spec["id_is_real"] else spec["id"].draw(variant(real))
        c = ApprovalClick(approval_id=aid, user=spec["user"], workspace=spec["workspace"], platform=spec["platform"],
                          decision=spec["decision"], event_key=f"k{i}", user_groups=tuple(spec["groups"]))
        reply = await bot.on_click(c)
        assert isinstance(reply.text, str) and reply.text
        if reply.ok:
            assert legit(c, real) and not any(legit(p, real) for p in sent), f"{c} was accepted"
        sent.append(c)
    async with approvals.rt.db.session() as db:
        a = await db.get(Approval, real)
        assert a is not None
        decisions = (await db.execute(ApprovalDecision.__table__.select().where(
            ApprovalDecision.approval_id == real))).all()
    first = next((c for c in sent if legit(c, real)), None)
    if first is None:
        assert a.status == "pending", f"approval {a.status} by {a.decided_by} without a legitimate click: {sent}"
        assert decisions == []
    else:
        assert a.status == ("approved" if first.decision == "approve" else "denied")
        assert a.decided_by == first.user
        assert [d.user_id for d in decisions] == [first.user]


async def test_the_click_handler_itself_rejects_malformed_values(bot: BotApp) -> None:
    approvals: Approvals = bot.approvals
    real = await pending_approval(approvals)
    for aid, user, decision in [("\x00" + real[1:], "U0APPROVER", "approve"), (real, "U0APP\x00ROVER", "approve"),
                                (real, "U0APPROVER", "APPROVE")]:
        reply = await approvals.click(ApprovalClick(approval_id=aid, user=user, workspace=TEAM, platform=PLATFORM,
                                                    decision=decision, event_key="k"))  # type: ignore[arg-type]
        assert not reply.ok
    async with approvals.rt.db.session() as db:
        a = await db.get(Approval, real)
    assert a is not None and a.status == "pending"
