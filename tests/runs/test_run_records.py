"""Run records on both databases: opened at launch, completed at the end, searched per workspace."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update

from intern.bot import runs
from intern.bot.models import Job, RunRecord
from intern.bot.store import Database, alembic_config, connect, upgrade
from tests.runs.helpers import SCRIPT, finish_kwargs, launched_job, script_for


async def open_and_close(db: Database, job: Job, kind: str | None, **extra: object) -> RunRecord:
    async with db.transaction() as s:
        assert await runs.open_record(s, job.hf_job_id or "", lambda t: t, {"intern-code": "team/runs@abc123"})
        assert not await runs.open_record(s, job.hf_job_id or "", lambda t: t)  # once per job
    if kind is not None:
        async with db.transaction() as s:
            await runs.close_record(s, job, **finish_kwargs(kind, **extra))  # type: ignore[arg-type]
    async with db.session() as s:
        return (await s.execute(select(RunRecord).where(RunRecord.job_id == job.id))).scalar_one()


async def test_a_record_holds_the_recipe_at_launch_and_the_outcome_at_the_end(db: Database) -> None:
    job = await launched_job(db, task="fine-tune  Qwen 7B\non Capybara, token hf_abcdefghijklmnopqrstuvwxyz0123")
    async with db.transaction() as s:
        await runs.open_record(s, job.hf_job_id or "", lambda t: t.replace("hf_abcdefghijklmnopqrstuvwxyz0123",
                                                                             "[REDACTED]"))
    async with db.session() as s:
        r = (await s.execute(select(RunRecord))).scalar_one()
    assert (r.platform, r.workspace, r.requester, r.channel, r.session_id) == ("slack", "T0ALPHA", "U0ASK", "C0GEN",
                                                                              job.session_id)
    assert r.task == "fine-tune Qwen 7B on Capybara, token [REDACTED]"
    assert (r.method, r.base_model, r.dataset, r.output_repo) == ("SFT", "Qwen/Qwen2.5-7B", "trl-lib/Capybara",
                                                                  "team/qwen-sft")
    assert r.datasets == [{"id": "trl-lib/Capybara", "config": None, "split": "train"}]
    assert r.hyperparams == {"learning_rate": 2e-4, "num_train_epochs": 3, "per_device_train_batch_size": 8,
                             "gradient_accumulation_steps": 2, "lora_rank": 16, "max_length": 2048}
    assert (r.flavor, r.timeout_seconds, r.outcome, r.hf_job_id) == ("a10g-large", 7200, "running", job.hf_job_id)
    async with db.transaction() as s:
        await runs.close_record(s, job, **finish_kwargs("oom", labels={"intern-code": "team/runs@0a1b2c"}))
    async with db.session() as s:
        r = (await s.execute(select(RunRecord))).scalar_one()
    assert (r.outcome, r.error_signature, r.runtime_seconds, r.cost_usd) == ("failed", "CUDA out of memory", 720.0,
                                                                             0.3)
    assert r.error_line and r.error_line.startswith("torch.OutOfMemoryError")
    assert r.metrics == {"loss": 1.8, "grad_norm": 1.1, "learning_rate": 0.0002, "epoch": 0.1}
    assert r.code_pin == "team/runs@0a1b2c" and r.finished_at is not None


async def test_a_run_spawned_by_a_schedule_takes_its_recipe_from_the_schedules_approval(db: Database) -> None:
    """A scheduled run has no approval of its own; the Hub gives it the schedule's labels."""
    schedule = await launched_job(db, task="nightly SFT of Qwen 7B on Capybara")
    async with db.transaction() as s:
        approval_id = (await s.execute(select(Job.approval_id).where(Job.id == schedule.id))).scalar_one()
        await s.execute(update(Job).where(Job.id == schedule.id).values(kind="scheduled", hf_job_id="sched-1"))
        s.add(Job(session_id=schedule.session_id, approval_id=None, hf_job_id="spawned-1", namespace="team",
                  flavor="a10g-large", timeout_seconds=7200, hourly_usd=1.5, estimated_cost_usd=3.0, stage="RUNNING",
                  requester="U0ASK", platform="slack", workspace="T0ALPHA", channel="C0GEN"))
    async with db.transaction() as s:
        assert await runs.open_record(s, "spawned-1", lambda t: t, {"intern-approval": str(approval_id),
                                                                     "intern-code": "team/runs@0a1b2c"})
    async with db.session() as s:
        r = (await s.execute(select(RunRecord).where(RunRecord.hf_job_id == "spawned-1"))).scalar_one()
    assert (r.method, r.base_model, r.dataset) == ("SFT", "Qwen/Qwen2.5-7B", "trl-lib/Capybara")
    assert r.hyperparams["learning_rate"] == 2e-4 and r.code_pin == "team/runs@0a1b2c"
    # A label naming another session's approval is not read.
    other = await launched_job(db)
    async with db.transaction() as s:
        s.add(Job(session_id=other.session_id, approval_id=None, hf_job_id="spawned-2", namespace="team",
                  flavor="a10g-large", timeout_seconds=7200, hourly_usd=1.5, estimated_cost_usd=3.0, stage="RUNNING",
                  requester="U0ASK", platform="slack", workspace="T0ALPHA", channel="C0GEN"))
    async with db.transaction() as s:
        assert await runs.open_record(s, "spawned-2", lambda t: t, {"intern-approval": str(approval_id)})
    async with db.session() as s:
        r = (await s.execute(select(RunRecord).where(RunRecord.hf_job_id == "spawned-2"))).scalar_one()
    assert r.base_model is None and r.method is None


