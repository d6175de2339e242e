"""Compact markdown for papers, citation edges and Hub repositories, written for a model to read.

Each entry leads with what the model needs to act next (the arXiv id or repo id), then the numbers
that rank it (upvotes, citations, influential flags), then a short summary.
"""

from __future__ import annotations

import re
from typing import Any

SUMMARY_CHARS = 300
CONTEXT_CHARS = 280
MAX_AUTHORS = 4
_BORING_TAGS = ("arxiv:", "region:", "format:", "library:", "doi:", "license:")


def clip(text: str | None, limit: int) -> str:
    """`text` on one line, cut at a word boundary to at most `limit` characters."""
    flat = re.sub(r"\s+", " ", text or "").strip()
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "…"


def plural(n: Any, word: str) -> str:
    value = int(n or 0)
    return f"{value:,} {word}" + ("" if value == 1 else "s")


def day(iso: str | None) -> str:
    return (iso or "")[:10]


def authors_line(names: list[str], limit: int = MAX_AUTHORS) -> str:
    names = [n for n in names if n]
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f" +{len(names) - limit} more"


# ---- Hub papers ----------------------------------------------------------------------------------

def hub_paper(item: dict[str, Any]) -> dict[str, Any]:
    """The paper object of a daily-papers or search item (wrapped in `paper`), or of /api/papers/{id}."""
    paper = item.get("paper")
    return paper if isinstance(paper, dict) else item


def hub_paper_entry(index: int, item: dict[str, Any]) -> str:
    paper = hub_paper(item)
    title = paper.get("title") or item.get("title") or "(untitled)"
    meta = [plural(paper.get("upvotes"), "upvote")]
    if paper.get("publishedAt"):
        meta.append(f"published {day(paper['publishedAt'])}")
    if item is not paper and item.get("numComments"):
        meta.append(plural(item["numComments"], "comment"))
    if paper.get("githubRepo"):
        stars = paper.get("githubStars")
        meta.append(f"code {paper['githubRepo']}" + (f" ({stars:,}★)" if stars else ""))
    lines = [f"{index}. **{clip(title, 200)}** — arxiv_id {paper.get('id', '?')}", "   " + " · ".join(meta)]
    names = [a.get("name", "") for a in paper.get("authors") or [] if isinstance(a, dict)]
    if names:
        lines.append(f"   {authors_line(names)}")
    keywords = paper.get("ai_keywords") or item.get("ai_keywords") or []
    if keywords:
        lines.append(f"   Keywords: {', '.join(keywords[:6])}")
    summary = paper.get("ai_summary") or item.get("ai_summary") or paper.get("summary") or ""
    if summary:
        lines.append(f"   {clip(summary, SUMMARY_CHARS)}")
    return "\n".join(lines)


# ---- Semantic Scholar ----------------------------------------------------------------------------

def s2_arxiv_id(paper: dict[str, Any]) -> str | None:
    ids = paper.get("externalIds") or {}
    value = ids.get("ArXiv") if isinstance(ids, dict) else None
    return str(value) if value else None


def s2_id_text(paper: dict[str, Any]) -> str:
    arxiv = s2_arxiv_id(paper)
    if arxiv:
        return f"arxiv_id {arxiv}"
    if paper.get("paperId"):
        return f"S2 {paper['paperId']}"
    return "not resolved by Semantic Scholar"


def s2_paper_entry(index: int, paper: dict[str, Any]) -> str:
    title = paper.get("title") or "(untitled)"
    where = ", ".join(str(x) for x in (paper.get("year"), paper.get("venue")) if x)
    head = f"{index}. **{clip(title, 200)}**" + (f" ({where})" if where else "") + f" — {s2_id_text(paper)}"
    return "\n".join([head, "   " + " · ".join(_s2_meta(paper))])


