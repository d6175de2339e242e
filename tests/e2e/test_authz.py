"""Who may do what, through `intern serve`: ending a session, jobs of other workspaces and channels,
requests from other Slack teams, budgets that stop model spend, the per-user session limit."""

from __future__ import annotations

import json
import re
from typing import Any

from intern.bot.models import AuditEvent, ChannelPolicy, InboundEvent, Job, Session, SpendEntry, WorkItem
from intern.bot.policy import month_of
from intern.standins.hub import HubStandIn
from intern.standins.hub_jobs import jobs_state
from intern.standins.hub_spaces import spaces_state
from intern.standins.llm import LLMStandIn, text_reply, tool_calls_reply
from intern.standins.slack import SlackStandIn, mention_event, message_event
from tests.e2e.harness import APPROVER, OTHER, REQUESTER, Harness, count, job_rule, wait_until
from tests.e2e.test_slack_flow import approval_id_of, cards, click, mention_until_card


async def test_a_bystander_cannot_end_a_session_with_new_session(harness: Harness) -> None:
    thread, _ = await mention_until_card(harness)
    r = await harness.sender.send_event(message_event("new session", user=OTHER, thread_ts=thread))
    assert r.status == 200
    await wait_until(lambda: harness.slack.ephemerals(user=OTHER))
    assert "Only the person who started this session" in harness.slack.ephemerals(user=OTHER)[0].text
    assert await count(harness, Session) == 1
    assert await count(harness, Session, Session.active.is_(True)) == 1
    assert await count(harness, WorkItem, WorkItem.kind == "seed") == 0
    assert await count(harness, AuditEvent, AuditEvent.kind == "stop_refused", AuditEvent.actor == OTHER) == 1
    # An approver may.
    r = await harness.sender.send_event(message_event("new session", user=APPROVER, thread_ts=thread))
    await wait_until(lambda: count(harness, Session, Session.active.is_(False)))
    assert await count(harness, Session, Session.active.is_(True), Session.started_by == APPROVER) == 1
    assert REQUESTER != APPROVER


def cancel_rule(base: Any) -> Any:
    """The scripted model: `cancel job <id>` → hf_jobs cancel; the tool's answer is repeated in the thread."""
    def rule(request: dict[str, Any]) -> Any:
        messages = request.get("messages") or []
        last = messages[-1] if messages else {}
        content = last.get("content") if isinstance(last.get("content"), str) else ""
        asked = re.search(r"cancel job (\w+)", content or "")
        if last.get("role") == "user" and asked:
            return tool_calls_reply([("hf_jobs", {"operation": "cancel", "job_id": asked.group(1)})])
        if last.get("role") == "tool" and last.get("name") == "hf_jobs" and "cancel" in json.dumps(messages[-2]):
            return text_reply(f"Cancel answered: {content}")
        return base(request)
    return rule


async def running_job(h: Harness) -> tuple[str, str]:
    thread, approval = await mention_until_card(h)
    await h.sender.send_interaction(click(h, "intern_approve", approval, APPROVER, thread))
    jobs = jobs_state(h.hub)
    await wait_until(lambda: len(jobs.created) == 1, timeout=20)
    job_id = jobs.created[0].job_id
    jobs.set_stage(job_id, "RUNNING")
    await wait_until(lambda: count(h, Job, Job.hf_job_id == job_id))
    return thread, job_id


async def test_a_bystander_in_another_channel_cannot_cancel_a_teams_job(harness: Harness) -> None:
    harness.llm.rule = cancel_rule(job_rule())
    _, job_id = await running_job(harness)
    jobs = jobs_state(harness.hub)
    ask = mention_event(f"cancel job {job_id}", user=OTHER, channel="C0ELSEWHERE")
    assert (await harness.sender.send_event(ask)).status == 200
    await wait_until(lambda: any("Cancel answered" in t for t in harness.slack.texts(thread_ts=ask["ts"])),
                     timeout=20)
    answer = next(t for t in harness.slack.texts(thread_ts=ask["ts"]) if "Cancel answered" in t)
    assert "Refused" in answer and "another channel" in answer
    assert jobs.job(job_id).stage == "RUNNING"
    # The requester may, from anywhere.
    mine = mention_event(f"cancel job {job_id}", user=REQUESTER, channel="C0ELSEWHERE")
    await harness.sender.send_event(mine)
    await wait_until(lambda: jobs.job(job_id).stage == "CANCELED", timeout=20)


async def test_a_job_of_the_namespace_that_intern_did_not_launch_is_refused(harness: Harness) -> None:
    harness.llm.rule = cancel_rule(job_rule())
    jobs = jobs_state(harness.hub)
    outside = jobs.new_job(harness.hub.user, {"dockerImage": "python:3.12", "command": ["sleep", "1000"],
                                              "flavor": "a10g-large"})
    jobs.set_stage(outside.id, "RUNNING")
    ask = mention_event(f"cancel job {outside.id}", user=APPROVER)  # even an administrator
    await harness.sender.send_event(ask)
    await wait_until(lambda: any("Cancel answered" in t for t in harness.slack.texts(thread_ts=ask["ts"])),
                     timeout=20)
    answer = next(t for t in harness.slack.texts(thread_ts=ask["ts"]) if "Cancel answered" in t)
    assert "not a job of this workspace" in answer
    assert jobs.job(outside.id).stage == "RUNNING"


