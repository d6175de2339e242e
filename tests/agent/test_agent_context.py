"""Context management: compaction keeps the first task and the recent turns, the summary message says
which range it stands in for, huge tool outputs are cut before they enter the context, and a
conversation that cannot be made to fit stops the turn with a plain message in the thread."""

from __future__ import annotations

import json
import re
from typing import Any

from intern.agent.context import (
    COMPACT_AT,
    KEEP_RECENT_FRACTION,
    MIN_RECENT_MESSAGES,
    SUMMARY_HEADER,
    ContextManager,
    clip,
    is_summary,
    wire,
)
from intern.agent.errors import ContextOverflow, TurnStopped
from intern.agent.events import Notice, UsageRecorded
from intern.agent.guardrails.redaction import Redactor
from tests.agent.agent_fakes import (
    MODEL,
    MemoryTranscript,
    ScriptedLLM,
    char_tokens,
    reply,
    task,
    text_tool,
)

WINDOW = 4000


def rounds(n: int, size: int = 400, start: int = 0) -> list[dict[str, Any]]:
    """n tool rounds (an assistant call and its result), each marked `round-NN` in both messages."""
    out: list[dict[str, Any]] = []
    for i in range(start, start + n):
        cid = f"c{i}"
        args = json.dumps({"text": f"round-{i:02d} " + "x" * size})
        out.append({"role": "assistant", "content": "",
                    "tool_calls": [{"id": cid, "type": "function", "function": {"name": "echo", "arguments": args}}]})
        out.append({"role": "tool", "tool_call_id": cid, "name": "echo", "content": f"echo: round-{i:02d} " + "y" * size})
    return out


def manager(llm: ScriptedLLM, window: int = WINDOW) -> tuple[ContextManager, MemoryTranscript]:
    transcript = MemoryTranscript()
    return ContextManager(llm, transcript, window_override=window, redactor=Redactor()), transcript


def markers(text: str) -> set[str]:
    return {w.strip('",') for w in text.split() if w.startswith(("round-", '"round-'))}


def test_clip_keeps_head_and_tail_and_says_how_much_was_cut() -> None:
    text = "\n".join(f"line {i:05d}" for i in range(20_000))
    out = clip(text, 5000, "log")
    assert len(out) < 5200
    assert out.startswith("line 00000") and out.endswith("line 19999")
    head, rest = out.split("\n\n[… ", 1)
    cut, tail = rest.split(" characters of log cut here …]\n\n")
    assert text.startswith(head) and text.endswith(tail)
    assert int(cut) == len(text) - len(head) - len(tail)  # the number said is the number cut
    assert re.fullmatch(r"line \d{5}", head.splitlines()[-1])  # cut at line breaks, no half lines
    assert re.fullmatch(r"line \d{5}", tail.splitlines()[0])
    assert clip("short", 100) == "short"


async def test_compaction_keeps_first_task_and_recent_turns_and_records_the_replaced_range() -> None:
    llm = ScriptedLLM()
    llm.summaries.append("SUMMARY-ONE: echoed rounds 0 to n.")
    ctx, transcript = manager(llm)
    messages = [task("TASK: train the model"), *rounds(20)]
    assert char_tokens(messages) > COMPACT_AT * WINDOW

    view = await ctx.view("system", messages, MODEL)

    summary = messages[-1]
    assert is_summary(summary) and transcript.messages == [summary]
    first, last = summary["meta"]["replaces"]
    assert first == 1  # right after the first task message
    kept = messages[last + 1:-1]
    assert kept[0]["role"] == "assistant"  # the cut never separates a call from its result
    assert len(kept) >= MIN_RECENT_MESSAGES
    assert char_tokens(kept) <= KEEP_RECENT_FRACTION * WINDOW + char_tokens(messages[last - 1:last + 1])
    # the view: system, the task verbatim, the summary, then the recent turns verbatim
    assert view[0] == {"role": "system", "content": "system"}
    assert view[1] == {"role": "user", "content": "TASK: train the model"}
    assert view[2]["content"] == f"{SUMMARY_HEADER}\nSUMMARY-ONE: echoed rounds 0 to n."
    assert view[3:] == [wire(m) for m in kept]
    # the summariser saw exactly the middle: every round before the cut, none after, not the task
    summarised = llm.requests[-1]["messages"][1]["content"]
    assert markers(summarised) == {f"round-{i:02d}" for i in range(20)} - markers(json.dumps(kept))
    assert "TASK: train the model" not in summarised
    assert ctx.last_summary == "SUMMARY-ONE: echoed rounds 0 to n."
    assert char_tokens(view) < COMPACT_AT * WINDOW


