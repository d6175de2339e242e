"""DISCORD_GUILD_IDS: requests from any other server are refused privately (interactions) or ignored
(messages), even where `/intern` is still registered from before the setting."""

from __future__ import annotations

from sqlalchemy import func, select

from intern.bot.models import Approval, Session
from intern.standins.discord import DiscordStandIn
from tests.discord.harness import DiscordHarness, ask_until_card, custom_id
from tests.e2e.harness import wait_until


async def count(h: DiscordHarness, model: type, *where: object) -> int:
    async with h.rt.db.session() as db:
        return int((await db.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


async def test_other_servers_are_not_served(harness: DiscordHarness, discord_api: DiscordStandIn) -> None:
    d, p = discord_api, harness.people
    other = d.add_guild("Elsewhere", owner=p.bystander)
    elsewhere = d.add_text_channel(other, "general")
    _, card = await ask_until_card(harness)  # /intern was registered globally, so it shows everywhere
    harness.extra_env["DISCORD_GUILD_IDS"] = d.guild_id
    await harness.restart()
    ask = await d.slash(p.bystander, "ask", channel=elsewhere, guild=other, task="train on the operator's bill")
    [answer] = await d.answered(ask)
    assert answer.ephemeral_to == p.bystander and "does not serve this server" in answer.content
    status = await d.slash(p.bystander, "status", channel=elsewhere, guild=other)
    [answer] = await d.answered(status)
    assert "does not serve this server" in answer.content
    assert await count(harness, Session) == 1
    assert not [t for t in d.threads() if t.get("guild_id") == other]
    # A copy of a real card's button, pressed in the other server, changes nothing.
    approve = custom_id(card, "approve")
    planted = d.add_bot_message(elsewhere, "card", card.data["components"])
    [answer] = await d.answered(await d.click(planted, approve, p.bystander))
    assert "does not serve this server" in answer.content
    assert await count(harness, Approval, Approval.status == "pending") == 1
    # The served server still works.
    thread, _ = await ask_until_card(harness, "another task")
    await wait_until(lambda: count(harness, Session, Session.thread == thread))