def _s2_meta(paper: dict[str, Any]) -> list[str]:
    meta = [plural(paper.get("citationCount"), "citation")]
    if paper.get("influentialCitationCount"):
        meta[0] += f" ({int(paper['influentialCitationCount']):,} influential)"
    names = [a.get("name", "") for a in paper.get("authors") or [] if isinstance(a, dict)]
    if names:
        meta.append(authors_line(names, 3))
    return meta


def citation_entry(index: int, edge: dict[str, Any], key: str) -> str:
    paper = edge.get(key) or {}
    lines = s2_paper_entry(index, paper).split("\n")
    if edge.get("isInfluential"):
        lines[0] += " · **influential**"
    intents = edge.get("intents") or []
    if intents:
        lines.append(f"   intent: {', '.join(intents)}")
    for context in (edge.get("contexts") or [])[:2]:
        if context:
            lines.append(f"   > {clip(context, CONTEXT_CHARS)}")
    return "\n".join(lines)


def snippet_entry(index: int, match: dict[str, Any], arxiv_id: str | None) -> str:
    snippet = match.get("snippet") or {}
    paper = match.get("paper") or {}
    where = snippet.get("section") or snippet.get("snippetKind") or ""
    ident = f"arxiv_id {arxiv_id}" if arxiv_id else f"S2 corpus id {paper.get('corpusId', '?')}"
    head = f"{index}. **{clip(paper.get('title') or '(untitled)', 200)}** — {ident}"
    meta = []
    if where:
        meta.append(f"section: {where}")
    if isinstance(match.get("score"), int | float):
        meta.append(f"score {match['score']:.2f}")
    names = _flat_names(paper.get("authors"))
    if names:
        meta.append(authors_line(names, 3))
    lines = [head]
    if meta:
        lines.append("   " + " · ".join(meta))
    lines.append(f"   > {clip(snippet.get('text'), 700)}")
    return "\n".join(lines)


def _flat_names(authors: Any) -> list[str]:
    # The API documents a list of names; its schema example nests that list once more.
    names: list[str] = []
    for a in authors or []:
        if isinstance(a, list):
            names.extend(str(x) for x in a)
        elif isinstance(a, dict):
            names.append(str(a.get("name", "")))
        elif a:
            names.append(str(a))
    return names


# ---- Hub repositories and collections ------------------------------------------------------------

def model_entry(index: int, model: dict[str, Any]) -> str:
    meta = [plural(model.get("downloads"), "download"), plural(model.get("likes"), "like")]
    for key in ("pipeline_tag", "library_name"):
        if model.get(key):
            meta.append(str(model[key]))
    return f"{index}. **{model.get('id', '?')}** — " + " · ".join(meta)


def dataset_entry(index: int, dataset: dict[str, Any]) -> str:
    meta = [plural(dataset.get("downloads"), "download"), plural(dataset.get("likes"), "like")]
    tags = [t for t in dataset.get("tags") or [] if isinstance(t, str) and not t.startswith(_BORING_TAGS)]
    if tags:
        meta.append(", ".join(tags[:4]))
    line = f"{index}. **{dataset.get('id', '?')}** — " + " · ".join(meta)
    if dataset.get("description"):
        line += f"\n   {clip(dataset['description'], 200)}"
    return line


def collection_entry(index: int, collection: dict[str, Any], hub_url: str) -> str:
    owner = collection.get("owner")
    owner_name = owner.get("name") if isinstance(owner, dict) else owner
    items = collection.get("items") or []
    item_ids = [f"{i.get('type', '?')} {i.get('id', '?')}" for i in items if isinstance(i, dict)]
    lines = [f"{index}. **{clip(collection.get('title') or '(untitled)', 150)}** by {owner_name or '?'}"
             f" — {plural(collection.get('upvotes'), 'upvote')}",
             f"   {hub_url}/collections/{collection.get('slug', '')}"]
    if item_ids:
        lines.append(f"   items: {'; '.join(item_ids[:4])}" + (" …" if len(items) >= 4 else ""))
    if collection.get("description"):
        lines.append(f"   {clip(collection['description'], 200)}")
    return "\n".join(lines)
