"""slack/manifest.yml creates the app the code expects: the scopes OAuth asks for, the events and
interactivity on the routes the adapter serves, and the App Home."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from intern.adapters.slack.oauth import BOT_SCOPES

MANIFEST = Path(__file__).resolve().parents[2] / "slack" / "manifest.yml"
# What DECISIONS.md requires, and what each subscribed event needs to be delivered at all.
DECIDED_SCOPES = {"app_mentions:read", "chat:write", "channels:history", "groups:history", "im:history",
                  "reactions:write", "users:read", "usergroups:read", "files:write", "commands"}
EVENT_SCOPE = {"app_mention": "app_mentions:read", "message.channels": "channels:history",
               "message.groups": "groups:history", "message.im": "im:history"}


def manifest() -> dict[str, Any]:
    return yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))


def test_scopes_are_the_decided_ones_and_what_oauth_asks_for() -> None:
    scopes = manifest()["oauth_config"]["scopes"]["bot"]
    assert len(scopes) == len(set(scopes))
    assert set(scopes) == DECIDED_SCOPES == set(BOT_SCOPES)
    assert "user" not in manifest()["oauth_config"]["scopes"]  # the app acts as its bot only


def test_events_interactivity_and_oauth_point_at_the_routes_the_adapter_serves() -> None:
    settings = manifest()["settings"]
    events = settings["event_subscriptions"]
    assert {"app_mention", "message.channels", "message.groups", "message.im", "app_home_opened"} <= \
        set(events["bot_events"])
    for event in set(events["bot_events"]) & set(EVENT_SCOPE):
        assert EVENT_SCOPE[event] in manifest()["oauth_config"]["scopes"]["bot"], event
    hosts = set()
    [slash] = manifest()["features"]["slash_commands"]
    assert slash["command"] == "/intern" and slash["should_escape"] is True  # mentions arrive as <@U…|name>
    for url, path in ((events["request_url"], "/slack/events"),
                      (settings["interactivity"]["request_url"], "/slack/events"),
                      (slash["url"], "/slack/events"),
                      (manifest()["oauth_config"]["redirect_urls"][0], "/slack/oauth_redirect")):
        parsed = urlparse(url)
        assert parsed.scheme == "https" and parsed.path == path, url
        hosts.add(parsed.netloc)
    assert len(hosts) == 1  # one server answers them all
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is False and settings["token_rotation_enabled"] is False


def test_app_home_and_the_bot_user_are_enabled() -> None:
    features = manifest()["features"]
    assert features["app_home"]["home_tab_enabled"] is True
    assert features["app_home"]["messages_tab_enabled"] is True
    assert features["bot_user"]["display_name"] == "intern"
    info = manifest()["display_information"]
    assert info["name"] and 174 <= len(info["long_description"]) <= 4000  # Slack refuses other lengths

