"""Repetition guard: fires on a call repeated with the same result and on cycles of 2–5 calls seen
twice; never on polling whose results change. A warning first, then the turn stops with a reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from intern.agent.guardrails.doom_loop import RepetitionGuard
from tests.agent.agent_fakes import ScriptedLLM, echo_tool, poll_tool, reply, task


def call(name: str, result: str = "same", **args: Any) -> tuple[str, str, str]:
    return name, json.dumps(args), result


def feed(guard: RepetitionGuard, calls: list[tuple[str, str, str]]) -> list[str]:
    return [guard.observe([c]) for c in calls]


def test_the_same_call_with_the_same_result_three_times_warns_then_stops() -> None:
    guard = RepetitionGuard()
    verdicts = feed(guard, [call("hf_jobs", operation="ps")] * 6)
    assert verdicts == ["ok", "ok", "warn", "ok", "ok", "stop"]
    assert "3 times in a row" in guard.reason


@pytest.mark.parametrize("size", [2, 3, 4, 5])
def test_a_cycle_of_two_to_five_calls_repeated_twice_warns(size: int) -> None:
    guard = RepetitionGuard()
    cycle = [call(f"tool_{i}", f"result {i}", n=i) for i in range(size)]
    verdicts = feed(guard, cycle + cycle)
    assert verdicts == ["ok"] * (2 * size - 1) + ["warn"]
    assert f"cycle of {size} calls" in guard.reason
    assert feed(guard, cycle + cycle)[-1] == "stop"


def test_a_cycle_longer_than_five_is_not_taken_for_a_loop() -> None:
    guard = RepetitionGuard()
    cycle = [call(f"tool_{i}", n=i) for i in range(6)]
    assert set(feed(guard, cycle + cycle)) == {"ok"}


def test_polling_with_changing_results_never_fires() -> None:
    guard = RepetitionGuard()
    logs = [call("hf_jobs", "\n".join(f"step {s}" for s in range(n)), operation="logs", job_id="j1")
            for n in range(40)]
    assert set(feed(guard, logs)) == {"ok"}
    # alternating between two polls whose results both move on is not a cycle either
    both = [c for n in range(20) for c in (call("hf_jobs", f"RUNNING step {n}", operation="inspect", job_id="j1"),
                                          call("hf_jobs", f"{n} lines", operation="logs", job_id="j1"))]
    assert set(feed(RepetitionGuard(), both)) == {"ok"}


def test_same_arguments_in_another_key_order_are_the_same_call() -> None:
    guard = RepetitionGuard()
    a = ("hf_papers", '{"operation": "search", "query": "dpo"}', "r")
    b = ("hf_papers", '{"query": "dpo", "operation": "search"}', "r")
    assert feed(guard, [a, b, a]) == ["ok", "ok", "warn"]


def test_a_warning_is_forgiven_after_real_progress() -> None:
    guard = RepetitionGuard(forgive_after=15)
    assert feed(guard, [call("x")] * 3)[-1] == "warn"
    assert set(feed(guard, [call("work", f"r{i}", i=i) for i in range(15)])) == {"ok"}
    assert feed(guard, [call("y")] * 3)[-1] == "warn"  # a new loop much later is warned about again
    assert feed(guard, [call("y")] * 3)[-1] == "stop"


def test_parallel_calls_of_one_step_count_in_order() -> None:
    guard = RepetitionGuard()
    step = [call("a", "1"), call("b", "2")]
    assert guard.observe(step) == "ok"
    assert guard.observe(step) == "warn"


async def test_the_loop_warns_the_model_then_stops_the_turn_and_tells_the_thread(harness: Any) -> None:
    llm = ScriptedLLM()
    for _ in range(8):
        llm.queue(reply(None, ("echo", {"text": "is the job done?"})))
    h = harness(llm)

    outcome = await h.agent.run([task()])

    assert outcome.status == "stopped"
    guards = [m for m in h.transcript.messages if (m.get("meta") or {}).get("kind") == "repetition_guard"]
    assert len(guards) == 1 and "repeating yourself" in guards[0]["content"]
    # the model saw the warning before the next step
    fourth = llm.chat_requests[3]["messages"]
    assert fourth[-1]["content"] == guards[0]["content"]
    assert len(llm.chat_requests) == 6  # stopped right after the sixth identical call
    notice = h.sink.notices[-1]
    assert notice.level == "error" and "going round in circles" in notice.text and "3 times" in notice.text
    assert outcome.message == notice.text


async def test_polling_a_job_whose_status_moves_on_runs_to_the_end(harness: Any) -> None:
    states = [f"RUNNING: step {i * 50}/400, loss {2.0 - i * 0.1:.2f}" for i in range(8)] + ["COMPLETED"]
    llm = ScriptedLLM()
    for _ in states:
        llm.queue(reply(None, ("job_status", {"job_id": "j-1"})))
    llm.queue(reply("The job completed."))
    h = harness(llm, [echo_tool(), poll_tool(states)])

    outcome = await h.agent.run([task()])

    assert outcome.status == "done" and outcome.reply == "The job completed."
    assert not [m for m in h.transcript.messages if (m.get("meta") or {}).get("kind") == "repetition_guard"]
