"""Fixtures for the agent-side tests: a factory for an Agent wired to in-test ports, closed afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.agent.agent_fakes import Harness, close, make_harness


@pytest.fixture
async def harness() -> AsyncIterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(*args: Any, **kwargs: Any) -> Harness:
        h = make_harness(*args, **kwargs)
        made.append(h)
        return h

    yield make
    for h in made:
        await close(h)
