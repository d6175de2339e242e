"""End-to-end harness: the real bot (slack_bolt over HTTP, litellm, huggingface_hub, SQLAlchemy) against
loopback stand-ins for Slack, the LLM and the Hub. The bot runs in this process, or as a separate
`intern serve` process for restart tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

from intern.bot.settings import Settings
from intern.bot.wiring import Process
from intern.standins.hub import HubStandIn
from intern.standins.llm import LLMStandIn
from intern.standins.slack import SlackEventSender, SlackStandIn
from tests.support.ports import free_port

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
APPROVER = "U0APPROVER"
REQUESTER = "U0REQUESTER"
OTHER = "U0BYSTANDER"
LLM_KEY = "sk-standin-0123456789abcdefghij"


@dataclass
class Harness:
    database_url: str
    slack: SlackStandIn
    hub: HubStandIn
    llm: LLMStandIn
    approvers: str = f"{APPROVER},{REQUESTER}"
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: Process | None = None
    child: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def env(self) -> dict[str, str]:
        env = {
            "INTERN_DATABASE_URL": self.database_url,
            "INTERN_MODEL": "openai/scripted-model",
            "INTERN_LLM_API_BASE": f"{self.llm.url}/v1",
            "INTERN_LLM_API_KEY": LLM_KEY,
            "SLACK_BOT_TOKEN": self.slack.token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": f"{self.slack.url}/api/",
            "HF_TOKEN": self.hub.token,
            "HF_ENDPOINT": self.hub.url,
            "INTERN_APPROVERS": self.approvers,
            "INTERN_HTTP_HOST": "127.0.0.1",
            "INTERN_HTTP_PORT": str(self.port),
            "INTERN_JOB_POLL_SECONDS": "0.2",
            "INTERN_DATASETS_SERVER_URL": f"{self.hub.url}/datasets-server",
        }
        env.update(self.extra_env)
        return env

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sender(self) -> SlackEventSender:
        return SlackEventSender(self.url, SIGNING_SECRET, team_id=self.slack.team_id,
                                bot_user_id=self.slack.bot_user_id)

    async def start(self) -> Process:
        settings = Settings(**self.env())  # type: ignore[arg-type]
        self.proc = Process(settings)
        await self.proc.start(migrate=True)
        tune(self.proc.rt)
        return self.proc

    async def stop(self) -> None:
        if self.proc is not None:
            await self.proc.stop()
            self.proc = None

    async def start_child(self, tmp: Path) -> None:
        """`intern serve` as its own process on the same database."""
        env = {**os.environ, **self.env()}
        self.log_path = tmp / f"serve-{self.port}.log"
        log = self.log_path.open("wb")
        self.child = subprocess.Popen(  # noqa: ASYNC220 - a long-lived server, never awaited for output
            [sys.executable, "-m", "intern.bot.cli", "serve", "--migrate"], env=env,
                                      stdout=log, stderr=subprocess.STDOUT)
        await self.wait_healthy()

    async def wait_healthy(self, timeout: float = 90.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(f"{self.url}/healthz") as r:
                        if r.status == 200:
                            return
                if self.child is not None and self.child.poll() is not None:
                    raise RuntimeError("intern serve exited:\n" + self.child_log())
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError("intern serve did not become healthy:\n" + self.child_log())
                await asyncio.sleep(0.1)

    def child_log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    async def kill_child(self, hard: bool = False) -> None:
        if self.child is None:
            return
        if hard:
            self.child.kill()
        else:
            self.child.terminate()
        await asyncio.to_thread(self.child.wait, 30)
        self.child = None


def tune(rt: Any) -> None:
    """Short intervals so tests do not wait on production timings."""
    rt.status_throttle_seconds = 0.0
    rt.sweep_seconds = 0.2
    rt.heartbeat_seconds = 0.2
    rt.lease_seconds = 5.0


def job_rule(*, flavor: str = "a10g-large", timeout: str = "2h", final: str = "All done: the model is on the Hub.",
             script: str | None = None) -> Any:
    """A scripted model: launch one job for a task, then report when told the job finished."""
    from intern.standins.llm import text_reply, tool_calls_reply

    body = script or (
        "from trl import SFTTrainer, SFTConfig\n"
        "from datasets import load_dataset\n"
        "ds = load_dataset('trl-lib/Capybara', split='train')\n"
        "cfg = SFTConfig(output_dir='out', push_to_hub=True, hub_model_id='team/qwen-sft')\n"
        "SFTTrainer(model='Qwen/Qwen2.5-0.5B', train_dataset=ds, args=cfg).train()\n"
    )

    def rule(request: dict[str, Any]) -> Any:
        messages = request.get("messages") or []
        if request.get("tools") is None:
            return text_reply("Summary of the session so far.")
        last = messages[-1]
        content = last.get("content") if isinstance(last.get("content"), str) else json.dumps(last.get("content"))
        if last.get("role") == "user" and "[job update]" in (content or ""):
            return text_reply(final)
        if last.get("role") == "tool":
            if "submitted" in (content or ""):
                return text_reply("The training job is running; I will report when it ends.")
            return text_reply(f"The job was not launched: {content[:200]}")
        return tool_calls_reply([("hf_jobs", {"operation": "run", "script": body, "dependencies": ["trl"],
                                              "hardware_flavor": flavor, "timeout": timeout})],
                                text="I'll launch a fine-tuning job.")

    return rule


async def wait_until(predicate: Any, timeout: float = 15.0, interval: float = 0.05) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)


async def count(h: Harness, model: type, *where: object) -> int:
    """Rows of `model` matching `where`, read through the serving process's database."""
    assert h.proc is not None
    async with h.proc.rt.db.session() as db:
        return int((await db.execute(select(func.count()).select_from(model).where(*where))).scalar_one())
