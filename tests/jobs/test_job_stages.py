"""The stages of followed jobs come from one listing of the namespace's live jobs per poll
(`bot/job_stages.py`), not from one inspect per job."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest

from intern.agent.hub import HubClient
from intern.bot.job_stages import StageBoard
from intern.standins.hub import HubStandIn
from intern.standins.hub_jobs import jobs_state


@pytest.fixture
async def board(hub: HubStandIn) -> AsyncIterator[StageBoard]:
    client = HubClient(endpoint=hub.url, token=hub.token, namespace=hub.user)
    yield StageBoard(SimpleNamespace(hub=client, settings=SimpleNamespace(job_poll_seconds=0.05)))  # type: ignore[arg-type]
    client.close()


def new_job(hub: HubStandIn, stage: str) -> str:
    jobs = jobs_state(hub)
    job = jobs.new_job(hub.user, {"flavor": "a10g-small", "command": ["python", "train.py"],
                                  "dockerImage": "python:3.12"})
    jobs.set_stage(job.id, stage)
    return job.id


async def test_one_listing_answers_every_waiting_job_and_leaves_out_the_ended_ones(hub: HubStandIn,
                                                                                 board: StageBoard) -> None:
    running, scheduling, ended = new_job(hub, "RUNNING"), new_job(hub, "SCHEDULING"), new_job(hub, "COMPLETED")
    waits = [asyncio.create_task(board.next(hub.user, jid)) for jid in (running, scheduling, ended)]
    await asyncio.sleep(0)
    await board.list_namespace(hub.user)
    got = await asyncio.gather(*waits)
    assert [info.status.stage if info else None for info in got] == ["RUNNING", "SCHEDULING", None]
    assert got[0].started_at is not None  # the same JobInfo an inspect gives
    [listing] = hub.calls(f"/api/jobs/{hub.user}", "GET")
    assert "stage" in listing.query  # filtered to the live stages (the Hub sends the rest no more)
    assert not hub.calls(f"/{running}", "GET") and not hub.calls(f"/{ended}", "GET")  # no inspect


async def test_a_failed_listing_keeps_the_jobs_waiting_for_the_next_one(hub: HubStandIn, board: StageBoard) -> None:
    jid = new_job(hub, "RUNNING")
    jobs_state(hub).fail_next(4, status=503, path_contains=f"/api/jobs/{hub.user}", method="GET")
    wait = asyncio.create_task(board.next(hub.user, jid))
    await asyncio.sleep(0)
    await board.list_namespace(hub.user)  # four 503s: the read's retries are spent
    assert not wait.done()
    runner = asyncio.create_task(board.run())
    try:
        info = await asyncio.wait_for(wait, 10)
        assert info.id == jid and info.status.stage == "RUNNING"
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
