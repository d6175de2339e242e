"""Multi-workspace installs over OAuth: bolt's install page and redirect against the Slack stand-in's
`oauth.v2.access`, bot tokens encrypted at rest, each workspace's calls made with its own token, and a
user of one workspace never deciding in another."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from sqlalchemy import text

from intern.adapters.slack.oauth import BOT_SCOPES, SlackSetupError, TokenCipher
from intern.bot.models import Session
from intern.bot.settings import Settings
from intern.bot.wiring import Process, serve
from intern.standins.hub import HubStandIn
from intern.standins.hub_jobs import jobs_state
from intern.standins.llm import LLMStandIn
from intern.standins.slack import SlackEventSender, SlackStandIn, block_action, mention_event
from tests.e2e.harness import SIGNING_SECRET, Harness, job_rule, wait_until
from tests.governance.helpers import approval_id_in, card_of, count, rt

SECRET_KEY = "a-long-random-secret-for-the-tests-0123456789"
APPROVER = "U0APPROVER"
TEAM_A, TEAM_B = "T0AAAA", "T0BBBB"


@dataclass
class OAuthHarness(Harness):
    secret_key: str | None = SECRET_KEY

    def env(self) -> dict[str, str]:
        env = super().env()
        del env["SLACK_BOT_TOKEN"]  # no single token: every workspace installs the app
        env.update({"SLACK_CLIENT_ID": self.slack.client_id, "SLACK_CLIENT_SECRET": self.slack.client_secret})
        if self.secret_key:
            env["INTERN_SECRET_KEY"] = self.secret_key
        return env

    def sender_for(self, team: str) -> SlackEventSender:
        return SlackEventSender(self.url, SIGNING_SECRET, team_id=team, bot_user_id=bot_user_of(team))


def bot_user_of(team: str) -> str:
    return f"U0BOT{team[-4:]}"  # what the stand-in's oauth.v2.access answers


@pytest.fixture
async def oauth_bot(migrated_url: str) -> AsyncIterator[OAuthHarness]:
    async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm:
        llm.rule = job_rule()
        h = OAuthHarness(migrated_url, slack, hub, llm, approvers=APPROVER)  # type: ignore[arg-type]
        await h.start()
        try:
            yield h
        finally:
            await h.stop()


async def install(h: OAuthHarness, team: str) -> str:
    """A person installs the app: the install page, Slack's consent (the stand-in's code), the redirect."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{h.url}/slack/install", allow_redirects=False) as page:
            assert page.status == 200
            html = await page.text()
            cookie = page.headers["Set-Cookie"]
        state = re.search(r"slack-app-oauth-state=([^;]+)", cookie).group(1)  # type: ignore[union-attr]
        link = urllib.parse.urlparse(re.search(r'href="([^"]+oauth/v2/authorize[^"]+)"', html).group(1))  # type: ignore[union-attr]
        query = urllib.parse.parse_qs(urllib.parse.unquote(link.query.replace("&amp;", "&")))
        assert query["client_id"] == [h.slack.client_id] and query["state"] == [state]
        assert set(query["scope"][0].split(",")) == set(BOT_SCOPES)
        code = f"code-{team}"
        h.slack.add_oauth_code(code, team)
        async with http.get(f"{h.url}/slack/oauth_redirect", params={"code": code, "state": state},
                            headers={"Cookie": f"slack-app-oauth-state={state}"}, allow_redirects=False) as done:
            assert done.status == 200, await done.text()
    return next(token for token, ws in h.slack.workspaces.items() if ws.team_id == team)


async def raw_rows(h: Harness, table: str) -> list[dict[str, object]]:
    async with rt(h).db.engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(text(f"SELECT * FROM {table}"))]


async def test_install_stores_the_bot_token_encrypted(oauth_bot: OAuthHarness) -> None:
    token = await install(oauth_bot, TEAM_A)
    bots, installs = await raw_rows(oauth_bot, "slack_bots"), await raw_rows(oauth_bot, "slack_installations")
    assert len(bots) == 1 and len(installs) == 1
    for row in bots + installs:
        assert all(token not in str(v) and "xoxb" not in str(v) for v in row.values()), row
        assert row["team_id"] == TEAM_A
    assert TokenCipher(SECRET_KEY).decrypt(str(bots[0]["bot_token"])) == token
    assert bots[0]["bot_user_id"] == bot_user_of(TEAM_A)


async def test_a_bad_state_or_a_replayed_code_installs_nothing(oauth_bot: OAuthHarness) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{oauth_bot.url}/slack/oauth_redirect", params={"code": "x", "state": "forged"},
                            headers={"Cookie": "slack-app-oauth-state=forged"}) as r:
            assert r.status in (400, 401)
    await install(oauth_bot, TEAM_A)
    async with aiohttp.ClientSession() as http, http.get(f"{oauth_bot.url}/slack/install") as page:
        state = re.search(r"slack-app-oauth-state=([^;]+)", page.headers["Set-Cookie"]).group(1)  # type: ignore[union-attr]
        async with http.get(f"{oauth_bot.url}/slack/oauth_redirect", params={"code": f"code-{TEAM_A}", "state": state},
                            headers={"Cookie": f"slack-app-oauth-state={state}"}) as r:
            assert r.status == 401  # the code was used once already
    assert len(await raw_rows(oauth_bot, "slack_bots")) == 1


