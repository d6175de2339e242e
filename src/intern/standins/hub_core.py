"""Hub stand-in: identity routes, and the token check the other Hub route modules share.

- `GET /api/whoami-v2`: the account behind the token (HfApi.whoami; HubClient.namespace()).
- `GET /api/agent-harnesses`: the registry huggingface_hub's user-agent code fetches (see
  `huggingface_hub/utils/_detect_agent.py`): when telemetry is on, every request's user agent asks
  `detect_agent()`, which loads `{constants.ENDPOINT}/api/agent-harnesses` once a day (cached in
  `HF_HOME/.agent_harnesses.json`) and matches its `harnesses[id].envVars` patterns ("*" = set at
  all, else the exact value) and its `standardEnvVars` against the environment. Note that it uses
  the process-wide HF_ENDPOINT, not HfApi's `endpoint=`; the test suite turns telemetry off.

The Hub answers 401 to a wrong token on any route, public ones included, and to a missing token
where one is required; `auth_error()` does the same for every route module that uses it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from intern.standins.hub import HubStandIn

MISSING_TOKEN = "Invalid username or password."
WRONG_TOKEN = "Invalid credentials in Authorization header"

DEFAULT_HARNESSES: dict[str, Any] = {
    "standardEnvVars": ["AI_AGENT", "AGENT"],
    "harnesses": {
        "claude-code": {"envVars": {"CLAUDECODE": "1"}},
        "codex": {"envVars": {"CODEX_SANDBOX": "*"}},
        "cursor": {"envVars": {"CURSOR_AGENT": "1"}},
        "gemini-cli": {"envVars": {"GEMINI_CLI": "1"}},
        "ml-intern": {},
    },
}


def object_id() -> str:
    """A 24-hex-digit id, the shape of the Hub's ids for users, orgs and jobs."""
    return secrets.token_hex(12)


@dataclass
class CoreState:
    """The account behind the stand-in's token. Tests may change it before the calls they make."""

    user_id: str = field(default_factory=object_id)
    fullname: str = "Intern Test"
    email: str = "intern-test@example.com"
    token_role: str = "write"  # "read", "write" or "fineGrained"
    token_name: str = "intern-standin"
    orgs: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> org object
    harnesses: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_HARNESSES))

    def add_org(self, name: str, *, role: str = "write", fullname: str | None = None) -> None:
        self.orgs[name] = {"type": "org", "id": object_id(), "name": name, "fullname": fullname or name.title(),
                           "email": None, "canPay": True, "periodEnd": None, "avatarUrl": "",
                           "roleInOrg": role, "isEnterprise": False}

    def namespaces(self, hub: HubStandIn) -> set[str]:
        return {hub.user, *self.orgs}

    def owner(self, hub: HubStandIn, namespace: str) -> dict[str, str]:
        """The `owner` object of something living in `namespace`."""
        if namespace in self.orgs:
            return {"id": self.orgs[namespace]["id"], "name": namespace, "type": "org"}
        return {"id": self.user_id, "name": hub.user, "type": "user"}


def core_state(hub: HubStandIn) -> CoreState:
    return hub.state.setdefault("core", CoreState())


def add_routes(app: web.Application, hub: HubStandIn) -> None:
    state = core_state(hub)
    state.add_org("intern-org")

    async def whoami(request: web.Request) -> web.Response:
        if (denied := auth_error(request, hub, required=True)) is not None:
            return denied
        return web.json_response(_whoami(hub, state))

    async def agent_harnesses(request: web.Request) -> web.Response:
        if (denied := auth_error(request, hub, required=False)) is not None:
            return denied
        return web.json_response(state.harnesses)

    app.router.add_get("/api/whoami-v2", whoami)
    app.router.add_get("/api/agent-harnesses", agent_harnesses)


def auth_error(request: web.Request, hub: HubStandIn, *, required: bool) -> web.Response | None:
    """The Hub's 401, or None when the request may go on."""
    header = request.headers.get("Authorization")
    if header is None:
        return hub_error(401, MISSING_TOKEN) if required else None
    if hub.authorized(request):
        return None
    return hub_error(401, WRONG_TOKEN)


def hub_error(status: int, message: str) -> web.Response:
    """The Hub's error body; huggingface_hub puts `error` into the HfHubHTTPError message."""
    return web.json_response({"error": message}, status=status)


def _whoami(hub: HubStandIn, state: CoreState) -> dict[str, Any]:
    avatar = f"{hub.url}/avatars/{hub.user}.svg"
    orgs = [{**org, "avatarUrl": f"{hub.url}/avatars/{name}.svg"} for name, org in state.orgs.items()]
    return {
        "type": "user", "id": state.user_id, "name": hub.user, "fullname": state.fullname, "email": state.email,
        "emailVerified": True, "canPay": True, "isPro": False, "periodEnd": None, "avatarUrl": avatar,
        "orgs": orgs,
        "auth": {"type": "access_token",
                 "accessToken": {"displayName": state.token_name, "role": state.token_role,
                                 "createdAt": "2025-01-06T10:00:00.000Z"}},
    }
