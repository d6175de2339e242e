"""The stages of the followed jobs: one listing per namespace and poll, not one inspect per job.

The Hub's job list, filtered to the stages that have not ended (`SCHEDULING`, `RUNNING`), gives
the info of every followed job that is still live. A followed job the listing leaves out has ended
(or is in a stage this list does not name): its follower inspects it on its own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from intern.bot.runtime import Runtime

log = logging.getLogger(__name__)

LIVE_STAGES = ("SCHEDULING", "RUNNING")


class StageBoard:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._waiting: dict[str, dict[str, asyncio.Future[Any]]] = {}  # namespace → Hub job id → next info

    async def next(self, namespace: str, hf_job_id: str) -> Any:
        """The job's info from the next listing of its namespace; None when the listing leaves it out."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(namespace, {})[hf_job_id] = future
        try:
            return await future
        finally:
            waiting = self._waiting.get(namespace)
            if waiting is not None and waiting.get(hf_job_id) is future:
                del waiting[hf_job_id]

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.rt.settings.job_poll_seconds)
            for namespace in list(self._waiting):
                await self.list_namespace(namespace)

    async def list_namespace(self, namespace: str) -> None:
        waiting = self._waiting.pop(namespace, {})  # who asks from now on waits for the next listing
        if not waiting:
            return
        try:
            listed = await self.rt.hub.read(self._live_jobs, namespace)
        except Exception as exc:
            log.warning("listing the jobs of %s failed: %s", namespace, exc)
            again = self._waiting.setdefault(namespace, {})
            for hf_job_id, future in waiting.items():
                if not future.done():
                    again.setdefault(hf_job_id, future)
            return
        found = {info.id: info for info in listed}
        for hf_job_id, future in waiting.items():
            if not future.done():
                future.set_result(found.get(hf_job_id))

    def _live_jobs(self, namespace: str) -> list[Any]:
        return list(self.rt.hub.api.list_jobs(namespace=namespace, status=list(LIVE_STAGES)))
