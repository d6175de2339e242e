"""The one dependency rule: adapters → bot → agent, never the other way; agent knows no chat, no DB."""

from __future__ import annotations

import ast
import re
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


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports(path: Path, module: str, known: set[str]) -> set[str]:
    """The package's own modules that `path` imports, wherever the import stands (at the top, under
    TYPE_CHECKING, or deferred inside a function: each is an arrow between the two modules)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            targets = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        out |= {t for t in targets if t in known and t != module}
    return out


def import_circles(root: Path = SRC) -> list[list[str]]:
    """Groups of modules that import each other, directly or round a loop (Tarjan's components)."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph = {m: sorted(package_imports(p, m, set(files))) for m, p in files.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while (w := stack.pop()) != v:
                group.append(w)
            if group:
                circles.append(sorted([v, *group]))

    for m in graph:
        if m not in index:
            visit(m)
    return circles


def test_no_import_circles() -> None:
    assert import_circles() == []


def test_the_circle_check_catches_a_circle(tmp_path: Path) -> None:
    pkg = tmp_path / "intern"
    (pkg / "bot").mkdir(parents=True)
    (pkg / "bot" / "a.py").write_text("from intern.bot.b import x\n")
    (pkg / "bot" / "b.py").write_text("def f():\n    from intern.bot import c\n")
    (pkg / "bot" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n")
    (pkg / "bot" / "d.py").write_text("from intern.bot.a import y\n")
    assert import_circles(pkg) == [["intern.bot.a", "intern.bot.b", "intern.bot.c"]]


# What a tool needs comes as a typed field of `ctx.deps`; a lookup by string key fails only at run time.
STRING_KEYED = re.compile(r"\bextras\b|\bdeps\s*\[|\bdeps\.get\(|getattr\(\s*ctx(?:\.deps)?\s*,\s*[\"']")


def string_keyed_lookups(root: Path = SRC) -> list[str]:
    out = []
    for path in sorted((root / "agent").rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if STRING_KEYED.search(line.split("#")[0]):
                out.append(f"{path.relative_to(root).as_posix()}:{n}: {line.strip()}")
    return out


def test_agent_has_no_string_keyed_dependency_lookups() -> None:
    assert string_keyed_lookups() == []


def test_the_lookup_check_catches_one(tmp_path: Path) -> None:
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "bad.py").write_text(
        'a = ctx.extras.get("cache")\nb = ctx.extras["llm"]\nc = ctx.deps["docs_index"]\n'
        'd = getattr(ctx.deps, "sandboxes")\ne = ctx.deps.cache  # extras used to hold it\n')
    assert len(string_keyed_lookups(tmp_path)) == 4


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


# Errors are told apart by their type (isinstance, `errors.retryable`), never by the name of their class.
TYPE_NAME_COMPARED = re.compile(
    r"\.__(?:name|module)__(?:\s*(?:[!=]=|(?:not\s+)?in\b)\s*[\"'(\[{]|\.startswith\()")


def type_name_comparisons(root: Path = SRC) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if TYPE_NAME_COMPARED.search(line.split("#")[0]):
                out.append(f"{path.relative_to(root).as_posix()}:{n}: {line.strip()}")
    return out


def test_errors_are_not_told_apart_by_the_name_of_their_type() -> None:
    assert type_name_comparisons() == []


def test_the_type_name_check_catches_one(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(
        'a = type(exc).__name__ != "RepositoryNotFoundError"\nb = type(e).__name__ in ("EndOfStream", "X")\n'
        'c = type(exc).__module__.startswith(("httpx", "httpcore"))\n'
        'd = isinstance(exc, OSError)\nif __name__ == "__main__":\n    pass\nlog.info("%s", type(exc).__name__)\n')
    assert len(type_name_comparisons(tmp_path)) == 3


# A module is read in one sitting: past 600 lines it is split along a seam. The stand-ins (fakes of
# whole services, at their wire formats) and the migrations are exempt.
MAX_MODULE_LINES = 600
LENGTH_EXEMPT = ("standins", "migrations")


def long_modules(root: Path = SRC) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in LENGTH_EXEMPT:
            continue
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            out.append(f"{rel.as_posix()}: {lines} lines")
    return out


def test_no_module_is_over_600_lines() -> None:
    assert long_modules() == []


def test_the_length_check_catches_one(tmp_path: Path) -> None:
    for folder, lines in (("agent/tools", 601), ("bot", 600), ("standins", 2000), ("migrations/versions", 700)):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "m.py").write_text("x = 1\n" * lines)
    assert long_modules(tmp_path) == ["agent/tools/m.py: 601 lines"]


# Chat platforms' own spelling of a mention (Slack `<@U…>`, `<!subteam^S…>`; Discord `<@…>`, `<@!…>`,
# `<@&…>`): only an adapter reads or writes it. The core speaks of `Mention`s.
PLATFORM_SYNTAX = re.compile(r"<@|<!subteam|subteam\^")
PLATFORM_LIBRARIES = ("slack_sdk", "slack_bolt", "discord")


def platform_leaks(root: Path = SRC) -> list[str]:
    out = []
    for package in ("bot", "agent"):
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if PLATFORM_SYNTAX.search(line):
                    out.append(f"{rel}:{n}: {line.strip()}")
            out += [f"{rel}:{n} imports {name}" for n, name in imports_of(path)
                    if any(name == lib or name.startswith(lib + ".") for lib in PLATFORM_LIBRARIES)]
    return out


def test_the_core_knows_no_platform_syntax_and_no_platform_library() -> None:
    assert platform_leaks() == []


def test_the_syntax_check_catches_mentions_and_platform_imports(tmp_path: Path) -> None:
    for package in ("bot", "agent"):
        (tmp_path / package).mkdir()
    (tmp_path / "bot" / "a.py").write_text('who = f"<@{user}>"\nGROUP = re.compile(r"^<!subteam\\^(\\w+)")\n'
                                           'role = "<@&" + rid + ">"\nfine = "<#C1> @someone"\n')
    (tmp_path / "bot" / "b.py").write_text("def f():\n    from slack_sdk.errors import SlackApiError\n")
    (tmp_path / "agent" / "c.py").write_text("import discord\nimport slack_bolt.app\n")
    assert len(platform_leaks(tmp_path)) == 6
