"""The approval card's checks on realistic training scripts x hardware and timeout choices.

Each case (tests/mlchecks/cases/*.py) says what a careful engineer would put on the card for each check
and why, from the arithmetic of the memory and time rules; TABLE.md lists them. The test runs the real
checks (syntax tree, Hub stand-in metadata, dataset viewer stand-in) and compares every verdict.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from intern.agent.context_deps import ToolContext
from intern.agent.guardrails.ml_checks import job_checks
from intern.agent.pricing import PriceTable, parse_timeout
from intern.agent.tools.base import Check
from tests.mlchecks.cases import ALL
from tests.mlchecks.cases.table import markdown
from tests.mlchecks.cases.world import CHECKS, Case, Level

PRICES = PriceTable()
_KINDS = {
    "push": ("Pushes to the Hub", "No push to the Hub", "push_to_hub=", "hub_model_id=", "Push to the Hub depends",
             "The script pushes only before"),
    "dataset": ("Dataset ", "Could not check dataset", "No load_dataset", "The dataset in load_dataset"),
    "launch": ("bf16", "tf32", "fp16=True", "vLLM", "The model is loaded in"),
    "hardware": ("Hardware ",),
    "timeout": ("Timeout ", "No timeout given"),
}
_ORDER = {"ok": 0, "warn": 1, "error": 2}


def verdicts(checks: list[Check]) -> dict[str, Level | None]:
    """The worst level of each check's lines (None when the card has no such line)."""
    out: dict[str, Level | None] = dict.fromkeys(CHECKS)
    for check in checks:
        kind = next((k for k, prefixes in _KINDS.items() if check.text.startswith(prefixes)), None)
        if "has no fixed dataset format" in check.text:
            kind = "dataset"
        if kind is not None and (out[kind] is None or _ORDER[check.level] > _ORDER[out[kind] or "ok"]):
            out[kind] = check.level
    return out


async def card(ctx: ToolContext, case: Case) -> list[Check]:
    return await job_checks(ctx, script=case.script, command=case.command, flavor=PRICES.lookup(case.flavor),
                            timeout_seconds=parse_timeout(case.timeout or "30m"), timeout_given=bool(case.timeout))


@pytest.mark.parametrize("case", ALL, ids=[c.name for c in ALL])
async def test_case(ctx: ToolContext, case: Case) -> None:
    checks = await card(ctx, case)
    text = "\n".join(f"{c.level}: {c.text}" for c in checks)
    assert verdicts(checks) == case.expect, f"{case.name}\n{text}\nwhy: {case.why}"
    for phrase in case.contains:
        assert phrase in text, f"{phrase!r} not on the card:\n{text}"


def test_the_table_documents_every_case() -> None:
    table = Path(__file__).parent / "cases" / "TABLE.md"
    assert table.read_text(encoding="utf-8") == markdown(ALL), "regenerate: python -m tests.mlchecks.cases.table"


def test_there_are_enough_distinct_scripts() -> None:
    scripts = {c.script or " ".join(c.command or []) for c in ALL}
    assert len(ALL) >= 60 and len(scripts) >= 40
