"""The hardware facts agree with each other and with the Hub's own list: the static flavors are the ones
`GET /api/jobs/hardware` serves (through huggingface_hub, against the stand-in that serves the Hub's
published table), and every GPU model the Hub lists has its memory, bf16 support and throughput here."""

from __future__ import annotations

from typing import Any

from intern.agent.hardware import GPUS, STATIC_FLAVORS, gpu_of
from intern.agent.hub import HubClient
from intern.agent.pricing import flavor_from_hub
from intern.standins.hub import HubStandIn


async def test_static_flavors_are_the_hubs_list(hub: HubStandIn) -> None:
    client = HubClient(endpoint=hub.url, token=hub.token)
    try:
        live: list[Any] = await client.call(client.api.list_jobs_hardware)
    finally:
        client.close()
    served = {f.name: f for f in (flavor_from_hub(item) for item in live)}
    static = {f.name: f for f in STATIC_FLAVORS}
    assert served.keys() == static.keys()
    for name, flavor in static.items():
        other = served[name]
        assert (flavor.gpus, flavor.gpu_model, flavor.vram_gb, flavor.cpu, flavor.ram) == (
            other.gpus, other.gpu_model, other.vram_gb, other.cpu, other.ram), name
        assert abs(flavor.hourly_usd - other.hourly_usd) < 0.01, name


def test_every_gpu_model_has_its_facts_and_they_agree_with_the_flavors() -> None:
    for flavor in STATIC_FLAVORS:
        if not flavor.is_gpu:
            assert gpu_of(flavor) is None
            continue
        gpu = GPUS[flavor.gpu_model or ""]
        assert gpu.memory_gb == flavor.vram_per_gpu, flavor.name  # the Hub's total / GPUs
        assert gpu_of(flavor) == gpu
        assert gpu.tflops_16bit > gpu.tflops_fp32 > 0 and gpu.bandwidth_gbs > 0
    assert [g.model for g in GPUS.values() if not g.bf16] == ["T4"]
