"""The documentation index keeps itself fresh while `intern serve` runs.

Every few minutes a process checks whether the index on disk is due (only the shipped snapshot, or
older than INTERN_DOCS_MAX_AGE_HOURS; a failed attempt waits an hour). One process at a time across
every process sharing the database (a lease) then runs `intern docs index` as a child process at a
lower CPU priority: the crawl and the indexing never share this process's event loop or interpreter
lock with acks and turns. Searches keep using the index they have until the new generation is
complete on disk; then every process opens it for its next turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from intern.bot.leases import Leases
from intern.bot.store import log_failure

log = logging.getLogger(__name__)

LEASE = "docs-refresh"
LEASE_SECONDS = 120.0
FIRST_CHECK_SECONDS = 60.0  # the first minutes of a process belong to the deliveries waiting for it
CHECK_EVERY_SECONDS = 600.0
CRAWL_TIMEOUT_SECONDS = 3 * 3600.0


class DocsRefresher:
    def __init__(self, rt: Any, *, first_check: float = FIRST_CHECK_SECONDS, every: float = CHECK_EVERY_SECONDS,
                 command: Sequence[str] | None = None) -> None:
        self.rt = rt
        self.settings = rt.settings
        self.first_check, self.every = first_check, every
        self.command = list(command or [sys.executable, "-m", "intern.bot.cli", "docs", "index"])
        self.leases = Leases(rt.db, rt.owner)
        self._retired: Any = None  # the index replaced last time, closed at the next swap

    @property
    def docs_dir(self) -> Path:
        return Path(self.settings.docs_path)

    async def run(self) -> None:
        await asyncio.sleep(self.first_check)
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_failure(log, exc, "documentation index refresh", "trying again later")
            await asyncio.sleep(self.every)

    async def tick(self) -> str:
        """One check. Returns what happened: not due, busy (another process builds it), built, failed."""
        from intern.agent.docs.refresh import needs_refresh, record_attempt

        await self.reload_if_newer()
        if not await asyncio.to_thread(needs_refresh, self.docs_dir, max_age_hours=self.settings.docs_max_age_hours):
            return "not due"
        if not await self.leases.acquire(LEASE, LEASE_SECONDS):
            return "busy"
        try:
            await asyncio.to_thread(record_attempt, self.docs_dir)
            ok = await self.build()
        finally:
            with contextlib.suppress(Exception):
                await self.leases.release(LEASE)
        await self.reload_if_newer()
        return "built" if ok else "failed"

    async def build(self) -> bool:
        env = {**os.environ, "INTERN_DOCS_DIR": str(self.docs_dir), "HF_ENDPOINT": self.settings.hf_endpoint}
        log.info("documentation index due: building a new one in the background")
        proc = await asyncio.create_subprocess_exec(
            *self.command, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, preexec_fn=_lower_priority)
        keeper = asyncio.create_task(self._keep_lease(proc))
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=CRAWL_TIMEOUT_SECONDS)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            log.warning("documentation index refresh took over %.0f h; stopped", CRAWL_TIMEOUT_SECONDS / 3600)
            return False
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        finally:
            keeper.cancel()
        if proc.returncode == 0:
            done = out.decode(errors="replace").strip().splitlines()
            log.info("documentation index refreshed: %s", self.rt.redactor.redact(done[-1] if done else "done"))
            return True
        said = (err or out).decode(errors="replace").strip().splitlines()
        log.warning("documentation index refresh failed (exit %s): %s", proc.returncode,
                    self.rt.redactor.redact(said[-1] if said else "no output"))
        return False

    async def _keep_lease(self, proc: Any) -> None:
        while proc.returncode is None:
            await asyncio.sleep(LEASE_SECONDS / 3)
            try:
                if not await self.leases.renew(LEASE, LEASE_SECONDS):
                    log.warning("documentation index refresh: lease lost; another process may start one too")
            except Exception as exc:
                log_failure(log, exc, "renewing the documentation refresh lease", "trying again")

    async def reload_if_newer(self) -> bool:
        """Open the generation on disk when it is not the one this process searches (another process,
        or the child, wrote a new one). Turns already under way keep the index they started with."""
        from intern.agent.docs.index import open_index, read_meta

        meta = await asyncio.to_thread(read_meta, self.docs_dir)
        current = self.rt.docs_index
        if meta is None or (current is not None and current.meta.get("generation") == meta.get("generation")
                            and Path(current.docs_dir) == self.docs_dir):
            return False
        fresh = await asyncio.to_thread(open_index, self.docs_dir, max_age_hours=self.settings.docs_max_age_hours)
        if self._retired is not None:
            with contextlib.suppress(Exception):
                self._retired.close()
        self._retired, self.rt.docs_index = current, fresh
        log.info("documentation index: now searching %s", fresh.describe())
        return True


def _lower_priority() -> None:
    with contextlib.suppress(OSError):
        os.nice(10)
