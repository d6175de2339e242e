"""Agent loop benchmark: the loop's own cost, with an instant scripted model.

Measures, in one run:

- **per step**, with a 200-message history (kept at 200: after each round the oldest round is
  taken off, so every view still tokenises the round just added): the wall time of `Agent.step()` minus the time spent inside the model
  call, for model steps (build the context view, ask, store the reply) and tool steps (run the tool,
  redact and clip its output, the repetition guard). Target: median < 2 ms.
- **the litellm floor of a step**: `litellm.token_counter` alone on the same new messages the step
  counts (a step tokenises only its new messages; the rest are remembered).
- **compaction of a 150k-token history** on a 128k-token model: a cold start (nothing counted yet:
  every message goes through the tokenizer once) and a warm one (the history was viewed before, as
  in a running turn), excluding the summarisation call. Target: < 1 s.
- **the litellm floor of compaction**: `litellm.token_counter` alone over the same messages, one
  call per message (what a cold start must do), and once over the whole list.

The model's token counts and context window come from the real `LiteLLM` port (litellm's tokenizer
and model table); only `complete` is scripted. Writes bench/results/loop.json and prints it.

    .venv/bin/python bench/loop.py [--steps 300] [--model anthropic/claude-sonnet-4-5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from intern.agent.context import ContextManager  # noqa: E402
from intern.agent.context_deps import AgentConfig, ToolContext  # noqa: E402
from intern.agent.guardrails.redaction import Redactor  # noqa: E402
from intern.agent.hub import HubClient  # noqa: E402
from intern.agent.llm import LiteLLM, litellm_module  # noqa: E402
from intern.agent.loop import Agent  # noqa: E402
from intern.agent.plan import PlanState  # noqa: E402
from intern.agent.ports import GateAnswer, LLMResponse, ToolCall, Usage  # noqa: E402
from intern.agent.pricing import PriceTable  # noqa: E402
from intern.agent.prompts import system_prompt  # noqa: E402
from intern.agent.tools.base import Tool, ToolRegistry, ToolResult  # noqa: E402
from intern.agent.tools.plan import plan_tool  # noqa: E402

WORDS = ("loss grad_norm learning_rate epoch step eval accuracy tokenizer dataset split train validation "
         "checkpoint shard model adapter lora rank alpha dropout batch accumulation warmup cosine schedule "
         "bf16 fp16 gpu memory allocated reserved throughput tokens samples seconds hub push commit repo "
         "config attention flash sdpa sequence length padding truncation chat template messages assistant "
         "user system reward preference chosen rejected margin beta kl policy reference").split()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def log_output(rng: random.Random, lines: int) -> str:
    out = []
    for i in range(lines):
        out.append(f"{{'loss': {rng.uniform(0.5, 2.5):.4f}, 'grad_norm': {rng.uniform(0.1, 3):.3f}, "
                   f"'learning_rate': {rng.uniform(1e-6, 2e-4):.2e}, 'epoch': {i / lines:.2f}}} {sentence(rng, 6)}")
    return "\n".join(out)


def history(rng: random.Random, rounds: int, result_lines: int = 12) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = [{"role": "user", "content": "Fine-tune Qwen2.5-7B on our support tickets with "
                                   "LoRA and push it to acme/qwen-support. " + sentence(rng, 40)}]
    for i in range(rounds):
        cid = f"call_{i:05d}"
        args = json.dumps({"text": f"step {i}: " + sentence(rng, 30)})
        msgs.append({"role": "assistant", "content": sentence(rng, 15),
                     "tool_calls": [{"id": cid, "type": "function", "function": {"name": "logs", "arguments": args}}]})
        msgs.append({"role": "tool", "tool_call_id": cid, "name": "logs", "content": log_output(rng, result_lines)})
    return msgs


class LogsArgs(BaseModel):
    text: str


def logs_tool(rng: random.Random) -> Tool:
    async def handler(ctx: Any, args: LogsArgs) -> ToolResult:
        return ToolResult(log_output(rng, 12))

    return Tool(name="logs", description="Recent job logs.", args=LogsArgs, handler=handler)


class InstantModel:
    """The LLM port: litellm's real token counting and model table, an instant scripted `complete`."""

    def __init__(self, rng: random.Random) -> None:
        self.real = LiteLLM()
        self.rng = rng
        self.n = 0
        self.seconds_inside = 0.0
        self.summary = "Summary: " + sentence(rng, 300)

    async def complete(self, *, model: str, messages: list[dict[str, Any]],
                       tools: list[dict[str, Any]] | None) -> LLMResponse:
        started = time.perf_counter()
        self.n += 1
        if tools is None:
            response = LLMResponse(content=self.summary, usage=Usage(1000, 400, 0.0), model=model)
        else:
            call = ToolCall(id=f"b{self.n}", name="logs", arguments=json.dumps({"text": f"poll {self.n}"}))
            response = LLMResponse(content="Checking the logs.", tool_calls=(call,), finish_reason="tool_calls",
                                   usage=Usage(50_000, 40, 0.0), model=model)
        self.seconds_inside += time.perf_counter() - started
        return response

    def count_tokens(self, model: str, messages: list[dict[str, Any]]) -> int:
        return self.real.count_tokens(model, messages)

    def context_window(self, model: str) -> int:
        return self.real.context_window(model)