async def test_second_compaction_folds_the_earlier_summary_in_and_extends_the_range() -> None:
    llm = ScriptedLLM()
    llm.summaries.extend(["SUMMARY-ONE", "SUMMARY-TWO"])
    ctx, transcript = manager(llm)
    messages = [task(), *rounds(20)]
    await ctx.view("system", messages, MODEL)
    first_last = messages[-1]["meta"]["replaces"][1]
    messages.extend(rounds(12, start=20))

    view = await ctx.view("system", messages, MODEL)

    assert len(transcript.messages) == 2
    first, last = messages[-1]["meta"]["replaces"]
    assert first == 1 and last > first_last
    assert [m["content"] for m in view if m["content"].startswith(SUMMARY_HEADER)] == [f"{SUMMARY_HEADER}\nSUMMARY-TWO"]
    summarised = llm.requests[-1]["messages"][1]["content"]
    assert "SUMMARY-ONE" in summarised  # the earlier summary is part of the new middle
    assert "round-00" not in summarised  # what it replaced is not sent again
    kept = [m for m in messages[last + 1:] if not is_summary(m)]
    assert view[3:] == [wire(m) for m in kept]
    assert kept[0]["role"] == "assistant"


async def test_no_compaction_below_the_threshold_and_counts_are_reused() -> None:
    llm = ScriptedLLM()
    ctx, _ = manager(llm, window=100_000)
    messages = [task(), *rounds(10)]
    await ctx.view("system", messages, MODEL)
    counted = llm.counted_messages
    assert counted >= len(messages)
    messages.extend(rounds(1, start=10))

    view = await ctx.view("system", messages, MODEL)

    assert llm.counted_messages - counted == 2  # only the two new messages were tokenised
    assert not llm.requests and len(view) == 1 + len(messages)


