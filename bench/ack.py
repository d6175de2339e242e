"""Time from a signed Slack mention to the HTTP 200, with 100 mentions in flight at once.

The bot runs as a real `intern serve` process (SQLite, its workers busy with the sessions the
mentions start); the stand-ins (Slack Web API, Hub, LLM) and the load generator run here.
Writes bench/results/ack.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")


SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


async def load(url: str, n: int, rounds: int, per_round: list[list[float]] | None = None,
               ) -> tuple[list[float], dict[int, int]]:
    """`rounds` bursts of `n` concurrent signed mentions; latency to the HTTP response, in ms."""
    import aiohttp

    from intern.standins.slack import event_callback, mention_event, sign

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=n)) as session:
        async def one(i: int) -> None:
            body = json.dumps(event_callback(mention_event(f"task {i}", user=f"U0USER{i:04d}"))).encode()
            stamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
                       "X-Slack-Signature": sign(SECRET, stamp, body)}
            start = time.perf_counter()
            async with session.post(f"{url}/slack/events", data=body, headers=headers) as r:
                await r.read()
            latencies.append((time.perf_counter() - start) * 1000)
            statuses[r.status] = statuses.get(r.status, 0) + 1

        # warm-up: first-request costs (bolt's lazy auth.test, connections) are not the steady state
        await asyncio.gather(*(one(-1 - i) for i in range(5)))
        latencies.clear()
        statuses.clear()
        for _ in range(rounds):
            before = len(latencies)
            await asyncio.gather(*(one(i) for i in range(n)))
            if per_round is not None:
                per_round.append(latencies[before:])
            await asyncio.sleep(1.0)
    return latencies, statuses


def figures(latencies: list[float], statuses: dict[int, int]) -> dict[str, object]:
    latencies = sorted(latencies)
    q = statistics.quantiles(latencies, n=100)
    return {"requests": len(latencies), "statuses": statuses, "p50_ms": round(q[49], 2), "p90_ms": round(q[89], 2),
            "p99_ms": round(q[98], 2), "max_ms": round(latencies[-1], 2), "mean_ms": round(statistics.fmean(latencies), 2)}


async def floor(slack_url: str, token: str, n: int, rounds: int) -> dict[str, object]:
    """slack_bolt + aiohttp alone, with a listener that does nothing: what the dependency costs."""
    from tests.e2e.harness import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "floor_bolt_server.py"), str(port),  # noqa: ASYNC220
                             f"{slack_url}/api/", token, SECRET])
    try:
        import aiohttp

        async with aiohttp.ClientSession() as s:
            for _ in range(200):
                try:
                    async with s.get(f"http://127.0.0.1:{port}/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
        return figures(*await load(f"http://127.0.0.1:{port}", n, rounds))
    finally:
        proc.terminate()
        proc.wait(10)


async def main(n: int, rounds: int, database_url: str | None, extra_env: dict[str, str]) -> dict[str, object]:
    from tests.e2e.harness import Harness

    from intern.standins.hub import HubStandIn
    from intern.standins.llm import LLMStandIn, text_reply
    from intern.standins.slack import SlackStandIn

    tmp = Path(tempfile.mkdtemp(prefix="intern-bench-ack-"))
    url = database_url or f"sqlite:///{tmp / 'bench.db'}"
    async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm:
        llm.rule = lambda req: text_reply("On it.")
        base = await floor(slack.url, slack.token, n, rounds)
        h = Harness(url, slack, hub, llm, extra_env=extra_env)  # type: ignore[arg-type]
        await h.start_child(tmp)
        bursts: list[list[float]] = []
        try:
            ours = figures(*await load(h.url, n, rounds, bursts))
        finally:
            await h.kill_child()
    return {
        "bench": "ack",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "inputs": {"concurrent_mentions": n, "rounds": rounds, "database": url.split(":", 1)[0],
                   "bot": "intern serve subprocess; its workers run the sessions the mentions start"},
        "floor_bolt_noop_listener": base,
        "intern": ours,
        # Each burst after the first arrives while the sessions the earlier ones started are running.
        "intern_p99_ms_by_burst": [round(statistics.quantiles(sorted(b), n=100)[98], 2) for b in bursts],
        "ratio_p99_vs_floor": round(float(ours["p99_ms"]) / max(float(base["p99_ms"]), 1e-9), 2),  # type: ignore[arg-type]
        "target": {"p99_ms": 100, "or_within_floor_ratio": 1.2},
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--database-url")
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the bot process")
    args = ap.parse_args()
    ap_env = dict(kv.split("=", 1) for kv in args.env)
    result = asyncio.run(main(args.n, args.rounds, args.database_url, ap_env))
    out = ROOT / "bench" / "results" / "ack.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
