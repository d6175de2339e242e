"""`intern sessions export ID --format trace` (and `--all --since DATE`): agent-trace JSONL of sessions
the real bot recorded through Slack, redacted, with tool calls and results paired by id and one
unbroken parent chain."""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from intern.bot.export import export_session
from intern.bot.models import Session
from tests.e2e.harness import Harness, wait_until
from tests.governance.conftest import stands, start_bot  # noqa: F401 - fixtures
from tests.governance.helpers import rt, start_task, tool_rule
from tests.governance.test_audit_export import cli, settings_of

CALLS = [("team_history", {"query": "qwen"}),
         ("plan", {"todos": [{"content": "check earlier runs", "status": "in_progress"}]})]


async def finished_session(h: Harness, text: str) -> Session:
    thread = await start_task(h, text)
    await wait_until(lambda: any("Tool results" in t for t in h.slack.texts(thread_ts=thread)), timeout=20)
    async with rt(h).db.session() as db:
        return (await db.execute(select(Session).where(Session.thread == thread))).scalar_one()


def check_trace(lines: list[dict[str, Any]], session_id: str) -> None:
    assert lines, "an empty trace"
    parent = None
    for event in lines:
        assert set(event) >= {"type", "message", "uuid", "parentUuid", "sessionId", "timestamp"}
        assert event["type"] in ("user", "assistant") and event["message"]["role"] == event["type"]
        assert event["sessionId"] == session_id and event["parentUuid"] == parent
        assert datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).tzinfo is not None
        assert all(b["type"] in ("text", "tool_use", "tool_result") for b in event["message"]["content"])
        parent = event["uuid"]
    assert len({e["uuid"] for e in lines}) == len(lines)
    uses: dict[str, int] = {}
    results: dict[str, int] = {}
    for i, event in enumerate(lines):
        for b in event["message"]["content"]:
            if b["type"] == "tool_use":
                assert event["type"] == "assistant" and isinstance(b["input"], dict)
                uses[b["id"]] = i
            elif b["type"] == "tool_result":
                assert event["type"] == "user"
                results[b["tool_use_id"]] = i
    assert uses and set(uses) == set(results)  # every call has its result, and no result is orphaned
    assert all(uses[k] < results[k] for k in uses)  # each result comes after its call


async def test_a_session_exports_as_an_agent_trace(start_bot: Any) -> None:  # noqa: F811
    h = await start_bot(tool_rule(CALLS))
    session = await finished_session(h, f"what did we try before? my token is {h.hub.token}")
    out = io.StringIO()
    assert await export_session(settings_of(h), session.id, "trace", out) == 0
    text = out.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    check_trace(lines, session.id)
    assert h.hub.token not in text and "what did we try before?" in text
    assert lines[0]["type"] == "user" and lines[0]["parentUuid"] is None
    first_call = lines[1]["message"]
    assert [b["name"] for b in first_call["content"] if b["type"] == "tool_use"] == ["team_history", "plan"]
    assert first_call["content"][0] == {"type": "text", "text": "Requesting the action."}
    assert next(b for b in first_call["content"] if b["type"] == "tool_use")["input"] == {"query": "qwen"}
    assert first_call["model"] == "openai/scripted-model"
    again = io.StringIO()
    await export_session(settings_of(h), session.id, "trace", again)
    assert again.getvalue() == text  # the same ids every time


async def test_all_sessions_since_a_date_from_the_command_line(start_bot: Any, tmp_path: Path) -> None:  # noqa: F811
    h = await start_bot(tool_rule(CALLS))
    first = await finished_session(h, "first question")
    second = await finished_session(h, "second question")
    env = {**os.environ, **h.env()}
    today = datetime.now(UTC).date().isoformat()

    code, out, err = await cli(env, "sessions", "export", "--all", "--since", today, "--format", "trace")
    assert code == 0 and "Exported 2 session(s)" in err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [s for s in dict.fromkeys(e["sessionId"] for e in lines)] == [first.id, second.id]
    for sid in (first.id, second.id):
        check_trace([e for e in lines if e["sessionId"] == sid], sid)

    folder = tmp_path / "traces"
    code, _, err = await cli(env, "sessions", "export", "--all", "--format", "trace", "--out", str(folder))
    assert code == 0 and sorted(p.name for p in folder.iterdir()) == sorted(f"{s}.jsonl" for s in (first.id,
                                                                                                   second.id))
    check_trace([json.loads(x) for x in (folder / f"{first.id}.jsonl").read_text().splitlines()], first.id)

    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    code, out, err = await cli(env, "sessions", "export", "--all", "--since", tomorrow, "--format", "trace")
    assert code == 0 and out == "" and "Exported 0 session(s)" in err
    for args, why in (((first.id, "--all"), "not both"), ((), "or --all"), ((first.id, "--since", today), "go with"),
                      (("--all", "--since", "last May"), "not an ISO date")):
        code, _, err = await cli(env, "sessions", "export", *args, "--format", "trace")
        assert code == 2 or (code == 1 and why == "not an ISO date"), (args, code, err)
        assert why in err, (args, err)
