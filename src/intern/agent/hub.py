"""The Hub client port: huggingface_hub's HfApi, called off the event loop.

HfApi is synchronous. Ordinary calls share one executor; log streams, which block for as long as a
job runs, each get a thread of their own (as many as jobs followed), so they cannot starve the rest.
The token lives only here (and in huggingface_hub); it is never put into a tool result.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class HubClient:
    def __init__(self, *, endpoint: str, token: str | None, namespace: str | None = None,
                 workers: int = 8) -> None:
        from huggingface_hub import HfApi

        self.endpoint = endpoint.rstrip("/")
        self._token = token
        self.api = HfApi(endpoint=self.endpoint, token=token or False)
        self._namespace = namespace
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hub")
        self._ns_lock = asyncio.Lock()

    @property
    def has_token(self) -> bool:
        return bool(self._token)

    def token_for_job_secrets(self) -> str | None:
        """The token the bot injects into a job's secrets at launch (never shown to the model)."""
        return self._token

    async def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    async def call_streaming(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a long blocking stream on a thread of its own (one per followed job).

        The thread is a daemon: a stream that only ends with its job never holds up shutdown.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def deliver(setter: Callable[[Any], None], value: Any) -> None:
            if not future.done():
                setter(value)

        def run() -> None:
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the awaiting task
                with contextlib.suppress(RuntimeError):  # loop closed: nobody is waiting any more
                    loop.call_soon_threadsafe(deliver, future.set_exception, exc)
            else:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(deliver, future.set_result, result)

        threading.Thread(target=run, name="hub-log-stream", daemon=True).start()
        return await future

    async def namespace(self) -> str:
        if self._namespace:
            return self._namespace
        async with self._ns_lock:
            if not self._namespace:
                info = await self.call(self.api.whoami)
                self._namespace = info["name"]
        return self._namespace

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
