"""Group commit: what callers hand in at the same moment is written in one transaction, and each call
still returns only once its own part is settled. The inbox (deliveries) and the transcript writer
(a turn's messages, usage and posted replies) both write this way; hundreds of callers at once would
otherwise cost a transaction each."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from sqlalchemy.exc import IntegrityError

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """`write` stores a whole batch in one transaction and returns one result per item. A unique-key
    race (IntegrityError) redoes the batch item by item through `alone`; an error `retryable` says
    left nothing written is tried again (at most `attempts` times, with a short backoff); any other
    error fails every caller of the batch. `failed` hears of the items whose batch did not commit."""

    def __init__(self, write: Callable[[list[T]], Awaitable[list[R]]], alone: Callable[[T], Awaitable[R]], *,
                 gather_rounds: int = 0, retryable: Callable[[BaseException], bool] = lambda _exc: False,
                 attempts: int = 0, failed: Callable[[list[T]], None] = lambda _items: None) -> None:
        self.write, self.alone, self.gather_rounds = write, alone, gather_rounds
        self.retryable, self.attempts, self.failed = retryable, attempts, failed
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        attempt = 0
        while self._pending:
            await self._gather()
            batch, self._pending = self._pending, []
            items = [item for item, _ in batch]
            try:
                results = await self.write(items)
            except IntegrityError:
                # Another writer took a key meanwhile: each on its own, with its own retries.
                self.failed(items)
                for item, future in batch:
                    await settle(future, self.alone(item))
                continue
            except Exception as exc:
                if self.retryable(exc) and attempt < self.attempts:
                    self._pending[:0] = batch  # certainly not written: write it again
                    attempt += 1
                    await asyncio.sleep(0.05 * 2 ** attempt)
                    continue
                self.failed(items)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                attempt = 0
                continue
            attempt = 0
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _gather(self) -> None:
        """Let callers that are already on their way join the batch: a burst reaches this point over a
        few turns of the event loop, and one transaction for all of it costs less than two."""
        for _ in range(self.gather_rounds):
            waiting = len(self._pending)
            await asyncio.sleep(0)
            if len(self._pending) == waiting:
                return


async def settle(future: asyncio.Future[R], work: Awaitable[R]) -> None:
    """Hand `work`'s result, or its error, to whoever waits on `future`."""
    try:
        result = await work
    except Exception as exc:
        if not future.done():
            future.set_exception(exc)
        return
    if not future.done():
        future.set_result(result)
