"""Prompts are data files shipped in `intern/prompts/`, rendered with strict undefined variables."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import jinja2


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _load(name: str) -> str:
    return resources.files("intern.prompts").joinpath(name).read_text(encoding="utf-8")


def names() -> list[str]:
    return sorted(p.name for p in resources.files("intern.prompts").iterdir() if p.name.endswith(".md"))


def render(name: str, **variables: Any) -> str:
    return _env().get_template(name).render(**variables)
