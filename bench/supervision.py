"""Job supervision at scale: one `intern serve` process follows 200 running jobs, each logging 10 lines
a second (tqdm bars, Trainer dicts, plain prints) and streaming GPU metrics once a second, and keeps
their status cards up to date on Slack.

The Hub and Slack stand-ins run in this (driver) process; the bot runs as its own process, whose
CPU time is read from /proc over the measured window. Reported:

- CPU of the bot per 1,000 log lines delivered, and as a share of one core (goal: under 10%);
- card edits (chat.update) a second: per thread (the most any thread got in one second, and the
  mean), and for the whole process (goal: no thread over one edit a second);
- the floor: the same streams read by huggingface_hub alone (200 log and 200 metric streams on
  threads, nothing done with them) in a process of its own, measured the same way;
- the stream floor: the same streams read by the bot's own reader (`agent/job_streams.py`: one
  event loop, paced as the bot paces it, lines handed to a list) in a process of its own: what
  following costs before supervision (parsing, alerts, cards, writes) runs.

    .venv/bin/python bench/supervision.py [--jobs 200] [--rate 10] [--seconds 30]
    .venv/bin/python bench/supervision.py --history 4000 --warmup 60   # hours into the runs

Writes bench/results/supervision.json (with --history: supervision_long_run.json).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

from sessions import cpu_seconds, machine  # noqa: E402

FLOOR = """
import os, sys, threading, time
from huggingface_hub import HfApi
from intern.agent.hub import open_ended_connection_pool
open_ended_connection_pool()  # the bot's pool: 400 streams at once
api = HfApi(endpoint=os.environ["HF_ENDPOINT"], token=os.environ["HF_TOKEN"])
ns = os.environ["NS"]
def logs(j):
    for _ in api.fetch_job_logs(job_id=j, namespace=ns, follow=True):
        pass
def metrics(j):
    for _ in api.fetch_job_metrics(job_id=j, namespace=ns, follow=True):
        pass
for j in sys.argv[1:]:
    threading.Thread(target=logs, args=(j,), daemon=True).start()
    threading.Thread(target=metrics, args=(j,), daemon=True).start()
print("ready", flush=True)
time.sleep(3600)
"""

STREAM_FLOOR = """
import asyncio, os, sys
from intern.agent.hub import HubClient
from intern.agent.job_streams import LogCursor

async def main():
    hub = HubClient(endpoint=os.environ["HF_ENDPOINT"], token=os.environ["HF_TOKEN"], namespace=os.environ["NS"])
    ns, pace = os.environ["NS"], float(os.environ["PACE"])
    taken = []

    async def logs(j):
        cursor = LogCursor()
        while True:
            try:
                await hub.streams.read_logs(ns, j, cursor, taken.extend, pace=pace)
            except Exception:
                await asyncio.sleep(1)
            taken.clear()

    async def metrics(j):
        while True:
            try:
                await hub.streams.read_metrics(ns, j, lambda sample: None, pace=pace)
            except Exception:
                await asyncio.sleep(1)

    tasks = [asyncio.create_task(f(j)) for j in sys.argv[1:] for f in (logs, metrics)]
    print("ready", flush=True)
    while True:
        await asyncio.sleep(1)
        taken.clear()

