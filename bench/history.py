"""Team memory at scale: 100,000 run records in one database, then `team_history` queries through
the tool's own path (arguments -> the workspace port -> full-text search -> the compact text the
model reads), on SQLite (FTS5) and PostgreSQL (GIN tsvector). Goal: p50 < 20 ms and p99 < 100 ms on
either database. Also the time to write one record: opened at launch (the recipe read from the
approved script) and completed at the end (outcome, metrics and error signature from the log).

The records spread over 12 workspaces, half of them in one busy workspace (the worst case a query
meets); queries are what people and the agent ask: a model, a dataset, a method, an error, a
flavor, a few words together, with and without an outcome filter, and the latest runs.
Writes bench/results/history.json.

    .venv/bin/python bench/history.py [-n 100000] [--queries 600] [--postgres-url postgresql://…|none]
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
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = ["Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-7B", "Qwen/Qwen3-8B",
          "meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-3B-Instruct",
          "mistralai/Mistral-7B-v0.3", "google/gemma-2-2b", "google/gemma-3-4b-it", "microsoft/phi-4",
          "HuggingFaceTB/SmolLM2-135M", "HuggingFaceTB/SmolLM2-1.7B-Instruct", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
          "allenai/OLMo-2-1124-7B", "ibm-granite/granite-3.1-2b-base"]
DATASETS = ["trl-lib/Capybara", "trl-lib/ultrafeedback_binarized", "trl-lib/tldr", "HuggingFaceH4/ultrachat_200k",
            "openai/gsm8k", "HuggingFaceTB/smoltalk", "teknium/OpenHermes-2.5", "Anthropic/hh-rlhf",
            "open-r1/OpenR1-Math-220k", "allenai/tulu-3-sft-mixture", "argilla/distilabel-intel-orca-dpo-pairs",
            "ourteam/support-chats", "ourteam/invoices-ner", "ourteam/code-review-pairs"]
METHODS = ["SFT", "SFT", "SFT", "DPO", "GRPO", "KTO", "ORPO", "reward"]
FLAVORS = [("t4-small", 0.4), ("a10g-small", 1.0), ("a10g-large", 1.5), ("l40sx1", 1.8), ("a100-large", 2.5),
           ("h100", 4.5)]
SIGNATURES = ["CUDA out of memory", "NaN loss", "missing column 'messages'", "gated repo without access",
              "missing module 'peft'", "disk full", "tokenizer chat template missing", "connection or Hub error"]
VERBS = ["fine-tune", "train", "align", "distill", "evaluate", "reproduce", "sweep learning rates for",
         "try LoRA on", "continue pretraining"]
GOALS = ["for customer support", "on math word problems", "to follow instructions", "for code review",
         "with shorter answers", "in French and German", "on our invoices", "as a reward model", "for summaries"]
QUERIES = [("qwen", None), ("llama 8b", None), ("capybara", None), ("out of memory", None), ("oom", None),
           ("dpo ultrafeedback", None), ("grpo", "completed"), ("a100", None), ("qwen 7b sft", "failed"),
           ("gemma", "completed"), ("support", None), ("gated", None), ("invoices", "failed"),
           ("smollm2 135m", None), ("h100 grpo math", None), ("", None), ("", "failed"), ("nan", None),
           ("olmo", "timed out"), ("nothing matches this", None)]
WORKSPACES = 12
BUSY_SHARE = 0.5


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def workspace_of(i: int, rnd: random.Random) -> str:
    return "T0BUSY" if rnd.random() < BUSY_SHARE else f"T0TEAM{rnd.randrange(1, WORKSPACES):02d}"


def record_values(i: int, rnd: random.Random, job_id: str, session: dict[str, Any], at: datetime) -> dict[str, Any]:
    from intern.bot.runs import LaunchSource, finish_values, launch_values, scope_of

    model, dataset = rnd.choice(MODELS), rnd.choice(DATASETS)
    flavor, price = rnd.choice(FLAVORS)
    task = f"{rnd.choice(VERBS)} {model.split('/')[-1]} {rnd.choice(GOALS)} using {dataset.split('/')[-1]}"
    src = LaunchSource(job_id, uuid.uuid4().hex[:24], session["platform"], session["workspace"], session["channel"],
                       session["thread"], session["id"], session["started_by"], flavor, rnd.choice((3600, 7200, 21600)),
                       price * 2, f"https://huggingface.co/jobs/team/{job_id[:8]}", at, None,
                       f"[<@{session['started_by']}>] {task}")
    v = launch_values(src)
    v.update(base_model=model, dataset=dataset, datasets=[{"id": dataset, "config": None, "split": "train"}],
             method=rnd.choice(METHODS), output_repo=f"team/{model.split('/')[-1].lower()}-{i}",
             hyperparams={"learning_rate": rnd.choice((1e-5, 2e-5, 5e-5, 2e-4)), "num_train_epochs": rnd.choice((1, 2, 3)),
                          "per_device_train_batch_size": rnd.choice((1, 2, 4, 8)), "lora_rank": rnd.choice((8, 16, 64))})
    roll = rnd.random()
    if roll < 0.03:
        return {**v, "search_text": _search(v), "scope": scope_of(src.platform, src.workspace)}  # still running
    stage, lines = "COMPLETED", [f"{{'eval_loss': {rnd.uniform(0.5, 2):.4f}, 'epoch': 3.0}}"]
    if roll < 0.28:
        stage, lines = "ERROR", [f"RuntimeError: {rnd.choice(SIGNATURES)}"]
    elif roll < 0.36:
        stage = "CANCELED"
    runtime = rnd.uniform(120, src.timeout_seconds)
    done = finish_values(v, stage=stage, message=None, runtime=runtime, cost=round(price * runtime / 3600, 4),
                         lines=lines, labels=None, finished_at=at + timedelta(seconds=runtime))
    if stage == "ERROR":  # the signatures as the log would have shown them
        done["error_signature"] = lines[0].split(": ", 1)[1]
        done["search_text"] = _search({**v, **done})
    return {**v, **done}


def _search(v: dict[str, Any]) -> str:
    from intern.bot.runs import search_text_of

    return search_text_of(v)


async def fill(db: Any, n: int, seed: int = 7) -> float:
    """n sessions, jobs and run records (one each), oldest first; returns the seconds it took."""
    from sqlalchemy import insert

    from intern.bot.models import Job, RunRecord, Session

    rnd = random.Random(seed)
    start = time.perf_counter()
    t0 = datetime.now(UTC) - timedelta(days=365)
    chunk = 5000
    for base in range(0, n, chunk):
        sessions, jobs, records = [], [], []
        for i in range(base, min(n, base + chunk)):
            at = t0 + timedelta(seconds=i * 300)
            ws = workspace_of(i, rnd)
            s = {"id": str(uuid.uuid4()), "platform": "slack", "workspace": ws, "channel": f"C0{rnd.randrange(20):02d}",
                 "thread": f"{1700000000 + i}.000100", "started_by": f"U0{rnd.randrange(40):03d}", "status": "ended",
                 "active": False, "created_at": at, "updated_at": at}
            job_id = str(uuid.uuid4())
            r = record_values(i, rnd, job_id, s, at)
            jobs.append({"id": job_id, "session_id": s["id"], "hf_job_id": r["hf_job_id"], "namespace": "team",
                         "flavor": r["flavor"], "timeout_seconds": r["timeout_seconds"], "hourly_usd": 1.0,
                         "estimated_cost_usd": r["estimated_cost_usd"], "stage": "COMPLETED", "requester": s["started_by"],
                         "platform": "slack", "workspace": ws, "channel": s["channel"], "notified_finished": True,
                         "created_at": at, "updated_at": at})
            sessions.append(s)
            records.append(r)
        async with db.transaction() as t:
            await t.execute(insert(Session.__table__), sessions)
            await t.execute(insert(Job.__table__), jobs)
            await t.execute(insert(RunRecord.__table__), records)
    return time.perf_counter() - start


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))], 3)


def summary(values: list[float]) -> dict[str, float]:
    return {"p50_ms": pct(values, 50), "p99_ms": pct(values, 99), "mean_ms": round(statistics.fmean(values), 3),
            "max_ms": round(max(values), 3), "count": len(values)}


async def measure_queries(db: Any, rounds: int) -> dict[str, Any]:
    """The team_history tool's handler, bound to a workspace as a turn binds it."""
    from intern.agent.tools.history import HistoryArgs, history_tool
    from intern.bot.history import WorkspaceHistory

    rt = SimpleNamespace(db=db)
    ctxs = {ws: SimpleNamespace(deps=SimpleNamespace(team_history=WorkspaceHistory(rt, "slack", ws)))  # type: ignore[arg-type]
            for ws in ("T0BUSY", "T0TEAM03")}
    plan = [(ws, q, st) for ws in ctxs for q, st in QUERIES]
    for ws, q, st in plan:  # warm the caches and the connection pool
        await history_tool.handler(ctxs[ws], HistoryArgs(query=q, status=st))  # type: ignore[arg-type]
    times: dict[str, list[float]] = {ws: [] for ws in ctxs}
    per_query: dict[str, list[float]] = {}
    rnd = random.Random(11)
    for _ in range(rounds):
        ws, q, st = rnd.choice(plan)
        args = HistoryArgs(query=q, status=st)
        t = time.perf_counter()
        result = await history_tool.handler(ctxs[ws], args)  # type: ignore[arg-type]
        ms = (time.perf_counter() - t) * 1000
        assert result.content
        times[ws].append(ms)
        per_query.setdefault(f"{q or '(latest)'}|{st or 'any'}", []).append(ms)
    every = [x for v in times.values() for x in v]
    return {"all": summary(every), "busy_workspace": summary(times["T0BUSY"]),
            "small_workspace": summary(times["T0TEAM03"]),
            "slowest_queries_p50_ms": dict(sorted(((k, pct(v, 50)) for k, v in per_query.items()),
                                                  key=lambda kv: -kv[1])[:5])}


