"""Model cost of a long session with and without prompt-cache markers.

A 40-step session of the real agent loop (the real system prompt and tool schemas, tool calls with
realistic results: training logs, dataset reports, file listings; one compaction in the middle) runs
through the real `LiteLLM` port and litellm against a loopback stand-in of Anthropic's Messages API
that models the prompt cache as Anthropic documents it (`intern.standins.anthropic`). It runs twice:
with `INTERN_PROMPT_CACHE=on` (markers on the system prompt and the latest message) and `off`.

Reported: the share of input tokens read from the cache, and the session's cost (litellm's own prices
for the model, cache writes and reads included) against the same session without markers.
Goal: at least 85% of input tokens read from the cache, and a cost at most a quarter of the uncached one.

    .venv/bin/python bench/llm_cost.py [--steps 40] [--model anthropic/claude-sonnet-4-5]

Writes bench/results/llm_cost.json and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
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
from intern.agent.events import UsageRecorded  # noqa: E402
from intern.agent.guardrails.redaction import Redactor  # noqa: E402
from intern.agent.hub import HubClient  # noqa: E402
from intern.agent.llm import LiteLLM  # noqa: E402
from intern.agent.loop import Agent  # noqa: E402
from intern.agent.plan import PlanState  # noqa: E402
from intern.agent.ports import GateAnswer  # noqa: E402
from intern.agent.pricing import PriceTable  # noqa: E402
from intern.agent.prompts import system_prompt  # noqa: E402
from intern.agent.tools.base import Tool, ToolResult  # noqa: E402
from intern.bot.settings import Settings  # noqa: E402
from intern.bot.wiring import build_tools  # noqa: E402
from intern.standins.anthropic import AnthropicStandIn  # noqa: E402
from intern.standins.llm import text_reply, tool_calls_reply  # noqa: E402

KEY = "sk-ant-bench-0123456789abcdefghijklmnop"
WORDS = ("loss grad_norm learning_rate epoch step eval accuracy tokenizer dataset split train validation "
         "checkpoint shard model adapter lora rank alpha dropout batch accumulation warmup cosine schedule "
         "bf16 gpu memory allocated throughput tokens samples seconds hub push commit repo config attention "
         "sequence length padding chat template messages assistant reward preference chosen rejected").split()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def tool_output(rng: random.Random, step: int) -> str:
    """What tools give back in a real session: logs most often, now and then a dataset report or a listing."""
    kind = step % 5
    if kind == 3:
        rows = "\n".join(f"| {i} | {sentence(rng, 8)} | {sentence(rng, 14)} |" for i in range(12))
        return (f"Dataset trl-lib/Capybara, config default, split train: 15,806 rows, 2 columns.\n"
                f"Fits: sft_messages\n| # | prompt | completion |\n|---|---|---|\n{rows}")
    if kind == 4:
        return "\n".join(f"{rng.randint(1, 9_000_000):>9}  out/checkpoint-{i * 50}/{w}.safetensors"
                         for i, w in enumerate(sentence(rng, 20).split()))
    return "\n".join(f"{{'loss': {rng.uniform(0.5, 2.5):.4f}, 'grad_norm': {rng.uniform(0.1, 3):.3f}, "
                     f"'learning_rate': {rng.uniform(1e-6, 2e-4):.2e}, 'epoch': {i / 30:.2f}}}"
                     for i in range(30))


class CheckArgs(BaseModel):
    what: str


def check_tool(rng: random.Random) -> Tool:
    step = 0

    async def handler(ctx: Any, args: CheckArgs) -> ToolResult:
        nonlocal step
        step += 1
        return ToolResult(tool_output(rng, step))

    return Tool(name="check_run", description="Look at the run: logs, the dataset, the output folder.",
                args=CheckArgs, handler=handler)


def scripted(rng: random.Random, steps: int) -> Any:
    """The model: a tool call per step with a few sentences of reasoning, a summary when asked to
    compact (no tools offered), and a final answer after `steps` steps."""
    done = 0

    def rule(body: dict[str, Any]) -> Any:
        nonlocal done
        if not body.get("tools"):
            return text_reply("Summary: " + sentence(rng, 250))
        done += 1
        if done > steps:
            return text_reply("The run finished; the model is on the Hub. " + sentence(rng, 40))
        return tool_calls_reply([("check_run", {"what": f"step {done}: " + sentence(rng, 6)})],
                                text=sentence(rng, 30))

    return rule


class Transcript:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def append(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


class Gate:
    async def lookup(self, call_id: str) -> GateAnswer | None:
        return None

    async def request(self, request: Any) -> GateAnswer:
        return GateAnswer("approved", spec=request.spec)


class Usage:
    def __init__(self) -> None:
        self.calls = 0
        self.prompt = self.read = self.written = self.output = 0
        self.cost = 0.0

    async def emit(self, event: Any) -> None:
        if isinstance(event, UsageRecorded):
            self.calls += 1
            self.prompt += event.prompt_tokens
            self.read += event.cache_read_tokens
            self.written += event.cache_write_tokens
            self.output += event.completion_tokens
            self.cost += event.cost_usd


async def session(model: str, steps: int, cache: bool, window: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    async with AnthropicStandIn(api_key=KEY) as stand:
        stand.rule = scripted(rng, steps)
        llm = LiteLLM(api_base=stand.url, api_key=KEY, prompt_cache=cache, max_attempts=1)
        usage = Usage()
        tools = build_tools(Settings(_env_file=None))  # type: ignore[call-arg]
        tools.add(check_tool(rng))
        transcript = Transcript()
        async with httpx.AsyncClient() as http:
            hub = HubClient(endpoint="http://127.0.0.1:9", token=None, namespace="acme")
            ctx = ToolContext(session_id="bench", config=AgentConfig(model=model, research_model=model),
                              hub=hub, http=http, prices=PriceTable(), plan=PlanState(), events=usage)
            context = ContextManager(llm, transcript, window_override=window)
            agent = Agent(llm=llm, tools=tools, transcript=transcript, gate=Gate(), events=usage, ctx=ctx,
                          system_prompt=system_prompt(today="2026-12-07", namespace="acme"), model=model,
                          context=context, redactor=Redactor([KEY]), max_iterations=2 * steps + 10)
            started = time.perf_counter()
            outcome = await agent.run([{"role": "user", "content": "Fine-tune Qwen2.5-7B with LoRA on our "
                                        "support tickets, watch the run and push it to acme/qwen-support."}])
            seconds = time.perf_counter() - started
            hub.close()
        ledger = stand.ledger
        compactions = sum(1 for m in transcript.messages if (m.get("meta") or {}).get("kind") == "summary")
        return {"prompt_cache": cache, "outcome": outcome.status, "model_calls": usage.calls,
                "compactions": compactions, "input_tokens": usage.prompt, "cache_read_tokens": usage.read,
                "cache_write_tokens": usage.written, "output_tokens": usage.output,
                "cache_read_share": round(usage.read / usage.prompt, 4) if usage.prompt else 0.0,
                "cost_usd": round(usage.cost, 6), "seconds": round(seconds, 2),
                "stand_in_billed": {"input": ledger.input_tokens, "cache_write": ledger.cache_creation_input_tokens,
                                    "cache_read": ledger.cache_read_input_tokens, "output": ledger.output_tokens}}


def write(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--model", default="anthropic/claude-sonnet-4-5")
    parser.add_argument("--window", type=int, default=45_000,
                        help="context window the session is compacted against (one compaction midway)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "llm_cost.json"))
    args = parser.parse_args()
    cached = await session(args.model, args.steps, True, args.window, seed=7)
    plain = await session(args.model, args.steps, False, args.window, seed=7)
    ratio = cached["cost_usd"] / plain["cost_usd"] if plain["cost_usd"] else None
    result = {
        "bench": "llm_cost",
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "inputs": {"steps": args.steps, "model": args.model, "window_tokens": args.window,
                   "stand_in": "Anthropic Messages API with the documented prefix cache"},
        "with_markers": cached,
        "without_markers": plain,
        "figures": {"cache_read_share": cached["cache_read_share"],
                    "cost_ratio": round(ratio, 4) if ratio is not None else None},
        "goals": {"cache_read_share_at_least": 0.85, "cost_ratio_at_most": 0.25},
        "met": bool(cached["cache_read_share"] >= 0.85 and ratio is not None and ratio <= 0.25),
    }
    write(Path(args.out), result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
