"""TABLE.md: every case with its expected verdicts and why (`python -m tests.mlchecks.cases.table`)."""

from __future__ import annotations

from pathlib import Path

from tests.mlchecks.cases.world import CHECKS, Case

_MARK = {"ok": "ok", "warn": "warn", "error": "ERROR", None: "-"}


def markdown(cases: list[Case]) -> str:
    lines = ["# What the approval card says, and why", "",
             "Generated from tests/mlchecks/cases/*.py by `python -m tests.mlchecks.cases.table`; "
             "tests/mlchecks/test_cases.py checks the card against every line.", "",
             "| case | flavor | timeout given | " + " | ".join(CHECKS) + " | why |",
             "|---|---|---|" + "---|" * len(CHECKS) + "---|"]
    for c in cases:
        marks = " | ".join(_MARK[c.expect.get(k)] for k in CHECKS)
        why = c.why.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {c.name} | {c.flavor} | {c.timeout or '(30m default)'} | {marks} | {why} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    from tests.mlchecks.cases import ALL

    (Path(__file__).parent / "TABLE.md").write_text(markdown(ALL), encoding="utf-8")
