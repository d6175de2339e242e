"""Rate limits, the response cache, the Semantic Scholar API key and failing sources."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from intern.agent.cache import MemoryCache
from intern.agent.errors import ToolFeedback
from intern.agent.papers.operations import HTML_TTL, NO_HTML_TTL
from intern.agent.papers.sources import DAY, HOUR, MINUTE, RetryPolicy
from intern.agent.tools.papers import papers_tool

SECRET = "s2-secret-key-0123456789"


async def run(ctx: Any, **args: Any) -> str:
    return (await papers_tool.handler(ctx, papers_tool.parse(args))).content


async def test_429_is_waited_out_honouring_retry_after(world: Any, make_ctx: Any) -> None:
    world.s2.fail_next(429, times=2, retry_after="1", path_contains="/citations")
    started = time.monotonic()
    text = await run(make_ctx(), operation="citation_graph", arxiv_id="2401.00001", direction="citations")
    elapsed = time.monotonic() - started
    assert "Efficient Long Context Models" in text
    assert len(world.s2.calls("/ARXIV:2401.00001/citations")) == 3  # two refusals, then the answer
    assert elapsed >= 2.0  # waited the one second asked, twice


async def test_429_without_retry_after_backs_off_then_succeeds(world: Any, make_ctx: Any) -> None:
    world.s2.fail_next(429, times=1, path_contains="/recommendations")
    text = await run(make_ctx(), operation="recommend", arxiv_id="2401.00001")
    assert "Longformer" in text
    assert len(world.s2.calls("/forpaper/ARXIV:2401.00001")) == 2


async def test_persistent_429_gives_up_with_advice(world: Any, make_ctx: Any) -> None:
    world.s2.fail_next(429, times=100)
    with pytest.raises(ToolFeedback) as err:
        await run(make_ctx(), operation="snippet_search", query="attention")
    assert "rate-limiting requests (HTTP 429 after 3 attempt(s)" in str(err.value)
    assert len(world.s2.requests) == 3


async def test_a_long_retry_after_is_reported_not_waited(world: Any, make_ctx: Any) -> None:
    world.s2.fail_next(429, times=1, retry_after="120")
    started = time.monotonic()
    with pytest.raises(ToolFeedback, match="asks to wait 120s"):
        await run(make_ctx(retry=RetryPolicy()), operation="snippet_search", query="attention")
    assert time.monotonic() - started < 5
    assert len(world.s2.requests) == 1


async def test_api_key_is_sent_as_x_api_key_and_never_shown(world: Any, make_ctx: Any) -> None:
    world.s2.require_api_key = SECRET
    ctx = make_ctx(s2_api_key=SECRET)
    text = await run(ctx, operation="citation_graph", arxiv_id="2401.00001")
    assert world.s2.api_keys() and set(world.s2.api_keys()) == {SECRET}
    assert SECRET not in text
    assert all("x-api-key" not in {k.lower() for k in r.headers} for r in world.hub.requests + world.arxiv.requests)


async def test_a_rejected_api_key_is_feedback_without_the_key(world: Any, make_ctx: Any) -> None:
    world.s2.require_api_key = "the-right-one"
    with pytest.raises(ToolFeedback) as err:
        await run(make_ctx(s2_api_key=SECRET), operation="recommend", arxiv_id="2401.00001")
    assert "HTTP 403" in str(err.value) and "S2_API_KEY" in str(err.value)
    assert SECRET not in str(err.value)


async def test_without_a_key_no_header_is_sent(world: Any, make_ctx: Any) -> None:
    await run(make_ctx(), operation="snippet_search", query="attention")
    assert world.s2.api_keys() == [None]


async def test_second_call_is_answered_from_the_cache(world: Any, make_ctx: Any) -> None:
    cache = MemoryCache()
    calls: list[dict[str, Any]] = [dict(operation="paper_details", arxiv_id="2401.00001"),
             dict(operation="read_paper", arxiv_id="2401.00001", section="2"),
             dict(operation="read_paper", arxiv_id="2509.04664"),
             dict(operation="citation_graph", arxiv_id="2401.00001"),
             dict(operation="recommend", positive_ids=["2401.00001"]),
             dict(operation="find_all_resources", arxiv_id="2401.00001"),
             dict(operation="trending", query="attention")]
    first = [await run(make_ctx(cache=cache), **c) for c in calls]
    fetched = world.all_requests()
    assert fetched > len(calls)
    # a fresh context (as after a restart) sharing only the cache
    second = [await run(make_ctx(cache=cache), **c) for c in calls]
    assert world.all_requests() == fetched
    assert second == first
    # another section of a cached page needs no fetch either
    await run(make_ctx(cache=cache), operation="read_paper", arxiv_id="2401.00001", section="Experiments")
    assert world.all_requests() == fetched


async def test_without_a_cache_every_call_fetches(world: Any, make_ctx: Any) -> None:
    ctx = make_ctx()
    await run(ctx, operation="paper_details", arxiv_id="2401.00001")
    once = world.all_requests()
    await run(ctx, operation="paper_details", arxiv_id="2401.00001")
    assert world.all_requests() == 2 * once


async def test_failures_are_not_cached(world: Any, make_ctx: Any) -> None:
    cache = MemoryCache()
    world.s2.fail_next(503, times=3)
    with pytest.raises(ToolFeedback, match="HTTP 503"):
        await run(make_ctx(cache=cache), operation="snippet_search", query="attention")
    text = await run(make_ctx(cache=cache), operation="snippet_search", query="attention")
    assert "Protein folding with attention" in text


async def test_cache_ttls_follow_how_fast_each_source_changes(world: Any, make_ctx: Any) -> None:
    class RecordingCache(MemoryCache):
        def __init__(self) -> None:
            super().__init__()
            self.ttls: list[float] = []

        async def set(self, key: str, value: str, ttl_seconds: float) -> None:
            self.ttls.append(ttl_seconds)
            await super().set(key, value, ttl_seconds)

    cache = RecordingCache()
    await run(make_ctx(cache=cache), operation="trending")
    assert cache.ttls == [30 * MINUTE]  # today's list moves during the day
    await run(make_ctx(cache=cache), operation="trending", date="2025-09-08")
    assert cache.ttls[-1] == DAY  # a past day's list is settled
    await run(make_ctx(cache=cache), operation="read_paper", arxiv_id="2509.04664")
    assert cache.ttls[-2:] == [NO_HTML_TTL, 6 * HOUR]  # "no HTML yet" is re-checked sooner than a page
    await run(make_ctx(cache=cache), operation="read_paper", arxiv_id="2401.00001")
    assert cache.ttls[-1] == HTML_TTL


async def test_an_unreachable_semantic_scholar_is_feedback(world: Any, make_ctx: Any) -> None:
    with pytest.raises(ToolFeedback, match="Semantic Scholar could not be reached"):
        await run(make_ctx(s2_url="http://127.0.0.1:9"), operation="snippet_search", query="attention")


async def test_a_broken_cache_does_not_break_lookups(world: Any, make_ctx: Any) -> None:
    class BrokenCache:
        async def get(self, key: str) -> str | None:
            raise ConnectionError("database is down")

        async def set(self, key: str, value: str, ttl_seconds: float) -> None:
            raise ConnectionError("database is down")

    text = await run(make_ctx(cache=BrokenCache()), operation="paper_details", arxiv_id="2401.00001")
    assert "Sparse Attention for Long Context Transformers" in text


async def test_bulk_search_is_cached_trimmed_to_what_is_shown(world: Any, make_ctx: Any) -> None:
    class RecordingCache(MemoryCache):
        def __init__(self) -> None:
            super().__init__()
            self.values: list[str] = []

        async def set(self, key: str, value: str, ttl_seconds: float) -> None:
            self.values.append(value)
            await super().set(key, value, ttl_seconds)

    cache = RecordingCache()
    first = await run(make_ctx(cache=cache), operation="search", query="attention", sort="newest", limit=2)
    assert [len(json.loads(v)["data"]) for v in cache.values] == [2]
    assert json.loads(cache.values[0])["total"] == 7
    second = await run(make_ctx(cache=cache), operation="search", query="attention", sort="newest", limit=2)
    assert second == first and len(world.s2.requests) == 1
    await run(make_ctx(cache=cache), operation="search", query="attention", sort="newest", limit=3)
    assert len(world.s2.requests) == 2  # a longer list is not answered from the shorter one