asyncio.run(main())
"""


# A run of 100,000 steps at 10 a second takes about 2.8 hours: its timeout leaves room, so that no job
# is (rightly) alerted for a finish past it; what is measured is following, not an alert for every job.
TOTAL_STEPS = 100_000
TIMEOUT = 48 * 3600


def log_line(job: int, step: int, total: int) -> str:
    """What a Trainer run prints: mostly tqdm redraws, a metrics dict every 10 steps, some prints."""
    if step % 10 == 0:
        loss = 2.0 / (1 + step / 200) + (job % 7) * 0.01
        return (f"{{'loss': {loss:.4f}, 'grad_norm': {0.5 + (step % 13) / 20:.3f}, "
                f"'learning_rate': {2e-5 * (1 - step / total):.3e}, 'epoch': {step / total:.2f}}}")
    if step % 10 == 5:
        return f"[rank0]:[W1207 15:20:01.{step:06d}] step {step}: tokens/s 5123.4 (saving nothing yet)"
    pct = 100 * step // total
    elapsed, remaining = step // 2, (total - step) // 2
    return (f" {pct:2d}%|{'█' * (pct // 10):<10}| {step}/{total} [{elapsed // 60:02d}:{elapsed % 60:02d}<"
            f"{remaining // 60:02d}:{remaining % 60:02d},  2.00it/s]")


async def seed(url: str, slack: Any, hub: Any, n: int) -> list[str]:
    """n sessions, each with a status card in its own thread and one RUNNING job on the Hub."""
    from slack_sdk.web.async_client import AsyncWebClient

    from intern.bot.cards import StatusState
    from intern.bot.chat import MessageRef
    from intern.bot.models import Job, Session
    from intern.bot.store import connect, ensure_schema
    from intern.standins.hub_jobs import jobs_state

    db = connect(url)
    await ensure_schema(db, auto_migrate=True)
    client = AsyncWebClient(token=slack.token, base_url=f"{slack.url}/api/")
    jobs = jobs_state(hub)
    ids, job_rows = [], []
    now = datetime.now(UTC)
    async with db.transaction() as tx:
        for i in range(n):
            root = await client.chat_postMessage(channel="C0BENCH", text=f"train model {i}")
            card = await client.chat_postMessage(channel="C0BENCH", thread_ts=root["ts"], text="Intern status")
            ref = MessageRef("slack", "C0BENCH", card["ts"], root["ts"])
            state = StatusState(phase="Waiting for the job")
            sid = str(uuid.uuid4())
            tx.add(Session(id=sid, platform="slack", workspace=slack.team_id, channel="C0BENCH", thread=root["ts"],
                           started_by="U0BENCH", status="active", status_card={"ref": ref.to_json(),
                                                                               "state": state.to_json()}))
            hub_job = jobs.new_job(hub.user, {"flavor": "a10g-large", "command": ["python", "train.py"],
                                              "dockerImage": "python:3.12", "timeoutSeconds": TIMEOUT})
            jobs.set_stage(hub_job.id, "RUNNING")
            jobs.set_gpu(hub_job.id, utilization=90, memory_used_bytes=20_000_000_000)
            job_rows.append(Job(session_id=sid, hf_job_id=hub_job.id, namespace=hub.user, flavor="a10g-large",
                       timeout_seconds=TIMEOUT, hourly_usd=1.5, estimated_cost_usd=3.0, stage="RUNNING",
                       requester="U0BENCH", platform="slack", workspace=slack.team_id, channel="C0BENCH",
                       started_at=now))
            ids.append(hub_job.id)
        await tx.flush()  # the sessions first: the jobs refer to them
        tx.add_all(job_rows)
    await db.dispose()
    return ids


def log_history(hub: Any, ids: list[str], steps: int, total: int = TOTAL_STEPS) -> None:
    """What each job logged before the bot starts: `steps` lines, read again by the bot at start (a
    long run: its metric series full, as in the steady state of a run hours in)."""
    from intern.standins.hub_jobs import jobs_state

    jobs = jobs_state(hub)
    for i, jid in enumerate(ids):
        jobs.append_logs(jid, *(log_line(i, step, total) for step in range(1, steps + 1)))


async def feed(hub: Any, ids: list[str], rate: float, stop: asyncio.Event, total: int = TOTAL_STEPS,
               first_step: int = 0) -> int:
    """Every job logs `rate` lines a second, in `rate` ticks a second (one line per job per tick)."""
    from intern.standins.hub_jobs import jobs_state

    jobs = jobs_state(hub)
    step, sent = first_step, 0
    period = 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        step += 1
        for i, jid in enumerate(ids):
            jobs.append_logs(jid, log_line(i, step, total))
        sent += len(ids)
        next_at += period
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    return sent


def edit_figures(slack: Any, since: float, until: float) -> dict[str, Any]:
    """chat.update calls per thread card, from the stand-in's record of each edit."""
    per_card: dict[str, list[float]] = collections.defaultdict(list)
    for m in slack.messages:
        for e in m.edits:
            at = float(e["edited_ts"])
            if since <= at <= until:
                per_card[m.ts].append(at)
    worst = 0
    for stamps in per_card.values():
        stamps.sort()
        j = 0
        for i, at in enumerate(stamps):
            while at - stamps[j] >= 1.0:
                j += 1
            worst = max(worst, i - j + 1)
    seconds = max(until - since, 1e-9)
    total = sum(len(s) for s in per_card.values())
    return {"cards_edited": len(per_card), "edits_total": total, "edits_per_second_process": round(total / seconds, 2),
            "edits_per_second_per_thread_mean": round(total / seconds / max(len(per_card), 1), 3),
            "most_edits_of_one_thread_in_any_second": worst}