def schedule_rule(request: dict[str, Any]) -> Any:
    """The scripted model: `schedule it` → a scheduled run; `<op> schedule <id>` → that operation."""
    messages = request.get("messages") or []
    if request.get("tools") is None:
        return text_reply("Summary.")
    last = messages[-1]
    content = last.get("content") if isinstance(last.get("content"), str) else ""
    if last.get("role") == "tool":
        return text_reply(f"Tool answered: {content}")
    asked = re.search(r"(suspend|delete) schedule (\w+)", content or "")
    if asked:
        return tool_calls_reply([("hf_jobs", {"operation": f"scheduled {asked.group(1)}",
                                              "scheduled_job_id": asked.group(2)})])
    return tool_calls_reply([("hf_jobs", {"operation": "scheduled run", "command": ["python", "-c", "print(1)"],
                                          "image": "python:3.12", "schedule": "@daily", "timeout": "10m"})])


async def test_schedules_are_this_workspaces_and_deleting_one_needs_a_card(harness: Harness) -> None:
    harness.llm.rule = schedule_rule
    thread, approval = await mention_until_card(harness, "schedule it")
    await harness.sender.send_interaction(click(harness, "intern_approve", approval, APPROVER, thread))
    jobs = jobs_state(harness.hub)
    await wait_until(lambda: jobs.scheduled, timeout=20)
    sid = next(iter(jobs.scheduled))
    await wait_until(lambda: count(harness, Job, Job.hf_job_id == sid, Job.kind == "scheduled"))
    # A bystander elsewhere may not suspend it.
    ask = mention_event(f"suspend schedule {sid}", user=OTHER, channel="C0ELSEWHERE")
    await harness.sender.send_event(ask)
    await wait_until(lambda: any("Tool answered" in t for t in harness.slack.texts(thread_ts=ask["ts"])), timeout=20)
    assert "another channel" in next(t for t in harness.slack.texts(thread_ts=ask["ts"]) if "Tool answered" in t)
    assert not jobs.scheduled[sid].suspend
    # Deleting it, in its own thread, posts a card first; the schedule goes only once approved.
    await harness.sender.send_event(message_event(f"delete schedule {sid}", user=REQUESTER, thread_ts=thread))
    await wait_until(lambda: any("scheduled delete" in c.text for c in cards(harness.slack, thread)), timeout=20)
    assert sid in jobs.scheduled
    second = approval_id_of(next(c for c in cards(harness.slack, thread) if "scheduled delete" in c.text))
    await harness.sender.send_interaction(click(harness, "intern_approve", second, APPROVER, thread))
    await wait_until(lambda: sid not in jobs.scheduled, timeout=20)


def llm_calls(h: Harness) -> int:
    return sum(1 for r in h.llm.requests if r.path.endswith("/chat/completions"))


async def test_another_slack_teams_events_are_acknowledged_and_dropped(harness: Harness) -> None:
    adapter = harness.proc.rt.adapters["slack"]  # type: ignore[union-attr]
    # The first request of all, before the bot token's team is known: stored, then dropped at work time.
    early = mention_event("spend the operator's money", user="U0OUTSIDER", team="T0OTHER")
    r = await harness.sender.send_event(early, team_id="T0OTHER")
    assert r.status == 200
    await wait_until(lambda: count(harness, AuditEvent, AuditEvent.kind == "workspace_refused"), timeout=20)
    assert await count(harness, Session, Session.active.is_(True)) == 0
    # Once known, another team's request stores nothing at all.
    assert adapter.serves(harness.slack.team_id) is True
    before = await count(harness, InboundEvent)
    late = mention_event("and again", user="U0OUTSIDER", team="T0OTHER")
    r = await harness.sender.send_event(late, team_id="T0OTHER")
    assert r.status == 200
    slash = await harness.sender.send_slash_command({"command": "/intern", "text": "ask train", "team_id": "T0OTHER",
                                                     "user_id": "U0OUTSIDER", "channel_id": "C0GENERAL"})
    assert slash.status == 200
    assert await count(harness, InboundEvent) == before
    assert await count(harness, Session) == 1
    assert llm_calls(harness) == 0
    assert harness.slack.posted(thread_ts=early["ts"]) == [] and harness.slack.posted(thread_ts=late["ts"]) == []


async def test_the_workspace_is_the_envelopes_team_never_the_posters(harness: Harness) -> None:
    # Slack Connect: a guest from another organisation posts in one of our channels; the event is
    # delivered for our team, and `event.team` names the guest's home team.
    event = mention_event("fine-tune a small model", user=REQUESTER, team="T0GUESTORG")
    await harness.sender.send_event(event)
    await wait_until(lambda: cards(harness.slack, event["ts"]), timeout=20)
    assert await count(harness, Session, Session.workspace == harness.slack.team_id) == 1
    assert await count(harness, Session, Session.workspace == "T0GUESTORG") == 0


