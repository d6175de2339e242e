"""The Slack adapter: slack_bolt's AsyncApp over HTTP (or Socket Mode), translating both ways.

Events are persisted before the 200 goes back (`process_before_response=True`); anything slower
(commands, private replies) runs after the ack.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from intern.adapters.slack import mentions
from intern.adapters.slack.inbound import (
    PLATFORM,
    bot_user_of,
    click_from_action,
    click_location,
    clicked_message_ts,
    feedback_from_action,
    message_from_event,
    reason_from_view,
    reason_metadata,
    team_of,
)
from intern.adapters.slack.outbound import (
    FEEDBACK_ACTION,
    REASON_CALLBACK,
    SECTION_LIMIT,
    answer_blocks,
    card_blocks,
    card_fallback_text,
    chunks,
    reason_modal,
)
from intern.adapters.slack.shapes import body_problem
from intern.bot.chat import (
    ApprovalClick,
    Card,
    Command,
    Conversation,
    JobCancelClick,
    MessageRef,
    StopClick,
    UserMessage,
    spell_card,
)

if TYPE_CHECKING:
    from intern.adapters.slack.oauth import SlackOAuth

log = logging.getLogger(__name__)

# Per HTTP request: set by the event listener when the bot could not store the delivery.
_request_outcome: contextvars.ContextVar[dict[str, bool] | None] = contextvars.ContextVar(
    "slack_request_outcome", default=None)


# url_verification carries no team; clicks are refused (privately) by the approval's workspace check.
PASS_THROUGH = ("url_verification", "block_actions")

SLASH_HELP = ("*Intern* — `/intern ask <task>` starts a session in a new thread of this channel "
              "(or mention @intern with the task). `/intern status`, `/intern budget` and `/intern policy …` "
              "show this channel's sessions, spend and policy; `/intern history [words]` lists the workspace's "
              "earlier runs.")


class SlackAdapter:
    platform = PLATFORM
    # chat.update is a Tier 3 method: about 50 calls a minute per workspace, with sporadic bursts.
    card_edits_per_second: float | None = 50 / 60

    def __init__(self, *, bot_token: str | None, signing_secret: str, api_url: str, bot: Any,
                 app_token: str | None = None, oauth: SlackOAuth | None = None,
                 teams: frozenset[str] = frozenset()) -> None:
        self.bot = bot
        # INTERN_SLACK_TEAMS; with a bot token the token's own team (auth.test) is served and no other.
        self.teams = teams
        self._team_id: str | None = None
        self._learning: asyncio.Task[None] | None = None
        self.api_url = api_url
        # With OAuth every workspace has its own bot token: outbound calls go through client_for().
        self.oauth = oauth
        self.client = self._new_client(None if oauth else bot_token)
        self._clients: dict[str, AsyncWebClient] = {}
        self._http: aiohttp.ClientSession | None = None  # see `_shared_session`
        self.app_token = app_token
        self.verifier = SignatureVerifier(signing_secret)
        # `handle` checks every HTTP request's signature before bolt sees it (a bad one is refused
        # with 401 and nothing stored); bolt checking it again would only cost time.
        self.app = AsyncApp(client=self.client, signing_secret=signing_secret, process_before_response=True,
                            raise_error_for_unhandled_request=False, request_verification_enabled=False,
                            oauth_settings=oauth.settings if oauth else None, before_authorize=self._served_only,
                            authorize=None if oauth else self._authorizer())
        if oauth is not None:
            self.app.enable_token_revocation_listeners()
        self._bot_user_id: str | None = None
        self._no_status: set[str] = set()  # workspaces that refused assistant.threads.setStatus
        self._register()

    def _new_client(self, token: str | None) -> AsyncWebClient:
        client = AsyncWebClient(token=token, base_url=self.api_url)
        client.retry_handlers.extend([
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),
            AsyncServerErrorRetryHandler(max_retry_count=2),
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
        ])
        return client

    async def client_for(self, workspace: str | None) -> AsyncWebClient:
        """The client holding the bot token of `workspace` (OAuth installs), else the one client."""
        if self.oauth is None or not workspace:
            return self._sharing(self.client)
        token = await self.oauth.bot_token(workspace)
        if token is None:
            raise LookupError(f"Intern is not installed in the Slack workspace {workspace}")
        if token not in self._clients:
            self._clients[token] = self._new_client(token)
        return self._sharing(self._clients[token])

    def _sharing(self, client: AsyncWebClient) -> AsyncWebClient:
        """`client`, calling through the adapter's one HTTP session: without one slack_sdk opens a
        session, and a connection, for every call (200 followed jobs' cards are ten edits a second)."""
        if client.session is None or client.session.closed:
            if self._http is None or self._http.closed:
                self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=client.timeout))
            client.session = self._http
        return client

    async def aclose(self) -> None:
        if self._http is not None and not self._http.closed:
            await self._http.close()

    def _ref(self, conv: Conversation, ts: str) -> MessageRef:
        # The bot treats a MessageRef as opaque; in OAuth mode it must say which workspace's token edits it.
        channel = f"{conv.workspace}/{conv.channel}" if self.oauth is not None and conv.workspace else conv.channel
        return MessageRef(PLATFORM, channel, ts, conv.thread)

    @staticmethod
    def _located(ref: MessageRef) -> tuple[str | None, str]:
        workspace, _, channel = ref.channel.rpartition("/")
        return workspace or None, channel

    async def bot_user_id(self) -> str | None:
        if self._bot_user_id is None:
            await self._learn_identity()
        return self._bot_user_id

    async def _learn_identity(self) -> None:
        auth = await self.client.auth_test()
        self._bot_user_id = auth.get("user_id")
        if self.oauth is None and auth.get("team_id"):
            self._team_id = str(auth["team_id"])

    def _learn_later(self) -> None:
        """Learn the bot token's team in the background: a request is never held up by the Web API."""
        if self._learning is None or self._learning.done():
            self._learning = asyncio.get_running_loop().create_task(self._learn_quietly())

    async def _learn_quietly(self) -> None:
        try:
            await self._learn_identity()
        except Exception as exc:
            log.warning("auth.test failed (%s); the workspace is checked again at the next request",
                        type(exc).__name__)

    def serves(self, team: str) -> bool | None:
        """Whether requests of this Slack team are served; None while the bot token's team is not
        known yet (the request is then stored and decided when it is worked on)."""
        if not team or (self.teams and team not in self.teams):
            return False
        if self.oauth is not None:
            return True  # the installs decide further: a team without one is not authorized
        if self._team_id is not None:
            return team == self._team_id
        if len(self.teams) == 1:
            return True  # the one configured team
        self._learn_later()
        return None

    async def serves_workspace(self, workspace: str) -> bool:
        """At work time: the final answer (asking Slack who the bot token belongs to if need be)."""
        if self.serves(workspace) is None:
            await self._learn_identity()
        return self.serves(workspace) is True

    def _authorizer(self) -> Any:
        """The one bot token, without asking the Web API who it is: bolt's own single-workspace check
        calls auth.test on the first request, and an event that only needs storing must not wait for
        (or fail with) the Web API. Who the bot is comes from the envelope, or later from auth.test.
        (A plain function: bolt passes the arguments it names, by name.)"""
        async def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
            if self._bot_user_id is None:
                self._learn_later()
            return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id,
                                   bot_token=self.client.token, bot_user_id=self._bot_user_id)

        return authorize

    async def _served_only(self, body: dict[str, Any], next: Any) -> BoltResponse | None:
        """Before authorization: another team's event or command is acknowledged and dropped (nothing
        stored, no token looked up for it). A button click goes on: the card's own check refuses a
        clicker of another workspace privately."""
        if body.get("type") in PASS_THROUGH or self.serves(team_of(body)) is not False:
            await next()
            return None
        log.info("dropped a Slack request of team %r: not served here", team_of(body)[:32])
        return BoltResponse(status=200, body="")

    # --- inbound ----------------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app
        app.event("app_mention")(self._on_event)
        app.event("message")(self._on_event)
        app.event("app_home_opened")(self._on_home_opened)
        app.command("/intern")(self._on_slash)
        for action_id in ("intern_approve", "intern_deny", "intern_stop", "intern_cancel_job"):
            app.action(action_id)(self._on_action)
        app.action(FEEDBACK_ACTION)(self._on_feedback)
        app.view(REASON_CALLBACK)(self._on_reason)
        app.error(self._on_error)

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        log.error("slack listener error: %s", type(error).__name__, exc_info=error)

    async def _on_event(self, body: dict[str, Any], context: Any) -> None:
        bot_user = context.get("bot_user_id") or bot_user_of(body) or self._bot_user_id
        if bot_user is None:
            self._learn_later()
        msg = message_from_event(body, bot_user)
        if msg is None:
            return
        try:
            accepted = await self.bot.on_message(msg)
        except Exception:
            # The message could not be stored: answer 503 so Slack delivers it again.
            outcome = _request_outcome.get()
            if outcome is not None:
                outcome["not_stored"] = True
            raise
        if accepted.outcome == "command" and accepted.command is not None:
            self.bot.spawn(self._run_command(accepted.command))
        elif accepted.outcome == "refused" and accepted.message:
            self.bot.spawn(self.post_private(msg.conversation, msg.user, accepted.message))

    async def _on_slash(self, ack: Any, body: dict[str, Any]) -> None:
        """`/intern [ask] <task>` opens a thread for a new session; `/intern status|budget|policy …` answers
        like the mention commands. Slack does not retry slash commands, so every failure is said."""
        text = " ".join(str(body.get("text") or "").split())
        user, channel = str(body.get("user_id") or ""), str(body.get("channel_id") or "")
        team = str(body.get("team_id") or "")
        if not user or not channel:
            await ack(text="This command could not be read (no user or channel).", response_type="ephemeral")
            return
        word, _, rest = text.partition(" ")
        name = word.lower()
        if name in ("", "help"):
            await ack(text=SLASH_HELP, response_type="ephemeral")
            return
        conv = Conversation(PLATFORM, team, channel, "")
        if name in ("status", "budget", "policy", "history"):
            reply = await self.bot.on_command(Command(conv, user, name, mentions.translate(rest)))  # type: ignore[arg-type]
            await ack(text=self.spell(reply.text), response_type="in_channel" if reply.ok else "ephemeral")
            return
        if name == "stop":
            await ack(text="To stop a session, type `stop` in its thread or press Stop on its status card.",
                      response_type="ephemeral")
            return
        task = rest if name == "ask" else text
        if not task:
            await ack(text="Tell me the task: `/intern ask fine-tune a small model on my dataset`.",
                      response_type="ephemeral")
            return
        try:
            client = await self.client_for(team)
            root = await client.chat_postMessage(channel=channel, text=f"<@{user}> asked Intern: {task}")
            thread = str(root["ts"])
            accepted = await self.bot.on_message(UserMessage(
                Conversation(PLATFORM, team, channel, thread), user, mentions.translate(task),
                event_key=f"{PLATFORM}:{team}:{channel}:{thread}", mentioned=True))
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else "error"
            hint = (" Invite me first: `/invite @intern`." if error in ("not_in_channel", "channel_not_found")
                    else "")
            await ack(text=f"I could not start a thread here (Slack said `{error}`); nothing was started.{hint}",
                      response_type="ephemeral")
            return
        except Exception:
            log.exception("slash command failed")
            await ack(text="Sorry, I could not start the session on my side; nothing was started. Try again.",
                      response_type="ephemeral")
            return
        if accepted.outcome == "refused":
            await ack(text=self.spell(accepted.message or "Refused; nothing was started."), response_type="ephemeral")
            return
        await ack()
        if accepted.outcome == "command" and accepted.command is not None:
            self.bot.spawn(self._run_command(accepted.command))

    async def _on_home_opened(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home" or not event.get("user"):
            return
        self.bot.spawn(self.publish_home(team_of(body), str(event["user"])))

    async def publish_home(self, workspace: str, user: str) -> None:
        from intern.adapters.slack.home import publish_home

        try:
            await publish_home(self.bot, await self.client_for(workspace), workspace, user)
        except Exception:
            log.exception("could not publish the App Home of a user")

    async def _run_command(self, cmd: Any) -> None:
        reply = await self.bot.on_command(cmd)
        if reply.said:
            return
        if reply.ok:
            await self.post(cmd.conversation, reply.text)
        else:
            await self.post_private(cmd.conversation, cmd.user, reply.text)

    async def _on_action(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        click = click_from_action(body)
        if click is None:
            return
        channel, thread = click_location(body)
        message_ts = clicked_message_ts(body)
        if isinstance(click, ApprovalClick) and channel and message_ts:
            click = dataclasses.replace(click, card=self._ref(Conversation(PLATFORM, click.workspace, channel,
                                                                          thread or ""), message_ts))
        if isinstance(click, JobCancelClick):
            reply = await self.bot.on_cancel_job(click)
        else:
            reply = await (self.bot.on_stop(click) if isinstance(click, StopClick) else self.bot.on_click(click))
        if channel and (not reply.ok or isinstance(click, StopClick | JobCancelClick)):
            conv = Conversation(PLATFORM, click.workspace, channel, thread or "")
            self.bot.spawn(self.post_private(conv, click.user, reply.text))

    async def _on_feedback(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        click = feedback_from_action(body)
        if click is None:
            return
        reply = await self.bot.on_feedback(click)
        _, thread = click_location(body)
        trigger = body.get("trigger_id")
        if reply.ok and click.vote == "down" and isinstance(trigger, str):
            # the reason is optional: a modal with one field, opened while the trigger is fresh (3 s)
            self.bot.spawn(self._ask_reason(click, thread, trigger))
        conv = Conversation(PLATFORM, click.workspace, click.channel, thread or "")
        self.bot.spawn(self.post_private(conv, click.user, reply.text))

    async def _ask_reason(self, click: Any, thread: str | None, trigger: str) -> None:
        try:
            client = await self.client_for(click.workspace)
            await client.views_open(trigger_id=trigger, view=reason_modal(reason_metadata(click, thread)))
        except Exception as exc:
            log.info("could not open the feedback reason form (%s)", type(exc).__name__)

    async def _on_reason(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        found = reason_from_view(body)
        if found is None or not found[0].reason:
            return
        click, thread = found
        reply = await self.bot.on_feedback(click)
        conv = Conversation(PLATFORM, click.workspace, click.channel, thread)
        self.bot.spawn(self.post_private(conv, click.user, reply.text))

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not self.verifier.is_valid_request(body, dict(request.headers)):
            return web.Response(status=401, text="invalid signature")
        problem = body_problem(body, request.headers.get("Content-Type", ""))
        if problem is not None:
            return web.Response(status=400, text=f"malformed request body: {problem}")
        try:
            bolt_request = await to_bolt_request(request)
        except (ValueError, TypeError, AttributeError, KeyError):  # a shape bolt reads that slipped through
            return web.Response(status=400, text="malformed request body")
        outcome: dict[str, bool] = {}
        token = _request_outcome.set(outcome)
        try:
            response = await self.app.async_dispatch(bolt_request)
        except Exception:
            log.exception("slack request failed")
            response = None
        finally:
            _request_outcome.reset(token)
        if outcome.get("not_stored"):
            # Our failure, not the sender's: Slack retries a delivery answered with a 5xx.
            return web.Response(status=503, text="could not store the event; retry later")
        if response is None:
            return web.Response(status=400, text="malformed request")
        if response.status >= 500:
            # A signed request we could not make sense of is the sender's problem, never a 500.
            return web.Response(status=400, text="malformed request")
        return await to_aiohttp_response(response)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/slack/events", self.handle)
        if self.oauth is not None:
            app.router.add_get(self.oauth.settings.install_path, self.handle_oauth)
            app.router.add_get(self.oauth.settings.redirect_uri_path, self.handle_oauth)

    async def handle_oauth(self, request: web.Request) -> web.Response:
        """bolt's install page and OAuth redirect (plain browser requests: no Slack signature)."""
        flow = self.app.oauth_flow
        assert flow is not None and self.oauth is not None
        bolt_request = await to_bolt_request(request)
        if request.path == flow.install_path:
            response = await flow.handle_installation(bolt_request)
        else:
            response = await flow.handle_callback(bolt_request)
            self.oauth.forget()
        return await to_aiohttp_response(response)

    async def start_socket_mode(self) -> Any:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        handler = AsyncSocketModeHandler(self.app, self.app_token)
        await handler.connect_async()
        return handler

    # --- outbound (the ChatAdapter port) ---------------------------------------------------------

    # Mentions as this platform spells and keys them (the ChatAdapter port).
    spell = staticmethod(mentions.spell)
    mention_key = staticmethod(mentions.key_of)
    mention_of_key = staticmethod(mentions.mention_of_key)

    async def post(self, conv: Conversation, text: str) -> MessageRef:
        ref = None
        client = await self.client_for(conv.workspace)
        for piece in chunks(self.spell(text) or "(empty)"):
            resp = await client.chat_postMessage(channel=conv.channel, thread_ts=conv.thread or None,
                                                 text=piece, unfurl_links=False, unfurl_media=False)
            ref = ref or self._ref(conv, str(resp["ts"]))
        assert ref is not None
        return ref

    async def post_answer(self, conv: Conversation, text: str, session_id: str) -> MessageRef:
        """The answer in pieces a section can hold; the feedback buttons under the last one."""
        pieces = chunks(self.spell(text) or "(empty)", SECTION_LIMIT)
        client = await self.client_for(conv.workspace)
        ref = None
        for i, piece in enumerate(pieces):
            extra = {"blocks": answer_blocks(piece, session_id)} if i == len(pieces) - 1 else {}
            resp = await client.chat_postMessage(channel=conv.channel, thread_ts=conv.thread or None, text=piece,
                                                 unfurl_links=False, unfurl_media=False, **extra)
            ref = ref or self._ref(conv, str(resp["ts"]))
        assert ref is not None
        return ref

    async def set_activity(self, conv: Conversation, status: str) -> None:
        """Slack's AI-app status under the thread (`assistant.threads.setStatus`). A workspace that
        refuses it (an older plan, a missing scope) is told once in the log and not asked again until
        restart; nothing here fails the turn."""
        if not conv.thread or conv.workspace in self._no_status:
            return
        try:
            client = await self.client_for(conv.workspace)
            await client.assistant_threads_setStatus(channel_id=conv.channel, thread_ts=conv.thread, status=status)
        except SlackApiError as exc:
            self._no_status.add(conv.workspace)
            log.warning("Slack refused assistant.threads.setStatus in workspace %s (%s); the thinking status is "
                        "off there until restart", conv.workspace, exc.response.get("error"))
        except Exception as exc:
            log.info("thinking status not shown (%s)", type(exc).__name__)

    async def post_card(self, conv: Conversation, card: Card) -> MessageRef:
        card = spell_card(card, mentions.spell_one)
        blocks, cut = card_blocks(card)
        client = await self.client_for(conv.workspace)
        resp = await client.chat_postMessage(channel=conv.channel, thread_ts=conv.thread or None,
                                             text=card_fallback_text(card), blocks=blocks)
        if cut and card.body:
            await self.attach_file(conv, "full_" + (card.body_label or "text").lower().replace(" ", "_") + ".txt",
                                   card.body, f"Full {card.body_label or 'text'} for: {card.title}")
        return self._ref(conv, str(resp["ts"]))

    async def update_card(self, ref: MessageRef, card: Card) -> None:
        card = spell_card(card, mentions.spell_one)
        blocks, _ = card_blocks(card)
        workspace, channel = self._located(ref)
        client = await self.client_for(workspace)
        await client.chat_update(channel=channel, ts=ref.id, text=card_fallback_text(card), blocks=blocks)

    async def post_private(self, conv: Conversation, user: str, text: str) -> None:
        try:
            client = await self.client_for(conv.workspace)
            await client.chat_postEphemeral(channel=conv.channel, user=user, text=self.spell(text),
                                            thread_ts=conv.thread or None)
        except Exception:
            log.exception("ephemeral reply failed")

    async def attach_file(self, conv: Conversation, filename: str, content: str, title: str) -> None:
        try:
            client = await self.client_for(conv.workspace)
            await client.files_upload_v2(channel=conv.channel, thread_ts=conv.thread or None,
                                         filename=filename, content=content, title=self.spell(title))
        except Exception:
            log.exception("file upload failed")

    async def post_file(self, conv: Conversation, filename: str, data: bytes, *, title: str, comment: str) -> None:
        """slack_sdk's external upload flow (files.getUploadURLExternal, the upload, then
        files.completeUploadExternal sharing it into the thread)."""
        client = await self.client_for(conv.workspace)
        await client.files_upload_v2(channel=conv.channel, thread_ts=conv.thread or None, filename=filename,
                                     content=data, title=self.spell(title), initial_comment=self.spell(comment))

    async def members_of(self, workspace: str, group_ref: str) -> set[str]:
        group = mentions.mention_of_key(group_ref)
        if group.kind != "group":
            return set()
        client = await self.client_for(workspace)
        resp = await client.usergroups_users_list(usergroup=group.id, team_id=workspace or None)
        return set(resp.get("users") or [])

    async def check_refs(self, workspace: str, refs: list[str]) -> dict[str, str]:
        """Policy changes: which of these users or user groups this workspace does not have, and why."""
        client = await self.client_for(workspace)
        problems: dict[str, str] = {}
        for ref in refs:
            mention = mentions.mention_of_key(ref)
            if mention.kind == "group":
                why = await self._group_problem(client, workspace, mention.id)
            elif mention.kind != "user" or mention.id != ref:
                why = None
            else:
                why = await self._user_problem(client, workspace, ref)
            if why:
                problems[ref] = why
        return problems

    async def _user_problem(self, client: AsyncWebClient, workspace: str, user_id: str) -> str | None:
        try:
            user = (await client.users_info(user=user_id)).get("user") or {}
        except SlackApiError as exc:
            if exc.response.get("error") == "user_not_found":
                return "unknown user in this workspace"
            log.warning("could not check Slack user %s: %s", user_id, exc.response.get("error"))
            return None
        if user.get("deleted"):
            return "unknown (deactivated) user"
        if user.get("is_bot"):
            return "a bot, not a person"
        if workspace and user.get("team_id") and user["team_id"] != workspace:
            return "a user of another workspace (only members of this one can decide here)"
        return None

    async def _group_problem(self, client: AsyncWebClient, workspace: str, group: str) -> str | None:
        try:
            await client.usergroups_users_list(usergroup=group, team_id=workspace or None)
        except SlackApiError as exc:
            if exc.response.get("error") in ("no_such_subteam", "subteam_not_found"):
                return "unknown user group in this workspace"
            log.warning("could not check Slack user group %s: %s", group, exc.response.get("error"))
        return None
