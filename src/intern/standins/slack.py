"""The Slack side of the wire, on loopback.

`SlackStandIn` answers the Slack Web API the way slack_sdk's AsyncWebClient calls it
(`base_url=<url>/api/`): arguments in the query string, a form body or a JSON body; the bot token in
`Authorization: Bearer` or a `token` argument; `{"ok": false, "error": ...}` with HTTP 200 for API
errors and HTTP 429 with `Retry-After` when rate limited. It keeps what the app posted, per channel
and thread, for tests to read.

`SlackEventSender` plays Slack calling the app: correctly signed requests to `/slack/events` with
Events API envelopes, interactive payloads and slash commands, built by the functions below from the
payload shapes Slack sends (see shared/reference/slack_payloads).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from intern.standins.base import StandIn

DEFAULT_TEAM = "T0STANDIN"
DEFAULT_APP = "A0STANDIN"
DEFAULT_BOT_USER = "U0INTERN"
DEFAULT_BOT_ID = "B0INTERN"
DEFAULT_USER = "U0ALICE"
DEFAULT_CHANNEL = "C0GENERAL"

_ts_lock = threading.Lock()
_last_ts_micros = 0


def new_ts() -> str:
    """A Slack message timestamp ("seconds.micros"), strictly increasing within this process."""
    global _last_ts_micros
    with _ts_lock:
        _last_ts_micros = max(int(time.time() * 1_000_000), _last_ts_micros + 1)
        micros = _last_ts_micros
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _new_id(prefix: str, length: int = 10) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


# --- Web API stand-in -------------------------------------------------------------------------


@dataclass
class Workspace:
    team_id: str
    token: str
    team_name: str = "Stand-in Team"
    domain: str = "standin"
    bot_user_id: str = DEFAULT_BOT_USER
    bot_id: str = DEFAULT_BOT_ID
    bot_name: str = "intern"
    app_id: str = DEFAULT_APP
    scope: str = ("app_mentions:read,chat:write,channels:history,groups:history,im:history,reactions:write,"
                  "users:read,usergroups:read,files:write,commands")


@dataclass
class PostedMessage:
    """A message the app posted (or an ephemeral one, or a file share), in its current state."""

    method: str
    channel: str
    ts: str
    team_id: str
    user: str
    bot_id: str
    text: str = ""
    blocks: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    reply_broadcast: bool = False
    metadata: dict[str, Any] | None = None
    ephemeral_user: str | None = None
    deleted: bool = False
    files: list[dict[str, Any]] = field(default_factory=list)
    edits: list[dict[str, Any]] = field(default_factory=list)  # earlier versions, oldest first

    def to_api(self, workspace: Workspace) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message", "text": self.text, "user": self.user, "bot_id": self.bot_id,
            "app_id": workspace.app_id, "ts": self.ts, "team": self.team_id, "blocks": self.blocks,
            "bot_profile": {"id": self.bot_id, "app_id": workspace.app_id, "name": workspace.bot_name,
                            "team_id": self.team_id, "deleted": False},
        }
        if self.attachments:
            message["attachments"] = self.attachments
        if self.thread_ts:
            message["thread_ts"] = self.thread_ts
        if self.files:
            message["files"] = self.files
        if self.metadata:
            message["metadata"] = self.metadata
        if self.edits:
            message["edited"] = {"user": self.user, "ts": self.edits[-1]["edited_ts"]}
        return message


@dataclass
class UploadedFile:
    file_id: str
    filename: str
    length: int
    content: bytes | None = None
    title: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False


class SlackApiError(Exception):
    """An `{"ok": false}` answer; raised inside handlers."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


Params = dict[str, Any]
Handler = Callable[[Workspace | None, Params, web.Request], Awaitable[dict[str, Any]] | dict[str, Any]]
JSON_ARGUMENTS = ("blocks", "attachments", "files", "metadata", "view")
MAX_TEXT = 40_000


