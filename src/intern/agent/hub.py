"""The Hub client port: huggingface_hub's HfApi, called off the event loop.

HfApi is synchronous: its calls share one executor. A followed job's log and metrics streams, which
last as long as the job runs, are read on the event loop instead (`streams`, see `job_streams.py`).
The token lives only here (and in huggingface_hub); it is never put into a tool result.

`read` retries what is safe to repeat (GETs) on 5xx, 429, timeouts and dropped connections, a few
times with backoff; `call` never retries, because a write (a job launch) repeated blindly could
happen twice. Launches reconcile with the Hub by label instead (see `tools/jobs_launch.py`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from intern.agent.errors import declare_retryable, retryable

T = TypeVar("T")

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def declare_hub_errors() -> None:
    """How the Hub's failures are taken (see `errors.retryable`): an answer with a status is retried on
    5xx, 429 and 408 and final otherwise; a timeout, a network error or a broken response may pass. The
    errors huggingface_hub raises about this machine (no token, a file not in the cache) do not."""
    import httpx2
    from huggingface_hub import errors as hf

    declare_retryable(_status_is_retryable, hf.HfHubHTTPError, httpx2.HTTPStatusError)
    declare_retryable(True, httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)
    declare_retryable(False, hf.LocalTokenNotFoundError, hf.LocalEntryNotFoundError, hf.DryRunError,
                      hf.FileMetadataError)


def _status_is_retryable(exc: BaseException) -> bool:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status is not None and int(status) in RETRY_STATUS


def open_ended_connection_pool() -> None:
    """huggingface_hub shares one httpx client whose pool holds 100 connections. Followed jobs' log and
    metrics streams no longer go through it (`job_streams.py` reads them on the event loop), but any
    stream opened through huggingface_hub holds a connection for as long as the job runs (the
    supervision benchmark's floor opens 400), so the pool is left open-ended rather than making a
    long-lived stream wait for a free connection."""
    import httpx2
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils._http import hf_request_event_hook

    set_client_factory(lambda: httpx2.Client(event_hooks={"request": [hf_request_event_hook]}, follow_redirects=True,
                                             timeout=None,
                                             limits=httpx2.Limits(max_connections=None, max_keepalive_connections=64)))


class HubClient:
    def __init__(self, *, endpoint: str, token: str | None, namespace: str | None = None,
                 workers: int = 8, read_token: str | None = None) -> None:
        from huggingface_hub import HfApi
        from huggingface_hub.utils import build_hf_headers

        from intern.agent.job_streams import JobStreams

        open_ended_connection_pool()
        declare_hub_errors()

        self.endpoint = endpoint.rstrip("/")
        self._token = token
        # INTERN_HF_READ_TOKEN: the only token that may reach a sandbox (code there must never
        # obtain one that writes to the namespace or launches jobs).
        self._read_token = read_token if read_token and read_token != token else None
        self.api = HfApi(endpoint=self.endpoint, token=token or False)
        self._namespace = namespace
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hub")
        # A followed job's log and metrics streams, read on the event loop (see `job_streams.py`).
        self.streams = JobStreams(self.endpoint, lambda: build_hf_headers(token=token or False))
        self._ns_lock = asyncio.Lock()

    @property
    def has_token(self) -> bool:
        return bool(self._token)

    def token_for_job_secrets(self) -> str | None:
        """The token the bot injects into a job's secrets at launch (never shown to the model)."""
        return self._token

    def token_for_sandboxes(self) -> str | None:
        """The read-only token: a sandbox's HF_TOKEN and the key to its private Space. Never the write
        token, whatever is configured."""
        return self._read_token

    async def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    async def read(self, fn: Callable[..., T], /, *args: Any, attempts: int = 4, base_delay: float = 0.5,
                   **kwargs: Any) -> T:
        """`call` for idempotent requests: transient failures are retried with backoff and jitter."""
        for attempt in range(1, attempts + 1):
            try:
                return await self.call(fn, *args, **kwargs)
            except Exception as exc:
                if attempt == attempts or not retryable(exc):
                    raise
                delay = min(8.0, base_delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
                log.info("Hub read failed (%s); retry %d in %.1fs", type(exc).__name__, attempt, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def namespace(self) -> str:
        if self._namespace:
            return self._namespace
        async with self._ns_lock:
            if not self._namespace:
                info = await self.read(self.api.whoami)
                self._namespace = info["name"]
        return self._namespace

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
