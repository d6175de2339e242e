"""Which database objects the models describe, for comparing a migrated database with them."""

from __future__ import annotations

# Tables that are not ours: slack_sdk's OAuth stores create and own `slack_*` (see adapters/slack/oauth.py).
FOREIGN_PREFIXES = ("slack_",)
# Full-text search objects the migrations make and the models cannot describe: SQLite's FTS5 table
# (with its shadow tables), PostgreSQL's generated tsvector column and its GIN index.
SEARCH_PREFIXES = ("run_records_fts", "ix_run_records_search")
SEARCH_COLUMNS = ("search_vector",)


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    if not reflected or compare_to is not None:
        return True
    if type_ == "table" and (name or "").startswith(FOREIGN_PREFIXES + SEARCH_PREFIXES):
        return False
    if type_ == "column" and name in SEARCH_COLUMNS:
        return False
    return not (type_ == "index" and (name or "").startswith(SEARCH_PREFIXES))
