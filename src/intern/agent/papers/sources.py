"""The three paper sources over HTTP: the Hub papers API, Semantic Scholar and arXiv HTML.

Every successful answer is kept in the `Cache` port (when the bot plugged one in) for a time to live
that suits how fast the source changes, so a restart or a repeated question does not fetch again.
Semantic Scholar rate-limits hard (429), so its calls wait as told by Retry-After, within bounds; its
API key travels only in the `x-api-key` header and never into an answer or a cache key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from intern.agent.retry import RetryPolicy, retry_after_seconds

if TYPE_CHECKING:
    from intern.agent.context_deps import ToolContext
    from intern.agent.ports import Cache

log = logging.getLogger(__name__)

MINUTE = 60.0
HOUR = 3600.0
DAY = 24 * HOUR

HUB = "the Hugging Face Hub"
S2 = "Semantic Scholar"
ARXIV = "arXiv"


class SourceError(Exception):
    """A paper source did not give what was asked; `str()` is written for the model."""

    def __init__(self, service: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.service = service
        self.status = status


class NotFound(SourceError):
    pass


class Unavailable(SourceError):
    pass


@dataclass(frozen=True)
class Fetched:
    status: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class Sources:
    """HTTP access for one tool call, built from the tool context."""

    def __init__(self, ctx: ToolContext) -> None:
        self.http: httpx.AsyncClient = ctx.http
        self.cache: Cache | None = ctx.deps.cache
        self.hub_url = ctx.config.hf_endpoint.rstrip("/")
        self.s2_url = ctx.config.semantic_scholar_url.rstrip("/")
        self.arxiv_url = ctx.config.arxiv_url.rstrip("/")
        self._s2_key: str | None = ctx.deps.s2_api_key or None
        self.retry: RetryPolicy = ctx.deps.s2_retry or RetryPolicy()

    # ---- the Hub -------------------------------------------------------------------------------

    async def hub_json(self, path: str, params: dict[str, Any] | None = None, *, ttl: float) -> Any:
        url = f"{self.hub_url}{path}"
        fetched = await self._cached("GET", url, params, None, ttl, lambda: self._hub_get(url, params))
        return fetched.json()

    async def _hub_get(self, url: str, params: dict[str, Any] | None) -> Fetched:
        resp = await self._send(HUB, "GET", url, params=params)
        if resp.status_code == 404:
            raise NotFound(HUB, f"{HUB} has no such resource ({_error_text(resp)}).", status=404)
        _raise_for_status(HUB, resp)
        return Fetched(resp.status_code, resp.text)

    # ---- Semantic Scholar ------------------------------------------------------------------------

    async def s2_json(self, path: str, params: dict[str, Any] | None = None, *,
                      body: dict[str, Any] | None = None, ttl: float, keep_first: int | None = None) -> Any:
        """`keep_first` trims `data` before caching: bulk search answers 1,000 papers to show ten."""
        url = f"{self.s2_url}{path}"
        method = "POST" if body is not None else "GET"

        async def fetch() -> Fetched:
            fetched = await self._s2_request(method, url, params, body)
            return fetched if keep_first is None else _trimmed(fetched, keep_first)

        key_params = params if keep_first is None else {**(params or {}), "_keep_first": keep_first}
        fetched = await self._cached(method, url, key_params, body, ttl, fetch)
        return fetched.json()

    async def _s2_request(self, method: str, url: str, params: dict[str, Any] | None,
                          body: dict[str, Any] | None) -> Fetched:
        headers = {"x-api-key": self._s2_key} if self._s2_key else {}
        waited = 0.0
        for attempt in range(1, self.retry.attempts + 1):
            resp = await self._send(S2, method, url, params=params, json=body, headers=headers)
            if resp.status_code != 429 and resp.status_code < 500:
                return self._s2_result(resp)
            delay = retry_after_seconds(resp.headers.get("Retry-After")) if resp.status_code == 429 else None
            delay = delay if delay is not None else self._backoff(attempt)
            if attempt == self.retry.attempts or delay > self.retry.max_delay or waited + delay > self.retry.budget:
                raise _s2_gave_up(resp, delay, attempt)
            log.info("semantic scholar answered %s; retrying in %.1fs", resp.status_code, delay)
            await asyncio.sleep(delay)
            waited += delay
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _s2_result(self, resp: httpx.Response) -> Fetched:
        if resp.status_code == 404:
            raise NotFound(S2, f"{S2}: {_error_text(resp)}.", status=404)
        if resp.status_code in (401, 403):
            raise Unavailable(S2, f"{S2} refused the request (HTTP {resp.status_code}); the configured "
                                  "S2_API_KEY may be invalid or expired.", status=resp.status_code)
        if resp.status_code == 400:
            raise Unavailable(S2, f"{S2} rejected the query (HTTP 400: {_error_text(resp)}).", status=400)
        _raise_for_status(S2, resp)
        return Fetched(resp.status_code, resp.text)

    def _backoff(self, attempt: int) -> float:
        return self.retry.base_delay * 2 ** (attempt - 1) + random.uniform(0, self.retry.base_delay / 2)

    # ---- arXiv -----------------------------------------------------------------------------------

    async def arxiv_html(self, arxiv_id: str) -> str | None:
        """The arXiv HTML page of a paper, or None when arXiv has no HTML version of it."""
        url = f"{self.arxiv_url}/html/{arxiv_id}"
        resp = await self._send(ARXIV, "GET", url, follow_redirects=True, timeout=60.0)
        if resp.status_code == 404:
            return None
        _raise_for_status(ARXIV, resp)
        return resp.text

    # ---- shared ----------------------------------------------------------------------------------

    async def _send(self, service: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("timeout", 30.0)
        try:
            return await self.http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise Unavailable(service, f"{service} did not answer in time ({type(exc).__name__}).") from exc
        except httpx.TransportError as exc:
            raise Unavailable(service, f"{service} could not be reached ({type(exc).__name__}).") from exc

    async def _cached(self, method: str, url: str, params: dict[str, Any] | None,
                      body: dict[str, Any] | None, ttl: float, fetch: Any) -> Fetched:
        key = cache_key(method, url, params, body)
        hit = await self.cache_get(key)
        if hit is not None:
            return Fetched(200, hit)
        fetched: Fetched = await fetch()
        await self.cache_set(key, fetched.text, ttl)
        return fetched

    async def cache_get(self, key: str) -> str | None:
        if self.cache is None:
            return None
        try:
            return await self.cache.get(key)
        except Exception:  # a broken cache must not break paper lookups; it only costs a fetch
            log.warning("paper cache read failed", exc_info=True)
            return None

    async def cache_set(self, key: str, value: str, ttl: float) -> None:
        if self.cache is None:
            return
        try:
            await self.cache.set(key, value, ttl)
        except Exception:  # see cache_get
            log.warning("paper cache write failed", exc_info=True)


def cache_key(method: str, url: str, params: dict[str, Any] | None, body: dict[str, Any] | None) -> str:
    blob = json.dumps([method, url, sorted((params or {}).items()), body], sort_keys=True, default=str)
    return "hf_papers:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _trimmed(fetched: Fetched, keep: int) -> Fetched:
    data = fetched.json()
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data["data"] = data["data"][:keep]
    return Fetched(fetched.status, json.dumps(data))


def _s2_gave_up(resp: httpx.Response, delay: float, attempts: int) -> Unavailable:
    if resp.status_code == 429:
        return Unavailable(
            S2, f"{S2} is rate-limiting requests (HTTP 429 after {attempts} attempt(s); it asks to wait "
                f"{delay:.0f}s). Try again in a minute, or use operation='search' without filters "
                "(the Hub) meanwhile.", status=429)
    return Unavailable(S2, f"{S2} is failing (HTTP {resp.status_code} after {attempts} attempt(s)). "
                           "Try again later.", status=resp.status_code)


def _raise_for_status(service: str, resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    if resp.status_code >= 500 or resp.status_code == 429:
        raise Unavailable(service, f"{service} is failing (HTTP {resp.status_code}). Try again later.",
                          status=resp.status_code)
    raise Unavailable(service, f"{service} answered HTTP {resp.status_code}: {_error_text(resp)}.",
                      status=resp.status_code)


def _error_text(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return resp.reason_phrase or f"HTTP {resp.status_code}"
    if isinstance(data, dict):
        for key in ("error", "message"):
            if isinstance(data.get(key), str):
                return str(data[key])[:300]
    return resp.reason_phrase or f"HTTP {resp.status_code}"
