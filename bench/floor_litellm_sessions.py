"""The dependency floor for bench/sessions.py and bench/scaleout.py: litellm alone, in a process of
its own, making the very requests the bot made (recorded by the LLM stand-in), chain by chain — each
session's calls one after the other, all sessions at once — against the same scripted model.

    floor_litellm_sessions.py <api_base> <api_key> <chains.json>   → prints {"wall_s": …, "calls": …}
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


async def main(api_base: str, api_key: str, chains: list[list[dict]]) -> dict[str, float]:
    import litellm

    litellm.suppress_debug_info = True

    async def call(body: dict) -> None:
        kwargs = {k: v for k, v in body.items() if k in ("messages", "tools")}
        await litellm.acompletion(model="openai/" + body["model"], api_base=api_base, api_key=api_key,
                                  num_retries=0, max_retries=0, timeout=600, **kwargs)

    await call(chains[0][0])  # warm-up: provider client set up once, as in the bot's warm-up
    gc.collect()
    gc.freeze()  # as the bot does after its warm-up
    started = time.perf_counter()

    async def chain(bodies: list[dict]) -> None:
        for body in bodies:
            await call(body)

    await asyncio.gather(*(chain(c) for c in chains))
    return {"wall_s": round(time.perf_counter() - started, 3), "calls": sum(len(c) for c in chains)}


if __name__ == "__main__":
    data = json.loads(open(sys.argv[3]).read())
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], data))))
