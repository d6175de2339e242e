"""A job's log and metrics streams read on the event loop (`agent/job_streams.py`), against the Hub
stand-in's server-sent events: every line once and in order across dropped connections, the
headers huggingface_hub would send, and a token that never reaches a log or an error."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from intern.agent.hub import HubClient
from intern.agent.job_streams import LogCursor, StreamRefused, logged_time
from intern.bot.job_follower import JobFollower
from intern.standins.hub import HubStandIn
from intern.standins.hub_jobs import JobsState, jobs_state
from tests.e2e.harness import wait_until


@pytest.fixture
async def client(hub: HubStandIn) -> AsyncIterator[HubClient]:
    c = HubClient(endpoint=hub.url, token=hub.token, namespace=hub.user)
    yield c
    await c.streams.aclose()
    c.close()


def running(hub: HubStandIn, *lines: str) -> tuple[JobsState, str]:
    jobs = jobs_state(hub)
    job = jobs.new_job(hub.user, {"flavor": "a10g-small", "command": ["python", "train.py"],
                                  "dockerImage": "python:3.12"})
    jobs.set_stage(job.id, "RUNNING")
    if lines:
        jobs.append_logs(job.id, *lines)
    return jobs, job.id


async def test_a_dropped_log_stream_resumes_where_it_was_without_losing_or_repeating_a_line(
        hub: HubStandIn, client: HubClient) -> None:
    jobs, jid = running(hub, *(f"line {i}" for i in range(1, 6)))
    got: list[str] = []
    cursor = LogCursor()
    first = asyncio.create_task(client.streams.read_logs(hub.user, jid, cursor, got.extend))
    await wait_until(lambda: len(got) == 5, timeout=10)
    jobs.drop_log_connection(jid)
    with pytest.raises(Exception):  # noqa: B017 - the connection was cut: whatever aiohttp calls it
        await first
    jobs.append_logs(jid, "line 6", "line 7")  # logged while nobody was connected
    second = asyncio.create_task(client.streams.read_logs(hub.user, jid, cursor, got.extend))
    await wait_until(lambda: len(got) == 7, timeout=10)
    jobs.append_logs(jid, "line 8")
    jobs.set_stage(jid, "COMPLETED")  # the Hub ends the stream with the job
    await asyncio.wait_for(second, 10)
    assert got == [f"line {i}" for i in range(1, 9)]  # the Hub's "===== Job started" line is not one
    assert len(hub.calls(f"/{jid}/logs", "GET")) == 2
    # when the last line taken was logged, by the Hub's own clock
    assert cursor.logged_at == logged_time(jobs.job(jid).logs[-1].timestamp)


async def test_a_reader_that_starts_late_gets_the_times_the_lines_were_logged(hub: HubStandIn,
                                                                            client: HubClient) -> None:
    jobs, jid = running(hub, "step 1 loss 2.0")
    logged = logged_time(jobs.job(jid).logs[-1].timestamp)
    assert logged is not None and abs(logged - time.time()) < 60
    await asyncio.sleep(1.2)  # the job is quiet, then a process starts following it
    cursor = LogCursor()
    got: list[str] = []
    task = asyncio.create_task(client.streams.read_logs(hub.user, jid, cursor, got.extend))
    await wait_until(lambda: got == ["step 1 loss 2.0"], timeout=10)
    assert cursor.logged_at == logged and time.time() - logged >= 1.2
    jobs.set_stage(jid, "COMPLETED")
    await asyncio.wait_for(task, 10)
    assert logged_time("2025-07-22T16:06:31.079Z") == 1753200391.079
    assert logged_time("2025-07-22T16:06:31") == 1753200391.0  # no zone: the Hub's UTC
    assert logged_time("yesterday") is None and logged_time(None) is None


async def test_a_follower_reconnects_by_itself_and_reads_every_line_once(hub: HubStandIn, client: HubClient) -> None:
    jobs, jid = running(hub, "a", "b")
    rt = SimpleNamespace(hub=client, supervise_seconds=0.05)
    follower = JobFollower(rt, "job-row")  # type: ignore[arg-type]
    task = asyncio.create_task(follower.follow_stream(follower._read_logs, jid, hub.user, "log"))
    try:
        await wait_until(lambda: list(follower.fresh) == ["a", "b"], timeout=10)
        jobs.drop_log_connection(jid)
        jobs.append_logs(jid, "c")
        await wait_until(lambda: len(hub.calls(f"/{jid}/logs", "GET")) == 2, timeout=10)
        jobs.append_logs(jid, "d")
        await wait_until(lambda: list(follower.fresh) == ["a", "b", "c", "d"], timeout=10)
        jobs.drop_log_connection(jid)
        await wait_until(lambda: len(hub.calls(f"/{jid}/logs", "GET")) == 3, timeout=10)
        jobs.append_logs(jid, "e")
        await wait_until(lambda: len(follower.fresh) == 5, timeout=10)
        assert list(follower.fresh) == ["a", "b", "c", "d", "e"]
    finally:
        follower.close()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_the_requests_carry_the_token_and_huggingface_hubs_user_agent(hub: HubStandIn,
                                                                            client: HubClient) -> None:
    jobs, jid = running(hub, "hello")
    jobs.set_gpu(jid, utilization=80, memory_used_bytes=1_000)
    jobs.metrics_interval = 0.05
    got: list[str] = []
    samples: list[dict[str, Any]] = []
    logs = asyncio.create_task(client.streams.read_logs(hub.user, jid, LogCursor(), got.extend))
    metrics = asyncio.create_task(client.streams.read_metrics(hub.user, jid, samples.append))
    await wait_until(lambda: got == ["hello"] and len(samples) >= 2, timeout=10)
    jobs.set_stage(jid, "COMPLETED")
    await asyncio.wait_for(asyncio.gather(logs, metrics), 10)
    for path in (f"/{jid}/logs", f"/{jid}/metrics"):
        headers = hub.calls(path, "GET")[0].headers
        assert headers["Authorization"] == f"Bearer {hub.token}"
        assert "hf_hub/" in headers["User-Agent"]
    gpu = next(iter(samples[-1]["gpus"].values()))
    assert (gpu["utilization"], gpu["memory_used_bytes"]) == (80, 1_000)
    # an ended job's metrics are a 406: the stream is over, not failed
    await asyncio.wait_for(client.streams.read_metrics(hub.user, jid, samples.append), 10)


async def test_a_refused_stream_names_the_status_and_no_token_reaches_a_log(
        hub: HubStandIn, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "hf_wrongTokenwrongTokenwrongTokenwrong99"
    bad = HubClient(endpoint=hub.url, token=wrong, namespace=hub.user)
    good = HubClient(endpoint=hub.url, token=hub.token, namespace=hub.user)
    try:
        jobs, jid = running(hub, "x")
        with pytest.raises(StreamRefused) as refused:
            await bad.streams.read_logs(hub.user, jid, LogCursor(), lambda lines: None)
        assert refused.value.status == 401
        assert wrong not in str(refused.value) and wrong not in repr(refused.value)
        rt = SimpleNamespace(hub=good, supervise_seconds=0.05)
        follower = JobFollower(rt, "job-row")  # type: ignore[arg-type]
        task = asyncio.create_task(follower.follow_stream(follower._read_logs, jid, hub.user, "log"))
        await wait_until(lambda: list(follower.fresh) == ["x"], timeout=10)
        jobs.drop_log_connection(jid)  # the follower logs the drop and reconnects
        await wait_until(lambda: "log stream for" in caplog.text, timeout=10)
        follower.close()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        for c in (bad, good):
            await c.streams.aclose()
            c.close()
    assert hub.token not in caplog.text and wrong not in caplog.text


async def test_a_paced_reader_takes_lines_in_batches_and_hurries_when_told(hub: HubStandIn,
                                                                         client: HubClient) -> None:
    jobs, jid = running(hub)
    batches: list[list[str]] = []
    hurry = asyncio.Event()
    task = asyncio.create_task(client.streams.read_logs(hub.user, jid, LogCursor(), batches.append, pace=0.6,
                                                        hurry=hurry))
    for i in range(10):
        jobs.append_logs(jid, f"step {i}")
        await asyncio.sleep(0.03)
    await wait_until(lambda: sum(map(len, batches)) == 10, timeout=10)
    assert [line for b in batches for line in b] == [f"step {i}" for i in range(10)]
    assert len(batches) <= 3, batches  # not one wake-up per line
    hurry.set()
    await asyncio.sleep(0.1)  # a reader still pausing wakes now; from now on it does not pause
    jobs.append_logs(jid, "last words")
    loop = asyncio.get_running_loop()
    start = loop.time()
    await wait_until(lambda: batches[-1] == ["last words"], timeout=10)
    assert loop.time() - start < 0.5
    jobs.set_stage(jid, "ERROR")
    await asyncio.wait_for(task, 10)
