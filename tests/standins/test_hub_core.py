"""Identity routes of the Hub stand-in, through huggingface_hub itself."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from intern.agent.hub import HubClient
from intern.standins.hub import HubStandIn
from intern.standins.hub_core import core_state


async def test_whoami_has_the_hubs_shape(hub: HubStandIn) -> None:
    core_state(hub).add_org("team-ml", role="admin")
    info = await asyncio.to_thread(HfApi(endpoint=hub.url, token=hub.token).whoami)
    assert (info["type"], info["name"]) == ("user", hub.user)
    assert {org["name"] for org in info["orgs"]} == {"intern-org", "team-ml"}
    assert all(org["type"] == "org" and len(org["id"]) == 24 for org in info["orgs"])
    assert info["auth"]["type"] == "access_token"
    assert info["auth"]["accessToken"]["role"] == "write"
    assert info["avatarUrl"].startswith(hub.url)  # nothing in it points off the machine


async def test_wrong_or_missing_token_is_401(hub: HubStandIn) -> None:
    api = HfApi(endpoint=hub.url, token="hf_wrong")
    with pytest.raises(HfHubHTTPError) as wrong:
        await asyncio.to_thread(api.whoami)
    assert wrong.value.response.status_code == 401 and "Invalid user token" in str(wrong.value)
    with pytest.raises(HfHubHTTPError) as public_route:
        await asyncio.to_thread(api.list_jobs_hardware)
    assert public_route.value.response.status_code == 401  # the Hub rejects a bad token even on public routes
    hardware = await asyncio.to_thread(HfApi(endpoint=hub.url, token=False).list_jobs_hardware)
    assert len(hardware) == 26  # no token at all is fine there


async def test_hub_client_namespace_comes_from_whoami(hub: HubStandIn) -> None:
    client = HubClient(endpoint=hub.url, token=hub.token)
    try:
        assert await client.namespace() == hub.user
    finally:
        client.close()


async def test_agent_harness_registry_feeds_huggingface_hubs_agent_detection(
        hub: HubStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from huggingface_hub import constants
    from huggingface_hub.utils import _detect_agent

    # detect_agent() fetches from the process-wide ENDPOINT and caches on disk and in memory.
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(tmp_path / "harnesses.json"))
    monkeypatch.setattr(_detect_agent, "_registry", None)
    for name in ("AI_AGENT", "AGENT", "CLAUDECODE", "CODEX_SANDBOX", "CURSOR_AGENT", "GEMINI_CLI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CODEX_SANDBOX", "seatbelt")
    assert await asyncio.to_thread(_detect_agent.detect_agent) == "codex"
    assert len(hub.calls("/api/agent-harnesses", "GET")) == 1
    assert (tmp_path / "harnesses.json").exists()

    monkeypatch.setattr(_detect_agent, "_registry", None)
    monkeypatch.delenv("CODEX_SANDBOX")
    monkeypatch.setenv("AI_AGENT", "ml-intern")
    assert await asyncio.to_thread(_detect_agent.detect_agent) == "ml-intern"  # a standard variable
    assert len(hub.calls("/api/agent-harnesses", "GET")) == 1  # served from the on-disk cache
