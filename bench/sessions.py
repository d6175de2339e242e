"""Many sessions at once in one `intern serve` process: 200 concurrent sessions, each five model
steps (four cheap read-only `plan` calls, then a text reply) against a scripted model that answers
after 500 ms. Ideal wall time: 5 × 0.5 s = 2.5 s; target: within 1.3× of it, peak RSS < 500 MB.

The bot is a real `intern serve` subprocess (INTERN_WORKERS=200); the stand-ins (Slack Web API, Hub,
LLM) and the load generator run here. Wall time runs from the first mention sent to the last final
reply posted (the Slack stand-in stamps each post). The same run measures the dependency floor:
litellm alone, in its own process, replaying the very model requests the bot made, chain by chain.
Writes bench/results/sessions.json.

    .venv/bin/python bench/sessions.py [-n 200] [--database-url postgresql://…]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

STEPS, DELAY = 5, 0.5


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


async def mention_all(nodes: list[Any], n: int, prefix: str) -> dict[str, float]:
    """n signed mentions at once, spread over the nodes; returns thread ts → send time."""
    from tests.e2e.harness import REQUESTER

    from intern.standins.slack import mention_event

    events = [mention_event(f"please do task {prefix}{i}", user=REQUESTER) for i in range(n)]
    results = await asyncio.gather(*(nodes[i % len(nodes)].sender.send_event(e) for i, e in enumerate(events)))
    bad = [r.status for r in results if r.status != 200]
    if bad:
        raise RuntimeError(f"mentions not acked: {bad[:5]}")
    return {e["ts"]: float(e["ts"]) for e in events}


async def wait_finals(slack: Any, threads: dict[str, float], timeout: float) -> dict[str, float]:
    """thread → time its final reply was posted (the stand-in's ts)."""
    deadline = time.monotonic() + timeout
    while True:
        done = {}
        for m in slack.posted():
            if m.thread_ts in threads and m.text.startswith("Finished task"):
                done[m.thread_ts] = float(m.ts)
        if len(done) == len(threads):
            return done
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(threads) - len(done)} of {len(threads)} sessions unfinished")
        await asyncio.sleep(0.02)


def quantiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    q = statistics.quantiles(values, n=100) if len(values) > 1 else values * 99
    return {"p50_s": round(q[49], 3), "p90_s": round(q[89], 3), "p99_s": round(q[98], 3),
            "max_s": round(values[-1], 3)}


async def run_load(nodes: list[Any], slack: Any, n: int, prefix: str) -> dict[str, Any]:
    pids = [node.child.pid for node in nodes if node.child is not None]
    cpu_before = [cpu_seconds(pid) for pid in pids]
    standins_cpu_before = time.process_time()
    sent_at = time.time()
    threads = await mention_all(nodes, n, prefix)
    acked = time.time()
    finals = await wait_finals(slack, threads, timeout=300)
    end = max(finals.values())
    wall = end - sent_at
    # CPU used during the run: by each bot process, and by this process (the stand-ins and the load
    # generator). A process near wall_s of CPU was the bottleneck.
    cpu = {"bot_processes_s": [round(cpu_seconds(pid) - before, 2) for pid, before in zip(pids, cpu_before, strict=True)],
           "standins_process_s": round(time.process_time() - standins_cpu_before, 2)}
    return {"cpu": cpu, "sessions": n, "wall_s": round(wall, 3), "ack_all_s": round(acked - sent_at, 3),
            "ideal_s": STEPS * DELAY, "ratio_to_ideal": round(wall / (STEPS * DELAY), 3),
            "sessions_per_s": round(n / wall, 2), "session_latency": quantiles(
                [finals[t] - threads[t] for t in threads])}


def chains_of(requests: list[dict[str, Any]], prefix: str) -> list[list[dict[str, Any]]]:
    """The recorded model requests of the measured sessions, grouped by session, in order."""
    import re

    by_task: dict[str, list[dict[str, Any]]] = {}
    for body in requests:
        first_user = next((m for m in body.get("messages") or [] if m.get("role") == "user"), None)
        found = re.search(r"task (\S+)", str((first_user or {}).get("content")))
        if found and found.group(1).startswith(prefix):
            by_task.setdefault(found.group(1), []).append(body)
    return list(by_task.values())


async def litellm_floor(api_base: str, api_key: str, chains: list[list[dict[str, Any]]], tmp: Path) -> dict[str, Any]:
    """Run in a child process, awaited: the LLM stand-in it calls lives on this event loop."""
    path = tmp / "chains.json"
    path.write_text(json.dumps(chains))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bench" / "floor_litellm_sessions.py"), api_base, api_key, str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    stdout, _ = await asyncio.wait_for(proc.communicate(), timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"the litellm floor run failed ({proc.returncode})")
    floor = json.loads(stdout.decode().strip().splitlines()[-1])
    floor["ratio_to_ideal"] = round(floor["wall_s"] / (STEPS * DELAY), 3)
    return floor


async def main(n: int, database_url: str | None) -> dict[str, Any]:
    from tests.e2e.harness import LLM_KEY, Harness
    from tests.faults.cluster import steps_rule

    from intern.standins.hub import HubStandIn
    from intern.standins.llm import LLMStandIn
    from intern.standins.slack import SlackStandIn

    tmp = Path(tempfile.mkdtemp(prefix="intern-bench-sessions-"))
    url = database_url or f"sqlite:///{tmp / 'bench.db'}"
    info = machine()
    async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm:
        llm.rule = steps_rule(tool_steps=STEPS - 1, delay=DELAY)
        # One person starts them all: what is measured is the load, not the per-user limit.
        h = Harness(url, slack, hub, llm, extra_env={"INTERN_WORKERS": str(n),  # type: ignore[arg-type]
                                                   "INTERN_MAX_SESSIONS_PER_USER_HOUR": "1000000"})
        await h.start_child(tmp)
        try:
            await run_load([h], slack, 5, "warm")  # first-request costs are not the steady state
            print("measuring", file=sys.stderr, flush=True)
            ours = await run_load([h], slack, n, "m")
            assert h.child is not None
            rss = peak_rss_mb(h.child.pid)
        finally:
            await h.kill_child()
        chains = chains_of(llm.chat_requests, "m")
        print(json.dumps({"intern": ours, "peak_rss_mb": rss}), file=sys.stderr)
        floor = await litellm_floor(f"{llm.url}/v1", LLM_KEY, chains, tmp)
    return {
        "bench": "sessions",
        "machine": info,
        "inputs": {"sessions": n, "steps_per_session": STEPS, "model_delay_s": DELAY,
                   "tools": "4 x plan (read-only), then a text reply", "database": url.split(":", 1)[0],
                   "bot": f"one intern serve subprocess, INTERN_WORKERS={n}"},
        "intern": {**ours, "peak_rss_mb": rss},
        "floor_litellm_same_requests": floor,
        "ratio_wall_vs_floor": round(ours["wall_s"] / floor["wall_s"], 3),
        "target": {"ratio_to_ideal": 1.3, "peak_rss_mb": 500, "or_within_floor_ratio": 1.2},
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--database-url")
    ap.add_argument("--out", default="sessions")
    args = ap.parse_args()
    result = asyncio.run(main(args.n, args.database_url))
    out = ROOT / "bench" / "results" / f"{args.out}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
