"""The adapter on its own against the Discord stand-in: connection, intents, command registration,
rate limits, and the outbound port (posts, cards, private messages, files, role members)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import discord
import pytest

from intern.adapters.discord.client import DiscordAdapter
from intern.bot.chat import Button, Card, Conversation, MessageRef
from intern.bot.settings import Settings
from intern.standins.discord import INTENT_MEMBERS, DiscordStandIn


def settings_for(d: DiscordStandIn, **extra: str) -> Settings:
    return Settings(DISCORD_TOKEN=d.token, DISCORD_API_URL=d.api_url, **extra)  # type: ignore[arg-type]


@pytest.fixture
async def adapter(discord_api: DiscordStandIn) -> AsyncIterator[DiscordAdapter]:
    a = DiscordAdapter(settings=settings_for(discord_api), bot=None)
    await a.start()
    try:
        yield a
    finally:
        await a.close()


async def test_connects_through_the_gateway_the_api_names_with_only_the_intents_it_needs(
        discord_api: DiscordStandIn, adapter: DiscordAdapter) -> None:
    d = discord_api
    assert d.calls("/api/v10/gateway/bot", "GET")
    [identify] = d.identifies
    assert identify["token"] == d.token
    assert identify["intents"] == (1 << 0) | (1 << 9) | (1 << 15)  # guilds, guild messages, message content
    [intern] = d.commands[None]
    assert intern["name"] == "intern"
    subs = {o["name"]: o for o in intern["options"]}
    assert set(subs) == {"ask", "status", "stop", "policy", "budget", "history", "chart"}
    [task] = subs["ask"]["options"]
    assert (task["name"], task["type"], task["required"]) == ("task", 3, True)
    [words] = subs["policy"]["options"]
    assert (words["name"], words["type"], words.get("required", False)) == ("words", 3, False)
    assert adapter.bot_user_id == d.bot_user_id


async def test_commands_go_to_the_configured_guilds_only(discord_api: DiscordStandIn) -> None:
    d = discord_api
    a = DiscordAdapter(settings=settings_for(d, DISCORD_GUILD_IDS=f"{d.guild_id}, 123456789012345678"), bot=None)
    await a.start()  # the unknown guild is logged, not fatal
    try:
        assert None not in d.commands
        assert [c["name"] for c in d.commands[d.guild_id]] == ["intern"]
    finally:
        await a.close()


async def test_a_wrong_token_fails_the_start(discord_api: DiscordStandIn) -> None:
    a = DiscordAdapter(settings=Settings(DISCORD_TOKEN="not-the-token", DISCORD_API_URL=discord_api.api_url),
                       bot=None)  # type: ignore[call-arg]
    with pytest.raises(discord.LoginFailure):
        await a.start()
    assert discord_api.identifies == []


async def test_message_content_not_enabled_for_the_app_fails_the_start_clearly(discord_api: DiscordStandIn) -> None:
    discord_api.enabled_privileged = 0
    a = DiscordAdapter(settings=settings_for(discord_api), bot=None)
    with pytest.raises(discord.PrivilegedIntentsRequired):
        await a.start()


async def test_posts_split_at_2000_and_survive_a_rate_limit(discord_api: DiscordStandIn,
                                                            adapter: DiscordAdapter) -> None:
    d = discord_api
    conv = Conversation("discord", d.guild_id, d.channel_id, "")
    d.inject_rate_limit("POST /channels/{channel}/messages", times=1, retry_after=0.05)
    text = "\n".join(f"line {i} " + "x" * 60 for i in range(100))
    ref = await adapter.post(conv, text)
    posted = d.posted(d.channel_id)
    assert len(posted) == 4 and all(len(m.content) <= 2000 for m in posted)
    assert "\n".join(m.content for m in posted) == text
    assert ref == MessageRef("discord", d.channel_id, posted[0].id, None)
    assert len(d.calls(f"/channels/{d.channel_id}/messages", "POST")) == 5  # one 429, then four posts


async def test_an_oversized_card_fits_discords_embed_limits_and_loses_its_buttons_when_decided(
        discord_api: DiscordStandIn, adapter: DiscordAdapter) -> None:
    d = discord_api
    conv = Conversation("discord", d.guild_id, d.channel_id, "")
    body = "\n".join(f"row_{i:05d} = {i}" for i in range(5000))
    card = Card(title="Approval needed: " + "t" * 400, fields=[(f"Field {i}", "v" * 1500) for i in range(30)],
                body=body, body_label="Script", lines=[f"⚠️ check {i} " + "w" * 150 for i in range(40)],
                footer="f" * 3000, buttons=[Button("approve", "A1", "Approve"), Button("deny", "A1", "Deny")],
                state="pending")
    ref = await adapter.post_card(conv, card)  # the stand-in refuses anything over Discord's limits
    msg = d.message(ref.id)
    assert msg is not None
    embed = msg.embeds[0]
    size = (len(embed["title"]) + len(embed.get("description", "")) + len(embed["footer"]["text"])
            + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"]))
    assert size <= 6000 and len(embed["fields"]) <= 25
    assert "row_00000" in embed["description"] and "row_04999" in embed["description"]
    assert msg.files["full_script.txt"].decode() == body
    assert msg.custom_ids() == ["intern:approve:A1", "intern:deny:A1"]

    card.buttons, card.state, card.title = [], "approved", "Approved by <@1>: run"
    await adapter.update_card(ref, card)
    edited = d.message(ref.id)
    assert edited is not None and edited.custom_ids() == [] and edited.embeds[0]["title"] == card.title
    assert edited.files["full_script.txt"] and edited.data["attachments"]  # the attachment stays


async def test_private_messages_go_to_a_dm_and_files_to_the_thread(discord_api: DiscordStandIn,
                                                                   adapter: DiscordAdapter) -> None:
    d = discord_api
    user = d.add_user("someone")
    d.add_member(d.guild_id, user)
    conv = Conversation("discord", d.guild_id, d.channel_id, "")
    await adapter.post_private(conv, user, "*only* for you")
    [dm] = [c for c in d.channels.values() if c["type"] == 1]
    [sent] = d.posted(dm["id"])
    assert sent.content == "**only** for you" and dm["recipients"][0]["id"] == user
    await adapter.attach_file(conv, "notes.txt", "é" * 10, "The notes")
    [shared] = d.posted(d.channel_id)
    assert shared.content == "The notes" and shared.files["notes.txt"].decode() == "é" * 10


async def test_role_members_are_listed_when_the_app_may_list_members(discord_api: DiscordStandIn,
                                                                      adapter: DiscordAdapter) -> None:
    d = discord_api
    role = d.add_role(d.guild_id, "approvers")
    holders = {d.add_user(f"holder{i}") for i in range(3)}
    for u in holders:
        d.add_member(d.guild_id, u, roles=[role])
    d.add_member(d.guild_id, d.add_user("other"))
    with pytest.raises(discord.Forbidden):  # Server Members intent off: bot/ falls back to the click's roles
        await adapter.members_of(d.guild_id, f"<@&{role}>")
    d.enabled_privileged |= INTENT_MEMBERS
    assert await adapter.members_of(d.guild_id, f"<@&{role}>") == holders
    assert await adapter.members_of(d.guild_id, "<!subteam^S123>") == set()


async def test_the_stand_in_refuses_what_discord_refuses(discord_api: DiscordStandIn, adapter: DiscordAdapter) -> None:
    """The limit checks the card test relies on are real: over-long content and embeds are refused."""
    assert adapter.client is not None
    channel = adapter.client.get_partial_messageable(int(discord_api.channel_id))
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert too_long.value.code == 50035
    crowded = discord.Embed(title="t")
    for i in range(26):
        crowded.add_field(name=f"f{i}", value="v")
    with pytest.raises(discord.HTTPException):
        await channel.send(embed=crowded)
    with pytest.raises(discord.HTTPException):
        await channel.send(embed=discord.Embed(description="d" * 4097))
    assert discord_api.posted() == []