@pytest.mark.parametrize(("stage", "runtime", "message", "outcome", "signature"), [
    ("COMPLETED", 3600.0, None, "completed", None),
    ("CANCELED", 60.0, None, "cancelled", None),
    ("ERROR", 7199.0, None, "timed_out", "timeout"),
    ("ERROR", 300.0, "Job timed out", "timed_out", "timeout"),
    ("ERROR", 300.0, None, "failed", "CUDA out of memory"),
])
async def test_outcomes(db: Database, stage: str, runtime: float, message: str | None, outcome: str,
                        signature: str | None) -> None:
    job = await launched_job(db)
    r = await open_and_close(db, job, "oom" if outcome != "completed" else "ok", stage=stage, runtime=runtime,
                             message=message)
    assert (r.outcome, r.error_signature) == (outcome, signature if outcome in ("failed", "timed_out") else None)


async def test_search_by_words_and_status_newest_first_within_the_workspace(db: Database) -> None:
    t0 = datetime.now(UTC) - timedelta(days=3)
    a = await launched_job(db, at=t0, script=script_for("Qwen/Qwen2.5-7B", "trl-lib/Capybara"))
    b = await launched_job(db, at=t0 + timedelta(hours=1), script=script_for("meta-llama/Llama-3.1-8B", "org/chat"),
                           task="DPO on our chat data")
    c = await launched_job(db, at=t0 + timedelta(hours=2), script=script_for("Qwen/Qwen2.5-0.5B", "org/chat"),
                           task="a small model on the chat data")
    other = await launched_job(db, workspace="T0BETA", script=script_for("Qwen/Qwen2.5-7B", "trl-lib/Capybara"))
    discord = await launched_job(db, platform="discord", workspace="T0ALPHA")
    await open_and_close(db, a, "oom")
    await open_and_close(db, b, "ok")
    await open_and_close(db, c, None)
    await open_and_close(db, other, "oom")
    await open_and_close(db, discord, "oom")

    async def ids(query: str | None, status: str | None = None, limit: int = 10, ws: str = "T0ALPHA",
                  platform: str = "slack") -> list[str]:
        async with db.session() as s:
            return [r.job_id for r in await runs.search(s, platform, ws, query, status, limit)]

    assert await ids(None) == [c.id, b.id, a.id]
    assert await ids("qwen") == [c.id, a.id]
    assert await ids("QWEN 7b") == [a.id]
    assert await ids("out of memory") == [a.id]  # the signature
    assert await ids("out of mem") == []  # whole words
    assert await ids("oom") == [a.id]  # a signature's other words
    assert await ids("org/chat") == [c.id, b.id]
    assert await ids("qwen2.5") == [c.id, a.id] and await ids("Qwen 0.5b") == [c.id]  # letters and digits apart
    assert await ids("dpo chat") == [b.id]  # the task
    assert await ids("sft", status="completed") == [b.id]
    assert await ids(None, status="running") == [c.id]
    assert await ids("a10g", limit=2) == [c.id, b.id]
    assert await ids("nothing-like-this") == []
    assert await ids("qwen", ws="T0BETA") == [other.id]
    assert await ids("qwen", platform="discord") == [discord.id]  # the same id on another platform is apart
    assert await ids("\"; DROP TABLE run_records; --") == []  # words only, never syntax


