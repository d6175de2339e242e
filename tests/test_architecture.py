"""The one dependency rule: adapters → bot → agent, never the other way; agent knows no chat, no DB."""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import String, Text
from sqlalchemy.types import JSON, TypeDecorator

from intern.bot.models import Base, RedactedJSON, RedactedString

SRC = Path(__file__).resolve().parents[1] / "src" / "intern"

AGENT_FORBIDDEN = ("intern.bot", "intern.adapters", "slack_bolt", "slack_sdk", "discord", "sqlalchemy", "alembic")
BOT_FORBIDDEN = ("intern.adapters", "slack_bolt", "slack_sdk", "discord")
COMPOSITION_ROOTS = {"bot/wiring.py", "bot/cli.py", "bot/doctor.py"}


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def violations(package: str, forbidden: tuple[str, ...], allowed: frozenset[str] = frozenset(),
               root: Path = SRC) -> list[str]:
    out = []
    for path in sorted((root / package).rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel in allowed:
            continue
        for line, name in imports_of(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                out.append(f"{rel}:{line} imports {name}")
    return out


def test_agent_imports_no_chat_and_no_database() -> None:
    assert violations("agent", AGENT_FORBIDDEN) == []


def test_bot_imports_adapters_only_in_the_composition_root() -> None:
    assert violations("bot", BOT_FORBIDDEN, frozenset(COMPOSITION_ROOTS)) == []


def test_the_check_itself_catches_a_wrong_way_arrow(tmp_path: Path) -> None:
    fake = tmp_path / "agent"
    fake.mkdir()
    (fake / "bad.py").write_text("from intern.bot.models import Session\nimport sqlalchemy\n")
    assert len(violations("agent", AGENT_FORBIDDEN, root=tmp_path)) == 2


# Columns whose text is not free text: ids, keys, names, enumerations, and a ciphertext that must be
# stored exactly as it is (masking a piece of it would destroy the sandbox's token).
NOT_FREE_TEXT = {("sandboxes", "token_ciphertext")}


def test_every_text_and_json_column_is_redacted_on_its_way_in() -> None:
    unguarded = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            kind = column.type
            if isinstance(kind, RedactedString | RedactedJSON) or (table.name, column.name) in NOT_FREE_TEXT:
                continue
            impl = kind.impl if isinstance(kind, TypeDecorator) else kind
            free_text = isinstance(impl, Text | JSON) or (isinstance(impl, String) and (impl.length or 0) > 255)
            if free_text:
                unguarded.append(f"{table.name}.{column.name}")
    assert unguarded == [], "store these columns with RedactedText / RedactedJSON"