async def test_each_workspace_is_answered_with_its_own_token_and_kept_apart(oauth_bot: OAuthHarness) -> None:
    await install(oauth_bot, TEAM_A)
    await install(oauth_bot, TEAM_B)
    threads = {}
    for team in (TEAM_A, TEAM_B):
        event = mention_event("fine-tune a small model", user="U0REQUESTER", team=team, bot_user_id=bot_user_of(team))
        assert (await oauth_bot.sender_for(team).send_event(event)).status == 200
        threads[team] = event["ts"]
    for team, thread in threads.items():
        await wait_until(lambda thread=thread: any(approval_id_in(m) for m in oauth_bot.slack.posted(thread_ts=thread)),
                         timeout=20)
        assert {m.team_id for m in oauth_bot.slack.posted(thread_ts=thread) if m.ts != thread} == {team}
    assert await count(oauth_bot, Session) == 2

    card_a = next(m for m in oauth_bot.slack.posted(thread_ts=threads[TEAM_A]) if approval_id_in(m))
    approval_a = approval_id_in(card_a)
    assert approval_a
    # The same user id, clicking from workspace B (even an approver there), changes nothing in A.
    from_b = block_action("intern_approve", approval_a, user=APPROVER, team=TEAM_B, channel=card_a.channel,
                          message_ts=card_a.ts, thread_ts=threads[TEAM_A])
    assert (await oauth_bot.sender_for(TEAM_B).send_interaction(from_b)).status == 200
    await wait_until(lambda: oauth_bot.slack.ephemerals(user=APPROVER))
    refusal = oauth_bot.slack.ephemerals(user=APPROVER)[0]
    assert "another workspace" in refusal.text and refusal.team_id == TEAM_B
    assert jobs_state(oauth_bot.hub).created == []

    from_a = block_action("intern_approve", approval_a, user=APPROVER, team=TEAM_A, channel=card_a.channel,
                          message_ts=card_a.ts, thread_ts=threads[TEAM_A])
    assert (await oauth_bot.sender_for(TEAM_A).send_interaction(from_a)).status == 200
    await wait_until(lambda: len(jobs_state(oauth_bot.hub).created) == 1, timeout=20)
    # chat.update succeeds only with the token of the workspace that posted the card
    await wait_until(lambda: "Approved by" in str(card_of(oauth_bot, approval_a).blocks))
    assert card_of(oauth_bot, approval_a).team_id == TEAM_A


async def test_an_event_from_a_workspace_without_an_install_is_not_processed(oauth_bot: OAuthHarness) -> None:
    await install(oauth_bot, TEAM_A)
    event = mention_event("hello", team="T0NOTHERE", bot_user_id=bot_user_of("T0NOTHERE"))
    await oauth_bot.sender_for("T0NOTHERE").send_event(event)
    assert await count(oauth_bot, Session) == 0
    assert oauth_bot.slack.posted(thread_ts=event["ts"]) == []


async def test_oauth_mode_refuses_to_start_without_a_secret_key(migrated_url: str) -> None:
    async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm:
        h = OAuthHarness(migrated_url, slack, hub, llm, secret_key=None)  # type: ignore[arg-type]
        with pytest.raises(SlackSetupError, match="INTERN_SECRET_KEY"):
            proc = Process(Settings(**h.env()))  # type: ignore[arg-type]
            try:
                await proc.start(migrate=True)
            finally:
                await proc.stop()
        assert await serve(Settings(**h.env()), migrate=True) == 2  # type: ignore[arg-type]


async def test_intern_slack_teams_limits_who_may_install_and_be_served(migrated_url: str) -> None:
    async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm:
        llm.rule = job_rule()
        h = OAuthHarness(migrated_url, slack, hub, llm, approvers=APPROVER,  # type: ignore[arg-type]
                         extra_env={"INTERN_SLACK_TEAMS": TEAM_A})
        await h.start()
        try:
            await install(h, TEAM_A)
            with pytest.raises(AssertionError):
                await install(h, TEAM_B)
            assert [r["team_id"] for r in await raw_rows(h, "slack_bots")] == [TEAM_A]
            event = mention_event("hello", team=TEAM_B, bot_user_id=bot_user_of(TEAM_B))
            assert (await h.sender_for(TEAM_B).send_event(event)).status == 200
            assert await count(h, Session) == 0
            served = mention_event("hello", team=TEAM_A, bot_user_id=bot_user_of(TEAM_A))
            await h.sender_for(TEAM_A).send_event(served)
            await wait_until(lambda: count(h, Session), timeout=20)
        finally:
            await h.stop()
