"""A Hub job's log and GPU-metrics streams, read on the event loop.

huggingface_hub reads these server-sent event streams with blocking iterators; following a job that
way takes two threads for as long as it runs, and 200 jobs took 400 threads whose switching alone
cost a fifth of a core. Here one aiohttp session reads every stream on the event loop, with the
requests huggingface_hub makes (`GET {endpoint}/api/jobs/{namespace}/{job_id}/logs|metrics`, its
headers: user agent and bearer token) and its reading of the wire format:

- logs: one `data: {"data": line, "timestamp": iso}` per line; every connection replays the log
  from its start, so a reconnect skips the events already taken (`LogCursor`); the Hub's own
  `===== Job started ... =====` line is not a log line;
- metrics: `event: metric` then `data: {...}` (one sample a second while the job runs); 406 (once
  500) answers a job that has ended.

A stream is read in batches: after a small read the reader, and its socket, wait `pace` seconds, so
that the lines logged meanwhile are taken in one go (the watcher reads them once a second anyway)
instead of one wake-up per line; `hurry` ends the waiting (a job that ended: its last lines are
wanted now). The
token is only ever sent in the request header: errors name the status and the stream, never the
request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

LOG_READ_TIMEOUT = 120.0  # huggingface_hub's: the Hub sends a keep-alive every 30 s on a quiet log
METRICS_READ_TIMEOUT = 10.0  # and one metric event a second while the job runs
CONNECT_TIMEOUT = 30.0
ENDED = frozenset({406, 500})  # the metrics of a job that has ended
BACKLOG = 1 << 15  # a read this large means more is waiting: read on without pausing
JOB_STARTED = "===== Job started"


class StreamRefused(Exception):
    """The Hub answered a stream request with an error status."""

    def __init__(self, status: int, what: str) -> None:
        super().__init__(f"HTTP {status} for {what}")
        self.status = status


@dataclass
class LogCursor:
    """How many events of a job's log have been taken: the next connection skips that many. And when,
    by the Hub's clock, the job logged the last line taken: a replay after a restart keeps the times
    the lines were logged, not the time they were read again."""

    events: int = 0
    logged_at: float | None = None  # epoch seconds


def logged_time(stamp: Any) -> float | None:
    """Epoch seconds of a log event's `timestamp` (ISO 8601, e.g. `2025-07-22T16:06:31.079Z`)."""
    if not isinstance(stamp, str):
        return None
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


class JobStreams:
    def __init__(self, endpoint: str, headers: Callable[[], dict[str, str]]) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._headers = headers
        self._fixed: dict[str, str] | None = None
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            import certifi

            # as huggingface_hub's client: certifi's roots, proxies from the environment
            context = ssl.create_default_context(cafile=certifi.where())
            connector = aiohttp.TCPConnector(limit=0, ssl=context, keepalive_timeout=30.0)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=True)
        return self._session

    def headers(self) -> dict[str, str]:
        if self._fixed is None:
            self._fixed = {**self._headers(), "Accept": "text/event-stream"}
        return self._fixed

    def url(self, namespace: str, job_id: str, route: str) -> str:
        return f"{self.endpoint}/api/jobs/{namespace}/{job_id}/{route}"

    async def read_logs(self, namespace: str, job_id: str, cursor: LogCursor, deliver: Callable[[list[str]], None],
                        *, pace: float = 0.0, hurry: asyncio.Event | None = None) -> None:
        """One connection to the job's log: hands `deliver` each batch of new lines, in order, and
        returns when the Hub ends the stream. A dropped connection or a silent one raises; `cursor`
        then says where the next connection picks up."""
        seen = 0

        def take(events: list[bytes]) -> None:
            nonlocal seen
            fresh = events[max(0, cursor.events - seen):]  # the rest was taken on an earlier connection
            seen += len(events)
            if not fresh:
                return
            cursor.events = seen
            parsed = json.loads(b"[" + b",".join(fresh) + b"]")  # the batch at once
            kept = [event for event in parsed if not event["data"].startswith(JOB_STARTED)]
            if kept:
                cursor.logged_at = logged_time(kept[-1].get("timestamp")) or cursor.logged_at
                deliver([event["data"] for event in kept])

        await self._read(self.url(namespace, job_id, "logs"), f"the log of job {job_id}", LOG_READ_TIMEOUT, take,
                         pace=pace, hurry=hurry)

    async def read_metrics(self, namespace: str, job_id: str, deliver: Callable[[dict[str, Any]], None], *,
                           pace: float = 0.0, hurry: asyncio.Event | None = None) -> None:
        """One connection to the job's metrics: hands `deliver` the latest sample of each batch;
        returns when the stream ends or the Hub says the job has ended."""

        def take(events: list[bytes]) -> None:
            sample = json.loads(events[-1])
            if isinstance(sample, dict):
                deliver(sample)

        await self._read(self.url(namespace, job_id, "metrics"), f"the metrics of job {job_id}",
                         METRICS_READ_TIMEOUT, take, pace=pace, hurry=hurry, ended=ENDED)

    async def _read(self, url: str, what: str, read_timeout: float, take: Callable[[list[bytes]], None], *,
                    pace: float, hurry: asyncio.Event | None, ended: frozenset[int] = frozenset()) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=read_timeout)
        async with self._client().get(url, headers=self.headers(), timeout=timeout) as response:
            if response.status in ended:
                return
            if response.status != 200:
                raise StreamRefused(response.status, what)
            # While the reader pauses, so does the socket: what arrives meanwhile waits in the kernel
            # and is read at once, instead of waking the loop for every line.
            transport = response.connection.transport if response.connection is not None else None
            pending = b""
            while True:
                chunk = await response.content.readany()
                if not chunk:
                    return
                *complete, pending = (pending + chunk).split(b"\n")
                events = [line[6:] for line in complete if line.startswith(b"data: {")]
                if events:
                    take(events)
                if pace > 0 and len(chunk) < BACKLOG:
                    await _pause(pace, hurry, transport)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


async def _pause(seconds: float, hurry: asyncio.Event | None, transport: asyncio.Transport | None) -> None:
    if hurry is not None and hurry.is_set():
        return
    held = transport is not None and transport.is_reading()
    if held and transport is not None:
        transport.pause_reading()
    try:
        if hurry is None:
            await asyncio.sleep(seconds)
        else:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await hurry.wait()
    finally:
        if held and transport is not None and not transport.is_closing():
            transport.resume_reading()
