"""The Discord side of the wire, on loopback: the REST API and the gateway.

`DiscordStandIn` answers the REST routes discord.py calls (`DISCORD_API_URL=<url>/api/v10`) with
`Content-Type: application/json` exactly (discord.py parses nothing else), and runs a gateway
websocket (`GET /gateway/bot` points at it) that speaks Discord's protocol: HELLO, IDENTIFY, READY,
GUILD_CREATE, heartbeats, and DISPATCH of every event the app is subscribed to by its intents. It
keeps guilds, channels, threads, messages and interactions, and checks what Discord checks: the bot
token, message and embed limits, component shapes, thread permissions, and that every interaction
is acknowledged once and within 3 seconds.

Tests play the users: `slash()` and `click()` deliver real INTERACTION_CREATE payloads (built from
the commands the app synced and the messages it posted), `say()` a real MESSAGE_CREATE.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import secrets
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP as email_policy
from typing import Any

from aiohttp import WSMsgType, web

from intern.standins.base import StandIn

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
EPHEMERAL = 1 << 6
LOADING = 1 << 7
INTENT_GUILDS, INTENT_MEMBERS, INTENT_GUILD_MESSAGES = 1 << 0, 1 << 1, 1 << 9
INTENT_PRESENCES, INTENT_MESSAGE_CONTENT = 1 << 8, 1 << 15
PRIVILEGED = {INTENT_MEMBERS: "GUILD_MEMBERS", INTENT_PRESENCES: "GUILD_PRESENCES",
              INTENT_MESSAGE_CONTENT: "MESSAGE_CONTENT"}
ACK_DEADLINE = 3.0  # seconds Discord waits for the first answer to an interaction
TEXT, DM, PUBLIC_THREAD, PRIVATE_THREAD = 0, 1, 11, 12
THREAD_TYPES = (PUBLIC_THREAD, PRIVATE_THREAD)
CREATE_PUBLIC_THREADS, SEND_MESSAGES_IN_THREADS = 1 << 35, 1 << 38
ALL_PERMISSIONS = (1 << 50) - 1
# Rewrites an INTERACTION_CREATE payload before it is sent (tests playing a malformed one).
Mutation = Callable[[dict[str, Any]], Any]

_id_lock = threading.Lock()
_last_id = 0


def snowflake() -> str:
    """A Discord id: milliseconds since the Discord epoch in the high bits, strictly increasing."""
    global _last_id
    with _id_lock:
        _last_id = max((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22, _last_id + 1)
        return str(_last_id)


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


# --- payload builders (the shapes Discord sends) ------------------------------------------------


def user_object(user_id: str, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {"id": user_id, "username": name, "discriminator": "0", "global_name": name.title(), "avatar": None,
            "bot": bot, "public_flags": 0, "flags": 0, "banner": None, "accent_color": None,
            "avatar_decoration_data": None, "collectibles": None, "primary_guild": None}


def member_object(user: dict[str, Any] | None, roles: list[str], joined_at: str) -> dict[str, Any]:
    member: dict[str, Any] = {"nick": None, "avatar": None, "banner": None, "roles": list(roles),
                              "joined_at": joined_at, "premium_since": None, "deaf": False, "mute": False,
                              "flags": 0, "pending": False, "communication_disabled_until": None}
    if user is not None:
        member["user"] = user
    return member


def role_object(role_id: str, name: str, position: int, permissions: int = 0) -> dict[str, Any]:
    return {"id": role_id, "name": name, "color": 0, "colors": {"primary_color": 0, "secondary_color": None,
                                                                  "tertiary_color": None},
            "hoist": False, "icon": None, "unicode_emoji": None, "position": position,
            "permissions": str(permissions), "managed": False, "mentionable": True, "flags": 0}


def text_channel_object(channel_id: str, guild_id: str, name: str, position: int) -> dict[str, Any]:
    return {"id": channel_id, "type": TEXT, "guild_id": guild_id, "name": name, "position": position,
            "permission_overwrites": [], "parent_id": None, "nsfw": False, "topic": None, "last_message_id": None,
            "rate_limit_per_user": 0, "flags": 0, "default_thread_rate_limit_per_user": 0}


def thread_object(thread_id: str, guild_id: str, parent_id: str, owner_id: str, name: str, kind: int,
                  auto_archive: int) -> dict[str, Any]:
    now = iso_now()
    meta: dict[str, Any] = {"archived": False, "auto_archive_duration": auto_archive, "archive_timestamp": now,
                            "locked": False, "create_timestamp": now}
    if kind == PRIVATE_THREAD:
        meta["invitable"] = True
    return {"id": thread_id, "type": kind, "guild_id": guild_id, "parent_id": parent_id, "owner_id": owner_id,
            "name": name, "last_message_id": None, "rate_limit_per_user": 0, "flags": 0, "message_count": 0,
            "member_count": 1, "total_message_sent": 0, "thread_metadata": meta, "applied_tags": []}


def dm_channel_object(channel_id: str, recipient: dict[str, Any]) -> dict[str, Any]:
    return {"id": channel_id, "type": DM, "last_message_id": None, "flags": 0, "recipients": [recipient]}


def subcommand_options(command: dict[str, Any], sub: str, values: dict[str, str]) -> list[dict[str, Any]]:
    """The `options` Discord sends for `/<command> <sub> name:value…`, checked against the synced schema."""
    option = next((o for o in command.get("options", []) if o.get("name") == sub and o.get("type") == 1), None)
    if option is None:
        raise AssertionError(f"/{command['name']} has no subcommand {sub!r} in what the app synced")
    known = {o["name"]: o for o in option.get("options", [])}
    unknown = set(values) - set(known)
    if unknown:
        raise AssertionError(f"/{command['name']} {sub} has no option(s) {sorted(unknown)}")
    missing = [n for n, o in known.items() if o.get("required") and n not in values]
    if missing:
        raise AssertionError(f"/{command['name']} {sub} needs option(s) {missing}")
    inner = [{"name": n, "type": known[n]["type"], "value": v} for n, v in values.items()]
    sub_option: dict[str, Any] = {"name": sub, "type": 1}
    if inner:
        sub_option["options"] = inner
    return [sub_option]


# --- state ---------------------------------------------------------------------------------------


@dataclass
class Guild:
    id: str
    name: str
    owner_id: str
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)  # user id -> role ids
    joined: dict[str, str] = field(default_factory=dict)


@dataclass
class Interaction:
    """One interaction the stand-in delivered, and how the app answered it."""

    id: str
    token: str
    kind: int  # 2 application command, 3 component
    user: str
    channel: str
    payload: dict[str, Any]
    delivered_at: float
    callback_type: int | None = None
    callback_data: dict[str, Any] | None = None
    callback_delay: float | None = None
    original_id: str | None = None
    followup_ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # what Discord refused (late or repeated answers)


@dataclass
class Message:
    data: dict[str, Any]
    ephemeral_to: str | None = None
    interaction_token: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)  # filename -> content
    edits: list[dict[str, Any]] = field(default_factory=list)  # earlier versions, oldest first
    deleted: bool = False

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def channel(self) -> str:
        return str(self.data["channel_id"])

    @property
    def content(self) -> str:
        return str(self.data.get("content") or "")

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return list(self.data.get("embeds") or [])

    @property
    def loading(self) -> bool:
        return bool(self.data.get("flags", 0) & LOADING)

    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for row in self.data.get("components") or [] for c in row.get("components", [])
                if "custom_id" in c]

    def buttons(self) -> list[dict[str, Any]]:
        return [c for row in self.data.get("components") or [] for c in row.get("components", [])
                if c.get("type") == 2]

    def text(self) -> str:
        """Content and embed text together, for assertions."""
        parts = [self.content]
        for e in self.embeds:
            parts += [e.get("title") or "", e.get("description") or ""]
            parts += [f"{f.get('name')}: {f.get('value')}" for f in e.get("fields") or []]
            parts.append((e.get("footer") or {}).get("text") or "")
        return "\n".join(p for p in parts if p)


class DiscordError(Exception):
    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors


def invalid(path: str, code: str, message: str) -> DiscordError:
    return DiscordError(400, 50035, "Invalid Form Body", {path: {"_errors": [{"code": code, "message": message}]}})


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """discord.py only parses a body whose Content-Type is exactly `application/json`."""
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={"Content-Type": "application/json", **(headers or {})})


@dataclass
class GatewaySession:
    ws: web.WebSocketResponse
    compress: Any | None
    session_id: str = field(default_factory=lambda: secrets.token_hex(16))
    identify: dict[str, Any] | None = None
    seq: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def intents(self) -> int:
        return int((self.identify or {}).get("intents", 0))

    async def send(self, op: int, d: Any, t: str | None = None) -> None:
        async with self.lock:
            if t is not None:
                self.seq += 1
            frame = json.dumps({"op": op, "d": d, "s": self.seq if t is not None else None, "t": t})
            if self.ws.closed:
                return
            if self.compress is not None:
                await self.ws.send_bytes(self.compress.compress(frame.encode()) +
                                         self.compress.flush(zlib.Z_SYNC_FLUSH))
            else:
                await self.ws.send_str(frame)


# --- the stand-in --------------------------------------------------------------------------------


@dataclass
class DiscordStandIn(StandIn):
    token: str = "MTAwMDAwMDAwMDAwMDAwMDAx.standin.discord-bot-token-0123456789"
    bot_name: str = "intern"
    enabled_privileged: int = INTENT_MESSAGE_CONTENT  # privileged intents switched on in the developer portal
    heartbeat_interval_ms: int = 41_250
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    guilds: dict[str, Guild] = field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    typing: list[tuple[str, float]] = field(default_factory=list)  # (channel id, monotonic time) per trigger
    interactions: dict[str, Interaction] = field(default_factory=dict)  # token -> interaction
    commands: dict[str | None, list[dict[str, Any]]] = field(default_factory=dict)  # guild id (None: global)
    sessions: list[GatewaySession] = field(default_factory=list)
    identifies: list[dict[str, Any]] = field(default_factory=list)
    no_thread_permission: set[str] = field(default_factory=set)  # channels where the bot may not open threads
    closed_dms: set[str] = field(default_factory=set)  # users who accept no direct messages from the bot
    _faults: dict[str, list[float]] = field(default_factory=dict)

    def setup(self, app: web.Application) -> None:
        self.application_id = snowflake()
        self.bot_user_id = self.application_id  # a bot's user id is its application id
        self.users[self.bot_user_id] = user_object(self.bot_user_id, self.bot_name, bot=True)
        self.owner_id = self.add_user("owner")
        self.guild_id = self.add_guild("Stand-in Guild", owner=self.owner_id)
        self.channel_id = self.add_text_channel(self.guild_id, "general")
        app.router.add_get("/gateway", self._gateway)
        bot_routes = [
            ("GET", "/gateway/bot", self._gateway_bot),
            ("GET", "/users/@me", self._me),
            ("GET", "/oauth2/applications/@me", self._application),
            ("PUT", "/applications/{app}/commands", self._put_commands),
            ("PUT", "/applications/{app}/guilds/{guild}/commands", self._put_commands),
            ("GET", "/applications/{app}/commands", self._get_commands),
            ("GET", "/applications/{app}/guilds/{guild}/commands", self._get_commands),
            ("GET", "/channels/{channel}", self._get_channel),
            ("POST", "/channels/{channel}/threads", self._create_thread),
            ("POST", "/channels/{channel}/messages", self._create_message),
            ("POST", "/channels/{channel}/typing", self._typing),
            ("GET", "/channels/{channel}/messages/{message}", self._get_message),
            ("PATCH", "/channels/{channel}/messages/{message}", self._edit_message),
            ("GET", "/guilds/{guild}/members", self._list_members),
            ("POST", "/users/@me/channels", self._open_dm),
        ]
        # Interaction callbacks and follow-ups are authorised by the interaction token in the path.
        token_routes = [
            ("POST", "/interactions/{id}/{token}/callback", self._callback),
            ("POST", "/webhooks/{app}/{token}", self._followup),
            ("GET", "/webhooks/{app}/{token}/messages/{message}", self._get_webhook_message),
            ("PATCH", "/webhooks/{app}/{token}/messages/{message}", self._edit_webhook_message),
            ("DELETE", "/webhooks/{app}/{token}/messages/{message}", self._delete_webhook_message),
        ]
        for routes, auth in ((bot_routes, True), (token_routes, False)):
            for method, path, handler in routes:
                app.router.add_route(method, API_PREFIX + path, self._endpoint(handler, auth))

    @property
    def api_url(self) -> str:
        return f"{self.url}{API_PREFIX}"

    # --- test controls: the world ------------------------------------------------------------

    def add_user(self, name: str, *, user_id: str | None = None, bot: bool = False) -> str:
        uid = user_id or snowflake()
        self.users[uid] = user_object(uid, name, bot=bot)
        return uid

    def add_guild(self, name: str, *, owner: str) -> str:
        gid = snowflake()
        guild = Guild(gid, name, owner)
        guild.roles[gid] = role_object(gid, "@everyone", 0, permissions=ALL_PERMISSIONS)
        self.guilds[gid] = guild
        self.add_member(gid, owner)
        self.add_member(gid, self.bot_user_id)
        return gid

    def add_role(self, guild_id: str, name: str) -> str:
        rid = snowflake()
        guild = self.guilds[guild_id]
        guild.roles[rid] = role_object(rid, name, len(guild.roles))
        return rid

    def add_member(self, guild_id: str, user_id: str, roles: list[str] | None = None) -> None:
        guild = self.guilds[guild_id]
        guild.members[user_id] = list(roles or [])
        guild.joined.setdefault(user_id, iso_now())

    def add_text_channel(self, guild_id: str, name: str) -> str:
        cid = snowflake()
        position = sum(1 for c in self.channels.values() if c.get("guild_id") == guild_id)
        self.channels[cid] = text_channel_object(cid, guild_id, name, position)
        return cid

    def forbid_threads(self, channel_id: str) -> None:
        """The bot lacks Create Public Threads in this channel."""
        self.no_thread_permission.add(channel_id)

    def archive(self, thread_id: str) -> None:
        """The thread auto-archived: it is no longer in GUILD_CREATE's active threads."""
        self.channels[thread_id]["thread_metadata"]["archived"] = True

    def add_bot_message(self, channel: str, content: str, components: list[dict[str, Any]]) -> Message:
        """A message the bot posted earlier (e.g. by an older version), with these components."""
        msg = Message(self._message_data(channel, self.users[self.bot_user_id], content=content,
                                         components=components))
        self.messages.append(msg)
        return msg

    def inject_rate_limit(self, route: str, times: int = 1, retry_after: float = 0.05) -> None:
        """The next `times` calls of e.g. `POST /channels/{channel}/messages` get HTTP 429."""
        self._faults.setdefault(route, []).extend([retry_after] * times)

    # --- test controls: people acting ----------------------------------------------------------

    async def slash(self, user: str, sub: str, *, channel: str | None = None, guild: str | None = None,
                    command: str = "intern", dm: bool = False, mutate: Mutation | None = None,
                    **options: str) -> Interaction:
        """`/<command> <sub> option:value…` typed by `user` in `channel` (a text channel or thread), or in
        the bot's DMs with `dm=True`. `mutate` may rewrite the INTERACTION_CREATE payload before it is
        sent (to play a malformed one)."""
        gid = None if dm else (guild or self.guild_id)
        synced = self._synced_command(command, gid)
        data: dict[str, Any] = {"id": synced["id"], "name": command, "type": 1,
                                "options": subcommand_options(synced, sub, options)}
        if synced.get("guild_id"):
            data["guild_id"] = synced["guild_id"]
        if dm:
            where = self._dm_with(user)
        else:
            where = self.channels[channel or self.channel_id]
        return await self._interact(2, user, where, gid, data, mutate=mutate)

    async def click(self, message: Message, custom_id: str, user: str, *,
                    mutate: Mutation | None = None) -> Interaction:
        """`user` presses the button `custom_id` on `message`: it must be on the message, or have been on
        an earlier version of it that the user's client still shows."""
        seen = {c for version in [*message.edits, message.data] for row in version.get("components") or []
                for c in (i.get("custom_id") for i in row.get("components", [])) if c}
        if custom_id not in seen:
            raise AssertionError(f"no component {custom_id!r} on message {message.id}")
        where = self.channels[message.channel]
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._interact(3, user, where, where.get("guild_id"), data, message=message, mutate=mutate)

    async def say(self, channel: str, user: str, content: str) -> Message:
        """`user` posts `content` in `channel` (a text channel or a thread)."""
        where = self.channels[channel]
        if where["type"] in THREAD_TYPES and where["thread_metadata"]["archived"]:
            where["thread_metadata"]["archived"] = False  # a message unarchives its thread
            await self.dispatch("THREAD_UPDATE", where)
        msg = Message(self._message_data(channel, self.users[user], content=content))
        self.messages.append(msg)
        await self._dispatch_message("MESSAGE_CREATE", msg, where.get("guild_id"))
        return msg

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send one DISPATCH to every identified gateway session subscribed to it."""
        for session in list(self.sessions):
            if session.identify is not None and not session.ws.closed:
                await session.send(0, data, event)

    # --- reading what the app did -------------------------------------------------------------

    def posted(self, channel: str | None = None) -> list[Message]:
        """Visible messages (not ephemeral, not deleted, not loading), oldest first."""
        return [m for m in self.messages if m.ephemeral_to is None and not m.deleted and not m.loading
                and (channel is None or m.channel == channel)]

    def texts(self, channel: str | None = None) -> list[str]:
        return [m.text() for m in self.posted(channel)]

    def ephemerals(self, user: str | None = None) -> list[Message]:
        return [m for m in self.messages if m.ephemeral_to is not None and not m.deleted and not m.loading
                and (user is None or m.ephemeral_to == user)]

    def message(self, message_id: str) -> Message | None:
        return next((m for m in self.messages if m.id == message_id), None)

    def threads(self, parent: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.channels.values() if c["type"] in THREAD_TYPES
                and (parent is None or c.get("parent_id") == parent)]

    def answers(self, interaction: Interaction) -> list[Message]:
        """What the user who interacted sees in answer: the original response (once it is no longer
        loading) and the follow-ups."""
        ids = ([interaction.original_id] if interaction.original_id else []) + interaction.followup_ids
        found = [self.message(i) for i in dict.fromkeys(ids)]
        return [m for m in found if m is not None and not m.loading and not m.deleted
                and m.interaction_token == interaction.token]

    async def answered(self, interaction: Interaction, count: int = 1, seconds: float = 15.0) -> list[Message]:
        await self.wait_for(lambda: len(self.answers(interaction)) >= count, seconds)
        return self.answers(interaction)

    # --- serving: helpers -------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self.token}"

    def _endpoint(self, handler: Any, auth: bool) -> Any:
        async def serve(request: web.Request) -> web.Response:
            return await self._serve(request, handler, auth=auth)
        return serve

    async def _serve(self, request: web.Request, handler: Any, *, auth: bool) -> web.Response:
        resource = request.match_info.route.resource
        route = f"{request.method} {resource.canonical.removeprefix(API_PREFIX)}" if resource else request.path
        delays = self._faults.get(route)
        if delays:
            retry_after = delays.pop(0)
            return json_response({"message": "You are being rate limited.", "retry_after": retry_after,
                                  "global": False}, 429,
                                 {"Via": "1.1 google", "Retry-After": str(max(1, round(retry_after))),
                                  "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                                  "X-RateLimit-Reset-After": str(retry_after), "X-RateLimit-Bucket": "standin",
                                  "X-RateLimit-Scope": "user"})
        if auth and not self._authorized(request):
            return json_response({"message": "401: Unauthorized", "code": 0}, 401)
        try:
            result = await handler(request)
        except DiscordError as exc:
            body: dict[str, Any] = {"message": exc.message, "code": exc.code}
            if exc.errors:
                body["errors"] = exc.errors
            return json_response(body, exc.status)
        if result is None:
            return web.Response(status=204)
        return json_response(result)

    async def _body(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        """A JSON body, or a multipart one (`payload_json` plus `files[n]`)."""
        if request.content_type == "multipart/form-data":
            return parse_multipart(request.headers["Content-Type"], await request.read())
        if request.headers.get("Content-Type") != "application/json":
            raise DiscordError(400, 50109, "The request body contains invalid JSON.")
        try:
            return json.loads(await request.read()), {}
        except ValueError:
            raise DiscordError(400, 50109, "The request body contains invalid JSON.") from None

    def _channel(self, channel_id: str) -> dict[str, Any]:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise DiscordError(404, 10003, "Unknown Channel")
        return channel

    def _synced_command(self, name: str, guild_id: str | None) -> dict[str, Any]:
        for scope in ([guild_id] if guild_id else []) + [None]:
            for cmd in self.commands.get(scope, []):
                if cmd["name"] == name:
                    return cmd
        raise AssertionError(f"/{name} was not synced {'to guild ' + guild_id if guild_id else 'globally'}")

    def _dm_with(self, user_id: str) -> dict[str, Any]:
        for c in self.channels.values():
            if c["type"] == DM and c["recipients"][0]["id"] == user_id:
                return c
        cid = snowflake()
        self.channels[cid] = dm_channel_object(cid, self.users[user_id])
        return self.channels[cid]

    def _message_data(self, channel_id: str, author: dict[str, Any], *, content: str = "",
                      embeds: list[dict[str, Any]] | None = None, components: list[dict[str, Any]] | None = None,
                      attachments: list[dict[str, Any]] | None = None, flags: int = 0) -> dict[str, Any]:
        mentions = [self.users[u] for u in self.users if f"<@{u}>" in content or f"<@!{u}>" in content]
        return {"id": snowflake(), "channel_id": channel_id, "author": author, "content": content,
                "timestamp": iso_now(), "edited_timestamp": None, "tts": False, "mention_everyone": False,
                "mentions": mentions, "mention_roles": [], "attachments": attachments or [],
                "embeds": embeds or [], "pinned": False, "type": 0, "flags": flags, "components": components or []}

    def _member_payload(self, guild_id: str, user_id: str, *, with_user: bool = True) -> dict[str, Any]:
        guild = self.guilds[guild_id]
        roles = guild.members.get(user_id, [])
        return member_object(self.users[user_id] if with_user else None, roles, guild.joined.get(user_id, iso_now()))

    # --- serving: the gateway -----------------------------------------------------------------

    async def _gateway_bot(self, req: web.Request) -> dict[str, Any]:
        return {"url": f"ws://{self.host}:{self.port}/gateway", "shards": 1,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14_400_000,
                                        "max_concurrency": 1}}

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        compress = zlib.compressobj() if request.query.get("compress") == "zlib-stream" else None
        session = GatewaySession(ws, compress)
        self.sessions.append(session)
        try:
            await session.send(10, {"heartbeat_interval": self.heartbeat_interval_ms})
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    break
                await self._gateway_frame(session, json.loads(frame.data))
        finally:
            self.sessions.remove(session)
        return ws

    async def _gateway_frame(self, session: GatewaySession, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        if op == 1:
            await session.send(11, None)
        elif op == 2:
            await self._identify(session, frame.get("d") or {})
        elif op == 6:
            # Nothing is kept for replay, as when a session is too old: Discord says "re-identify".
            await session.send(9, False)

    async def _identify(self, session: GatewaySession, data: dict[str, Any]) -> None:
        if data.get("token") not in (self.token, f"Bot {self.token}"):
            await session.ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        disallowed = [name for bit, name in PRIVILEGED.items() if intents & bit and not self.enabled_privileged & bit]
        if disallowed:
            await session.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        session.identify = data
        self.identifies.append(data)
        shard = data.get("shard") or [0, 1]
        await session.send(0, {
            "v": 10, "user": {**self.users[self.bot_user_id], "verified": True, "mfa_enabled": False,
                              "email": None},
            "guilds": [{"id": g, "unavailable": True} for g in self.guilds],
            "session_id": session.session_id, "resume_gateway_url": f"ws://{self.host}:{self.port}/gateway",
            "shard": shard, "application": {"id": self.application_id, "flags": 0},
            "private_channels": [], "presences": [], "relationships": [], "guild_join_requests": [],
            "user_settings": {}, "auth": {}, "session_type": "normal", "geo_ordered_rtc_regions": [],
        }, "READY")
        if intents & INTENT_GUILDS:
            for gid in self.guilds:
                await session.send(0, self._guild_create(gid), "GUILD_CREATE")

    def _guild_create(self, guild_id: str) -> dict[str, Any]:
        g = self.guilds[guild_id]
        channels = [c for c in self.channels.values() if c.get("guild_id") == guild_id and c["type"] == TEXT]
        threads = [c for c in self.channels.values() if c.get("guild_id") == guild_id and c["type"] in THREAD_TYPES
                   and not c["thread_metadata"]["archived"]]
        return {
            "id": g.id, "name": g.name, "icon": None, "splash": None, "discovery_splash": None, "owner_id": g.owner_id,
            "afk_channel_id": None, "afk_timeout": 300, "verification_level": 0, "default_message_notifications": 0,
            "explicit_content_filter": 0, "roles": list(g.roles.values()), "emojis": [], "stickers": [],
            "features": [], "mfa_level": 0, "application_id": None, "system_channel_id": None,
            "system_channel_flags": 0, "rules_channel_id": None, "max_members": 500_000, "vanity_url_code": None,
            "description": None, "banner": None, "premium_tier": 0, "premium_subscription_count": 0,
            "preferred_locale": "en-US", "public_updates_channel_id": None, "nsfw_level": 0,
            "premium_progress_bar_enabled": False, "safety_alerts_channel_id": None,
            "joined_at": g.joined[self.bot_user_id], "large": False, "unavailable": False,
            "member_count": len(g.members), "voice_states": [], "presences": [], "stage_instances": [],
            "guild_scheduled_events": [], "soundboard_sounds": [],
            "members": [self._member_payload(guild_id, self.bot_user_id)],
            "channels": [{k: v for k, v in c.items() if k != "guild_id"} for c in channels], "threads": threads,
        }

    async def _dispatch_message(self, event: str, msg: Message, guild_id: str | None) -> None:
        for session in list(self.sessions):
            if session.identify is None or session.ws.closed:
                continue
            if guild_id is not None and not session.intents & INTENT_GUILD_MESSAGES:
                continue
            data = dict(msg.data)
            author = data["author"]["id"]
            mentioned = any(u["id"] == self.bot_user_id for u in data.get("mentions", []))
            if not session.intents & INTENT_MESSAGE_CONTENT and author != self.bot_user_id and not mentioned:
                data.update(content="", embeds=[], attachments=[], components=[])
            if guild_id is not None:
                data["guild_id"] = guild_id
                if author in self.guilds[guild_id].members:
                    data["member"] = self._member_payload(guild_id, author, with_user=False)
            await session.send(0, data, event)

    # --- serving: REST -------------------------------------------------------------------------

    async def _me(self, req: web.Request) -> dict[str, Any]:
        return {**self.users[self.bot_user_id], "verified": True, "mfa_enabled": False, "email": None,
                "locale": "en-US"}

    async def _application(self, req: web.Request) -> dict[str, Any]:
        return {"id": self.application_id, "name": self.bot_name, "icon": None, "description": "",
                "summary": "", "type": None, "bot_public": False, "bot_require_code_grant": False,
                "owner": self.users[self.owner_id], "team": None, "verify_key": secrets.token_hex(32),
                "flags": 0, "bot": self.users[self.bot_user_id], "interactions_endpoint_url": None,
                "rpc_origins": [], "tags": [], "redirect_uris": [], "approximate_guild_count": len(self.guilds)}

    async def _put_commands(self, req: web.Request) -> list[dict[str, Any]]:
        if req.match_info["app"] != self.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        guild = req.match_info.get("guild")
        if guild is not None and guild not in self.guilds:
            raise DiscordError(403, 50001, "Missing Access")
        payload = json.loads(await req.read())
        if not isinstance(payload, list) or len(payload) > 100:
            raise invalid("_root", "BASE_TYPE_BAD_LENGTH", "Must be a list of at most 100 commands.")
        synced = []
        for cmd in payload:
            _check_command(cmd)
            entry = {**cmd, "id": snowflake(), "application_id": self.application_id, "version": snowflake(),
                     "type": cmd.get("type", 1), "default_member_permissions": cmd.get("default_member_permissions"),
                     "nsfw": cmd.get("nsfw", False)}
            if guild is not None:
                entry["guild_id"] = guild
            synced.append(entry)
        self.commands[guild] = synced
        return synced

    async def _get_commands(self, req: web.Request) -> list[dict[str, Any]]:
        return self.commands.get(req.match_info.get("guild"), [])

    async def _get_channel(self, req: web.Request) -> dict[str, Any]:
        return self._channel(req.match_info["channel"])

    async def _create_thread(self, req: web.Request) -> dict[str, Any]:
        parent = self._channel(req.match_info["channel"])
        body, _ = await self._body(req)
        if parent["type"] != TEXT:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        if parent["id"] in self.no_thread_permission:
            raise DiscordError(403, 50013, "Missing Permissions")
        name = str(body.get("name") or "")
        if not 1 <= len(name) <= 100:
            raise invalid("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        kind = int(body.get("type", PRIVATE_THREAD))  # without a type Discord opens a private thread
        tid = snowflake()
        thread = thread_object(tid, parent["guild_id"], parent["id"], self.bot_user_id, name, kind,
                               int(body.get("auto_archive_duration", 4320)))
        self.channels[tid] = thread
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return thread

    async def _typing(self, req: web.Request) -> None:
        """`POST /channels/{id}/typing`: the typing indicator for ten seconds (204 No Content)."""
        channel = self._channel(req.match_info["channel"])
        self.typing.append((channel["id"], time.monotonic()))

    async def _create_message(self, req: web.Request) -> dict[str, Any]:
        channel = self._channel(req.match_info["channel"])
        body, files = await self._body(req)
        if channel["type"] == DM and channel["recipients"][0]["id"] in self.closed_dms:
            raise DiscordError(403, 50007, "Cannot send messages to this user")
        msg = self._new_message(channel["id"], body, files, self.users[self.bot_user_id])
        self.messages.append(msg)
        await self._dispatch_message("MESSAGE_CREATE", msg, channel.get("guild_id"))
        return msg.data

    def _new_message(self, channel_id: str, body: dict[str, Any], files: dict[str, bytes],
                     author: dict[str, Any], flags: int = 0) -> Message:
        _check_message(body, files)
        attachments = self._attachments(channel_id, body, files)
        data = self._message_data(channel_id, author, content=str(body.get("content") or ""),
                                  embeds=[{"type": "rich", **e} for e in body.get("embeds") or []],
                                  components=body.get("components") or [], attachments=attachments,
                                  flags=flags | (int(body.get("flags") or 0) & EPHEMERAL))
        return Message(data, files=dict(files))

    def _attachments(self, channel_id: str, body: dict[str, Any], files: dict[str, bytes]) -> list[dict[str, Any]]:
        out = []
        for meta in body.get("attachments") or []:
            name = meta.get("filename")
            if name not in files:
                continue
            aid = snowflake()
            item = {"id": aid, "filename": name, "size": len(files[name]),
                    "url": f"{self.url}/attachments/{channel_id}/{aid}/{name}",
                    "proxy_url": f"{self.url}/attachments/{channel_id}/{aid}/{name}",
                    "content_type": _content_type(name)}
            if meta.get("description"):
                item["description"] = meta["description"]
            size = png_size(files[name])
            if size is not None:  # Discord gives images their dimensions
                item["width"], item["height"] = size
            out.append(item)
        return out

    async def _get_message(self, req: web.Request) -> dict[str, Any]:
        msg = self.message(req.match_info["message"])
        if msg is None or msg.channel != req.match_info["channel"] or msg.deleted or msg.ephemeral_to:
            raise DiscordError(404, 10008, "Unknown Message")
        return msg.data

    async def _edit_message(self, req: web.Request) -> dict[str, Any]:
        msg = self.message(req.match_info["message"])
        if msg is None or msg.channel != req.match_info["channel"] or msg.deleted or msg.ephemeral_to:
            raise DiscordError(404, 10008, "Unknown Message")
        if msg.data["author"]["id"] != self.bot_user_id:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        body, files = await self._body(req)
        self._apply_edit(msg, body, files)
        await self._dispatch_message("MESSAGE_UPDATE", msg, self.channels[msg.channel].get("guild_id"))
        return msg.data

    def _apply_edit(self, msg: Message, body: dict[str, Any], files: dict[str, bytes]) -> None:
        merged = {k: body[k] if k in body else msg.data.get(k) for k in ("content", "embeds", "components")}
        _check_message(merged, files, edit=True)
        msg.edits.append(json.loads(json.dumps(msg.data)))
        for key in ("content", "components"):
            if key in body:
                msg.data[key] = body[key] if body[key] is not None else ([] if key == "components" else "")
        if "embeds" in body:
            msg.data["embeds"] = [{"type": "rich", **e} for e in body["embeds"] or []]
        if "attachments" in body:
            kept = {str(a.get("id")) for a in body["attachments"] or [] if "id" in a}
            old = [a for a in msg.data.get("attachments", []) if a["id"] in kept]
            msg.data["attachments"] = old + self._attachments(msg.channel, body, files)
            msg.files.update(files)
        msg.data["edited_timestamp"] = iso_now()
        msg.data["flags"] = msg.data.get("flags", 0) & ~LOADING

    async def _list_members(self, req: web.Request) -> list[dict[str, Any]]:
        guild = self.guilds.get(req.match_info["guild"])
        if guild is None:
            raise DiscordError(404, 10004, "Unknown Guild")
        if not self.enabled_privileged & INTENT_MEMBERS:
            raise DiscordError(403, 50001, "Missing Access")
        limit = min(max(int(req.query.get("limit", "1")), 1), 1000)
        after = int(req.query.get("after", "0"))
        ids = sorted((u for u in guild.members if int(u) > after), key=int)[:limit]
        return [self._member_payload(guild.id, u) for u in ids]

    async def _open_dm(self, req: web.Request) -> dict[str, Any]:
        body, _ = await self._body(req)
        recipient = str(body.get("recipient_id") or "")
        if recipient not in self.users:
            raise DiscordError(400, 50033, "Invalid Recipient(s)")
        return self._dm_with(recipient)

    # --- serving: interactions -----------------------------------------------------------------

    async def _interact(self, kind: int, user: str, where: dict[str, Any], guild_id: str | None,
                        data: dict[str, Any], message: Message | None = None,
                        mutate: Mutation | None = None) -> Interaction:
        iid, token = snowflake(), "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        channel = {**where, "permissions": str(ALL_PERMISSIONS)}
        payload: dict[str, Any] = {
            "id": iid, "application_id": self.application_id, "type": kind, "token": token, "version": 1,
            "channel_id": where["id"], "channel": channel, "data": data, "locale": "en-US",
            "app_permissions": str(ALL_PERMISSIONS), "entitlements": [], "attachment_size_limit": 10_485_760,
            "context": 0 if guild_id else 1,
            "authorizing_integration_owners": {"0": guild_id} if guild_id else {"1": user},
        }
        if guild_id:
            payload.update(guild_id=guild_id, guild_locale="en-US", guild={"id": guild_id, "locale": "en-US",
                                                                           "features": []})
            payload["member"] = {**self._member_payload(guild_id, user), "permissions": str(ALL_PERMISSIONS)}
        else:
            payload["user"] = self.users[user]
        if message is not None:
            payload["message"] = message.data
        if mutate is not None:
            payload = mutate(payload)
        record = Interaction(iid, token, kind, user, where["id"], payload, time.monotonic())
        self.interactions[token] = record
        await self.dispatch("INTERACTION_CREATE", payload)
        return record

    def _interaction(self, token: str) -> Interaction:
        record = self.interactions.get(token)
        if record is None:
            raise DiscordError(404, 10015, "Unknown Webhook")
        return record

    async def _callback(self, req: web.Request) -> dict[str, Any] | None:
        record = self.interactions.get(req.match_info["token"])
        if record is None or record.id != req.match_info["id"]:
            raise DiscordError(404, 10062, "Unknown interaction")
        body, files = await self._body(req)
        delay = time.monotonic() - record.delivered_at
        if record.callback_type is not None:
            record.errors.append("acknowledged twice")
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        if delay > ACK_DEADLINE:
            record.errors.append(f"acknowledged after {delay:.1f}s")
            raise DiscordError(404, 10062, "Unknown interaction")
        record.callback_type, record.callback_data, record.callback_delay = body.get("type"), body.get("data"), delay
        message = await self._callback_message(record, int(body.get("type") or 0), body.get("data") or {}, files)
        if req.query.get("with_response") not in ("1", "true", "True"):
            return None
        info: dict[str, Any] = {"id": record.id, "type": record.kind}
        resource: dict[str, Any] = {"type": record.callback_type}
        if message is not None:
            info.update(response_message_id=message.id, response_message_loading=message.loading,
                        response_message_ephemeral=message.ephemeral_to is not None)
            resource["message"] = message.data
        return {"interaction": info, "resource": resource}

    async def _callback_message(self, record: Interaction, kind: int, data: dict[str, Any],
                                files: dict[str, bytes]) -> Message | None:
        if kind in (4, 5):
            flags = int(data.get("flags") or 0) & EPHEMERAL
            bot = self.users[self.bot_user_id]
            if kind == 4:
                msg = self._new_message(record.channel, data, files, bot, flags=flags)
            else:  # deferred: a "thinking…" placeholder until the first follow-up
                msg = Message(self._message_data(record.channel, bot, flags=flags | LOADING))
            msg.data["webhook_id"] = self.application_id
            msg.data["application_id"] = self.application_id
            msg.interaction_token = record.token
            msg.ephemeral_to = record.user if flags & EPHEMERAL else None
            self.messages.append(msg)
            record.original_id = msg.id
            return msg
        if kind in (6, 7) and record.kind == 3:
            record.original_id = None
            if kind == 7:
                target = self.message(record.payload["message"]["id"])
                assert target is not None
                self._apply_edit(target, data, files)
            return None
        raise DiscordError(400, 40032, "Invalid interaction response type for this interaction")

    async def _followup(self, req: web.Request) -> dict[str, Any] | None:
        record = self._interaction(req.match_info["token"])
        if req.match_info["app"] != self.application_id or record.callback_type is None:
            raise DiscordError(404, 10015, "Unknown Webhook")
        body, files = await self._body(req)
        original = self.message(record.original_id) if record.original_id else None
        if original is not None and original.loading and not record.followup_ids:
            # The first follow-up after a deferred response replaces the "thinking…" message and
            # keeps the visibility chosen when deferring.
            self._apply_edit(original, {**body, "attachments": body.get("attachments") or []}, files)
            msg = original
        else:
            msg = self._new_message(record.channel, body, files, self.users[self.bot_user_id])
            msg.data["webhook_id"] = self.application_id
            msg.interaction_token = record.token
            msg.ephemeral_to = record.user if int(body.get("flags") or 0) & EPHEMERAL else None
            self.messages.append(msg)
        record.followup_ids.append(msg.id)
        if msg.ephemeral_to is None:
            await self._dispatch_message("MESSAGE_CREATE", msg, self.channels[record.channel].get("guild_id"))
        return msg.data if req.query.get("wait") in ("true", "1", "True") else None

    def _webhook_message(self, req: web.Request) -> tuple[Interaction, Message]:
        record = self._interaction(req.match_info["token"])
        mid = req.match_info["message"]
        if mid == "@original":
            mid = record.original_id or (record.payload.get("message") or {}).get("id") or ""
        msg = self.message(mid)
        if msg is None or msg.deleted or (msg.interaction_token != record.token and record.kind != 3):
            raise DiscordError(404, 10008, "Unknown Message")
        return record, msg

    async def _get_webhook_message(self, req: web.Request) -> dict[str, Any]:
        return self._webhook_message(req)[1].data

    async def _edit_webhook_message(self, req: web.Request) -> dict[str, Any]:
        _, msg = self._webhook_message(req)
        body, files = await self._body(req)
        self._apply_edit(msg, body, files)
        return msg.data

    async def _delete_webhook_message(self, req: web.Request) -> None:
        _, msg = self._webhook_message(req)
        msg.deleted = True


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """`payload_json` and the `files[n]` parts of a multipart/form-data body."""
    parsed = BytesParser(policy=email_policy).parsebytes(
        f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode() + body)
    payload: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        raw = part.get_payload(decode=True)
        data = raw if isinstance(raw, bytes) else b""
        if name == "payload_json":
            payload = json.loads(data)
        elif part.get_filename():
            files[str(part.get_filename())] = data
    return payload, files


def _content_type(filename: str) -> str:
    guessed, _ = mimetypes.guess_type(filename)
    if guessed is None:
        return "application/octet-stream"
    return guessed + ("; charset=utf-8" if guessed.startswith("text/") else "")


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None for anything else."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


# --- what Discord validates --------------------------------------------------------------------

EMBED_LIMITS = {"title": 256, "description": 4096}
MAX_CONTENT = 2000


def _check_command(cmd: dict[str, Any]) -> None:
    name = str(cmd.get("name") or "")
    if not (1 <= len(name) <= 32 and name == name.lower()):
        raise invalid("name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
    if not 1 <= len(str(cmd.get("description") or "")) <= 100:
        raise invalid("description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    for option in cmd.get("options") or []:
        _check_command({**option, "options": option.get("options") if option.get("type") in (1, 2) else None})


def _check_message(body: dict[str, Any], files: dict[str, bytes], *, edit: bool = False) -> None:
    content = body.get("content") or ""
    if len(content) > MAX_CONTENT:
        raise invalid("content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length.")
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        raise invalid("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    for i, embed in enumerate(embeds):
        total += _check_embed(i, embed)
    if total > 6000:
        raise invalid("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
    _check_components(body.get("components") or [])
    if not edit and not (content or embeds or files or body.get("components") or body.get("sticker_ids")):
        raise DiscordError(400, 50006, "Cannot send an empty message")


def _check_embed(i: int, embed: dict[str, Any]) -> int:
    size = 0
    for key, limit in EMBED_LIMITS.items():
        value = embed.get(key) or ""
        if len(value) > limit:
            raise invalid(f"embeds.{i}.{key}", "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
        size += len(value)
    fields = embed.get("fields") or []
    if len(fields) > 25:
        raise invalid(f"embeds.{i}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    for j, f in enumerate(fields):
        name, value = str(f.get("name") or ""), str(f.get("value") or "")
        if not 1 <= len(name) <= 256 or not 1 <= len(value) <= 1024:
            raise invalid(f"embeds.{i}.fields.{j}", "BASE_TYPE_BAD_LENGTH",
                          "Field names must be 1-256 and values 1-1024 in length.")
        size += len(name) + len(value)
    footer = (embed.get("footer") or {}).get("text") or ""
    if len(footer) > 2048:
        raise invalid(f"embeds.{i}.footer.text", "BASE_TYPE_MAX_LENGTH", "Must be 2048 or fewer in length.")
    return size + len(footer)


def _check_components(rows: list[dict[str, Any]]) -> None:
    if len(rows) > 5:
        raise invalid("components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
    for i, row in enumerate(rows):
        items = row.get("components") or []
        if row.get("type") != 1 or not 1 <= len(items) <= 5:
            raise invalid(f"components.{i}", "COMPONENT_LAYOUT_WIDTH_EXCEEDED", "Action rows hold 1 to 5 buttons.")
        for j, item in enumerate(items):
            custom_id = item.get("custom_id")
            if item.get("type") == 2 and item.get("style") != 5 and not (custom_id and len(custom_id) <= 100):
                raise invalid(f"components.{i}.components.{j}.custom_id", "BASE_TYPE_BAD_LENGTH",
                              "Must be between 1 and 100 in length.")
            if len(item.get("label") or "") > 80:
                raise invalid(f"components.{i}.components.{j}.label", "BASE_TYPE_MAX_LENGTH",
                              "Must be 80 or fewer in length.")
