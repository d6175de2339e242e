"""The real bot (discord.py over its gateway and REST, litellm, huggingface_hub, SQLAlchemy) against
loopback stand-ins for Discord, the LLM and the Hub."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from intern.bot.settings import Settings
from intern.bot.wiring import Process
from intern.standins.discord import DiscordStandIn, Message
from intern.standins.hub import HubStandIn
from intern.standins.llm import LLMStandIn
from tests.e2e.harness import LLM_KEY, free_port, tune, wait_until


@dataclass
class People:
    requester: str
    approver: str
    bystander: str
    role_approver: str
    approver_role: str


@dataclass
class DiscordHarness:
    database_url: str
    discord: DiscordStandIn
    hub: HubStandIn
    llm: LLMStandIn
    people: People
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: Process | None = None

    def env(self) -> dict[str, str]:
        env = {
            "INTERN_DATABASE_URL": self.database_url,
            "INTERN_MODEL": "openai/scripted-model",
            "INTERN_LLM_API_BASE": f"{self.llm.url}/v1",
            "INTERN_LLM_API_KEY": LLM_KEY,
            "DISCORD_TOKEN": self.discord.token,
            "DISCORD_API_URL": self.discord.api_url,
            "HF_TOKEN": self.hub.token,
            "HF_ENDPOINT": self.hub.url,
            "INTERN_APPROVERS": f"{self.people.approver},{self.people.requester}",
            "INTERN_HTTP_HOST": "127.0.0.1",
            "INTERN_HTTP_PORT": str(self.port),
            "INTERN_JOB_POLL_SECONDS": "0.2",
            "INTERN_DATASETS_SERVER_URL": f"{self.hub.url}/datasets-server",
        }
        env.update(self.extra_env)
        return env

    async def start(self) -> Process:
        self.proc = Process(Settings(**self.env()))  # type: ignore[arg-type]
        await self.proc.start(migrate=True)
        tune(self.proc.rt)
        return self.proc

    async def stop(self) -> None:
        if self.proc is not None:
            await self.proc.stop()
            self.proc = None

    async def restart(self) -> Process:
        await self.stop()
        self.port = free_port()
        return await self.start()

    @property
    def rt(self) -> Any:
        assert self.proc is not None
        return self.proc.rt


def people_in(discord: DiscordStandIn) -> People:
    gid = discord.guild_id
    role = discord.add_role(gid, "ml-approvers")
    requester = discord.add_user("requester")
    approver = discord.add_user("approver")
    bystander = discord.add_user("bystander")
    role_approver = discord.add_user("role-approver")
    for user in (requester, approver, bystander):
        discord.add_member(gid, user)
    discord.add_member(gid, role_approver, roles=[role])
    return People(requester, approver, bystander, role_approver, role)


def cards(discord: DiscordStandIn, channel: str, action: str = "approve") -> list[Message]:
    """Messages in `channel` that carry a button for `action` (approval cards, or status cards for stop)."""
    return [m for m in discord.posted(channel) if any(c.startswith(f"intern:{action}:") for c in m.custom_ids())]


def custom_id(card: Message, action: str) -> str:
    return next(c for c in card.custom_ids() if c.startswith(f"intern:{action}:"))


async def ask_until_card(h: DiscordHarness, task: str = "fine-tune a small model on my dataset") -> tuple[str, Message]:
    """`/intern ask` in the channel; returns the new thread and the approval card posted in it."""
    d = h.discord
    before = {t["id"] for t in d.threads()}
    ask = await d.slash(h.people.requester, "ask", task=task)
    await d.answered(ask)
    thread = next(t["id"] for t in d.threads() if t["id"] not in before)
    await wait_until(lambda: cards(d, thread), timeout=20)
    return thread, cards(d, thread)[0]