async def measure(pid: int, seconds: float, counter: Any) -> tuple[float, float, int]:
    lines0, cpu0, t0 = counter(), cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    return cpu_seconds(pid) - cpu0, time.monotonic() - t0, counter() - lines0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.e2e.harness import Harness

    from intern.standins import hub_jobs
    from intern.standins.hub import HubStandIn
    from intern.standins.hub_jobs import jobs_state
    from intern.standins.slack import SlackStandIn

    tmp = Path(tempfile.mkdtemp(prefix="intern-bench-supervision-"))
    url = f"sqlite:///{tmp / 'bench.db'}"
    result: dict[str, Any] = {"machine": machine(), "inputs": {"jobs": args.jobs, "lines_per_second_per_job": args.rate,
                                                               "measured_seconds": args.seconds,
                                                               "warmup_seconds": args.warmup, "database": "sqlite",
                                                               "lines_logged_before_start_per_job": args.history,
                                                               "gpu_metric_events_per_second_per_job": 1}}
    async with SlackStandIn() as slack, HubStandIn() as hub:
        jobs = jobs_state(hub)
        jobs.keepalive_seconds = 30.0
        ids = await seed(url, slack, hub, args.jobs)
        if args.history:
            log_history(hub, ids, args.history)
        delivered = [0]
        write = hub_jobs._write_events

        async def counting(response: Any, events: list[Any]) -> None:  # lines sent down the log streams
            delivered[0] += len(events)
            await write(response, events)

        hub_jobs._write_events = counting  # type: ignore[assignment]
        node = Harness(url, slack, hub, llm=_NoLLM(), extra_env={"INTERN_WORKERS": "4", "INTERN_JOB_POLL_SECONDS": "15"})  # type: ignore[arg-type]
        stop = asyncio.Event()
        feeder: asyncio.Task[int] | None = None
        try:
            await node.start_child(tmp)
            assert node.child is not None
            feeder = asyncio.create_task(feed(hub, ids, args.rate, stop, first_step=args.history))
            await asyncio.sleep(args.warmup)
            followed = sum(1 for j in jobs.jobs.values() if j.streams)
            result["inputs"]["lines_appended_per_second"] = args.jobs * args.rate
            since = time.time()
            cpu, wall, lines = await measure(node.child.pid, args.seconds, lambda: delivered[0])
            result["bot"] = {"jobs_with_an_open_log_stream": followed, "lines_delivered": lines,
                             "cpu_seconds": round(cpu, 2), "wall_seconds": round(wall, 2),
                             "cpu_share_of_one_core_pct": round(100 * cpu / wall, 2),
                             "cpu_ms_per_1000_lines": round(1000 * cpu / max(lines, 1) * 1000, 2),
                             **edit_figures(slack, since, time.time())}
            await node.kill_child()
            result["floor"] = await floor(hub, ids, args, lambda: delivered[0], tmp)
            result["stream_floor"] = await floor(hub, ids, args, lambda: delivered[0], tmp, script=STREAM_FLOOR)
        finally:
            stop.set()
            if feeder is not None:
                await feeder
            await node.kill_child(hard=True)
    bot, base = result["bot"], result["floor"]
    result["figures"] = {
        "cpu_share_of_one_core_pct": bot["cpu_share_of_one_core_pct"],
        "cpu_ms_per_1000_lines": bot["cpu_ms_per_1000_lines"],
        "floor_cpu_share_of_one_core_pct": base["cpu_share_of_one_core_pct"],
        "stream_floor_cpu_share_of_one_core_pct": result["stream_floor"]["cpu_share_of_one_core_pct"],
        "our_code_over_the_floor_pct_of_one_core": round(bot["cpu_share_of_one_core_pct"]
                                                         - base["cpu_share_of_one_core_pct"], 2),
        "most_edits_of_one_thread_in_any_second": bot["most_edits_of_one_thread_in_any_second"],
        "goal_under_10pct_of_one_core": bot["cpu_share_of_one_core_pct"] < 10.0,
        "goal_at_most_one_edit_a_second_per_thread": bot["most_edits_of_one_thread_in_any_second"] <= 1,
    }
    return result


async def floor(hub: Any, ids: list[str], args: argparse.Namespace, counter: Any, tmp: Path,
                script: str = FLOOR) -> dict[str, Any]:
    """A reader alone on the same streams (huggingface_hub's threads, or the bot's own reader): what
    following costs before our supervision runs."""
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": hub.token, "NS": hub.user, "HF_HOME": str(tmp / "hf"),
           "HF_HUB_DISABLE_TELEMETRY": "1", "PACE": "1.0"}
    child = subprocess.Popen([sys.executable, "-c", script, *ids], env=env, stdout=subprocess.PIPE)  # noqa: ASYNC220
    try:
        assert child.stdout is not None
        await asyncio.to_thread(child.stdout.readline)
        await asyncio.sleep(args.warmup)
        cpu, wall, lines = await measure(child.pid, args.seconds, counter)
    finally:
        child.kill()
        await asyncio.to_thread(child.wait)
    return {"lines_delivered": lines, "cpu_seconds": round(cpu, 2), "wall_seconds": round(wall, 2),
            "cpu_share_of_one_core_pct": round(100 * cpu / wall, 2),
            "cpu_ms_per_1000_lines": round(1000 * cpu / max(lines, 1) * 1000, 2)}


class _NoLLM:
    """No turn runs in this bench: the bot only needs an address for the model it never calls."""

    url = "http://127.0.0.1:9"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="log lines a second per job")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring (replays, claims)")
    parser.add_argument("--history", type=int, default=0,
                        help="log lines each job logged before the bot starts (4000: full metric series, as "
                             "hours into a run; give the replay a longer --warmup)")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    out = ROOT / "bench" / "results" / ("supervision.json" if not args.history else "supervision_long_run.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