class Transcript:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def append(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


class Gate:
    async def lookup(self, call_id: str) -> GateAnswer | None:
        return None

    async def request(self, request: Any) -> GateAnswer:
        return GateAnswer("pending")


class Sink:
    def __init__(self) -> None:
        self.count = 0

    async def emit(self, event: Any) -> None:
        self.count += 1


def stats(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    return {"median_ms": round(statistics.median(ms), 3), "p90_ms": round(ms[int(len(ms) * 0.9)], 3),
            "mean_ms": round(statistics.fmean(ms), 3), "n": len(ms)}


async def bench_steps(model: str, steps: int, rng: random.Random) -> dict[str, Any]:
    llm = InstantModel(rng)
    sink = Sink()
    base = history(rng, 99)  # task + 99 rounds = 199 messages; the step's reply makes 200
    config = AgentConfig(model=model, research_model=model, namespace="acme")
    async with httpx.AsyncClient() as http:
        hub = HubClient(endpoint="http://127.0.0.1:9", token=None, namespace="acme")
        ctx = ToolContext(session_id="bench", config=config, hub=hub, http=http, prices=PriceTable(),
                          plan=PlanState(), events=sink)
        context = ContextManager(llm, Transcript())
        agent = Agent(llm=llm, tools=ToolRegistry([plan_tool, logs_tool(rng)]), transcript=Transcript(), gate=Gate(),
                      events=sink, ctx=ctx, system_prompt=system_prompt(today="2025-06-01", namespace="acme"),
                      model=model, context=context, redactor=Redactor(["a-configured-secret-value"]))
        agent.messages = base
        model_steps: list[float] = []
        tool_steps: list[float] = []
        floor: list[float] = []
        for i in range(steps + 10):
            inside = llm.seconds_inside
            t0 = time.perf_counter()
            assert await agent.step() is None
            t1 = time.perf_counter()
            model_cost = t1 - t0 - (llm.seconds_inside - inside)
            new_call = agent.messages[-1]
            t2 = time.perf_counter()
            assert await agent.step() is None  # runs the tool call the model just made
            t3 = time.perf_counter()
            new_result = agent.messages[-1]
            if i >= 10:  # the first steps warm the caches, as the first step of a turn does
                model_steps.append(model_cost)
                tool_steps.append(t3 - t2)
                floor.append(token_counter_time(model, [new_call, new_result]))
            # back to 200 messages: the oldest round goes, so the new ones are tokenised by the next view
            del agent.messages[1:3]
        hub.close()
        view = await context.view(agent.system_prompt, agent.messages, model, agent.schemas)
        naive = []
        for _ in range(5):  # what counting the whole view at every step would cost instead
            t = time.perf_counter()
            litellm_module().token_counter(model=model, messages=view)
            naive.append(time.perf_counter() - t)
    per_step = [m + t for m, t in zip(model_steps, tool_steps, strict=True)]
    return {
        "history_messages": len(base) + 1,
        "model_step": stats(model_steps),
        "tool_step": stats(tool_steps),
        "round_model_plus_tool": stats(per_step),
        "litellm_floor_per_round": stats(floor),
        "reference_whole_view_count_ms": stats(naive)["median_ms"],
        "model_calls": llm.n,
        "events": sink.count,
    }


def token_counter_time(model: str, messages: list[dict[str, Any]]) -> float:
    """litellm alone on the new messages of a round, one call per message, as the context manager does."""
    from intern.agent.context import wire

    wired = [wire(m) for m in messages]
    counter = litellm_module().token_counter
    t = time.perf_counter()
    for w in wired:
        counter(model=model, messages=[w])
    return time.perf_counter() - t


async def bench_compaction(model: str, target_tokens: int, rng: random.Random) -> dict[str, Any]:
    from intern.agent.context import wire

    llm = InstantModel(rng)
    counter = litellm_module().token_counter
    msgs = [history(rng, 0)[0]]
    chunk = history(rng, 4, result_lines=30)[1:]
    while counter(model=model, messages=[wire(m) for m in msgs]) < target_tokens:
        msgs.extend(json.loads(json.dumps(chunk)))  # new dicts, as if loaded from the database
    tokens = counter(model=model, messages=[wire(m) for m in msgs])
    prompt = system_prompt(today="2025-06-01", namespace="acme")

    async def run(warm: bool) -> tuple[float, int]:
        messages = json.loads(json.dumps(msgs))
        context = ContextManager(llm, Transcript(), redactor=Redactor())
        if warm:
            context.items(messages, model)  # counted already, as in a running turn
        inside = llm.seconds_inside
        t = time.perf_counter()
        view = await context.view(prompt, messages, model)
        elapsed = time.perf_counter() - t - (llm.seconds_inside - inside)
        assert messages[-1]["meta"]["kind"] == "summary", "no compaction happened"
        return elapsed, len(view)

    cold = [await run(False) for _ in range(3)]
    warm = [await run(True) for _ in range(3)]
    wired = [wire(m) for m in msgs]
    t = time.perf_counter()
    for w in wired:
        counter(model=model, messages=[w])
    floor_per_message = time.perf_counter() - t
    t = time.perf_counter()
    counter(model=model, messages=wired)
    floor_whole = time.perf_counter() - t
    return {
        "history_messages": len(msgs),
        "history_tokens": tokens,
        "window_tokens": llm.context_window(model),
        "view_messages_after": cold[0][1],
        "cold_ms": round(min(c for c, _ in cold) * 1000, 1),
        "warm_ms": round(min(w for w, _ in warm) * 1000, 1),
        "litellm_floor_count_each_message_ms": round(floor_per_message * 1000, 1),
        "litellm_floor_count_whole_list_once_ms": round(floor_whole * 1000, 1),
        "cold_minus_floor_ms": round((min(c for c, _ in cold) - floor_per_message) * 1000, 1),
    }


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import litellm

    return {"python": platform.python_version(), "platform": platform.platform(), "cpu": cpu,
            "cpus": os.cpu_count(), "litellm": getattr(litellm, "__version__", None) or _version("litellm")}


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--model", default="anthropic/claude-sonnet-4-5")
    parser.add_argument("--compaction-model", default="openai/gpt-4o")
    parser.add_argument("--compaction-tokens", type=int, default=150_000)
    args = parser.parse_args()
    rng = random.Random(11)
    litellm_module().token_counter(model=args.model, messages=[{"role": "user", "content": "warm up"}])
    steps = await bench_steps(args.model, args.steps, rng)
    compaction = await bench_compaction(args.compaction_model, args.compaction_tokens, rng)
    result = {
        "bench": "agent loop",
        "machine": machine(),
        "inputs": {"steps": args.steps, "model": args.model, "compaction_model": args.compaction_model,
                   "compaction_history_tokens": args.compaction_tokens},
        "targets": {"step_median_ms": 2.0, "compaction_s": 1.0},
        "steps": steps,
        "compaction": compaction,
        "verdict": {
            "model_step_median_under_2ms": steps["model_step"]["median_ms"] < 2.0,
            "tool_step_median_under_2ms": steps["tool_step"]["median_ms"] < 2.0,
            "compaction_cold_under_1s": compaction["cold_ms"] < 1000,
            "compaction_warm_under_1s": compaction["warm_ms"] < 1000,
        },
    }
    out = ROOT / "bench" / "results" / "loop.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
