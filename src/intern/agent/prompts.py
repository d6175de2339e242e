"""Prompts are data files shipped in `intern/prompts/`, rendered with strict undefined variables.

The hardware table in the system prompt is rendered from `intern.agent.pricing` and the size guide from
the approval checks' own memory and time rules (`intern.agent.hardware`), so the prompt cannot drift
from the code.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import jinja2

from intern.agent.guardrails.ml_checks.guide import size_guide_markdown
from intern.agent.pricing import hardware_table_markdown

if TYPE_CHECKING:
    from intern.agent.pricing import Flavor


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


def system_prompt(*, today: date | str, namespace: str | None, flavors: Sequence[Flavor] | None = None) -> str:
    """The main agent's system prompt. `flavors`: the live hardware list (the static table when None)."""
    return render(
        "system.md",
        today=str(today),
        hub_namespace=namespace or "(the Hub token's owner)",  # `namespace` is a Jinja built-in
        hardware_table=hardware_table_markdown(list(flavors) if flavors else None),
        size_guide=size_guide_markdown(list(flavors) if flavors else None),
    )


def research_prompt(*, today: date | str) -> str:
    """The research sub-agent's system prompt (read-only; answers with a ranked recipe table)."""
    return render("research.md", today=str(today))


def compaction_prompt() -> str:
    return render("compaction.md")
