"""The Jobs API stand-in, through huggingface_hub 2.4.0's own HfApi calls and parsers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from huggingface_hub import HfApi, JobHardware
from huggingface_hub._jobs_api import DEFAULT_UV_IMAGE
from huggingface_hub.errors import HfHubHTTPError

from intern.standins.hub import HubStandIn
from intern.standins.hub_jobs import JobsState, jobs_state

T = TypeVar("T")


@pytest.fixture
def api(hub: HubStandIn) -> HfApi:
    return HfApi(endpoint=hub.url, token=hub.token)


@pytest.fixture
def jobs(hub: HubStandIn) -> JobsState:
    state = hub.state["jobs"]
    assert state is jobs_state(hub)
    return state


async def call(fn: Callable[..., T], **kwargs: Any) -> T:
    """HfApi is synchronous and the stand-in serves on this event loop: call it from a thread."""
    return await asyncio.to_thread(fn, **kwargs)


async def run_simple(api: HfApi, hub: HubStandIn, **kwargs: Any) -> Any:
    args = {"image": "python:3.12", "command": ["python", "-c", "print(1)"], "namespace": hub.user, **kwargs}
    return await call(api.run_job, **args)


async def test_hardware_list_has_every_flavor_priced_per_minute(api: HfApi) -> None:
    hardware = await call(api.list_jobs_hardware)
    assert {h.name for h in hardware} == {f.value for f in JobHardware}
    assert all(h.unit_label == "minute" for h in hardware)
    assert all(h.unit_cost_usd == h.unit_cost_micro_usd / 1_000_000 for h in hardware)
    by_name = {h.name: h for h in hardware}
    assert by_name["cpu-basic"].unit_cost_micro_usd == 167 and by_name["cpu-basic"].accelerator is None
    assert by_name["a10g-large"].unit_cost_usd * 60 == pytest.approx(1.5, abs=1e-4)
    accelerator = by_name["a100x4"].accelerator
    assert accelerator is not None
    assert (accelerator.model, accelerator.quantity, accelerator.vram) == ("A100", "4", "320 GB")


async def test_run_job_records_the_spec_and_returns_a_job(api: HfApi, hub: HubStandIn, jobs: JobsState) -> None:
    job = await run_simple(api, hub, flavor="a10g-large", timeout="90m", env={"EPOCHS": "3"},
                           secrets={"HF_TOKEN": hub.token}, labels={"intern-session": "s-1"})
    assert len(job.id) == 24 and job.status.stage == "SCHEDULING"
    assert job.url == f"{hub.url}/jobs/{hub.user}/{job.id}" == jobs.job_url(job.id)
    assert job.owner.name == hub.user and job.flavor == "a10g-large"
    assert hub.token not in str(job.secrets)  # secrets never come back in clear
    created = jobs.created[0]
    assert (created.job_id, created.image, created.command) == (job.id, "python:3.12", ["python", "-c", "print(1)"])
    assert (created.flavor, created.timeout_seconds, created.env) == ("a10g-large", 5400, {"EPOCHS": "3"})
    assert created.secret_names == ["HF_TOKEN"] and created.secrets["HF_TOKEN"] == hub.token
    assert created.labels["intern-session"] == "s-1" and "name" in created.labels


async def test_run_job_refusals(api: HfApi, hub: HubStandIn) -> None:
    with pytest.raises(HfHubHTTPError) as flavor:
        await run_simple(api, hub, flavor="tpu-v9")
    assert flavor.value.response.status_code == 400 and "flavor" in str(flavor.value)
    with pytest.raises(HfHubHTTPError) as foreign:
        await run_simple(api, hub, namespace="someone-else")
    assert foreign.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as anonymous:
        await call(lambda: list(HfApi(endpoint=hub.url, token=False).list_jobs(namespace=hub.user)))
    assert anonymous.value.response.status_code == 401


async def test_run_uv_job_inline_and_url_scripts(api: HfApi, hub: HubStandIn, jobs: JobsState) -> None:
    inline = "import trl; print('training')"
    await call(api.run_uv_job, script=inline, dependencies=["trl"], flavor="t4-small", namespace=hub.user)
    url = "https://example.com/scripts/sft.py"  # the Job would fetch it, never the client
    await call(api.run_uv_job, script=url, script_args=["--epochs", "1"], namespace=hub.user, timeout="2h")
    first, second = jobs.created
    assert first.image == second.image == DEFAULT_UV_IMAGE
    assert first.command == ["uv", "run", "--with", "trl", inline] and first.flavor == "t4-small"
    assert second.command == ["uv", "run", url, "--epochs", "1"] and second.timeout_seconds == 7200
    assert second.labels["name"].startswith("sft-")


async def test_stages_and_inspect(api: HfApi, hub: HubStandIn, jobs: JobsState) -> None:
    job = await run_simple(api, hub)
    jobs.set_stage(job.id, "RUNNING")
    running = await call(api.inspect_job, job_id=job.id, namespace=hub.user)
    assert running.status.stage == "RUNNING" and running.started_at is not None and running.finished_at is None
    jobs.set_stage(job.id, "ERROR", message="CUDA out of memory")
    failed = await call(api.inspect_job, job_id=job.id, namespace=hub.user)
    assert (failed.status.stage, failed.status.message) == ("ERROR", "CUDA out of memory")
    assert failed.finished_at is not None and failed.durations is not None
    assert failed.durations.total_secs is not None and failed.durations.running_secs is not None
    with pytest.raises(HfHubHTTPError) as missing:
        await call(api.inspect_job, job_id="0" * 24, namespace=hub.user)
    assert missing.value.response.status_code == 404


async def test_list_jobs_filters_by_labels_and_stage(api: HfApi, hub: HubStandIn, jobs: JobsState) -> None:
    a = await run_simple(api, hub, labels={"session": "a", "kind": "train"})
    await run_simple(api, hub, labels={"session": "b", "kind": "train"})
    c = await run_simple(api, hub, labels={"session": "a", "kind": "eval"})
    jobs.set_stage(c.id, "RUNNING")
    found = await call(lambda **kw: list(api.list_jobs(**kw)), labels={"session": "a"}, namespace=hub.user)
    assert {j.id for j in found} == {a.id, c.id}
    both = await call(lambda **kw: list(api.list_jobs(**kw)), labels={"session": "a", "kind": "eval"},
                      namespace=hub.user)
    assert [j.id for j in both] == [c.id]
    running = await call(lambda **kw: list(api.list_jobs(**kw)), status="RUNNING", namespace=hub.user)
    assert [j.id for j in running] == [c.id]
    assert hub.calls(f"/api/jobs/{hub.user}", "GET")[0].query == {"label": "session=a"}


async def fetch_logs(api: HfApi, hub: HubStandIn, job_id: str, **kwargs: Any) -> list[str]:
    return await call(lambda: list(api.fetch_job_logs(job_id=job_id, namespace=hub.user, **kwargs)))


async def test_logs_without_follow(api: HfApi, hub: HubStandIn, jobs: JobsState) -> None:
    job = await run_simple(api, hub)
    jobs.set_stage(job.id, "RUNNING")
    jobs.append_logs(job.id, "epoch 1", "epoch 2", "epoch 3")
    jobs.set_stage(job.id, "COMPLETED")
    assert await fetch_logs(api, hub, job.id) == ["epoch 1", "epoch 2", "epoch 3"]  # "Job started" dropped
    assert await fetch_logs(api, hub, job.id, tail=2) == ["epoch 2", "epoch 3"]
    assert jobs.job(job.id).logs[0].data.startswith("===== Job started")


async def test_logs_without_follow_on_a_live_job(api: HfApi, hub: HubStandIn, jobs: JobsState) -> None:
    job = await run_simple(api, hub)
    jobs.set_stage(job.id, "RUNNING")
    jobs.append_logs(job.id, "loading model")
    jobs.log_idle_timeout = 0.2  # the live stream stays open; let it close once quiet
    started = time.monotonic()
    assert await fetch_logs(api, hub, job.id) == ["loading model"]
    assert time.monotonic() - started < 2


async def test_follow_streams_until_the_job_ends(api: HfApi, hub: HubStandIn, jobs: JobsState) -> None:
    job = await run_simple(api, hub)
    jobs.set_stage(job.id, "RUNNING")
    jobs.append_logs(job.id, "step 1")

    async def play_the_job() -> None:
        await hub.wait_for(lambda: bool(jobs.job(job.id).streams))
        jobs.append_logs(job.id, "step 2")
        await asyncio.sleep(0.1)
        jobs.append_logs(job.id, "step 3")
        jobs.set_stage(job.id, "COMPLETED")

    player = asyncio.create_task(play_the_job())
    started = time.monotonic()
    assert await fetch_logs(api, hub, job.id, follow=True) == ["step 1", "step 2", "step 3"]
    assert time.monotonic() - started < 3
    await player


async def test_follow_survives_a_dropped_connection(api: HfApi, hub: HubStandIn, jobs: JobsState) -> None:
    job = await run_simple(api, hub)
    jobs.set_stage(job.id, "RUNNING")
    jobs.append_logs(job.id, "a", "b")

    async def play_the_job() -> None:
        await hub.wait_for(lambda: bool(jobs.job(job.id).streams))
        jobs.drop_log_connection(job.id)
        jobs.append_logs(job.id, "c")
        await hub.wait_for(lambda: len(hub.calls(f"/{job.id}/logs")) == 2 and bool(jobs.job(job.id).streams))
        jobs.append_logs(job.id, "d")
        jobs.set_stage(job.id, "COMPLETED")

    player = asyncio.create_task(play_the_job())
    assert await fetch_logs(api, hub, job.id, follow=True) == ["a", "b", "c", "d"]  # no line twice
    await player


async def test_log_stream_can_end_before_the_job(api: HfApi, hub: HubStandIn, jobs: JobsState) -> None:
    job = await run_simple(api, hub)
    jobs.set_stage(job.id, "RUNNING")
    jobs.end_log_stream(job.id)  # no stream open yet: the next one ends right after its replay
    jobs.append_logs(job.id, "x")

    async def play_the_job() -> None:
        await hub.wait_for(lambda: len(hub.calls(f"/{job.id}/logs")) == 1)
        jobs.append_logs(job.id, "y")
        # The client saw a clean end, finds the job still running, waits and reconnects.
        await hub.wait_for(lambda: len(hub.calls(f"/{job.id}/logs")) == 2 and bool(jobs.job(job.id).streams))
        jobs.append_logs(job.id, "z")
        jobs.set_stage(job.id, "COMPLETED")

    player = asyncio.create_task(play_the_job())
    assert await fetch_logs(api, hub, job.id, follow=True) == ["x", "y", "z"]
    await player


async def test_cancel_ends_the_job_and_its_log_stream(api: HfApi, hub: HubStandIn, jobs: JobsState) -> None:
    job = await run_simple(api, hub)
    jobs.set_stage(job.id, "RUNNING")
    follower = asyncio.create_task(fetch_logs(api, hub, job.id, follow=True))
    await hub.wait_for(lambda: bool(jobs.job(job.id).streams))
    await call(api.cancel_job, job_id=job.id, namespace=hub.user)
    assert await asyncio.wait_for(follower, 10) == []
    assert (await call(api.inspect_job, job_id=job.id, namespace=hub.user)).status.stage == "CANCELED"


async def test_fail_next_requests(api: HfApi, hub: HubStandIn, jobs: JobsState) -> None:
    job = await run_simple(api, hub)
    jobs.fail_next(1, status=503, path_contains=f"/{job.id}")
    with pytest.raises(HfHubHTTPError) as failed:
        await call(api.inspect_job, job_id=job.id, namespace=hub.user)
    assert failed.value.response.status_code == 503
    assert (await call(api.inspect_job, job_id=job.id, namespace=hub.user)).id == job.id
    jobs.fail_next(1, status=500, method="GET")
    listed = await call(lambda: list(api.list_jobs(namespace=hub.user)))  # list_jobs retries 5xx itself
    assert [j.id for j in listed] == [job.id]
    assert len(hub.calls(f"/api/jobs/{hub.user}", "GET")) == 2


async def test_scheduled_jobs_lifecycle(api: HfApi, hub: HubStandIn, jobs: JobsState) -> None:
    hourly = await call(api.create_scheduled_job, image="python:3.12", command=["python", "-c", "print(1)"],
                        schedule="@hourly", flavor="cpu-upgrade", labels={"team": "ml"}, namespace=hub.user)
    weekly = await call(api.create_scheduled_uv_job, script="https://example.com/eval.py", schedule="0 9 * * 1",
                        timeout="1h", namespace=hub.user)
    assert hourly.schedule == "@hourly" and hourly.job_spec.flavor == "cpu-upgrade" and not hourly.suspend
    assert hourly.status.next_job_run_at is not None
    assert hourly.status.next_job_run_at - datetime.now(UTC) <= timedelta(hours=1)
    assert weekly.job_spec.command == ["uv", "run", "https://example.com/eval.py"]
    assert weekly.job_spec.timeout == 3600
    assert [c.schedule for c in jobs.created_schedules] == ["@hourly", "0 9 * * 1"]

    listed = await call(api.list_scheduled_jobs, namespace=hub.user)
    assert {s.id for s in listed} == {hourly.id, weekly.id}
    labelled = await call(api.list_scheduled_jobs, labels={"team": "ml"}, namespace=hub.user)
    assert [s.id for s in labelled] == [hourly.id]

    await call(api.suspend_scheduled_job, scheduled_job_id=hourly.id, namespace=hub.user)
    suspended = await call(api.inspect_scheduled_job, scheduled_job_id=hourly.id, namespace=hub.user)
    assert suspended.suspend is True and suspended.status.next_job_run_at is None
    await call(api.resume_scheduled_job, scheduled_job_id=hourly.id, namespace=hub.user)
    assert (await call(api.inspect_scheduled_job, scheduled_job_id=hourly.id, namespace=hub.user)).suspend is False

    run = jobs.fire_schedule(hourly.id)
    assert run.initiator == {"type": "scheduled-job", "id": hourly.id}
    inspected = await call(api.inspect_scheduled_job, scheduled_job_id=hourly.id, namespace=hub.user)
    assert inspected.status.last_job is not None and inspected.status.last_job.id == run.id
    with pytest.raises(HfHubHTTPError) as busy:
        await call(api.trigger_scheduled_job, scheduled_job_id=hourly.id, namespace=hub.user)
    assert busy.value.response.status_code == 409  # concurrency off and a run in progress

    await call(api.delete_scheduled_job, scheduled_job_id=hourly.id, namespace=hub.user)
    with pytest.raises(HfHubHTTPError) as gone:
        await call(api.inspect_scheduled_job, scheduled_job_id=hourly.id, namespace=hub.user)
    assert gone.value.response.status_code == 404


async def test_invalid_schedule_is_refused(api: HfApi, hub: HubStandIn) -> None:
    with pytest.raises(HfHubHTTPError) as bad:
        await call(api.create_scheduled_job, image="python:3.12", command=["true"], schedule="every tuesday",
                   namespace=hub.user)
    assert bad.value.response.status_code == 400


async def test_quiet_stream_keeps_alive_and_server_shutdown_ends_it() -> None:
    hub = HubStandIn()
    await hub.start()
    try:
        jobs = jobs_state(hub)
        jobs.keepalive_seconds = 0.1
        job = await run_simple(HfApi(endpoint=hub.url, token=hub.token), hub)
        jobs.set_stage(job.id, "RUNNING")
        lines: list[str] = []
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {hub.token}"}) as client, \
                client.stream("GET", f"{hub.url}/api/jobs/{hub.user}/{job.id}/logs") as response:
            async for line in response.aiter_lines():
                lines.append(line)
                if lines.count(": keep-alive") == 2:
                    break
            assert lines[0].startswith("data: {") and "Job started" in lines[0]
            started = time.monotonic()
            await hub.stop()  # the stream is still open: shutdown must end it, not wait for it
            assert time.monotonic() - started < 2
    finally:
        await hub.stop()


async def test_metrics_sample_of_a_running_job(api: HfApi, hub: HubStandIn, jobs: JobsState) -> None:
    job = await run_simple(api, hub, flavor="a10g-largex2")
    jobs.set_stage(job.id, "RUNNING")
    jobs.set_gpu(job.id, utilization=87, memory_used_bytes=19_000_000_000)
    samples = await call(lambda: list(api.fetch_job_metrics(job_id=job.id, namespace=hub.user)))
    assert len(samples) == 1
    sample = samples[0]
    assert set(sample) == {"cpu_usage_pct", "cpu_millicores", "memory_used_bytes", "memory_total_bytes", "rx_bps",
                           "tx_bps", "gpus", "replica"}
    assert sample["cpu_millicores"] == 24_000 and sample["memory_total_bytes"] == 92 * 1024 ** 3
    assert len(sample["gpus"]) == 2 and all(len(gid) == 8 for gid in sample["gpus"])
    assert all(g == {"utilization": 87, "memory_used_bytes": 19_000_000_000, "memory_total_bytes": 24_000_000_000}
               for g in sample["gpus"].values())


async def test_metrics_follow_streams_a_sample_a_second_until_the_job_ends(
        api: HfApi, hub: HubStandIn, jobs: JobsState) -> None:
    jobs.metrics_interval = 0.05
    job = await run_simple(api, hub, flavor="cpu-basic")
    jobs.set_stage(job.id, "RUNNING")

    def follow() -> list[dict[str, Any]]:
        seen = []
        for sample in api.fetch_job_metrics(job_id=job.id, namespace=hub.user, follow=True):
            seen.append(sample)
            if len(seen) == 3:
                jobs.set_stage(job.id, "COMPLETED")
        return seen

    seen = await call(follow)
    assert len(seen) >= 3 and all(s["gpus"] == {} for s in seen)  # a CPU flavor has no GPU
    # A job that has ended answers 406, which huggingface_hub takes as "no metrics"
    assert await call(lambda: list(api.fetch_job_metrics(job_id=job.id, namespace=hub.user))) == []
