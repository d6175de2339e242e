"""The bot's sandbox registry and sweeper: no sandbox outlives its session or an idle spell, a failed
delete is retried until the Hub has no Space left, tokens are stored encrypted, and paid hours are
reserved as they start."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from huggingface_hub import HfApi
from sqlalchemy import select, update

from intern.agent.tools.sandbox import sandbox_bash_tool, sandbox_create_tool
from intern.bot.models import AuditEvent, ChannelPolicy, Sandbox, Session, SpendEntry
from intern.bot.sandboxes import SandboxManager
from tests.sandbox.support import World, fast, hub_spaces, rows, run, runtime


async def one(world: World) -> Sandbox:
    [row] = await rows(world)
    return row


async def set_row(world: World, **values: object) -> None:
    async with world.db.transaction() as s:
        await s.execute(update(Sandbox).values(**values))


async def audit_kinds(world: World) -> list[str]:
    async with world.db.session() as s:
        return list((await s.execute(select(AuditEvent.kind).order_by(AuditEvent.id))).scalars().all())


async def test_stopping_a_session_deletes_its_sandbox(world: World) -> None:
    await run(world.ctx, sandbox_bash_tool, command="true")
    [space_id] = await hub_spaces(world)
    await world.manager.end_session(world.session_id)
    assert await hub_spaces(world) == [] and world.spaces.running() == []
    row = await one(world)
    assert (row.status, row.space_id, row.delete_attempts, row.last_error) == (
        "deleted", space_id, 1, "the session was stopped")
    assert row.deleted_at is not None
    assert await audit_kinds(world) == ["sandbox_started", "sandbox_deleted"]


async def test_the_sweeper_deletes_sandboxes_of_ended_sessions_only(world: World) -> None:
    other = await world.new_session("1700000000.000300")
    await run(world.ctx, sandbox_bash_tool, command="true")
    await run(other, sandbox_bash_tool, command="true")
    assert len(await hub_spaces(world)) == 2
    async with world.db.transaction() as s:
        await s.execute(update(Session).where(Session.id == world.session_id).values(active=False, status="ended"))
    await world.manager.sweep()
    async with world.db.session() as s:
        kept = (await s.execute(select(Sandbox.space_id).where(Sandbox.session_id == other.session_id))).scalar_one()
    assert await hub_spaces(world) == [kept]
    statuses = {r.session_id: r.status for r in await rows(world)}
    assert statuses == {world.session_id: "deleted", other.session_id: "running"}


async def test_a_failed_delete_is_retried_until_nothing_is_left(world: World) -> None:
    await run(world.ctx, sandbox_bash_tool, command="true")
    world.spaces.fail_deletes = 2
    await world.manager.end_session(world.session_id)
    row = await one(world)
    assert row.status == "deleting" and row.delete_attempts == 1
    assert row.last_error is not None and row.last_error.startswith("the session was stopped; delete failed")
    assert "500" in row.last_error
    assert len(await hub_spaces(world)) == 1

    await world.manager.sweep()
    row = await one(world)
    assert row.status == "deleting" and row.delete_attempts == 2 and row.last_error.count("delete failed") == 1

    await world.manager.sweep()
    row = await one(world)
    assert row.status == "deleted" and row.delete_attempts == 3
    assert await hub_spaces(world) == [] and world.spaces.running() == []
    deletes = world.hub.calls("/api/repos/delete", "DELETE")
    assert len(deletes) == 3


async def test_failed_deletes_wait_longer_each_time(world: World) -> None:
    world.manager.retry_seconds = 60.0
    await run(world.ctx, sandbox_bash_tool, command="true")
    world.spaces.fail_deletes = 1
    await world.manager.end_session(world.session_id)
    await world.manager.sweep()  # too early: the pause after a failure is not over
    assert (await one(world)).delete_attempts == 1 and len(await hub_spaces(world)) == 1
    # another process (no memory of the pause) retries at once
    other = fast(SandboxManager(world.rt))
    await other.sweep()
    assert (await one(world)).status == "deleted" and await hub_spaces(world) == []


async def test_an_idle_sandbox_is_deleted_and_the_next_call_starts_a_new_one(world: World) -> None:
    await run(world.ctx, sandbox_bash_tool, command="true")
    await world.manager.sweep()
    assert (await one(world)).status == "running"
    await set_row(world, last_used_at=datetime.now(UTC) - timedelta(seconds=world.manager.idle_ttl_seconds + 5))
    await world.manager.sweep()
    row = await one(world)
    assert row.status == "deleted" and row.last_error == "unused for 30m"
    assert await hub_spaces(world) == []
    again = await run(world.ctx, sandbox_bash_tool, command="echo back")
    assert again.content.startswith("[Started a new sandbox") and len(await hub_spaces(world)) == 1


async def test_a_start_that_never_finished_is_cleaned_up(world: World) -> None:
    """The process died between creating the Space and recording it as running."""
    space_id = f"{world.hub.user}/intern-sandbox-orphan0001"
    api = HfApi(endpoint=world.hub.url, token=world.hub.token)
    await asyncio.to_thread(api.create_repo, space_id, repo_type="space", space_sdk="docker", private=True)
    sid = await world.manager.record(session_id=world.session_id, space_id=space_id, hardware="cpu-basic",
                                     hourly_usd=0.0, token="t" * 40)
    await world.manager.sweep()
    assert await hub_spaces(world) == [space_id]  # it may still be starting
    old = datetime.now(UTC) - timedelta(seconds=world.manager.creating_grace_seconds + 1)
    await set_row(world, created_at=old)
    await world.manager.sweep()
    row = await one(world)
    assert row.id == sid and row.status == "deleted" and row.last_error == "its start never finished"
    assert await hub_spaces(world) == []


async def test_stop_while_the_space_is_starting_leaves_nothing(world: World) -> None:
    world.spaces.build_seconds = 1.0
    call = asyncio.create_task(run(world.ctx, sandbox_bash_tool, command="true"))
    await world.hub.wait_for(lambda: bool(world.spaces.spaces))
    assert (await one(world)).status == "creating"
    call.cancel()  # the turn is stopped
    await world.manager.end_session(world.session_id)
    deadline = time.monotonic() + 30  # a loaded machine: waited for by state, not by a count of polls
    while time.monotonic() < deadline:
        if (await one(world)).status == "deleted" and not await hub_spaces(world):
            break
        await asyncio.sleep(0.05)
    assert await hub_spaces(world) == [] and world.spaces.running() == []
    assert (await one(world)).status == "deleted"


async def test_the_session_ending_during_the_start_is_reported(world: World) -> None:
    world.spaces.build_seconds = 0.5
    call = asyncio.create_task(run(world.ctx, sandbox_bash_tool, command="true"))
    await world.hub.wait_for(lambda: bool(world.spaces.spaces))
    await world.manager.end_session(world.session_id)
    result = await call
    assert result.is_error and "session ended while its sandbox was starting" in result.content
    assert await hub_spaces(world) == []


async def test_tokens_are_encrypted_and_a_lost_key_means_a_new_sandbox(world: World) -> None:
    await run(world.ctx, sandbox_bash_tool, command="true")
    row = await one(world)
    token = world.spaces.spaces[row.space_id].secrets["INTERN_SANDBOX_TOKEN"]
    assert row.token_ciphertext and token not in row.token_ciphertext

    restarted = fast(SandboxManager(world.rt))  # same INTERN_SECRET_KEY: the sandbox is reused
    live = await restarted.live(world.session_id)
    assert live is not None and live.token == token and live.space_id == row.space_id

    keyless = fast(SandboxManager(runtime(world.db, world.hub, world.ctx.http, None)))
    assert await keyless.live(world.session_id) is None
    assert (await one(world)).status == "deleting"
    await keyless.sweep()
    assert (await one(world)).status == "deleted" and await hub_spaces(world) == []
    world.ctx.deps.sandboxes = keyless
    fresh = await run(world.ctx, sandbox_bash_tool, command="echo ok")
    assert fresh.content.startswith("[Started a new sandbox") and "ok" in fresh.content


async def test_paid_hours_are_reserved_as_they_start_and_the_budget_ends_the_sandbox(world: World) -> None:
    made = await run(world.ctx, sandbox_create_tool, hardware="t4-small")
    assert not made.is_error, made.content
    await set_row(world, created_at=datetime.now(UTC) - timedelta(hours=2, minutes=30))
    await world.manager.sweep()
    await world.manager.sweep()  # reserving is idempotent
    async with world.db.session() as s:
        spend = (await s.execute(select(SpendEntry.ref, SpendEntry.amount_usd, SpendEntry.kind)
                                 .order_by(SpendEntry.ref))).all()
    sid = (await one(world)).id
    assert [tuple(r) for r in spend] == [(f"sandbox:{sid}:h2", 0.4, "sandbox"), (f"sandbox:{sid}:h3", 0.4, "sandbox")]
    assert (await one(world)).status == "running"

    async with world.db.transaction() as s:
        s.add(ChannelPolicy(platform="slack", workspace="T1", channel="C1", monthly_budget_usd=1.0))
    await set_row(world, created_at=datetime.now(UTC) - timedelta(hours=3, minutes=1))
    await world.manager.sweep()
    row = await one(world)
    assert row.status == "deleted" and "budget cannot cover another hour" in (row.last_error or "")
    assert await hub_spaces(world) == []


async def test_a_failed_build_whose_delete_fails_is_finished_by_the_sweeper(world: World) -> None:
    world.spaces.fail_builds.append(("BUILD_ERROR", "out of disk"))
    world.spaces.fail_deletes = 1
    result = await run(world.ctx, sandbox_bash_tool, command="true")
    assert result.is_error and "(BUILD_ERROR): out of disk" in result.content
    assert result.content.endswith("Deleting the Space failed for now; Intern keeps trying until it is gone.")
    assert len(await hub_spaces(world)) == 1 and (await one(world)).status == "deleting"
    await world.manager.sweep()
    assert await hub_spaces(world) == [] and (await one(world)).status == "deleted"