async def spend_all_of(h: Harness, channel: str, budget: float) -> None:
    assert h.proc is not None
    async with h.proc.rt.db.transaction() as db:
        db.add(ChannelPolicy(platform="slack", workspace=h.slack.team_id, channel=channel, approvers=[],
                             admins=[], monthly_budget_usd=budget))
        db.add(SpendEntry(platform="slack", workspace=h.slack.team_id, channel=channel, kind="job", ref="earlier",
                          amount_usd=budget, final=True, month=month_of()))


async def test_a_spent_budget_stops_model_spend_before_the_turn_starts(harness: Harness) -> None:
    await spend_all_of(harness, "C0GENERAL", 5.0)
    event = mention_event("fine-tune a small model", user=REQUESTER)
    await harness.sender.send_event(event)
    await wait_until(lambda: any("budget" in t for t in harness.slack.texts(thread_ts=event["ts"])), timeout=20)
    told = next(t for t in harness.slack.texts(thread_ts=event["ts"]) if "budget" in t)
    assert "This channel's monthly budget of $5.00 is spent" in told and "policy budget" in told
    assert llm_calls(harness) == 0


async def test_a_turn_stops_at_the_next_step_once_its_spend_used_the_budget(harness: Harness) -> None:
    assert harness.proc is not None
    async with harness.proc.rt.db.transaction() as db:  # the job's $3.00 is auto-approved and is all there is
        db.add(ChannelPolicy(platform="slack", workspace=harness.slack.team_id, channel="C0GENERAL", approvers=[],
                             admins=[], monthly_budget_usd=3.0, auto_approve_below_usd=5.0))
    event = mention_event("fine-tune a small model", user=REQUESTER)
    await harness.sender.send_event(event)
    await wait_until(lambda: jobs_state(harness.hub).created, timeout=20)
    await wait_until(lambda: any("budget" in t for t in harness.slack.texts(thread_ts=event["ts"])), timeout=20)
    assert llm_calls(harness) == 1  # the step that launched; not the one after it


async def test_new_sessions_per_user_and_hour_are_limited(stands: tuple[SlackStandIn, HubStandIn, LLMStandIn],
                                                          migrated_url: str) -> None:
    slack, hub, llm = stands
    llm.rule = lambda request: text_reply("Hello.")
    h = Harness(migrated_url, slack, hub, llm, extra_env={"INTERN_MAX_SESSIONS_PER_USER_HOUR": "2"})
    await h.start()
    try:
        for _ in range(3):
            await h.sender.send_event(mention_event("a small question", user=OTHER))
        await wait_until(lambda: slack.ephemerals(user=OTHER), timeout=20)
        assert "2 sessions in the last hour" in slack.ephemerals(user=OTHER)[0].text
        assert await count(h, Session, Session.started_by == OTHER) == 2
        # Others are not affected.
        await h.sender.send_event(mention_event("my own question", user=REQUESTER))
        await wait_until(lambda: count(h, Session, Session.started_by == REQUESTER), timeout=20)
    finally:
        await h.stop()


READ_TOKEN = "hf_readOnlySandboxTokenreadOnlySandbox01"


def sandbox_rule(request: dict[str, Any]) -> Any:
    messages = request.get("messages") or []
    if request.get("tools") is None:
        return text_reply("Summary.")
    last = messages[-1]
    if last.get("role") == "tool":
        return text_reply(f"Sandbox said: {last.get('content')}")
    probe = ('echo "read token: ${#HF_TOKEN} chars"; echo "write token copies: $(env | grep -c hf_standinToken)"; '
             'echo "server token in its environ: $(tr \'\\0\' \'\\n\' < /proc/$PPID/environ | grep -c SANDBOX_TOKEN=)"')
    return tool_calls_reply([("sandbox_bash", {"command": probe, "timeout": 30})])


async def test_a_sandbox_gets_the_read_token_and_never_the_write_token_or_its_servers(
        stands: tuple[SlackStandIn, HubStandIn, LLMStandIn], migrated_url: str) -> None:
    slack, hub, llm = stands
    llm.rule = sandbox_rule
    h = Harness(migrated_url, slack, hub, llm, extra_env={"INTERN_HF_READ_TOKEN": READ_TOKEN})
    await h.start()
    try:
        event = mention_event("try it in the sandbox", user=REQUESTER)
        await h.sender.send_event(event)
        await wait_until(lambda: any("Sandbox said" in t for t in slack.texts(thread_ts=event["ts"])), timeout=60)
        said = next(t for t in slack.texts(thread_ts=event["ts"]) if "Sandbox said" in t)
        assert f"read token: {len(READ_TOKEN)} chars" in said
        assert "write token copies: 0" in said and "server token in its environ: 0" in said
        [space] = spaces_state(hub).spaces.values()
        assert space.secrets["HF_TOKEN"] == READ_TOKEN
        assert hub.token not in {*space.secrets.values(), *space.variables.values()}
    finally:
        await h.stop()