SCRIPT = '''
from datasets import load_dataset
from peft import LoraConfig
from trl import SFTConfig, SFTTrainer
ds = load_dataset("trl-lib/Capybara", split="train")
cfg = SFTConfig(output_dir="out", learning_rate=2e-4, num_train_epochs=3, per_device_train_batch_size=8,
                gradient_accumulation_steps=2, max_length=2048, push_to_hub=True, hub_model_id="team/qwen-sft")
SFTTrainer(model="Qwen/Qwen2.5-7B", train_dataset=ds, args=cfg, peft_config=LoraConfig(r=16)).train()
'''
TAIL = ["{'loss': 1.8, 'grad_norm': 1.1, 'learning_rate': 0.0002, 'epoch': 0.1}"] * 200 + [
    "Traceback (most recent call last):", '  File "/tmp/intern_job.py", line 9, in <module>',
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 22.07 GiB"]


async def measure_writes(db: Any, count: int) -> dict[str, Any]:
    """Open (at launch) and close (at the end) one record at a time, each in its own transaction."""
    from intern.bot import runs
    from intern.bot.models import Approval, Job, Message, Session

    jobs = []
    async with db.transaction() as t:
        for i in range(count):
            s = Session(platform="slack", workspace="T0BUSY", channel="C0GEN", thread=f"w{i}", started_by="U0ASK",
                        active=False, status="ended")
            t.add(s)
            await t.flush()
            t.add(Message(session_id=s.id, seq=1, role="user", author="U0ASK",
                          payload={"role": "user", "content": "[<@U0ASK>] fine-tune Qwen 7B on Capybara"}))
            a = Approval(session_id=s.id, call_id=f"c{i}", tool="hf_jobs", kind="spend", spec_sha256="0" * 64, card={},
                         spec={"operation": "run", "script": SCRIPT}, requester="U0ASK", platform="slack",
                         workspace="T0BUSY", channel="C0GEN", expires_at=datetime.now(UTC), status="approved")
            t.add(a)
            await t.flush()
            job = Job(session_id=s.id, approval_id=a.id, hf_job_id=uuid.uuid4().hex[:24], namespace="team",
                      flavor="a10g-large", timeout_seconds=7200, hourly_usd=1.5, estimated_cost_usd=3.0,
                      requester="U0ASK", platform="slack", workspace="T0BUSY", channel="C0GEN")
            t.add(job)
            jobs.append(job)
    opened, closed = [], []
    for job in jobs:
        t0 = time.perf_counter()
        async with db.transaction() as t:
            assert await runs.open_record(t, job.hf_job_id, lambda x: x)
        opened.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        async with db.transaction() as t:
            await runs.close_record(t, job, stage="ERROR", message=None, runtime=600.0, cost=0.25, lines=TAIL,
                                    labels=None, redact=lambda x: x)
        closed.append((time.perf_counter() - t0) * 1000)
    return {"open_at_launch": summary(opened), "close_at_end": summary(closed),
            "note": "each in its own transaction, on top of the filled table; open includes reading the recipe "
                    "from a 9-line TRL script, close parses a 203-line log tail"}


async def run_backend(name: str, url: str, n: int, rounds: int, writes: int) -> dict[str, Any]:
    from intern.bot.store import connect, upgrade

    await upgrade(url)
    db = connect(url)
    try:
        fill_s = await fill(db, n)
        if db.is_postgres:  # what autovacuum does after a bulk load: the planner needs the word statistics
            from sqlalchemy import text

            async with db.engine.connect() as conn:
                await conn.execute(text("ANALYZE run_records"))
                await conn.commit()
        queries = await measure_queries(db, rounds)
        write = await measure_writes(db, writes)
    finally:
        await db.dispose()
    return {"backend": name, "fill_seconds": round(fill_s, 1), "queries": queries, "writes": write}


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=100_000, help="run records")
    p.add_argument("--queries", type=int, default=600, help="team_history calls measured per database")
    p.add_argument("--writes", type=int, default=200, help="records written one at a time")
    p.add_argument("--postgres-url", default=os.environ.get("INTERN_TEST_DATABASE_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"),
                   help="a PostgreSQL server to create a scratch database on, or `none`")
    args = p.parse_args()
    results: dict[str, Any] = {"machine": machine(), "inputs": {
        "records": args.n, "workspaces": WORKSPACES, "busy_workspace_share": BUSY_SHARE, "queries": args.queries,
        "query_mix": [f"{q or '(latest)'}|{s or 'any'}" for q, s in QUERIES], "writes": args.writes,
        "limit": 10, "postgres_analyzed_after_fill": True}, "goal": {"p50_ms": 20, "p99_ms": 100}, "results": []}
    with tempfile.TemporaryDirectory() as tmp:
        results["results"].append(await run_backend("sqlite", f"sqlite:///{tmp}/history.db", args.n, args.queries,
                                                    args.writes))
    if args.postgres_url != "none":
        from tests.support.db import create_pg_database, drop_pg_database

        url = await create_pg_database(args.postgres_url)
        try:
            results["results"].append(await run_backend("postgresql", url, args.n, args.queries, args.writes))
        finally:
            await drop_pg_database(args.postgres_url, url)
    for r in results["results"]:
        q = r["queries"]["all"]
        r["meets_goal"] = q["p50_ms"] < 20 and q["p99_ms"] < 100
    out = ROOT / "bench" / "results" / "history.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