async def test_similar_runs_are_the_workspaces_own(db: Database) -> None:
    a = await launched_job(db, at=datetime.now(UTC) - timedelta(days=2))
    b = await launched_job(db, at=datetime.now(UTC) - timedelta(days=1))
    elsewhere = await launched_job(db, workspace="T0BETA")
    await open_and_close(db, a, "oom")
    await open_and_close(db, b, "ok")
    await open_and_close(db, elsewhere, "oom")
    async with db.session() as s:
        here = await runs.similar(s, "slack", "T0ALPHA", "Qwen/Qwen2.5-7B", "trl-lib/Capybara")
        beta = await runs.similar(s, "slack", "T0BETA", "Qwen/Qwen2.5-7B", "trl-lib/Capybara")
        none = await runs.similar(s, "slack", "T0GAMMA", "Qwen/Qwen2.5-7B", "trl-lib/Capybara")
    assert here.failed is not None and here.failed.job_id == a.id
    assert here.succeeded is not None and here.succeeded.job_id == b.id
    assert beta.failed is not None and beta.failed.job_id == elsewhere.id and beta.succeeded is None
    assert none.failed is None and none.succeeded is None


def test_status_words() -> None:
    assert runs.status_value("Timed out") == runs.status_value("timeout") == "timed_out"
    assert runs.status_value("canceled") == "cancelled" and runs.status_value(None) is None
    with pytest.raises(ValueError, match="not one of"):
        runs.status_value("exploded")


async def test_the_migration_backfills_the_jobs_already_recorded(database_url: str) -> None:
    from alembic import command

    # Jobs recorded by the current code, then the schema taken back to before run records existed
    await upgrade(database_url)
    db = connect(database_url)
    try:
        old = await launched_job(db, at=datetime.now(UTC) - timedelta(days=1))
        new = await launched_job(db, script=script_for("Qwen/Qwen2.5-0.5B", "org/chat"))
        async with db.transaction() as s:
            await s.execute(text("UPDATE jobs SET stage='ERROR', notified_finished=:t, runtime_seconds=60, "
                                 "actual_cost_usd=0.03, log_tail=:tail WHERE id=:id"),
                            {"t": True, "id": old.id, "tail": "step 1\nModuleNotFoundError: No module named 'peft'"})
        await db.dispose()
        await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0001")
        await upgrade(database_url)
        db = connect(database_url)
        async with db.session() as s:
            rows = (await s.execute(select(RunRecord).order_by(RunRecord.id))).scalars().all()
            found = [r.job_id for r in await runs.search(s, "slack", "T0ALPHA", "peft", None, 10)]
    finally:
        await db.dispose()
    assert [r.job_id for r in rows] == [old.id, new.id]  # in launch order: the newest has the highest id
    assert (rows[0].outcome, rows[0].error_signature, rows[0].cost_usd) == ("failed", "missing module 'peft'", 0.03)
    assert (rows[1].outcome, rows[1].base_model, rows[1].task) == ("running", "Qwen/Qwen2.5-0.5B",
                                                                   "fine-tune Qwen 7B on Capybara with LoRA")
    assert found == [old.id]
    assert SCRIPT  # the helper's default script is the one both launches used


async def test_the_card_lines_name_the_latest_failure_and_success_of_this_workspace(db: Database) -> None:
    from types import SimpleNamespace

    from intern.agent.tools.history import similar_run_checks
    from intern.bot.history import WorkspaceHistory

    def ctx(workspace: str) -> object:
        return SimpleNamespace(deps=SimpleNamespace(team_history=WorkspaceHistory(
            SimpleNamespace(db=db), "slack", workspace)))  # type: ignore[arg-type]

    failed = await launched_job(db, at=datetime.now(UTC) - timedelta(days=2))
    done = await launched_job(db, at=datetime.now(UTC) - timedelta(days=1), flavor="a100-large")
    await open_and_close(db, failed, "oom")
    await open_and_close(db, done, "ok", runtime=4500.0, cost=3.13)
    checks = await similar_run_checks(ctx("T0ALPHA"), {"operation": "run", "script": SCRIPT})  # type: ignore[arg-type]
    day = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d")
    assert [(c.level, c.text) for c in checks] == [
        ("warn", f"Similar run failed: {failed.hf_job_id} on {day}: CUDA out of memory on a10g-large"),
        ("ok", f"Similar run completed: {done.hf_job_id} on {(datetime.now(UTC) - timedelta(days=1)):%Y-%m-%d} on "
               "a100-large (ran 1h15m, cost $3.13) — a sizing hint")]
    assert await similar_run_checks(ctx("T0BETA"), {"script": SCRIPT}) == []  # type: ignore[arg-type]
    other_data = script_for("Qwen/Qwen2.5-7B", "org/other-data")
    assert await similar_run_checks(ctx("T0ALPHA"), {"script": other_data}) == []  # type: ignore[arg-type]
