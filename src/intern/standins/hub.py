"""The Hugging Face Hub stand-in. Route families live in their own modules (`hub_*.py`), each
exposing `add_routes(app, hub)`; state they keep hangs off the `HubStandIn` instance."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from intern.standins.base import StandIn

ROUTE_MODULES = ("hub_core", "hub_models", "hub_jobs", "hub_repos", "hub_papers", "hub_docs", "hub_spaces")


@dataclass
class HubStandIn(StandIn):
    user: str = "intern-test"
    token: str = "hf_standinTokenstandinTokenstandinToken01"
    state: dict[str, Any] = field(default_factory=dict)

    def setup(self, app: web.Application) -> None:
        for name in ROUTE_MODULES:
            try:
                module = importlib.import_module(f"intern.standins.{name}")
            except ModuleNotFoundError as exc:
                if exc.name == f"intern.standins.{name}":
                    continue
                raise
            module.add_routes(app, self)

    def authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"
