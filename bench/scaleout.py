"""The load of bench/sessions.py (200 concurrent sessions, five model steps each, a scripted model
answering after 500 ms) over 1, 2 and 3 `intern serve` processes sharing one PostgreSQL database:
how throughput scales when processes are added. Mentions are spread round-robin over the processes;
each process claims sessions from the shared queue (FOR UPDATE SKIP LOCKED).

The floor for each process count: litellm alone in as many processes, replaying the very model
requests the bot made (bench/floor_litellm_sessions.py), the sessions split the same way. A fresh
database per run. Writes bench/results/scaleout.json.

    .venv/bin/python bench/scaleout.py --database-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

from sessions import DELAY, STEPS, chains_of, machine, peak_rss_mb, run_load  # noqa: E402


async def floor(api_base: str, api_key: str, chains: list[list[dict[str, Any]]], processes: int,
                tmp: Path) -> dict[str, Any]:
    """litellm alone in `processes` processes at once, each with its share of the chains."""
    procs = []
    for i in range(processes):
        path = tmp / f"chains-{processes}-{i}.json"
        path.write_text(json.dumps(chains[i::processes]))
        procs.append(await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "bench" / "floor_litellm_sessions.py"), api_base, api_key, str(path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL))
    outs = await asyncio.gather(*(p.communicate() for p in procs))
    walls = [json.loads(out.decode().strip().splitlines()[-1])["wall_s"] for out, _ in outs]
    wall = max(walls)
    return {"processes": processes, "wall_s": wall, "sessions_per_s": round(len(chains) / wall, 2)}


async def one(processes: int, n: int, workers: int, base_url: str, tmp: Path) -> tuple[dict[str, Any], list[list[dict]]]:
    from tests.e2e.harness import LLM_KEY, Harness
    from tests.faults.cluster import steps_rule
    from tests.support.db import create_pg_database, drop_pg_database

    from intern.bot.store import upgrade
    from intern.standins.hub import HubStandIn
    from intern.standins.llm import LLMStandIn
    from intern.standins.slack import SlackStandIn

    url = await create_pg_database(base_url)
    try:
        await upgrade(url)
        async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm:
            llm.rule = steps_rule(tool_steps=STEPS - 1, delay=DELAY)
            nodes = [Harness(url, slack, hub, llm, extra_env={"INTERN_WORKERS": str(workers),
                                                                "INTERN_MAX_SESSIONS_PER_USER_HOUR": "1000000"})  # type: ignore[arg-type]
                     for _ in range(processes)]
            await asyncio.gather(*(h.start_child(tmp) for h in nodes))
            try:
                await run_load(nodes, slack, 3 * processes, f"warm{processes}x")
                started = time.perf_counter()
                ours = await run_load(nodes, slack, n, f"m{processes}x")  # its "cpu": each process's CPU time
                ours["peak_rss_mb_per_process"] = [peak_rss_mb(h.child.pid) for h in nodes if h.child]
                ours["measured_s"] = round(time.perf_counter() - started, 2)
            finally:
                await asyncio.gather(*(h.kill_child() for h in nodes))
            chains = chains_of(llm.chat_requests, f"m{processes}x")
            base = await floor(f"{llm.url}/v1", LLM_KEY, chains, processes, tmp)
    finally:
        await drop_pg_database(base_url, url)
    return {"processes": processes, "intern": ours, "floor_litellm_same_requests": base,
            "ratio_wall_vs_floor": round(ours["wall_s"] / base["wall_s"], 3)}, chains


async def series(n: int, workers: int, base_url: str, counts: list[int], tmp: Path,
                 repeat: int) -> list[dict[str, Any]]:
    """Each configuration `repeat` times (the machine is shared and noisy): the median run is kept,
    with every run's wall time alongside."""
    runs = []
    for processes in counts:
        tries = [(await one(processes, n, workers, base_url, tmp))[0] for _ in range(repeat)]
        tries.sort(key=lambda r: r["intern"]["wall_s"])
        run = tries[len(tries) // 2]
        run["wall_s_of_every_run"] = [r["intern"]["wall_s"] for r in tries]
        run["workers_per_process"] = workers
        if workers < n:  # the floor runs every session at once: no yardstick for slot-bound runs
            run.pop("floor_litellm_same_requests")
            run.pop("ratio_wall_vs_floor")
        waves = math.ceil(n / (workers * processes))  # sessions run in waves when slots are short
        run["ideal_s"] = waves * STEPS * DELAY
        run["ratio_to_ideal"] = round(run["intern"]["wall_s"] / run["ideal_s"], 3)
        print(json.dumps(run), file=sys.stderr)
        runs.append(run)
    first = runs[0]["intern"]["sessions_per_s"]
    for run in runs:
        run["speedup_vs_first"] = round(run["intern"]["sessions_per_s"] / first, 2)
    return runs


async def main(n: int, base_url: str, counts: list[int], slot_limit: int, repeat: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="intern-bench-scaleout-"))
    info = machine()
    return {
        "bench": "scaleout",
        "machine": info,
        "inputs": {"sessions": n, "steps_per_session": STEPS, "model_delay_s": DELAY,
                   "tools": "4 x plan (read-only), then a text reply", "database": "postgresql (fresh per run)",
                   "processes": counts, "repeat": repeat,
                   "note": "the PostgreSQL server, the stand-ins and the load generator share the machine's cores"},
        "cpu_bound": {"about": f"INTERN_WORKERS={n}: every process could run all sessions at once; what "
                               "limits is CPU (litellm's per-call cost above all)",
                      "runs": await series(n, n, base_url, counts, tmp, repeat)},
        "slot_bound": {"about": f"INTERN_WORKERS={slot_limit}: one process runs at most {slot_limit} sessions "
                                "at a time; processes add session slots",
                       "runs": await series(n, slot_limit, base_url, counts, tmp, repeat)},
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--database-url", default=os.environ.get("INTERN_TEST_DATABASE_URL"),
                    help="a PostgreSQL server URL; a database is created and dropped on it per run")
    ap.add_argument("--processes", default="1,2,3")
    ap.add_argument("--slot-limit", type=int, default=67, help="INTERN_WORKERS for the slot-bound series")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not args.database_url:
        sys.exit("scaleout needs PostgreSQL: --database-url postgresql://… (or INTERN_TEST_DATABASE_URL)")
    result = asyncio.run(main(args.n, args.database_url, [int(x) for x in args.processes.split(",")],
                              args.slot_limit, args.repeat))
    out = ROOT / "bench" / "results" / "scaleout.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
