"""pytest plugin: the loopback stand-ins as fixtures, and an environment that keeps the real client
libraries on this machine.

The environment is set when this plugin is imported, before any test module is collected: both
huggingface_hub and litellm read it once, at their own import.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import cast

import pytest

from intern.standins.hub import HubStandIn
from intern.standins.llm import LLMStandIn
from intern.standins.slack import SlackStandIn

PROXY_VARIABLES = tuple(
    name
    for base in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "FTP_PROXY", "WS_PROXY", "WSS_PROXY")
    for name in (base, base.lower())
)
# Credentials and endpoints from the developer's shell must not steer the suite anywhere.
UNSET_VARIABLES = (*PROXY_VARIABLES, "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE",
                   "HUGGINGFACE_CO_STAGING", "HF_HUB_USER_AGENT_ORIGIN")

_saved: dict[str, str | None] = {}
_hf_home: str | None = None


def _set(name: str, value: str | None) -> None:
    _saved.setdefault(name, os.environ.get(name))
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _configure_environment() -> None:
    global _hf_home
    _hf_home = tempfile.mkdtemp(prefix="intern-hf-home-")
    for name in UNSET_VARIABLES:
        _set(name, None)
    _set("NO_PROXY", "*")
    _set("no_proxy", "*")
    _set("HF_HOME", _hf_home)
    _set("HF_HUB_DISABLE_TELEMETRY", "1")
    _set("HF_HUB_DISABLE_EXPERIMENTAL_WARNING", "1")  # run_uv_job & co. warn, and warnings are errors
    _set("LITELLM_OFFLINE_MODE", "true")
    _set("LITELLM_LOCAL_MODEL_COST_MAP", "True")


_configure_environment()


def pytest_unconfigure(config: pytest.Config) -> None:
    for name, value in _saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if _hf_home is not None:
        shutil.rmtree(_hf_home, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _hub_library_uses_test_home() -> Iterator[None]:
    """huggingface_hub fixes its paths at import: if it is already imported, it must have been
    imported after the environment was set."""
    constants = sys.modules.get("huggingface_hub.constants")
    assert constants is None or constants.HF_HOME == _hf_home, (
        "huggingface_hub was imported before tests/support/standin_fixtures.py set HF_HOME; "
        "load this plugin earlier"
    )
    yield


@pytest.fixture
async def hub() -> AsyncIterator[HubStandIn]:
    async with HubStandIn() as stand_in:
        yield cast(HubStandIn, stand_in)


@pytest.fixture
async def slack_api() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn() as stand_in:
        yield cast(SlackStandIn, stand_in)


@pytest.fixture
async def llm() -> AsyncIterator[LLMStandIn]:
    async with LLMStandIn() as stand_in:
        yield cast(LLMStandIn, stand_in)