async def test_a_call_and_its_results_stay_together_when_people_wrote_in_between() -> None:
    llm = ScriptedLLM()
    llm.summaries.append("S")
    ctx, _ = manager(llm)
    call = {"role": "assistant", "content": "", "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "echo", "arguments": '{"text": "1"}'}},
        {"id": "b", "type": "function", "function": {"name": "echo", "arguments": '{"text": "2"}'}}]}
    messages = [task(), *rounds(16), call,
                {"role": "tool", "tool_call_id": "a", "name": "echo", "content": "A" * 1200},
                {"role": "user", "content": "also check the eval split"},
                {"role": "tool", "tool_call_id": "b", "name": "echo", "content": "B" * 1200},
                *rounds(2, size=20, start=50)]

    view = await ctx.view("system", messages, MODEL)

    body = view[3:]
    ids = [m.get("tool_call_id") for m in body if m["role"] == "tool"]
    calls = [c["id"] for m in body if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    assert set(ids) == set(calls)  # no orphan result and no call without its result
    at = next(i for i, m in enumerate(body) if m.get("tool_calls") and m["tool_calls"][0]["id"] == "a")
    assert [m["role"] for m in body[at:at + 4]] == ["assistant", "tool", "tool", "user"]


async def test_the_provider_saying_too_long_forces_a_compaction_and_the_turn_goes_on(harness: Any) -> None:
    llm = ScriptedLLM(window=100_000)
    llm.summaries.append("what happened so far")
    llm.queue(ContextOverflow("This model's maximum context length is 8192 tokens"), reply("all done"))
    h = harness(llm)
    history = [task(), *rounds(12)]

    outcome = await h.agent.run(history)

    assert outcome.status == "done" and outcome.reply == "all done"
    first, second = llm.chat_requests
    assert len(json.dumps(second["messages"])) < len(json.dumps(first["messages"])) / 2
    assert any(m["content"].startswith(SUMMARY_HEADER) for m in second["messages"])
    assert [m for m in h.transcript.messages if is_summary(m)]
    assert h.sink.of(UsageRecorded)[0].model == MODEL  # the summary's cost is counted too


async def test_compaction_inside_a_run_keeps_going_and_tells_the_thread(harness: Any) -> None:
    llm = ScriptedLLM()
    llm.summaries.append("rounds so far: all echoed")
    for i in range(24):
        llm.queue(reply(None, ("echo", {"text": f"step-{i:02d} " + "z" * 400})))
    llm.queue(reply("finished"))
    h = harness(llm, window_override=WINDOW)

    outcome = await h.agent.run([task("TASK: echo a lot")])

    assert outcome.status == "done"
    last_view = llm.chat_requests[-1]["messages"]
    assert last_view[1]["content"] == "TASK: echo a lot"
    assert last_view[2]["content"] == f"{SUMMARY_HEADER}\nrounds so far: all echoed"
    assert char_tokens(last_view) < WINDOW
    assert any("summarised the earlier part" in n.text for n in h.sink.notices)
    # the full history stays: every step's call and result is in the transcript besides the summary
    assert sum(1 for m in h.transcript.messages if m["role"] == "tool") == 24


async def test_when_nothing_can_be_summarised_the_turn_stops_and_the_thread_is_told(harness: Any) -> None:
    llm = ScriptedLLM()
    h = harness(llm, window_override=WINDOW)

    outcome = await h.agent.run([task("TASK " + "q" * 20_000)])

    assert outcome.status == "stopped"
    notice = h.sink.notices[-1]
    assert notice.level == "error" and "new session" in notice.text and "full history is kept" in notice.text
    assert h.context.last_summary is not None and "TASK qqq" in h.context.last_summary
    assert not llm.requests  # nothing was sent that could not fit


async def test_when_the_recent_turns_alone_do_not_fit_the_summary_is_kept_for_a_new_session(harness: Any) -> None:
    llm = ScriptedLLM()
    llm.summaries.append("THE SUMMARY")
    h = harness(llm, window_override=WINDOW)
    history = [task(), *rounds(10, size=200), *rounds(3, size=3000, start=10)]

    outcome = await h.agent.run(history)

    assert outcome.status == "stopped"
    assert h.context.last_summary == "THE SUMMARY"
    assert "seeded with the summary" in h.sink.notices[-1].text
    assert isinstance(h.sink.notices[-1], Notice) and outcome.message == h.sink.notices[-1].text


async def test_a_huge_tool_output_is_cut_head_and_tail_before_it_enters_the_context(harness: Any) -> None:
    output = "HEAD-LINE\n" + "\n".join(f"log line {i}" for i in range(30_000)) + "\nTAIL-LINE"
    llm = ScriptedLLM(window=1_000_000)
    llm.queue(reply(None, ("dump", {"text": "x"})), reply("ok"))
    h = harness(llm, [text_tool("dump", output)])

    await h.agent.run([task()])

    stored = next(m for m in h.transcript.messages if m["role"] == "tool")["content"]
    assert len(stored) <= h.context.tool_output_max_chars + 200 < len(output)
    assert stored.startswith("HEAD-LINE") and stored.endswith("TAIL-LINE") and "characters of tool output cut" in stored
    assert llm.chat_requests[-1]["messages"][-1]["content"] == stored


def test_tool_output_limit_shrinks_with_a_small_window() -> None:
    ctx, _ = manager(ScriptedLLM(), window=8_000)
    assert len(ctx.clip_tool_output("x" * 50_000, MODEL)) < 8_000
    assert len(ctx.clip_tool_output("x" * 50_000)) > 29_000


def test_malformed_arguments_and_interrupted_calls_are_made_acceptable_to_providers() -> None:
    ctx, _ = manager(ScriptedLLM())
    broken = {"role": "assistant", "content": "", "tool_calls": [
        {"id": "x", "type": "function", "function": {"name": "echo", "arguments": '{"text": "unterminated'}}]}
    messages = [task(), broken, {"role": "tool", "tool_call_id": "x", "name": "echo", "content": "bad JSON"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "y", "type": "function", "function": {"name": "echo", "arguments": "{}"}}]},
                {"role": "assistant", "content": "I was interrupted; starting again."}]

    view = ctx.build("system", messages, MODEL)

    args = json.loads(view[2]["tool_calls"][0]["function"]["arguments"])
    assert args == {"unparsed_arguments": '{"text": "unterminated'}
    assert messages[1]["tool_calls"][0]["function"]["arguments"] == '{"text": "unterminated'  # history untouched
    assert [m["role"] for m in view[4:]] == ["assistant", "tool", "assistant"]
    assert view[5]["tool_call_id"] == "y" and "interrupted" in view[5]["content"]


async def test_a_summary_that_comes_back_empty_stops_the_turn_with_a_fallback_summary() -> None:
    llm = ScriptedLLM()
    llm.summaries.append("   ")
    ctx, _ = manager(llm)
    messages = [task("TASK: x"), *rounds(20)]
    try:
        await ctx.view("system", messages, MODEL)
    except TurnStopped as stop:
        assert stop.reason == "context"
    else:
        raise AssertionError("expected the turn to stop")
    assert ctx.last_summary is not None and "TASK: x" in ctx.last_summary
    assert not any(is_summary(m) for m in messages)