@dataclass
class SlackStandIn(StandIn):
    token: str = "xoxb-standin-0000-intern"
    team_id: str = DEFAULT_TEAM
    bot_user_id: str = DEFAULT_BOT_USER
    bot_id: str = DEFAULT_BOT_ID
    client_id: str = "1111.2222"
    client_secret: str = "standin-client-secret"
    auto_users: bool = True  # users.info answers for any U…/W… id, as a member of the token's workspace
    auto_channels: bool = True  # conversations.info answers for any C…/G…/D… id
    workspaces: dict[str, Workspace] = field(default_factory=dict)  # token -> workspace
    messages: list[PostedMessage] = field(default_factory=list)
    reactions: list[tuple[str, str, str]] = field(default_factory=list)  # (channel, ts, name)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)  # user id -> published home view
    files: dict[str, UploadedFile] = field(default_factory=dict)
    oauth_codes: dict[str, str] = field(default_factory=dict)  # code -> team id
    app_token: str = "xapp-1-A0STANDIN-1111-standinappleveltoken"
    socket_connections: list[web.WebSocketResponse] = field(default_factory=list)
    socket_acks: dict[str, dict[str, Any]] = field(default_factory=dict)  # envelope id -> the ack
    _faults: dict[str, list[tuple[str, Any, dict[str, str] | None]]] = field(default_factory=dict)
    reply_delays: dict[str, float] = field(default_factory=dict)  # method -> seconds (see `delay_replies`)
    statuses: list[tuple[str, str, str, str]] = field(default_factory=list)  # (team, channel, thread, status)
    modals: list[dict[str, Any]] = field(default_factory=list)
    used_triggers: set[str] = field(default_factory=set)

    def setup(self, app: web.Application) -> None:
        self.workspaces.setdefault(self.token, Workspace(self.team_id, self.token, bot_user_id=self.bot_user_id,
                                                         bot_id=self.bot_id))
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/v1/{upload_id}", self._upload)
        app.router.add_get("/socket-mode/link", self._socket_mode)

    # --- test controls -------------------------------------------------------------------

    @property
    def workspace(self) -> Workspace:
        """The workspace of the stand-in's own token (change its fields to reconfigure auth.test)."""
        return self.workspaces[self.token]

    def add_workspace(self, team_id: str, *, team_name: str = "Other Team", bot_user_id: str = "U0INTERN2",
                      bot_id: str = "B0INTERN2") -> str:
        """Another workspace with the app installed; returns its bot token."""
        token = f"xoxb-standin-{team_id.lower()}-{secrets.token_hex(6)}"
        self.workspaces[token] = Workspace(team_id, token, team_name=team_name, domain=team_id.lower(),
                                           bot_user_id=bot_user_id, bot_id=bot_id)
        return token

    def add_oauth_code(self, code: str, team_id: str) -> None:
        """`oauth.v2.access` with this code installs the app in `team_id` (once)."""
        self.oauth_codes[code] = team_id

    def add_user(self, user_id: str, name: str, *, real_name: str | None = None, team_id: str | None = None,
                 is_bot: bool = False, is_admin: bool = False, deleted: bool = False,
                 email: str | None = None) -> None:
        self.users[user_id] = _user_object(user_id, name, real_name or name.title(), team_id or self.team_id,
                                           is_bot=is_bot, is_admin=is_admin, deleted=deleted, email=email)

    def add_usergroup(self, usergroup_id: str, members: list[str]) -> None:
        self.usergroups[usergroup_id] = list(members)

    def add_channel(self, channel_id: str, name: str, *, is_private: bool = False, is_im: bool = False,
                    is_archived: bool = False, is_member: bool = True) -> None:
        self.channels[channel_id] = _channel_object(channel_id, name, is_private=is_private, is_im=is_im,
                                                    is_archived=is_archived, is_member=is_member)

    def inject_rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """The next `times` calls of `method` get HTTP 429 with `Retry-After: retry_after`."""
        self._faults.setdefault(method, []).extend([("ratelimited", retry_after, None)] * times)

    def delay_replies(self, method: str, seconds: float) -> None:
        """A slow network: `method` takes effect at once (a posted message is visible, and clickable) but
        its answer reaches the app `seconds` later."""
        self.reply_delays[method] = seconds

    def inject_error(self, method: str, error: str, times: int = 1, *, where: dict[str, str] | None = None) -> None:
        """The next `times` calls of `method` (with `where`: only those whose arguments include these
        values, e.g. one message's `ts`) answer `{"ok": false, "error": error}`."""
        self._faults.setdefault(method, []).extend([("error", error, where)] * times)

    # --- reading what the app did ----------------------------------------------------------

    def posted(self, channel: str | None = None, thread_ts: str | None = None, *,
               include_deleted: bool = False) -> list[PostedMessage]:
        """Visible (non-ephemeral) messages, oldest first; with `thread_ts`, that thread's root and replies."""
        return [m for m in self.messages
                if m.ephemeral_user is None and (include_deleted or not m.deleted)
                and (channel is None or m.channel == channel)
                and (thread_ts is None or thread_ts in (m.thread_ts, m.ts))]

    def texts(self, channel: str | None = None, thread_ts: str | None = None) -> list[str]:
        return [m.text for m in self.posted(channel, thread_ts)]

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[PostedMessage]:
        return [m for m in self.messages if m.ephemeral_user is not None
                and (channel is None or m.channel == channel) and (user is None or m.ephemeral_user == user)]

    def message(self, channel: str, ts: str) -> PostedMessage | None:
        return next((m for m in self.messages if m.channel == channel and m.ts == ts), None)

    def method_calls(self, method: str) -> list[Params]:
        """The arguments of every call of a Web API method (query, form and JSON merged)."""
        return [_merge_recorded(r) for r in self.calls(f"/api/{method}")]

    async def wait_for_posts(self, count: int, channel: str | None = None, thread_ts: str | None = None,
                             seconds: float = 10.0) -> list[PostedMessage]:
        await self.wait_for(lambda: len(self.posted(channel, thread_ts)) >= count, seconds)
        return self.posted(channel, thread_ts)

    # --- Socket Mode ---------------------------------------------------------------------

    async def _socket_mode(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.socket_connections.append(ws)
        await ws.send_json({"type": "hello", "num_connections": len(self.socket_connections),
                            "debug_info": {"host": "standin", "approximate_connection_time": 18060},
                            "connection_info": {"app_id": DEFAULT_APP}})
        try:
            async for msg in ws:
                if msg.type == web.WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    if "envelope_id" in data:
                        self.socket_acks[data["envelope_id"]] = data
        finally:
            self.socket_connections.remove(ws)
        return ws

    async def socket_send(self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0) -> str:
        """Deliver an envelope over the open Socket Mode connection, as Slack does; returns its id.

        `kind` is `events_api` (payload: an event_callback envelope), `interactive` or `slash_commands`."""
        await self.wait_for(lambda: bool(self.socket_connections), 10.0)
        envelope_id = str(uuid.uuid4())
        await self.socket_connections[-1].send_json({
            "envelope_id": envelope_id, "type": kind, "payload": payload,
            "accepts_response_payload": kind != "events_api", "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else ""})
        return envelope_id

    # --- serving -------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _request_params(request)
        fault = self._take_fault(method, params)
        if fault is not None:
            return fault
        if method == "apps.connections.open":
            if _presented_token(request, params) != self.app_token:
                return web.json_response({"ok": False, "error": "invalid_auth"})
            return web.json_response({"ok": True, "url": f"ws://{self.host}:{self.port}/socket-mode/link"})
        handler = self._handlers().get(method)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method", "req_method": method})
        workspace = self._authenticate(request, params)
        if workspace is None and method != "oauth.v2.access":
            error = "not_authed" if not _presented_token(request, params) else "invalid_auth"
            return web.json_response({"ok": False, "error": error})
        try:
            result = handler(workspace, params, request)
            if not isinstance(result, dict):
                result = await result
        except SlackApiError as exc:
            return web.json_response({"ok": False, "error": exc.error, **exc.extra})
        if self.reply_delays.get(method):
            await asyncio.sleep(self.reply_delays[method])
        return web.json_response({"ok": True, **result})

    def _take_fault(self, method: str, params: Params) -> web.Response | None:
        queue = self._faults.get(method)
        index = next((i for i, (_, _, where) in enumerate(queue or [])
                      if not where or all(str(params.get(k)) == v for k, v in where.items())), None)
        if queue is None or index is None:
            return None
        kind, value, _ = queue.pop(index)
        if kind == "ratelimited":
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": str(value)})
        return web.json_response({"ok": False, "error": value})

    def _authenticate(self, request: web.Request, params: Params) -> Workspace | None:
        token = _presented_token(request, params)
        return self.workspaces.get(token) if token else None

    def _handlers(self) -> dict[str, Handler]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.delete": self._delete,
            "chat.getPermalink": self._permalink,
            "reactions.add": self._reactions_add,
            "users.info": self._users_info,
            "usergroups.users.list": self._usergroup_users,
            "conversations.info": self._conversations_info,
            "views.publish": self._views_publish,
            "oauth.v2.access": self._oauth_access,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
            "assistant.threads.setStatus": self._set_status,
            "views.open": self._views_open,
        }

    # --- methods -------------------------------------------------------------------------

    def _auth_test(self, ws: Workspace | None, params: Params, request: web.Request) -> dict[str, Any]:
        assert ws is not None
        return {"url": f"https://{ws.domain}.slack.com/", "team": ws.team_name, "user": ws.bot_name,
                "team_id": ws.team_id, "user_id": ws.bot_user_id, "bot_id": ws.bot_id,
                "is_enterprise_install": False}

    def _new_message(self, ws: Workspace, params: Params, method: str) -> PostedMessage:
        channel = _required(params, "channel", "channel_not_found")
        text = str(params.get("text") or "")
        blocks = params.get("blocks") or []
        attachments = params.get("attachments") or []
        if not text and not blocks and not attachments:
            raise SlackApiError("no_text")
        if len(text) > MAX_TEXT:
            raise SlackApiError("msg_too_long")
        _validate_blocks(blocks)
        return PostedMessage(method=method, channel=channel, ts=new_ts(), team_id=ws.team_id,
                             user=ws.bot_user_id, bot_id=ws.bot_id, text=text, blocks=_with_block_ids(blocks),
                             attachments=attachments, thread_ts=params.get("thread_ts") or None,
                             reply_broadcast=_truthy(params.get("reply_broadcast")),
                             metadata=params.get("metadata"))

    def _post_message(self, ws: Workspace | None, params: Params, request: web.Request) -> dict[str, Any]:
        assert ws is not None
        message = self._new_message(ws, params, "chat.postMessage")
        self.messages.append(message)
        return {"channel": message.channel, "ts": message.ts, "message": message.to_api(ws)}

    def _post_ephemeral(self, ws: Workspace | None, params: Params, request: web.Request) -> dict[str, Any]:
        assert ws is not None
        user = _required(params, "user", "user_not_in_channel")
        message = self._new_message(ws, params, "chat.postEphemeral")
        message.ephemeral_user = user
        self.messages.append(message)
        return {"message_ts": message.ts}

    def _own_message(self, ws: Workspace, params: Params, ts_key: str = "ts") -> PostedMessage:
        channel = _required(params, "channel", "channel_not_found")
        ts = _required(params, ts_key, "message_not_found")
        message = self.message(channel, ts)
        if message is None or message.deleted or message.ephemeral_user is not None:
            raise SlackApiError("message_not_found")
        if message.team_id != ws.team_id or message.bot_id != ws.bot_id:
            raise SlackApiError("cant_update_message")
        return message

    def _update(self, ws: Workspace | None, params: Params, request: web.Request) -> dict[str, Any]:
        assert ws is not None
        message = self._own_message(ws, params)
        text = params.get("text")
        if text is not None and len(str(text)) > MAX_TEXT:
            raise SlackApiError("msg_too_long")
        blocks = params.get("blocks")
        if blocks is not None:
            _validate_blocks(blocks)
        message.edits.append({"text": message.text, "blocks": message.blocks,
                              "attachments": message.attachments, "edited_ts": new_ts()})
        if text is not None:
            message.text = str(text)
        if blocks is not None:
            message.blocks = _with_block_ids(blocks)
        if params.get("attachments") is not None:
            message.attachments = params["attachments"]
        return {"channel": message.channel, "ts": message.ts, "text": message.text,
                "message": message.to_api(ws)}

    def _delete(self, ws: Workspace | None, params: Params, request: web.Request) -> dict[str, Any]:
        assert ws is not None
        message = self._own_message(ws, params)
        message.deleted = True
        return {"channel": message.channel, "ts": message.ts}

    def _permalink(self, ws: Workspace | None, params: Params, request: web.Request) -> dict[str, Any]:
        assert ws is not None
        channel = _required(params, "channel", "channel_not_found")
        ts = _required(params, "message_ts", "message_not_found")
        return {"channel": channel,
                "permalink": f"https://{ws.domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"}

    def _reactions_add(self, ws: Workspace | None, params: Params, request: web.Request) -> dict[str, Any]:
        channel = _required(params, "channel", "channel_not_found")
        ts = _required(params, "timestamp", "message_not_found")
        name = _required(params, "name", "invalid_name")
        if (channel, ts, name) in self.reactions:
            raise SlackApiError("already_reacted")
        self.reactions.append((channel, ts, name))
        return {}

    def _users_info(self, ws: Workspace | None, params: Params, request: web.Request) -> dict[str, Any]:
        assert ws is not None
        user_id = _required(params, "user", "user_not_found")
        if user_id in self.users:
            return {"user": self.users[user_id]}
        if self.auto_users and user_id[:1] in ("U", "W"):
            return {"user": _user_object(user_id, user_id.lower(), f"User {user_id}", ws.team_id)}
        raise SlackApiError("user_not_found")

    def _usergroup_users(self, ws: Workspace | None, params: Params, request: web.Request) -> dict[str, Any]:
        group = _required(params, "usergroup", "no_such_subteam")
        if group not in self.usergroups:
            raise SlackApiError("no_such_subteam")
        return {"users": list(self.usergroups[group])}

    def _conversations_info(self, ws: Workspace | None, params: Params, request: web.Request) -> dict[str, Any]:
        channel = _required(params, "channel", "channel_not_found")
        if channel in self.channels:
            return {"channel": self.channels[channel]}
        if self.auto_channels and channel[:1] in ("C", "G", "D"):
            return {"channel": _channel_object(channel, channel.lower(), is_private=channel[0] == "G",
                                               is_im=channel[0] == "D")}
        raise SlackApiError("channel_not_found")

    def _views_publish(self, ws: Workspace | None, params: Params, request: web.Request) -> dict[str, Any]:
        assert ws is not None
        user_id = _required(params, "user_id", "user_not_found")
        view = params.get("view")
        if not isinstance(view, dict) or view.get("type") != "home":
            raise SlackApiError("invalid_arguments")
        _validate_blocks(view.get("blocks") or [], limit=100)
        published = {"id": _new_id("V"), "team_id": ws.team_id, "type": "home",
                     "blocks": _with_block_ids(view.get("blocks") or []),
                     "private_metadata": view.get("private_metadata", ""),
                     "callback_id": view.get("callback_id", ""), "hash": secrets.token_hex(8),
                     "app_id": ws.app_id, "bot_id": ws.bot_id}
        self.views[user_id] = published
        return {"view": published}

    def _set_status(self, ws: Workspace | None, params: Params, request: web.Request) -> dict[str, Any]:
        """`assistant.threads.setStatus`: accepted in channel threads with `chat:write` (Slack's March 2026
        change); the status ("" clears it) is kept per thread, as the app would see it shown."""
        assert ws is not None
        channel = _required(params, "channel_id", "channel_not_found")
        thread_ts = _required(params, "thread_ts", "invalid_thread_ts")
        if "status" not in params:
            raise SlackApiError("invalid_arguments", response_metadata={
                "messages": ["[ERROR] missing required field: status"]})
        if not re.fullmatch(r"\d{10}\.\d{6}", str(thread_ts)):
            raise SlackApiError("invalid_thread_ts")
        if len(params.get("loading_messages") or []) > 10:
            raise SlackApiError("invalid_arguments")
        self.statuses.append((ws.team_id, channel, str(thread_ts), str(params.get("status") or "")))
        return {}

    def status_of(self, channel: str, thread_ts: str) -> list[str]:
        """Every status set on a thread, in order ("" when it was cleared)."""
        return [status for _, c, t, status in self.statuses if c == channel and t == thread_ts]

    def _views_open(self, ws: Workspace | None, params: Params, request: web.Request) -> dict[str, Any]:
        assert ws is not None
        trigger = _required(params, "trigger_id", "invalid_trigger_id")
        if trigger in self.used_triggers:
            raise SlackApiError("expired_trigger_id")
        view = params.get("view")
        if not isinstance(view, dict) or view.get("type") != "modal":
            raise SlackApiError("invalid_arguments")
        for key, limit in (("title", 24), ("submit", 24), ("close", 24)):
            if key in view:
                errors = _text_errors(view[key], limit, f"/view/{key}")
                if errors:
                    raise SlackApiError("invalid_arguments", response_metadata={"messages": errors})
        if len(str(view.get("private_metadata", ""))) > 3000:
            raise SlackApiError("invalid_arguments")
        _validate_blocks(view.get("blocks") or [], limit=100)
        self.used_triggers.add(str(trigger))
        opened = {"id": _new_id("V"), "team_id": ws.team_id, "type": "modal",
                  "blocks": _with_block_ids(view.get("blocks") or []),
                  "private_metadata": view.get("private_metadata", ""), "callback_id": view.get("callback_id", ""),
                  "title": view.get("title"), "hash": secrets.token_hex(8), "app_id": ws.app_id, "bot_id": ws.bot_id,
                  "state": {"values": {}}}
        self.modals.append(opened)
        return {"view": opened}

    def _oauth_access(self, ws: Workspace | None, params: Params, request: web.Request) -> dict[str, Any]:
        client_id, client_secret = _client_credentials(request, params)
        if client_id != self.client_id:
            raise SlackApiError("invalid_client_id")
        if client_secret != self.client_secret:
            raise SlackApiError("bad_client_secret")
        team_id = self.oauth_codes.pop(str(params.get("code") or ""), None)
        if team_id is None:
            raise SlackApiError("invalid_code")
        token = self.add_workspace(team_id, team_name=f"Team {team_id}",
                                   bot_user_id=f"U0BOT{team_id[-4:]}", bot_id=f"B0BOT{team_id[-4:]}")
        installed = self.workspaces[token]
        return {"app_id": installed.app_id, "authed_user": {"id": DEFAULT_USER}, "scope": installed.scope,
                "token_type": "bot", "access_token": token, "bot_user_id": installed.bot_user_id,
                "team": {"id": team_id, "name": installed.team_name}, "enterprise": None,
                "is_enterprise_install": False}

    def _get_upload_url(self, ws: Workspace | None, params: Params, request: web.Request) -> dict[str, Any]:
        filename = str(params.get("filename") or "")
        try:
            length = int(params.get("length") or 0)
        except (TypeError, ValueError):
            length = 0
        if not filename or length <= 0:
            raise SlackApiError("invalid_arguments")
        file_id = _new_id("F")
        self.files[file_id] = UploadedFile(file_id, filename, length)
        return {"upload_url": f"{self.url}/upload/v1/{file_id}", "file_id": file_id}

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self.files.get(request.match_info["upload_id"])
        if upload is None:
            return web.Response(status=404, text="Not Found")
        upload.content = await request.read()
        return web.Response(text=f"OK - {len(upload.content)}", content_type="text/plain")

    def _complete_upload(self, ws: Workspace | None, params: Params, request: web.Request) -> dict[str, Any]:
        assert ws is not None
        wanted = params.get("files")
        if not isinstance(wanted, list) or not wanted:
            raise SlackApiError("invalid_arguments")
        completed = [self._complete_one(ws, item, params) for item in wanted]
        channel = params.get("channel_id") or (str(params.get("channels") or "").split(",")[0] or None)
        if channel:
            self.messages.append(PostedMessage(
                method="files.completeUploadExternal", channel=channel, ts=new_ts(), team_id=ws.team_id,
                user=ws.bot_user_id, bot_id=ws.bot_id, text=str(params.get("initial_comment") or ""),
                thread_ts=params.get("thread_ts") or None, files=completed))
        return {"files": completed}

    def _complete_one(self, ws: Workspace, item: dict[str, Any], params: Params) -> dict[str, Any]:
        upload = self.files.get(str(item.get("id")))
        if upload is None or upload.content is None:
            raise SlackApiError("file_not_found")
        upload.title = item.get("title") or upload.filename
        upload.channel = params.get("channel_id")
        upload.thread_ts = params.get("thread_ts")
        upload.initial_comment = params.get("initial_comment")
        upload.completed = True
        return {"id": upload.file_id, "created": int(time.time()), "timestamp": int(time.time()),
                "name": upload.filename, "title": upload.title, "mimetype": _mimetype(upload.filename),
                "filetype": upload.filename.rsplit(".", 1)[-1] if "." in upload.filename else "text",
                "user": ws.bot_user_id, "user_team": ws.team_id, "size": len(upload.content),
                "url_private": f"{self.url}/files-pri/{ws.team_id}-{upload.file_id}/{upload.filename}",
                "permalink": f"https://{ws.domain}.slack.com/files/{ws.bot_user_id}/{upload.file_id}"}


# --- request parsing and objects ----------------------------------------------------------


async def _request_params(request: web.Request) -> Params:
    params: Params = dict(request.query)
    body = await request.read()
    if body and request.content_type == "application/json":
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            params.update(decoded)
    elif body and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return _decode_json_arguments(params)


def _decode_json_arguments(params: Params) -> Params:
    """Form and query callers send structured arguments as JSON strings."""
    for key in JSON_ARGUMENTS:
        value = params.get(key)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            try:
                params[key] = json.loads(value)
            except ValueError:
                pass
    return params


def _merge_recorded(recorded: Any) -> Params:
    params: Params = dict(recorded.query)
    if isinstance(recorded.json, dict):
        params.update(recorded.json)
    elif recorded.body and _header(recorded.headers, "Content-Type").startswith("application/x-www-form-urlencoded"):
        params.update(dict(urllib.parse.parse_qsl(recorded.body.decode(), keep_blank_values=True)))
    return _decode_json_arguments(params)


def _header(headers: dict[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), "")


def _presented_token(request: web.Request, params: Params) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer "):].strip()
    token = params.get("token")
    return str(token) if token else None


def _client_credentials(request: web.Request, params: Params) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            decoded = base64.b64decode(header[len("Basic "):]).decode()
        except ValueError:
            return "", ""
        client_id, _, client_secret = decoded.partition(":")
        return client_id, client_secret
    return str(params.get("client_id") or ""), str(params.get("client_secret") or "")


def _required(params: Params, key: str, error: str) -> str:
    value = params.get(key)
    if not value:
        raise SlackApiError(error)
    return str(value)


def _truthy(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def _mimetype(filename: str) -> str:
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return {"py": "text/x-python", "json": "application/json", "md": "text/markdown",
            "png": "image/png", "csv": "text/csv"}.get(suffix, "text/plain")


def _user_object(user_id: str, name: str, real_name: str, team_id: str, *, is_bot: bool = False,
                 is_admin: bool = False, deleted: bool = False, email: str | None = None) -> dict[str, Any]:
    profile: dict[str, Any] = {"real_name": real_name, "display_name": name, "real_name_normalized": real_name,
                               "display_name_normalized": name, "team": team_id}
    if email:
        profile["email"] = email
    return {"id": user_id, "team_id": team_id, "name": name, "deleted": deleted, "real_name": real_name,
            "tz": "Europe/Paris", "tz_label": "Central European Time", "tz_offset": 3600,
            "is_admin": is_admin, "is_owner": False, "is_primary_owner": False, "is_restricted": False,
            "is_ultra_restricted": False, "is_bot": is_bot, "is_app_user": False, "updated": int(time.time()),
            "profile": profile}


def _channel_object(channel_id: str, name: str, *, is_private: bool = False, is_im: bool = False,
                    is_archived: bool = False, is_member: bool = True) -> dict[str, Any]:
    return {"id": channel_id, "name": name, "is_channel": not is_private and not is_im,
            "is_group": is_private and not is_im, "is_im": is_im, "is_mpim": False, "is_private": is_private,
            "is_archived": is_archived, "is_general": False, "is_shared": False, "is_ext_shared": False,
            "is_org_shared": False, "is_member": is_member, "created": 1_600_000_000, "creator": DEFAULT_USER,
            "name_normalized": name, "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0}}


# --- Block Kit checks (the limits Slack enforces, with its error format) -------------------

_BLOCK_TYPES = frozenset({"section", "divider", "header", "context", "actions", "image", "input", "rich_text",
                          "markdown", "file", "video", "table", "context_actions"})
_TEXT_LIMITS = {"section": 3000, "header": 150}


def _validate_blocks(blocks: Any, limit: int = 50) -> None:
    errors = _block_errors(blocks, limit)
    if errors:
        raise SlackApiError("invalid_blocks", errors=errors,
                            response_metadata={"messages": [f"[ERROR] {e}" for e in errors]})


def _block_errors(blocks: Any, limit: int) -> list[str]:
    if not isinstance(blocks, list):
        return ["must be an array [json-pointer:/blocks]"]
    if len(blocks) > limit:
        return [f"no more than {limit} items allowed [json-pointer:/blocks]"]
    errors: list[str] = []
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        errors.extend(_one_block_errors(block, f"/blocks/{index}", block_ids))
    return errors


def _one_block_errors(block: Any, pointer: str, block_ids: set[str]) -> list[str]:
    if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
        return [f"must provide a valid block type [json-pointer:{pointer}/type]"]
    errors: list[str] = []
    block_id = block.get("block_id")
    if block_id is not None:
        if len(str(block_id)) > 255:
            errors.append(f"must be less than 256 characters [json-pointer:{pointer}/block_id]")
        if block_id in block_ids:
            errors.append(f"must be unique [json-pointer:{pointer}/block_id]")
        block_ids.add(block_id)
    kind = block["type"]
    text = block.get("text")
    if kind in _TEXT_LIMITS:
        errors.extend(_text_errors(text, _TEXT_LIMITS[kind], f"{pointer}/text", required=kind == "header"
                                   or not block.get("fields")))
    if kind == "section" and block.get("fields"):
        fields = block["fields"]
        if len(fields) > 10:
            errors.append(f"no more than 10 items allowed [json-pointer:{pointer}/fields]")
        for i, item in enumerate(fields):
            errors.extend(_text_errors(item, 2000, f"{pointer}/fields/{i}"))
    if kind in ("actions", "context"):
        errors.extend(_elements_errors(block, pointer, 25 if kind == "actions" else 10))
    if kind == "context_actions":
        errors.extend(_context_actions_errors(block, pointer))
    return errors


def _context_actions_errors(block: dict[str, Any], pointer: str) -> list[str]:
    """`context_actions`: at most 5 feedback_buttons / icon_button elements; each feedback button has
    a plain_text text (75 characters at most) and a value (2000)."""
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        return [f"must provide an array with at least 1 item [json-pointer:{pointer}/elements]"]
    if len(elements) > 5:
        return [f"no more than 5 items allowed [json-pointer:{pointer}/elements]"]
    errors: list[str] = []
    for i, element in enumerate(elements):
        where = f"{pointer}/elements/{i}"
        if not isinstance(element, dict) or element.get("type") not in ("feedback_buttons", "icon_button"):
            errors.append(f"must provide a valid element type [json-pointer:{where}/type]")
            continue
        if element["type"] == "feedback_buttons":
            for side in ("positive_button", "negative_button"):
                button = element.get(side)
                if not isinstance(button, dict):
                    errors.append(f"must provide an object [json-pointer:{where}/{side}]")
                    continue
                text = button.get("text")
                if not isinstance(text, dict) or text.get("type") != "plain_text":
                    errors.append(f"must provide a plain_text object [json-pointer:{where}/{side}/text]")
                else:
                    errors.extend(_text_errors(text, 75, f"{where}/{side}/text"))
                if not button.get("value") or len(str(button.get("value"))) > 2000:
                    errors.append(f"must be 1 to 2000 characters [json-pointer:{where}/{side}/value]")
        if len(str(element.get("action_id", ""))) > 255:
            errors.append(f"must be less than 256 characters [json-pointer:{where}/action_id]")
    return errors


def _text_errors(text: Any, limit: int, pointer: str, required: bool = True) -> list[str]:
    if text is None:
        return [f"must provide an object [json-pointer:{pointer}]"] if required else []
    if not isinstance(text, dict) or text.get("type") not in ("plain_text", "mrkdwn"):
        return [f"must provide a valid text object [json-pointer:{pointer}]"]
    value = str(text.get("text", ""))
    if not value:
        return [f"must be more than 0 characters [json-pointer:{pointer}/text]"]
    if len(value) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{pointer}/text]"]
    return []


def _elements_errors(block: dict[str, Any], pointer: str, limit: int) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        return [f"must provide an array with at least 1 item [json-pointer:{pointer}/elements]"]
    if len(elements) > limit:
        return [f"no more than {limit} items allowed [json-pointer:{pointer}/elements]"]
    errors: list[str] = []
    for i, element in enumerate(elements):
        where = f"{pointer}/elements/{i}"
        if element.get("type") == "button":
            errors.extend(_text_errors(element.get("text"), 75, f"{where}/text"))
            if len(str(element.get("value", ""))) > 2000:
                errors.append(f"must be less than 2001 characters [json-pointer:{where}/value]")
        if len(str(element.get("action_id", ""))) > 255:
            errors.append(f"must be less than 256 characters [json-pointer:{where}/action_id]")
    return errors


def _with_block_ids(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Slack stores a block_id on every block, generating one where the app gave none."""
    return [block if "block_id" in block else {**block, "block_id": secrets.token_urlsafe(3)} for block in blocks]


# --- the app side: signed requests to /slack/events -----------------------------------------


def sign(signing_secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature over `v0:{timestamp}:{body}`."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class SentRequest:
    status: int
    headers: dict[str, str]
    text: str
    payload: Any  # what was sent: the envelope, interactive payload or form fields

    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


@dataclass
class SlackEventSender:
    """Sends requests to an app as Slack does: signed, with Slack's headers and body encodings."""

    app_url: str
    signing_secret: str
    path: str = "/slack/events"
    team_id: str = DEFAULT_TEAM
    api_app_id: str = DEFAULT_APP
    bot_user_id: str = DEFAULT_BOT_USER
    timeout: float = 30.0

    async def post(self, body: bytes, content_type: str, *, retry_num: int | None = None,
                   retry_reason: str | None = None, timestamp: int | None = None,
                   signature: str | None = None, payload: Any = None) -> SentRequest:
        """Low level: any body; `timestamp`/`signature` override the correct ones (to test rejection)."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp,
                   "X-Slack-Signature": signature or sign(self.signing_secret, stamp, body),
                   "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        url = self.app_url.rstrip("/") + self.path
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session, \
                session.post(url, data=body, headers=headers) as response:
            return SentRequest(response.status, dict(response.headers), await response.text(), payload)

    async def send_event(self, event: dict[str, Any], *, event_id: str | None = None,
                         retry_num: int | None = None, retry_reason: str | None = None,
                         team_id: str | None = None) -> SentRequest:
        """Wraps an event (see the builders below) in an `event_callback` envelope and sends it."""
        envelope = event_callback(event, team_id=team_id or self.team_id, api_app_id=self.api_app_id,
                                  bot_user_id=self.bot_user_id, event_id=event_id)
        return await self.send_envelope(envelope, retry_num=retry_num, retry_reason=retry_reason)

    async def send_envelope(self, envelope: dict[str, Any], *, retry_num: int | None = None,
                            retry_reason: str | None = None) -> SentRequest:
        """Sends an envelope as is: send a returned `.payload` again with `retry_num` to play a retry."""
        body = json.dumps(envelope).encode()
        return await self.post(body, "application/json", retry_num=retry_num, retry_reason=retry_reason,
                               payload=envelope)

    async def send_interaction(self, payload: dict[str, Any]) -> SentRequest:
        """block_actions and other interactive payloads travel as the form field `payload=<json>`."""
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post(body, "application/x-www-form-urlencoded", payload=payload)

    async def send_slash_command(self, fields: dict[str, str]) -> SentRequest:
        body = urllib.parse.urlencode(fields).encode()
        return await self.post(body, "application/x-www-form-urlencoded", payload=fields)

    async def send_url_verification(self, challenge: str) -> SentRequest:
        payload = {"token": "verification-token", "challenge": challenge, "type": "url_verification"}
        return await self.post(json.dumps(payload).encode(), "application/json", payload=payload)


# --- payload builders --------------------------------------------------------------------------


def event_callback(event: dict[str, Any], *, team_id: str = DEFAULT_TEAM, api_app_id: str = DEFAULT_APP,
                   bot_user_id: str = DEFAULT_BOT_USER, event_id: str | None = None) -> dict[str, Any]:
    """The Events API envelope around one event."""
    return {
        "token": "verification-token", "team_id": team_id, "api_app_id": api_app_id, "event": event,
        "type": "event_callback", "event_id": event_id or _new_id("Ev"), "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": team_id, "user_id": bot_user_id, "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
        "event_context": f"4-{secrets.token_urlsafe(24)}",
    }


def mention_event(text: str, *, user: str = DEFAULT_USER, channel: str = DEFAULT_CHANNEL, ts: str | None = None,
                  thread_ts: str | None = None, team: str = DEFAULT_TEAM,
                  bot_user_id: str = DEFAULT_BOT_USER) -> dict[str, Any]:
    """An `app_mention`; the text is prefixed with the bot's mention as Slack renders it."""
    ts = ts or new_ts()
    event: dict[str, Any] = {
        "client_msg_id": _client_msg_id(), "type": "app_mention", "text": f"<@{bot_user_id}> {text}",
        "user": user, "ts": ts, "team": team, "channel": channel, "event_ts": ts,
        "blocks": _rich_text(text, mentioned=bot_user_id),
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = user
    return event


def mention_and_message(text: str, *, user: str = DEFAULT_USER, channel: str = DEFAULT_CHANNEL,
                        thread_ts: str | None = None, team: str = DEFAULT_TEAM,
                        bot_user_id: str = DEFAULT_BOT_USER) -> tuple[dict[str, Any], dict[str, Any]]:
    """What Slack delivers when someone mentions the bot in a channel it is in: an `app_mention` and a
    `message` for the same message (same ts), as two separate event callbacks."""
    mention = mention_event(text, user=user, channel=channel, thread_ts=thread_ts, team=team,
                            bot_user_id=bot_user_id)
    message = message_event(mention["text"], user=user, channel=channel, ts=mention["ts"], thread_ts=thread_ts,
                            team=team)
    message["client_msg_id"] = mention["client_msg_id"]
    message["blocks"] = mention["blocks"]
    return mention, message


def message_event(text: str, *, user: str = DEFAULT_USER, channel: str = DEFAULT_CHANNEL, ts: str | None = None,
                  thread_ts: str | None = None, parent_user_id: str | None = None, team: str = DEFAULT_TEAM,
                  channel_type: str = "channel", subtype: str | None = None,
                  broadcast_root: dict[str, Any] | None = None) -> dict[str, Any]:
    """A human's `message` event: top level, or a thread reply when `thread_ts` is given.

    `subtype="thread_broadcast"` (a reply also sent to the channel) carries the thread's `root`."""
    ts = ts or new_ts()
    event: dict[str, Any] = {"type": "message", "text": text, "user": user, "ts": ts, "team": team,
                             "channel": channel, "event_ts": ts, "channel_type": channel_type}
    if subtype:
        event["subtype"] = subtype
    else:
        event["client_msg_id"] = _client_msg_id()
        event["blocks"] = _rich_text(text)
    if thread_ts:
        event["thread_ts"] = thread_ts
        if subtype != "thread_broadcast":
            event["parent_user_id"] = parent_user_id or user
    if subtype == "thread_broadcast":
        event["client_msg_id"] = _client_msg_id()
        event["root"] = broadcast_root or {
            "type": "message", "text": "", "user": parent_user_id or user, "ts": thread_ts,
            "team": team, "thread_ts": thread_ts, "reply_count": 1, "reply_users_count": 1,
            "latest_reply": ts, "reply_users": [user], "is_locked": False}
    return event


def thread_broadcast_event(text: str, *, thread_ts: str, user: str = DEFAULT_USER,
                           channel: str = DEFAULT_CHANNEL, **kwargs: Any) -> dict[str, Any]:
    return message_event(text, user=user, channel=channel, thread_ts=thread_ts, subtype="thread_broadcast",
                         **kwargs)


def bot_message_event(text: str, *, bot_id: str = "B0OTHERAPP", channel: str = DEFAULT_CHANNEL,
                      ts: str | None = None, thread_ts: str | None = None, user: str | None = "U0OTHERBOT",
                      app_id: str = "A0OTHERAPP", team: str = DEFAULT_TEAM,
                      subtype_bot_message: bool = False) -> dict[str, Any]:
    """A message from an app: with `bot_id` and `bot_profile` (modern apps, and our own bot's echo when
    `bot_id`/`user` are ours), or the legacy `subtype: bot_message` without a user."""
    ts = ts or new_ts()
    event: dict[str, Any] = {"type": "message", "text": text, "ts": ts, "bot_id": bot_id, "channel": channel,
                             "event_ts": ts, "channel_type": "channel"}
    if subtype_bot_message:
        event["subtype"] = "bot_message"
    else:
        event.update({"user": user, "team": team, "app_id": app_id,
                      "bot_profile": {"id": bot_id, "deleted": False, "name": "bot", "updated": 1_600_000_000,
                                      "app_id": app_id, "team_id": team}})
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def message_changed_event(*, channel: str = DEFAULT_CHANNEL, message_ts: str, new_text: str,
                          previous_text: str, user: str = DEFAULT_USER, thread_ts: str | None = None,
                          team: str = DEFAULT_TEAM) -> dict[str, Any]:
    """`subtype: message_changed`: the edited message in `message`, the earlier one in `previous_message`."""
    ts = new_ts()
    edited = {"type": "message", "text": new_text, "user": user, "team": team, "ts": message_ts,
              "edited": {"user": user, "ts": ts}, "blocks": _rich_text(new_text)}
    previous = {"type": "message", "text": previous_text, "user": user, "team": team, "ts": message_ts,
                "blocks": _rich_text(previous_text)}
    if thread_ts:
        edited["thread_ts"] = previous["thread_ts"] = thread_ts
    return {"type": "message", "subtype": "message_changed", "message": edited, "previous_message": previous,
            "channel": channel, "hidden": True, "ts": ts, "event_ts": ts, "channel_type": "channel"}


def message_deleted_event(*, channel: str = DEFAULT_CHANNEL, deleted_ts: str, previous_text: str = "",
                          user: str = DEFAULT_USER) -> dict[str, Any]:
    ts = new_ts()
    return {"type": "message", "subtype": "message_deleted", "hidden": True, "deleted_ts": deleted_ts,
            "channel": channel, "ts": ts, "event_ts": ts, "channel_type": "channel",
            "previous_message": {"type": "message", "text": previous_text, "user": user, "ts": deleted_ts}}


def block_action(action_id: str, value: str, *, user: str = DEFAULT_USER, team: str = DEFAULT_TEAM,
                 channel: str = DEFAULT_CHANNEL, message_ts: str | None = None, block_id: str = "actions",
                 message: dict[str, Any] | None = None, user_name: str | None = None,
                 api_app_id: str = DEFAULT_APP, response_url: str | None = None, is_ephemeral: bool = False,
                 button_text: str = "Button", thread_ts: str | None = None) -> dict[str, Any]:
    """A button click (`block_actions`). `message` is the message carrying the button (Slack sends it
    for non-ephemeral messages); pass the stand-in's `PostedMessage.to_api(...)` to be exact."""
    message_ts = message_ts or (message or {}).get("ts") or new_ts()
    name = user_name or user.lower()
    container: dict[str, Any] = {"type": "message", "message_ts": message_ts, "channel_id": channel,
                                 "is_ephemeral": is_ephemeral}
    if thread_ts:
        container["thread_ts"] = thread_ts
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": name, "name": name, "team_id": team},
        "api_app_id": api_app_id, "token": "verification-token", "container": container,
        "trigger_id": f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}",
        "team": {"id": team, "domain": team.lower()}, "enterprise": None, "is_enterprise_install": False,
        "channel": {"id": channel, "name": channel.lower()}, "state": {"values": {}},
        "response_url": response_url or f"https://hooks.slack.com/actions/{team}/1/{secrets.token_urlsafe(16)}",
        "actions": [{"action_id": action_id, "block_id": block_id,
                     "text": {"type": "plain_text", "text": button_text, "emoji": True}, "value": value,
                     "type": "button", "action_ts": new_ts()}],
    }
    if not is_ephemeral:
        payload["message"] = message or {"type": "message", "ts": message_ts, "text": "", "blocks": []}
    return payload


def feedback_action(message: dict[str, Any], vote: str, *, user: str = DEFAULT_USER, team: str = DEFAULT_TEAM,
                    channel: str = DEFAULT_CHANNEL, api_app_id: str = DEFAULT_APP) -> dict[str, Any]:
    """A click on the feedback buttons of `message` (the stand-in's `PostedMessage.to_api(...)`):
    `block_actions` whose action is the `feedback_buttons` element, with the clicked button's value."""
    block = next(b for b in message.get("blocks") or [] if b.get("type") == "context_actions")
    element = next(e for e in block["elements"] if e.get("type") == "feedback_buttons")
    button = element["positive_button" if vote == "up" else "negative_button"]
    payload = block_action(element["action_id"], button["value"], user=user, team=team, channel=channel,
                           message=message, block_id=block.get("block_id", "feedback"), api_app_id=api_app_id,
                           thread_ts=message.get("thread_ts"))
    payload["actions"] = [{"type": "feedback_buttons", "action_id": element["action_id"],
                           "block_id": block.get("block_id", "feedback"), "value": button["value"],
                           "text": button["text"], "action_ts": new_ts()}]
    return payload


def view_submission(view: dict[str, Any], values: dict[str, dict[str, str]], *, user: str = DEFAULT_USER,
                    team: str = DEFAULT_TEAM, api_app_id: str = DEFAULT_APP) -> dict[str, Any]:
    """The submission of an opened modal (`view` as views.open returned it); `values`:
    {block_id: {action_id: typed text}}."""
    state = {block: {action: {"type": "plain_text_input", "value": text} for action, text in inputs.items()}
             for block, inputs in values.items()}
    name = user.lower()
    return {"type": "view_submission", "team": {"id": team, "domain": team.lower()},
            "user": {"id": user, "username": name, "name": name, "team_id": team}, "api_app_id": api_app_id,
            "token": "verification-token", "trigger_id": f"{int(time.time())}.{secrets.token_hex(16)}",
            "view": {**view, "state": {"values": state}}, "response_urls": [], "is_enterprise_install": False,
            "enterprise": None}


def slash_command(command: str, text: str, *, user_id: str = DEFAULT_USER, channel_id: str = DEFAULT_CHANNEL,
                  team_id: str = DEFAULT_TEAM, user_name: str | None = None, channel_name: str = "general",
                  api_app_id: str = DEFAULT_APP) -> dict[str, str]:
    """The form fields of a slash command request."""
    return {
        "token": "verification-token", "team_id": team_id, "team_domain": team_id.lower(),
        "channel_id": channel_id, "channel_name": channel_name, "user_id": user_id,
        "user_name": user_name or user_id.lower(), "command": command, "text": text, "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": f"https://hooks.slack.com/commands/{team_id}/1/{secrets.token_urlsafe(16)}",
        "trigger_id": f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}",
    }


def _client_msg_id() -> str:
    raw = secrets.token_hex(16)
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def _rich_text(text: str, mentioned: str | None = None) -> list[dict[str, Any]]:
    """The rich_text block Slack attaches to a typed message; a leading mention is a `user` element."""
    elements: list[dict[str, Any]] = [{"type": "user", "user_id": mentioned}] if mentioned else []
    elements.append({"type": "text", "text": f" {text}" if mentioned else text})
    return [{"type": "rich_text", "block_id": secrets.token_urlsafe(3),
             "elements": [{"type": "rich_text_section", "elements": elements}]}]
