"""The Discord adapter: a discord.py gateway client with the `/intern` commands and the card buttons,
translating both ways.

Every interaction is deferred first (Discord waits 3 s for that), privately, and answered with
follow-ups; anything that should be seen by the channel is posted there as a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from typing import Any

import discord
import yarl
from discord import app_commands

from intern.adapters.discord import inbound, mentions, outbound
from intern.adapters.discord.components import CardButton
from intern.adapters.discord.inbound import PLATFORM, Where
from intern.bot.chat import (
    Card,
    Conversation,
    FeedbackClick,
    JobCancelClick,
    MessageRef,
    StopClick,
    UserMessage,
    spell_card,
)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 30.0
MEMBERS_PAGE = 1000
FILE_LIMIT = 8 * 1024 * 1024
TYPING_EVERY = 8.0  # Discord shows the indicator for ten seconds after each trigger
TYPING_MAX_BEATS = 225  # half an hour: a turn waiting longer than that is not typing
DM_REFUSAL = ("Intern works in server channels, not in direct messages: run `/intern ask` in a channel of "
              "your server. Nothing was changed.")
OTHER_GUILD = "Intern does not serve this server (it is not in DISCORD_GUILD_IDS). Nothing was changed."
UNKNOWN_BUTTON = "This button is not one of Intern's current buttons, so nothing was changed."
FAILED = "Sorry, that failed on my side; nothing was changed. Try again in a moment."
UNREADABLE = "This request could not be read (malformed), so nothing was changed."
ACCEPTED_TEXT = {
    "duplicate": "Already received.",
    "stop": "Stopping: the turn, its jobs and its pending approvals are being cancelled.",
    "new_session": "Started a new session in this thread, seeded with the previous one's summary.",
}


def guild_ids(raw: str | None) -> list[int]:
    return [int(p) for p in (raw or "").replace(" ", "").split(",") if p.isdigit()]


def role_ids(user: discord.abc.User) -> tuple[str, ...]:
    """The role ids the interaction or message carried for this member.

    `Member.roles` lists only roles found in the guild cache, which is empty while a guild is
    unavailable; the ids Discord sent are the ones that count.
    """
    if not isinstance(user, discord.Member):
        return ()
    return tuple(str(r) for r in user._roles)


def place_of(channel: Any, guild_id: int | None) -> Where | None:
    if isinstance(channel, discord.Thread):
        return inbound.where(guild_id, channel.id, thread_parent=channel.parent_id, is_thread=True)
    return inbound.where(guild_id, getattr(channel, "id", None))


def has_component(message: discord.Message | None, custom_id: str) -> bool:
    if message is None:
        return False
    rows = [c for c in message.components if isinstance(c, discord.ActionRow)]
    return any(getattr(item, "custom_id", None) == custom_id for row in rows for item in row.children)


class InternTree(app_commands.CommandTree["InternClient"]):
    async def on_error(self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError) -> None:
        """An unknown or outdated command still gets an answer instead of "interaction failed"."""
        log.warning("discord command failed: %s", error)
        with contextlib.suppress(discord.HTTPException):
            if not interaction.response.is_done():
                await interaction.response.send_message(FAILED, ephemeral=True)
            else:
                await interaction.followup.send(FAILED, ephemeral=True)


class InternCommands(app_commands.Group):
    """`/intern ask|status|stop|policy|budget|history|chart`."""

    def __init__(self, adapter: DiscordAdapter) -> None:
        super().__init__(name="intern", description="Intern, the ML-engineering agent")
        self.adapter = adapter

    @app_commands.command(description="Start a session in a new thread with this task")
    @app_commands.describe(task="What Intern should do")
    async def ask(self, interaction: discord.Interaction[Any], task: app_commands.Range[str, 1, 6000]) -> None:
        await self.adapter.ask(interaction, task)

    @app_commands.command(description="Sessions, running jobs, pending approvals and spend for this channel")
    async def status(self, interaction: discord.Interaction[Any]) -> None:
        await self.adapter.command(interaction, "status", "")

    @app_commands.command(description="Stop this thread's session: its turn, jobs and pending approvals")
    async def stop(self, interaction: discord.Interaction[Any]) -> None:
        await self.adapter.stop(interaction)

    @app_commands.command(description="Show or change this channel's policy")
    @app_commands.describe(words="e.g. `approvers add @someone`, `budget 500`; empty to show the policy")
    async def policy(self, interaction: discord.Interaction[Any], words: str | None = None) -> None:
        await self.adapter.command(interaction, "policy", words or "")

    @app_commands.command(description="Spend this month by session, user and channel")
    async def budget(self, interaction: discord.Interaction[Any]) -> None:
        await self.adapter.command(interaction, "budget", "")

    @app_commands.command(description="This server's earlier runs, newest first")
    @app_commands.describe(words="Words to find (model, dataset, method, outcome…); empty for the latest runs")
    async def history(self, interaction: discord.Interaction[Any], words: str | None = None) -> None:
        await self.adapter.command(interaction, "history", words or "")

    @app_commands.command(description="Post the chart of this thread's latest job so far")
    async def chart(self, interaction: discord.Interaction[Any]) -> None:
        await self.adapter.command(interaction, "chart", "")


class InternClient(discord.AutoShardedClient):
    """AutoShardedClient connects to the gateway address `GET /gateway/bot` names (a plain Client
    dials Discord's own), so a proxy or stand-in set through DISCORD_API_URL stays in the path; it
    also opens as many shards as Discord recommends."""

    def __init__(self, adapter: DiscordAdapter) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        intents.message_content = True
        super().__init__(intents=intents, max_messages=None, chunk_guilds_at_startup=False,
                         allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=True,
                                                                  replied_user=False))
        self.adapter = adapter
        self.tree = InternTree(self)
        self.tree.add_command(InternCommands(adapter))
        self.connected = asyncio.Event()
        self._answers: set[asyncio.Task[None]] = set()
        guard_parsers(self)

    def refuse_unreadable(self, data: Any) -> None:
        """An interaction discord.py could not read still gets a private answer, when its id and token
        are usable (otherwise Discord shows "interaction failed")."""
        if not isinstance(data, dict) or not isinstance(data.get("token"), str) \
                or not str(data.get("id", "")).isdigit():
            return
        task = asyncio.get_running_loop().create_task(self._refuse(str(data["id"]), data["token"]))
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    async def _refuse(self, interaction_id: str, token: str) -> None:
        route = discord.http.Route("POST", "/interactions/{interaction_id}/{token}/callback",
                                   interaction_id=interaction_id, token=token)
        with contextlib.suppress(discord.HTTPException, OSError):
            await self.http.request(route, json={"type": 4, "data": {"content": UNREADABLE, "flags": 1 << 6}})

    async def setup_hook(self) -> None:
        self.add_dynamic_items(CardButton)
        await self.adapter.sync_commands(self.tree)

    async def on_connect(self) -> None:
        self.connected.set()

    async def on_message(self, message: discord.Message) -> None:
        await self.adapter.on_discord_message(message)

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        await self.adapter.on_any_interaction(interaction)

    async def on_card_button(self, interaction: discord.Interaction[Any], action: str, value: str) -> None:
        await self.adapter.on_card_button(interaction, action, value)


def guard_parsers(client: InternClient) -> None:
    """A gateway event discord.py cannot parse (a payload whose fields have the wrong types) raises out
    of the gateway's reader, which ends the client's connection for good. Each parser is wrapped: such
    an event is logged and dropped (an unreadable interaction is refused), and the client goes on."""
    parsers = client._connection.parsers

    def guarded(event: str, parse: Any) -> Any:
        def parse_or_drop(data: Any) -> None:
            try:
                parse(data)
            except Exception as exc:
                log.warning("dropped a malformed %s from the Discord gateway (%s: %s)", event,
                            type(exc).__name__, str(exc)[:200])
                if event == "INTERACTION_CREATE":
                    client.refuse_unreadable(data)

        return parse_or_drop

    for event, parse in list(parsers.items()):
        parsers[event] = guarded(event, parse)


class DiscordAdapter:
    platform = PLATFORM
    # Discord limits edits per channel (a thread is one), not per server.
    card_edits_per_second: float | None = None

    def __init__(self, *, settings: Any, bot: Any) -> None:
        self.settings = settings
        self.bot = bot
        self.guild_ids = guild_ids(settings.discord_guild_ids)
        self.client: InternClient | None = None
        self._runner: asyncio.Task[None] | None = None
        self._typing: dict[str, asyncio.Task[None]] = {}  # channel or thread id -> its indicator

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        # One process talks to one Discord API; discord.py builds every URL, webhooks included, from this.
        discord.http.Route.BASE = self.settings.discord_api_url
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # no voice here
        client = self.client = InternClient(self)
        try:
            await client.login(self.settings.discord_token.get_secret_value())
            _, gateway, _ = await client.http.get_bot_gateway()
        except BaseException:
            await client.close()
            raise
        # discord.py falls back to this class-wide address when it must identify afresh after an
        # invalidated session; it has to be the discovered one too.
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
        self._runner = asyncio.create_task(client.connect(reconnect=True), name="discord-gateway")
        connected = asyncio.create_task(client.connected.wait())
        done, _ = await asyncio.wait({connected, self._runner}, timeout=connect_timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        connected.cancel()
        if self._runner in done:
            await self.close()
            self._runner.result()  # raises why the gateway would not take us (bad token, disallowed intents)
            raise RuntimeError("the Discord gateway connection ended at once")
        if not done:
            log.warning("Discord gateway not connected after %.0fs; still trying", connect_timeout)

    async def sync_commands(self, tree: app_commands.CommandTree[Any]) -> None:
        if not self.guild_ids:
            await tree.sync()
            return
        for gid in self.guild_ids:
            guild = discord.Object(id=gid)
            tree.copy_global_to(guild=guild)
            try:
                await tree.sync(guild=guild)
            except discord.HTTPException as exc:
                log.error("could not register /intern in guild %s (is the bot in it, with the "
                          "applications.commands scope?): %s", gid, exc)

    async def close(self) -> None:
        for target in list(self._typing):
            self._stop_typing(target)
        if self.client is not None:
            await self.client.close()
        if self._runner is not None and not self._runner.done():
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner

    @property
    def bot_user_id(self) -> str | None:
        user = self.client.user if self.client is not None else None
        return str(user.id) if user is not None else None

    # --- inbound: interactions ---------------------------------------------------------------

    async def _defer(self, interaction: discord.Interaction[Any]) -> bool:
        """Acknowledge at once, privately; False when Discord no longer takes an answer (a replay)."""
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
        except discord.HTTPException as exc:
            log.warning("could not acknowledge interaction %s: %s", interaction.id, exc)
            return False
        return True

    def serves(self, guild_id: int | None) -> bool:
        """DISCORD_GUILD_IDS, when set, are the only servers whose requests are taken."""
        return guild_id is not None and (not self.guild_ids or guild_id in self.guild_ids)

    async def _foreign(self, interaction: discord.Interaction[Any]) -> bool:
        """True (and the person told privately) when the interaction comes from a server not served."""
        if interaction.guild_id is None or self.serves(interaction.guild_id):
            return False
        await self._answer(interaction, OTHER_GUILD)
        return True

    async def _answer(self, interaction: discord.Interaction[Any], text: str) -> None:
        try:
            for piece in outbound.chunks(outbound.markdown(mentions.spell(text))):
                await interaction.followup.send(piece, ephemeral=True)
        except discord.HTTPException:
            log.exception("could not answer interaction %s", interaction.id)

    async def _guarded(self, interaction: discord.Interaction[Any], work: Any) -> None:
        try:
            await work
        except Exception:
            log.exception("discord interaction %s failed", interaction.id)
            await self._answer(interaction, FAILED)

    async def ask(self, interaction: discord.Interaction[Any], task: str) -> None:
        if await self._defer(interaction):
            await self._guarded(interaction, self._ask(interaction, task))

    async def _ask(self, interaction: discord.Interaction[Any], task: str) -> None:
        if await self._foreign(interaction):
            return
        here = place_of(interaction.channel, interaction.guild_id)
        if here is None:
            await self._answer(interaction, DM_REFUSAL)
            return
        if not here.thread:
            opened = await self._open_thread(interaction, here, task)
            if opened is None:
                return
            here = opened
        user = str(interaction.user.id)
        # The mention also adds the requester to the new thread, so they follow it.
        await self.post(here.conversation, f"**Task from <@{user}>:**\n{task}")
        msg = inbound.ask_message(here, user=user, task=task, interaction_id=str(interaction.id),
                                  roles=role_ids(interaction.user))
        await self._answer(interaction, await self._accepted_text(msg, here))

    async def _open_thread(self, interaction: discord.Interaction[Any], here: Where, task: str) -> Where | None:
        channel = interaction.channel
        if not isinstance(channel, discord.TextChannel):
            await self._answer(interaction, "I can open a session only in a text channel (or one of its threads). "
                                            "Nothing was started.")
            return None
        # Without an explicit type Discord opens a private thread.
        kind = discord.ChannelType.news_thread if channel.is_news() else discord.ChannelType.public_thread
        try:
            thread = await channel.create_thread(name=inbound.thread_name(task), type=kind,
                                                 auto_archive_duration=10080, reason="Intern session")
        except discord.Forbidden:
            await self._answer(interaction, "I can't open a thread in this channel: I need the *Create Public "
                                            "Threads* and *Send Messages in Threads* permissions here. Nothing "
                                            "was started.")
            return None
        except discord.HTTPException as exc:
            await self._answer(interaction, f"Discord would not open a thread here ({exc.text or exc.status}). "
                                            "Nothing was started.")
            return None
        return Where(here.guild, here.channel, str(thread.id))

    async def _accepted_text(self, msg: UserMessage, here: Where) -> str:
        accepted = await self.bot.on_message(msg)
        if accepted.outcome == "command" and accepted.command is not None:
            return (await self.bot.on_command(accepted.command)).text
        if accepted.outcome == "refused":
            return accepted.message or "Refused; nothing was changed."
        if accepted.outcome == "queued":
            return f"On it: the session lives in <#{here.thread}>; reply there to add to it."
        return ACCEPTED_TEXT.get(accepted.outcome, "Nothing to do here.")

    async def command(self, interaction: discord.Interaction[Any], name: str, args: str) -> None:
        if await self._defer(interaction):
            await self._guarded(interaction, self._command(interaction, name, args))

    async def _command(self, interaction: discord.Interaction[Any], name: str, args: str) -> None:
        if await self._foreign(interaction):
            return
        here = place_of(interaction.channel, interaction.guild_id)
        if here is None:
            await self._answer(interaction, DM_REFUSAL)
            return
        cmd = inbound.command(here, user=str(interaction.user.id), name=name, args=args,
                              roles=role_ids(interaction.user))
        reply = await self.bot.on_command(cmd)
        await self._answer(interaction, reply.text)
        if reply.ok and name == "policy" and cmd.args:
            # A change to what the channel allows is announced where it applies; the change is made
            # either way, so a failed announcement must not read as a failed command.
            try:
                await self.post(here.conversation, outbound.markdown(mentions.spell(reply.text)))
            except discord.HTTPException:
                log.exception("could not announce a policy change")

    async def stop(self, interaction: discord.Interaction[Any]) -> None:
        if await self._defer(interaction):
            await self._guarded(interaction, self._stop(interaction))

    async def _stop(self, interaction: discord.Interaction[Any]) -> None:
        if await self._foreign(interaction):
            return
        here = place_of(interaction.channel, interaction.guild_id)
        if here is None:
            await self._answer(interaction, DM_REFUSAL)
            return
        msg = inbound.stop_message(here, user=str(interaction.user.id), interaction_id=str(interaction.id),
                                   roles=role_ids(interaction.user))
        accepted = await self.bot.on_message(msg)
        if accepted.outcome == "ignored":
            await self._answer(interaction, "There is no running session here: use `/intern stop` inside the "
                                            "session's thread. Nothing was changed.")
        elif accepted.outcome == "refused":
            await self._answer(interaction, accepted.message or "Refused; nothing was changed.")
        else:
            await self._answer(interaction, ACCEPTED_TEXT.get(accepted.outcome, "Stop requested."))

    async def on_card_button(self, interaction: discord.Interaction[Any], action: str, value: str) -> None:
        if str(interaction.user.id) == self.bot_user_id:
            return  # the bot's own account never decides anything
        if await self._defer(interaction):
            await self._guarded(interaction, self._press(interaction, action, value))

    async def _press(self, interaction: discord.Interaction[Any], action: str, value: str) -> None:
        if await self._foreign(interaction):
            return
        click = inbound.click(f"intern:{action}:{value}", user=str(interaction.user.id),
                              guild_id=interaction.guild_id, interaction_id=str(interaction.id),
                              roles=role_ids(interaction.user), channel_id=interaction.channel_id,
                              message_id=interaction.message.id if interaction.message else None)
        if click is None:
            await self._answer(interaction, UNKNOWN_BUTTON)
            return
        if isinstance(click, FeedbackClick):
            reply = await self.bot.on_feedback(click)
        elif isinstance(click, JobCancelClick):
            reply = await self.bot.on_cancel_job(click)
        else:
            reply = await (self.bot.on_stop(click) if isinstance(click, StopClick) else self.bot.on_click(click))
        await self._answer(interaction, reply.text)

    async def on_any_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """Component presses the dynamic items do not claim still get a clear private answer."""
        if interaction.type != discord.InteractionType.component:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        custom_id = str(data.get("custom_id", ""))
        ours = inbound.CUSTOM_ID.fullmatch(custom_id)
        if ours is None:
            if await self._defer(interaction):
                await self._answer(interaction, UNKNOWN_BUTTON)
        elif not has_component(interaction.message, custom_id):
            # Pressed on a stale view of a card that has since been edited: discord.py dispatches dynamic
            # items only for components still on the message, but the press deserves its answer.
            await self.on_card_button(interaction, ours["action"], ours["value"])

    # --- inbound: messages -------------------------------------------------------------------

    async def on_discord_message(self, message: discord.Message) -> None:
        if message.guild is None or message.author.bot or message.webhook_id is not None \
                or not self.serves(message.guild.id):
            return
        try:
            here = await self._place_of_message(message)
            if here is None or not here.thread:
                return
            msg = inbound.thread_message(here, user=str(message.author.id), message_id=str(message.id),
                                         text=message.content, message_type=message.type.value,
                                         author_is_bot=message.author.bot, bot_user_id=self.bot_user_id,
                                         roles=role_ids(message.author))
            if msg is None:
                return
            accepted = await self.bot.on_message(msg)
        except Exception:
            log.exception("discord message %s failed", message.id)
            return
        if accepted.outcome == "refused" and accepted.message:
            await self.post_private(here.conversation, msg.user, accepted.message)

    async def _place_of_message(self, message: discord.Message) -> Where | None:
        channel: Any = message.channel
        if isinstance(channel, discord.PartialMessageable) and self.client is not None:
            # A thread missing from the cache: ask Discord which channel it belongs to.
            channel = await self.client.fetch_channel(channel.id)
        return place_of(channel, message.guild.id if message.guild else None)

    # --- outbound (the ChatAdapter port) ---------------------------------------------------------

    def _channel(self, channel_id: str) -> discord.PartialMessageable:
        assert self.client is not None, "the Discord adapter is not started"
        return self.client.get_partial_messageable(int(channel_id))

    # Mentions as this platform spells and keys them (the ChatAdapter port).
    spell = staticmethod(mentions.spell)
    mention_key = staticmethod(mentions.key_of)
    mention_of_key = staticmethod(mentions.mention_of_key)

    async def post(self, conv: Conversation, text: str) -> MessageRef:
        target = conv.thread or conv.channel
        ref = None
        for piece in outbound.chunks(mentions.spell(text)):
            sent = await self._channel(target).send(piece)
            ref = ref or MessageRef(PLATFORM, target, str(sent.id), conv.thread or None)
        assert ref is not None
        return ref

    async def post_answer(self, conv: Conversation, text: str, session_id: str) -> MessageRef:
        target = conv.thread or conv.channel
        self._stop_typing(target)
        pieces = outbound.chunks(mentions.spell(text))
        ref = None
        for i, piece in enumerate(pieces):
            extra = {"view": outbound.feedback_view(session_id)} if i == len(pieces) - 1 else {}
            sent = await self._channel(target).send(piece, **extra)
            ref = ref or MessageRef(PLATFORM, target, str(sent.id), conv.thread or None)
        assert ref is not None
        return ref

    async def set_activity(self, conv: Conversation, status: str) -> None:
        """Discord's typing indicator while a turn works: it lasts ten seconds, so it is sent again every
        eight until the turn ends or waits on a card (`status` "")."""
        target = conv.thread or conv.channel
        if not status:
            self._stop_typing(target)
            return
        if target not in self._typing or self._typing[target].done():
            self._typing[target] = asyncio.create_task(self._keep_typing(target), name=f"typing-{target}")

    def _stop_typing(self, target: str) -> None:
        task = self._typing.pop(target, None)
        if task is not None:
            task.cancel()

    async def _keep_typing(self, target: str) -> None:
        for _ in range(TYPING_MAX_BEATS):
            try:
                await self._channel(target).typing()
            except (discord.HTTPException, AssertionError) as exc:
                log.info("typing indicator not shown in %s (%s)", target, type(exc).__name__)
                return
            await asyncio.sleep(TYPING_EVERY)

    async def post_card(self, conv: Conversation, card: Card) -> MessageRef:
        target = conv.thread or conv.channel
        card = spell_card(card, mentions.spell_one)
        embed, cut = outbound.card_embed(card)
        extra: dict[str, Any] = {}
        view = outbound.card_view(card)
        if view is not None:
            extra["view"] = view
        attachment = outbound.full_text_file(card, cut)
        if attachment is not None:
            extra["file"] = attachment
        sent = await self._channel(target).send(embed=embed, **extra)
        return MessageRef(PLATFORM, target, str(sent.id), conv.thread or None)

    async def update_card(self, ref: MessageRef, card: Card) -> None:
        card = spell_card(card, mentions.spell_one)
        embed, _ = outbound.card_embed(card)
        # No view removes the buttons of a decided card.
        await self._channel(ref.channel).get_partial_message(int(ref.id)).edit(embed=embed,
                                                                               view=outbound.card_view(card))

    async def post_private(self, conv: Conversation, user: str, text: str) -> None:
        """Discord has private replies only inside interactions: elsewhere, a direct message."""
        assert self.client is not None
        text = mentions.spell(text)
        try:
            dm = await self.client.create_dm(discord.Object(id=int(user)))
            for piece in outbound.chunks(outbound.markdown(text)):
                await dm.send(piece)
            return
        except (discord.HTTPException, ValueError):
            log.warning("could not DM user %s; answering in the conversation", user)
        with contextlib.suppress(discord.HTTPException):
            await self.post(conv, f"<@{user}> {outbound.markdown(text)}")

    async def attach_file(self, conv: Conversation, filename: str, content: str, title: str) -> None:
        data = content if len(content.encode()) <= FILE_LIMIT else content[:FILE_LIMIT // 4] + "\n… (cut)\n"
        try:
            await self._channel(conv.thread or conv.channel).send(content=mentions.spell(title)[:outbound.TEXT_LIMIT],
                                                                  file=outbound.text_file(filename, data))
        except discord.HTTPException:
            log.exception("file upload failed")

    async def post_file(self, conv: Conversation, filename: str, data: bytes, *, title: str, comment: str) -> None:
        """A message with the file as its attachment (a multipart upload: `payload_json` and `files[0]`)."""
        if len(data) > FILE_LIMIT:
            raise ValueError(f"{filename} is {len(data)} bytes, over Discord's {FILE_LIMIT} for a bot upload")
        await self._channel(conv.thread or conv.channel).send(
            content=outbound.markdown(mentions.spell(comment))[:outbound.TEXT_LIMIT],
            file=discord.File(io.BytesIO(data), filename=filename, description=mentions.spell(title)[:1024]))

    async def members_of(self, workspace: str, group_ref: str) -> set[str]:
        """Members holding a role (`<@&id>`). Listing members needs the Server Members intent enabled
        for the app; clicks and commands carry the clicker's roles, so this is only a fallback."""
        group = mentions.mention_of_key(group_ref)
        if group.kind != "role" or not workspace.isdigit() or self.client is None:
            return set()
        role, members, after = group.id, set(), 0
        while True:
            page = await self.client.http.get_members(int(workspace), MEMBERS_PAGE, after or None)
            members |= {str(p["user"]["id"]) for p in page if role in {str(r) for r in p.get("roles", [])}}
            if len(page) < MEMBERS_PAGE:
                return members
            after = max(int(p["user"]["id"]) for p in page)
