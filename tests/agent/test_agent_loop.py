"""Loop behaviours around the model's judgement: plan continuation nudges, calls to tools that do not
exist, and usage reported for every model call."""

from __future__ import annotations

from typing import Any

from intern.agent.events import AssistantReply, PlanUpdated, ToolFinished, ToolStarted, UsageRecorded
from tests.agent.agent_fakes import ScriptedLLM, reply, task

PLAN = {"todos": [{"id": "1", "content": "inspect the dataset", "status": "completed"},
                  {"id": "2", "content": "write the training script", "status": "in_progress"},
                  {"id": "3", "content": "launch the job", "status": "pending"}]}


def nudges(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if (m.get("meta") or {}).get("kind") == "plan_nudge"]


async def test_a_reply_with_open_plan_items_is_nudged_twice_then_accepted(harness: Any) -> None:
    llm = ScriptedLLM().queue(reply(None, ("plan", PLAN)), reply("I think I am done."),
                              reply("Still done."), reply("Really done."))
    h = harness(llm)

    outcome = await h.agent.run([task()])

    assert outcome.status == "done" and outcome.reply == "Really done."
    sent = nudges(h.transcript.messages)
    assert len(sent) == 2
    assert "write the training script" in sent[0]["content"] and "launch the job" in sent[0]["content"]
    assert "inspect the dataset" not in sent[0]["content"]  # completed items are not nagged about
    assert llm.chat_requests[2]["messages"][-1]["content"] == sent[0]["content"]
    assert [e.text for e in h.sink.of(AssistantReply)] == ["I think I am done.", "Still done.", "Really done."]
    assert h.sink.of(PlanUpdated)


async def test_a_plan_brought_up_to_date_ends_the_turn_without_nudges(harness: Any) -> None:
    done = {"todos": [{**t, "status": "completed"} for t in PLAN["todos"]]}
    llm = ScriptedLLM().queue(reply(None, ("plan", PLAN)), reply("Working on it.", ("plan", done)), reply("All done."))
    h = harness(llm)

    outcome = await h.agent.run([task()])

    assert outcome.status == "done" and not nudges(h.transcript.messages)


async def test_a_call_to_an_unknown_tool_is_answered_with_the_tools_available(harness: Any) -> None:
    llm = ScriptedLLM().queue(reply(None, ("launch_rocket", {"text": "now"})), reply("ok, no rockets"))
    h = harness(llm)

    outcome = await h.agent.run([task()])

    assert outcome.status == "done"
    result = next(m for m in h.transcript.messages if m["role"] == "tool")
    assert "no tool named 'launch_rocket'" in result["content"] and "echo" in result["content"]


async def test_every_model_call_and_tool_call_is_reported_as_an_event(harness: Any) -> None:
    llm = ScriptedLLM().queue(reply(None, ("echo", {"text": "a"}), ("echo", {"text": "b"})), reply("done"))
    h = harness(llm)

    await h.agent.run([task()])

    assert len(h.sink.of(UsageRecorded)) == 2
    assert sum(u.cost_usd for u in h.sink.of(UsageRecorded)) > 0
    assert [e.summary for e in h.sink.of(ToolStarted)] == ["text=a", "text=b"]
    assert [e.summary for e in h.sink.of(ToolFinished)] == ["echo: a", "echo: b"]


async def test_the_iteration_cap_pauses_the_turn(harness: Any) -> None:
    llm = ScriptedLLM()
    for i in range(5):
        llm.queue(reply(None, ("echo", {"text": f"step {i}"})))
    h = harness(llm, max_iterations=3)

    outcome = await h.agent.run([task()])

    assert outcome.status == "limit" and "INTERN_MAX_ITERATIONS" in (outcome.message or "")
