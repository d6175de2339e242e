"""The Slack adapter: slack_bolt's AsyncApp over HTTP (or Socket Mode), translating both ways.

Events are persisted before the 200 goes back (`process_before_response=True`); anything slower
(commands, private replies) runs after the ack.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from intern.adapters.slack.inbound import PLATFORM, click_from_action, click_location, message_from_event
from intern.adapters.slack.outbound import card_blocks, card_fallback_text, chunks
from intern.bot.chat import Card, Conversation, MessageRef, StopClick

log = logging.getLogger(__name__)


class SlackAdapter:
    platform = PLATFORM

    def __init__(self, *, bot_token: str, signing_secret: str, api_url: str, bot: Any,
                 app_token: str | None = None) -> None:
        self.bot = bot
        self.client = AsyncWebClient(token=bot_token, base_url=api_url)
        self.client.retry_handlers.extend([
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),
            AsyncServerErrorRetryHandler(max_retry_count=2),
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
        ])
        self.app_token = app_token
        self.verifier = SignatureVerifier(signing_secret)
        self.app = AsyncApp(client=self.client, signing_secret=signing_secret, process_before_response=True,
                            raise_error_for_unhandled_request=False)
        self._bot_user_id: str | None = None
        self._register()

    async def bot_user_id(self) -> str | None:
        if self._bot_user_id is None:
            auth = await self.client.auth_test()
            self._bot_user_id = auth.get("user_id")
        return self._bot_user_id

    # --- inbound ----------------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app
        app.event("app_mention")(self._on_event)
        app.event("message")(self._on_event)
        for action_id in ("intern_approve", "intern_deny", "intern_stop"):
            app.action(action_id)(self._on_action)
        app.error(self._on_error)

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        log.error("slack listener error: %s", type(error).__name__, exc_info=error)

    async def _on_event(self, body: dict[str, Any]) -> None:
        msg = message_from_event(body, await self.bot_user_id())
        if msg is None:
            return
        accepted = await self.bot.on_message(msg)
        if accepted.outcome == "command" and accepted.command is not None:
            self.bot.spawn(self._run_command(accepted.command))
        elif accepted.outcome == "refused" and accepted.message:
            self.bot.spawn(self.post_private(msg.conversation, msg.user, accepted.message))

    async def _run_command(self, cmd: Any) -> None:
        reply = await self.bot.on_command(cmd)
        if reply.ok:
            await self.post(cmd.conversation, reply.text)
        else:
            await self.post_private(cmd.conversation, cmd.user, reply.text)

    async def _on_action(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        click = click_from_action(body)
        if click is None:
            return
        reply = await (self.bot.on_stop(click) if isinstance(click, StopClick) else self.bot.on_click(click))
        channel, thread = click_location(body)
        if channel and (not reply.ok or isinstance(click, StopClick)):
            conv = Conversation(PLATFORM, click.workspace, channel, thread or "")
            self.bot.spawn(self.post_private(conv, click.user, reply.text))

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not self.verifier.is_valid_request(body, dict(request.headers)):
            return web.Response(status=401, text="invalid signature")
        try:
            bolt_request = await to_bolt_request(request)
        except ValueError:  # undecodable text, unparsable JSON or form payload
            return web.Response(status=400, text="malformed request body")
        try:
            response = await self.app.async_dispatch(bolt_request)
        except Exception:
            log.exception("slack request failed")
            return web.Response(status=400, text="malformed request")
        if response.status >= 500:
            # A signed request we could not make sense of is the sender's problem, never a 500.
            return web.Response(status=400, text="malformed request")
        return await to_aiohttp_response(response)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/slack/events", self.handle)

    async def start_socket_mode(self) -> Any:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        handler = AsyncSocketModeHandler(self.app, self.app_token)
        await handler.connect_async()
        return handler

    # --- outbound (the ChatAdapter port) ---------------------------------------------------------

    async def post(self, conv: Conversation, text: str) -> MessageRef:
        ref = None
        for piece in chunks(text or "(empty)"):
            resp = await self.client.chat_postMessage(channel=conv.channel, thread_ts=conv.thread or None,
                                                      text=piece, unfurl_links=False, unfurl_media=False)
            ref = ref or MessageRef(PLATFORM, conv.channel, str(resp["ts"]), conv.thread)
        assert ref is not None
        return ref

    async def post_card(self, conv: Conversation, card: Card) -> MessageRef:
        blocks, cut = card_blocks(card)
        resp = await self.client.chat_postMessage(channel=conv.channel, thread_ts=conv.thread or None,
                                                  text=card_fallback_text(card), blocks=blocks)
        if cut and card.body:
            await self.attach_file(conv, "full_" + (card.body_label or "text").lower().replace(" ", "_") + ".txt",
                                   card.body, f"Full {card.body_label or 'text'} for: {card.title}")
        return MessageRef(PLATFORM, conv.channel, str(resp["ts"]), conv.thread)

    async def update_card(self, ref: MessageRef, card: Card) -> None:
        blocks, _ = card_blocks(card)
        await self.client.chat_update(channel=ref.channel, ts=ref.id, text=card_fallback_text(card), blocks=blocks)

    async def post_private(self, conv: Conversation, user: str, text: str) -> None:
        try:
            await self.client.chat_postEphemeral(channel=conv.channel, user=user, text=text,
                                                 thread_ts=conv.thread or None)
        except Exception:
            log.exception("ephemeral reply failed")

    async def attach_file(self, conv: Conversation, filename: str, content: str, title: str) -> None:
        try:
            await self.client.files_upload_v2(channel=conv.channel, thread_ts=conv.thread or None,
                                              filename=filename, content=content, title=title)
        except Exception:
            log.exception("file upload failed")

    async def members_of(self, workspace: str, group_ref: str) -> set[str]:
        if not group_ref.startswith("<!subteam^"):
            return set()
        group = group_ref[len("<!subteam^"):].split("|")[0].rstrip(">")
        resp = await self.client.usergroups_users_list(usergroup=group, team_id=workspace or None)
        return set(resp.get("users") or [])
