"""The eleven `hf_papers` operations. Each takes the sources and the arguments and returns markdown.

Anything the model can act on (a missing argument, an unknown paper, a source that is down) is raised
as ToolFeedback with the next step spelled out; SourceError from a source is turned into one by the
tool's handler.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

from intern.agent.errors import ToolArgumentError, ToolFeedback
from intern.agent.papers import render
from intern.agent.papers.args import PapersArgs
from intern.agent.papers.arxiv_html import PaperDocument, find_section, parse_paper_html, render_sections
from intern.agent.papers.ids import arxiv_id_in, normalise_arxiv_id, s2_paper_ref, s2_ref
from intern.agent.papers.sources import DAY, HOUR, MINUTE, NotFound, SourceError, Sources, Unavailable

S2_LIST_FIELDS = "title,externalIds,year,venue,publicationDate,citationCount,influentialCitationCount,authors"
S2_DETAIL_FIELDS = ("title,abstract,externalIds,year,venue,publicationDate,citationCount,"
                    "influentialCitationCount,referenceCount,fieldsOfStudy,tldr,authors,openAccessPdf,url")
S2_EDGE_FIELDS = "contexts,intents,isInfluential," + S2_LIST_FIELDS
S2_COUNT_FIELDS = "title,citationCount,influentialCitationCount,referenceCount"
S2_SORTS = {"citations": "citationCount:desc", "newest": "publicationDate:desc", "oldest": "publicationDate:asc"}
EDGE_PAGE = 100  # edges fetched per direction, so influential ones can be put first
SECTION_CHARS = 12_000
TOC_PREVIEW_CHARS = 160
HTML_TTL = 7 * DAY
NO_HTML_TTL = 6 * HOUR

Operation = Callable[[Sources, PapersArgs], Awaitable[str]]


def need_arxiv_id(args: PapersArgs) -> str:
    if not args.arxiv_id:
        raise ToolArgumentError(f"operation '{args.operation}' needs arxiv_id (a bare id such as 2401.00001).")
    return normalise_arxiv_id(args.arxiv_id)


def need_query(args: PapersArgs) -> str:
    query = (args.query or "").strip()
    if not query:
        raise ToolArgumentError(f"operation '{args.operation}' needs query (the words to search for).")
    return query


# ---- trending and search -------------------------------------------------------------------------

async def trending(src: Sources, args: PapersArgs) -> str:
    params: dict[str, Any] = {"limit": 100 if args.query else args.limit}
    if args.date:
        params["date"] = args.date
    else:
        params["sort"] = "trending"
    past_day = args.date is not None and args.date < dt.date.today().isoformat()
    items = await src.hub_json("/api/daily_papers", params, ttl=DAY if past_day else 30 * MINUTE)
    if args.query:
        items = [item for item in items if _mentions(item, args.query)]
    if args.date:
        items.sort(key=lambda item: int(render.hub_paper(item).get("upvotes") or 0), reverse=True)
    when = f" of {args.date}" if args.date else ""
    about = f" matching '{args.query}'" if args.query else ""
    if not items:
        return (f"No Daily Papers{when}{about}. Try another date, fewer keywords, or operation='search' "
                "to search all papers on the Hub.")
    shown = items[: args.limit]
    head = f"# Daily Papers{when or ' (trending)'}{about} — {len(shown)} of {len(items)}"
    return _listing(head, [render.hub_paper_entry(i, item) for i, item in enumerate(shown, 1)],
                    "Next: paper_details or read_paper with an arxiv_id.")


def _mentions(item: dict[str, Any], query: str) -> bool:
    paper = render.hub_paper(item)
    haystack = " ".join([
        str(item.get("title") or ""), str(paper.get("title") or ""), str(paper.get("summary") or ""),
        str(paper.get("ai_summary") or ""), " ".join(paper.get("ai_keywords") or []),
    ]).casefold()
    return all(word in haystack for word in query.casefold().split())


async def search(src: Sources, args: PapersArgs) -> str:
    query = need_query(args)
    note = ""
    if args.s2_filters:
        try:
            return await _s2_search(src, args, query)
        except Unavailable as exc:
            note = f"\n\n_{exc} These are Hub results, without the date/field/citation filters._"
    items = await src.hub_json("/api/papers/search", {"q": query, "limit": args.limit}, ttl=HOUR)
    shown = items[: args.limit]
    if not shown:
        return f"No papers on the Hub match '{query}'. Try other words, or add a filter (e.g. date_from) " \
               "to search Semantic Scholar instead." + note
    head = f"# Hub papers matching '{query}' — {len(shown)}"
    entries = [render.hub_paper_entry(i, item) for i, item in enumerate(shown, 1)]
    return _listing(head, entries, "Next: paper_details or read_paper with an arxiv_id.") + note


async def _s2_search(src: Sources, args: PapersArgs, query: str) -> str:
    params: dict[str, Any] = {"query": query, "fields": S2_LIST_FIELDS, **args.s2_filter_params()}
    sort = S2_SORTS.get(args.sort or "relevance")
    if sort:
        # Only the bulk endpoint sorts; it ignores `limit` and answers up to 1,000 at a time.
        params["sort"] = sort
        data = await src.s2_json("/graph/v1/paper/search/bulk", params, ttl=DAY, keep_first=args.limit)
    else:
        params["limit"] = args.limit
        data = await src.s2_json("/graph/v1/paper/search", params, ttl=DAY)
    papers = (data.get("data") or [])[: args.limit]
    filters = _describe_filters(args)
    if not papers:
        return f"Semantic Scholar has no papers matching '{query}' with {filters}. Loosen the filters."
    head = (f"# Semantic Scholar papers matching '{query}' ({filters}) — {len(papers)} of "
            f"{int(data.get('total') or len(papers)):,}")
    entries = [render.s2_paper_entry(i, p) for i, p in enumerate(papers, 1)]
    return _listing(head, entries, "Next: paper_details or read_paper with an arxiv_id.")


def _describe_filters(args: PapersArgs) -> str:
    parts = []
    if args.date_from or args.date_to:
        parts.append(f"published {args.date_from or '…'} to {args.date_to or '…'}")
    if args.fields_of_study:
        parts.append("fields " + ", ".join(args.fields_of_study))
    if args.min_citations is not None:
        parts.append(f"at least {args.min_citations} citations")
    parts.append(f"sorted by {args.sort or 'relevance'}")
    return "; ".join(parts)


# ---- one paper -----------------------------------------------------------------------------------

async def paper_details(src: Sources, args: PapersArgs) -> str:
    arxiv_id = need_arxiv_id(args)
    results: tuple[Any, ...] = await asyncio.gather(
        src.hub_json(f"/api/papers/{arxiv_id}", ttl=6 * HOUR),
        src.s2_json(f"/graph/v1/paper/{s2_ref(arxiv_id)}", {"fields": S2_DETAIL_FIELDS}, ttl=DAY),
        return_exceptions=True,
    )
    hub, s2 = results
    _reraise_unexpected(hub, s2)
    if isinstance(hub, SourceError) and isinstance(s2, SourceError):
        if isinstance(hub, NotFound) and isinstance(s2, NotFound):
            raise ToolFeedback(f"No paper arXiv:{arxiv_id} on the Hub or Semantic Scholar. Check the id, or "
                               "find the paper with operation='search' and its title.")
        raise ToolFeedback(f"Could not look up arXiv:{arxiv_id}: {hub} {s2}")
    return _details_text(src, arxiv_id, hub if isinstance(hub, dict) else None,
                         s2 if isinstance(s2, dict) else None, s2 if isinstance(s2, Unavailable) else None)


def _details_text(src: Sources, arxiv_id: str, hub: dict[str, Any] | None, s2: dict[str, Any] | None,
                  s2_error: Unavailable | None) -> str:
    title = (hub or {}).get("title") or (s2 or {}).get("title") or "(untitled)"
    lines = [f"# {title}", f"arxiv_id {arxiv_id} · {src.arxiv_url}/abs/{arxiv_id} · PDF {src.arxiv_url}/pdf/{arxiv_id}"]
    if hub:
        lines.append(f"Hub page: {src.hub_url}/papers/{arxiv_id}")
        lines.extend(_hub_facts(hub))
    else:
        lines.append("Not on the Hub's paper pages (no upvotes, linked repos may still exist).")
    if s2:
        lines.extend(_s2_facts(s2, with_authors=not hub))
    elif s2_error is not None:
        lines.append(f"Citation counts unavailable: {s2_error}")
    else:
        lines.append("Semantic Scholar does not index this paper yet (no citation data).")
    summary = (hub or {}).get("ai_summary")
    if summary:
        lines += ["", "## AI summary", str(summary)]
    tldr = ((s2 or {}).get("tldr") or {}).get("text")
    if tldr:
        lines += ["", "## TL;DR (Semantic Scholar)", str(tldr)]
    abstract = (hub or {}).get("summary") or (s2 or {}).get("abstract")
    if abstract:
        lines += ["", "## Abstract", render.clip(abstract, 2000)]
    lines += ["", "Next: read_paper for the full text, citation_graph, recommend, or find_all_resources "
                  "for models/datasets citing it."]
    return "\n".join(lines)


def _hub_facts(hub: dict[str, Any]) -> list[str]:
    names = [a.get("name", "") for a in hub.get("authors") or [] if isinstance(a, dict)]
    facts = [f"Published {render.day(hub.get('publishedAt'))} · {render.plural(hub.get('upvotes'), 'upvote')} on the Hub"]
    if names:
        facts.append(f"Authors: {render.authors_line(names, 10)}")
    if hub.get("githubRepo"):
        stars = hub.get("githubStars")
        facts.append(f"Code: {hub['githubRepo']}" + (f" ({stars:,}★)" if stars else ""))
    if hub.get("projectPage"):
        facts.append(f"Project page: {hub['projectPage']}")
    if hub.get("ai_keywords"):
        facts.append(f"Keywords: {', '.join(hub['ai_keywords'][:10])}")
    return facts


def _s2_facts(s2: dict[str, Any], *, with_authors: bool) -> list[str]:
    cites = (f"{render.plural(s2.get('citationCount'), 'citation')} "
             f"({int(s2.get('influentialCitationCount') or 0):,} influential) · "
             f"{render.plural(s2.get('referenceCount'), 'reference')}")
    facts = [f"Semantic Scholar: {cites}"]
    if s2.get("venue"):
        facts.append(f"Venue: {s2['venue']}" + (f" ({s2['year']})" if s2.get("year") else ""))
    elif s2.get("year"):
        facts.append(f"Year: {s2['year']}")
    if s2.get("fieldsOfStudy"):
        facts.append(f"Fields: {', '.join(s2['fieldsOfStudy'])}")
    if with_authors and s2.get("authors"):
        facts.append("Authors: " + render.authors_line([a.get("name", "") for a in s2["authors"]], 10))
    return facts


async def read_paper(src: Sources, args: PapersArgs) -> str:
    arxiv_id = need_arxiv_id(args)
    try:
        doc = await _document(src, arxiv_id)
        problem = None
    except Unavailable as exc:
        doc, problem = None, str(exc)
    if doc is None or not doc.sections:
        return await _abstract_only(src, arxiv_id, problem)
    if not args.section:
        return _contents(src, arxiv_id, doc)
    index = find_section(doc, args.section)
    if index is None:
        raise ToolFeedback(f"arXiv:{arxiv_id} has no section '{args.section}'. Its sections:\n"
                           + _section_list(doc) + "\nCall read_paper again with one of these numbers or titles.")
    return _section_text(src, arxiv_id, doc, index)


async def _document(src: Sources, arxiv_id: str) -> PaperDocument | None:
    # The parsed page is cached, not the raw HTML: it is a fraction of the size and needs no re-parse.
    key = f"hf_papers:arxiv_html:{src.arxiv_url}:{arxiv_id}"
    hit = await src.cache_get(key)
    if hit is not None:
        data = json.loads(hit)
        return None if data.get("missing") else PaperDocument.from_json(data)
    html = await src.arxiv_html(arxiv_id)
    if html is None:
        await src.cache_set(key, json.dumps({"missing": True}), NO_HTML_TTL)
        return None
    doc = await asyncio.to_thread(parse_paper_html, html)
    await src.cache_set(key, json.dumps(doc.to_json()), HTML_TTL)
    return doc


async def _abstract_only(src: Sources, arxiv_id: str, problem: str | None) -> str:
    title, abstract = await _title_and_abstract(src, arxiv_id)
    why = (f"The arXiv HTML version could not be fetched ({problem})" if problem
           else "arXiv has no HTML version of this paper (it is made only when the LaTeX source converts)")
    return "\n".join([
        f"# {title}", f"arxiv_id {arxiv_id} · {src.arxiv_url}/abs/{arxiv_id}",
        f"{why}, so only the abstract is shown. Full text (PDF): {src.arxiv_url}/pdf/{arxiv_id}",
        "", "## Abstract", abstract or "(no abstract available)",
    ])


async def _title_and_abstract(src: Sources, arxiv_id: str) -> tuple[str, str]:
    errors: list[str] = []
    try:
        hub = await src.hub_json(f"/api/papers/{arxiv_id}", ttl=6 * HOUR)
        return str(hub.get("title") or arxiv_id), str(hub.get("summary") or "")
    except SourceError as exc:
        errors.append(str(exc))
    try:
        s2 = await src.s2_json(f"/graph/v1/paper/{s2_ref(arxiv_id)}", {"fields": S2_DETAIL_FIELDS}, ttl=DAY)
        return str(s2.get("title") or arxiv_id), str(s2.get("abstract") or "")
    except NotFound as exc:
        raise ToolFeedback(f"No paper arXiv:{arxiv_id} found (no arXiv HTML, not on the Hub or Semantic "
                           "Scholar). Check the id, or find it with operation='search'.") from exc
    except Unavailable as exc:
        raise ToolFeedback(f"Could not read arXiv:{arxiv_id}: {' '.join(errors)} {exc}") from exc


def _contents(src: Sources, arxiv_id: str, doc: PaperDocument) -> str:
    lines = [f"# {doc.title or arxiv_id}", f"arxiv_id {arxiv_id} · {src.arxiv_url}/html/{arxiv_id}"]
    if doc.authors:
        lines.append(f"Authors: {render.authors_line(doc.authors, 10)}")
    if doc.abstract:
        lines += ["", "## Abstract", render.clip(doc.abstract, 3000)]
    lines += ["", "## Sections", _section_list(doc, previews=True), "",
              f"Read one with operation='read_paper', arxiv_id='{arxiv_id}', section='<number or title>'."]
    return "\n".join(lines)


def _section_list(doc: PaperDocument, *, previews: bool = False) -> str:
    lines = []
    for index, sec in enumerate(doc.sections):
        words = sum(len(s.body.split()) for s in doc.subtree(index))
        line = f"{'  ' * (sec.level - 1)}- {sec.label or '(untitled)'} ({words:,} words)"
        if previews and sec.level == 1 and sec.body:
            line += f": {render.clip(sec.body, TOC_PREVIEW_CHARS)}"
        lines.append(line)
    return "\n".join(lines)


def _section_text(src: Sources, arxiv_id: str, doc: PaperDocument, index: int) -> str:
    parts = doc.subtree(index)
    head = parts[0]
    text = render_sections(parts) or "(this section has no text of its own; see its subsections)"
    lines = [f"# {doc.title or arxiv_id}", f"## {head.label or '(untitled)'}",
             f"arxiv_id {arxiv_id} · {src.arxiv_url}/html/{arxiv_id}#{head.anchor}", ""]
    if len(text) > SECTION_CHARS:
        cut = text[:SECTION_CHARS].rsplit("\n", 1)[0]
        subs = [s.number or s.title for s in parts[1:]]
        hint = f" Read a subsection ({', '.join(subs[:8])}) for the rest." if subs else ""
        text = f"{cut}\n\n[Section cut at {SECTION_CHARS:,} of {len(text):,} characters.{hint}]"
    lines.append(text)
    following = [s for s in doc.sections[index + len(parts):] if s.level <= head.level][:1]
    if following:
        lines += ["", f"Next section: {following[0].label}"]
    return "\n".join(lines)


# ---- Semantic Scholar graph ----------------------------------------------------------------------

async def citation_graph(src: Sources, args: PapersArgs) -> str:
    arxiv_id = need_arxiv_id(args)
    ref = s2_ref(arxiv_id)
    wanted = ["references", "citations"] if args.direction == "both" else [args.direction]
    edge_params = {"fields": S2_EDGE_FIELDS, "limit": EDGE_PAGE}
    results = await asyncio.gather(
        src.s2_json(f"/graph/v1/paper/{ref}", {"fields": S2_COUNT_FIELDS}, ttl=DAY),
        *(src.s2_json(f"/graph/v1/paper/{ref}/{d}", edge_params, ttl=DAY) for d in wanted),
        return_exceptions=True,
    )
    _reraise_unexpected(*results)
    meta, edges = results[0], dict(zip(wanted, results[1:], strict=True))
    if isinstance(meta, NotFound) or any(isinstance(e, NotFound) for e in edges.values()):
        raise ToolFeedback(f"Semantic Scholar does not know arXiv:{arxiv_id} (it may be too new or the id "
                           "may be wrong). paper_details shows what the Hub knows about it.")
    if all(isinstance(r, SourceError) for r in results):
        raise ToolFeedback(f"No citation data for arXiv:{arxiv_id}: {results[0]}")
    info = meta if isinstance(meta, dict) else {}
    lines = [f"# Citation graph of {info.get('title') or 'arXiv:' + arxiv_id}", f"arxiv_id {arxiv_id}"]
    for direction, result in edges.items():
        lines += ["", *_edge_section(direction, result, info, args.limit)]
    lines += ["", "Influential = Semantic Scholar judges the citation central to the citing paper. "
                  "Next: paper_details or read_paper with an arxiv_id above."]
    return "\n".join(lines)


def _edge_section(direction: str, result: Any, info: dict[str, Any], limit: int) -> list[str]:
    title = direction.capitalize()
    if isinstance(result, SourceError):
        return [f"## {title}", f"Unavailable: {result}"]
    key = "citedPaper" if direction == "references" else "citingPaper"
    edges = [e for e in result.get("data") or [] if isinstance(e, dict)]
    if not edges:
        return [f"## {title}", "None recorded by Semantic Scholar."]
    edges.sort(key=lambda e: (not e.get("isInfluential"), -int((e.get(key) or {}).get("citationCount") or 0)))
    total = info.get("referenceCount" if direction == "references" else "citationCount")
    of = f" of {int(total):,}" if total is not None else ""
    influential = sum(1 for e in edges if e.get("isInfluential"))
    head = (f"## {title} — showing {min(limit, len(edges))}{of} ({influential} influential among "
            f"{len(edges)} fetched; influential first, then most cited)")
    return [head, *(render.citation_entry(i, e, key) for i, e in enumerate(edges[:limit], 1))]


async def snippet_search(src: Sources, args: PapersArgs) -> str:
    query = need_query(args)
    params: dict[str, Any] = {"query": query, "limit": args.limit, **args.s2_filter_params()}
    data = await src.s2_json("/graph/v1/snippet/search", params, ttl=DAY)
    matches = (data.get("data") or [])[: args.limit]
    if not matches:
        return f"No full-text passages match '{query}'. Try fewer or more common words."
    entries = [render.snippet_entry(i, m, arxiv_id_in(((m.get("paper") or {}).get("openAccessInfo") or {})
                                                      .get("disclaimer")))
               for i, m in enumerate(matches, 1)]
    return _listing(f"# Passages matching '{query}' — {len(matches)}", entries,
                    "Next: read_paper with an arxiv_id to read the passage in context.")


async def recommend(src: Sources, args: PapersArgs) -> str:
    params = {"fields": S2_LIST_FIELDS, "limit": args.limit}
    if args.positive_ids or args.negative_ids:
        positives = [s2_paper_ref(x) for x in args.positive_ids or []]
        if args.arxiv_id:
            positives.insert(0, s2_ref(normalise_arxiv_id(args.arxiv_id)))
        if not positives:
            raise ToolArgumentError("recommend with negative_ids also needs positive_ids (papers to find more like).")
        body = {"positivePaperIds": positives, "negativePaperIds": [s2_paper_ref(x) for x in args.negative_ids or []]}
        basis = f"{len(positives)} liked paper(s)" + (f", {len(body['negativePaperIds'])} disliked" if body["negativePaperIds"] else "")
        data = await _s2_or_feedback(src.s2_json("/recommendations/v1/papers/", params, body=body, ttl=DAY),
                                     "one of the given papers")
    else:
        arxiv_id = need_arxiv_id(args)
        basis = f"arXiv:{arxiv_id}"
        data = await _s2_or_feedback(
            src.s2_json(f"/recommendations/v1/papers/forpaper/{s2_ref(arxiv_id)}", params, ttl=DAY),
            f"arXiv:{arxiv_id}")
    papers = (data.get("recommendedPapers") or [])[: args.limit]
    if not papers:
        return f"Semantic Scholar has no recommendations based on {basis}."
    entries = [render.s2_paper_entry(i, p) for i, p in enumerate(papers, 1)]
    return _listing(f"# Recommended papers based on {basis} — {len(papers)}", entries,
                    "Next: paper_details or read_paper with an arxiv_id.")


async def _s2_or_feedback(call: Awaitable[Any], what: str) -> Any:
    try:
        return await call
    except NotFound as exc:
        raise ToolFeedback(f"Semantic Scholar does not know {what} ({exc}). Check the ids, or use search.") from exc


# ---- Hub repositories citing a paper -------------------------------------------------------------

async def _repos(src: Sources, kind: str, arxiv_id: str, limit: int) -> list[dict[str, Any]]:
    params = {"filter": f"arxiv:{arxiv_id}", "sort": "downloads", "direction": -1, "limit": limit}
    return list(await src.hub_json(f"/api/{kind}", params, ttl=HOUR))[:limit]


async def _collections(src: Sources, arxiv_id: str, limit: int) -> list[dict[str, Any]]:
    params = {"item": f"papers/{arxiv_id}", "sort": "upvotes", "limit": limit}
    return list(await src.hub_json("/api/collections", params, ttl=HOUR))[:limit]


def _models_block(src: Sources, arxiv_id: str, models: list[dict[str, Any]]) -> list[str]:
    if not models:
        return [f"No models on the Hub cite arXiv:{arxiv_id} (a model cites a paper by an arxiv link in its card)."]
    return [render.model_entry(i, m) for i, m in enumerate(models, 1)]


def _datasets_block(src: Sources, arxiv_id: str, datasets: list[dict[str, Any]]) -> list[str]:
    if not datasets:
        return [f"No datasets on the Hub cite arXiv:{arxiv_id}."]
    return [render.dataset_entry(i, d) for i, d in enumerate(datasets, 1)]


def _collections_block(src: Sources, arxiv_id: str, collections: list[dict[str, Any]]) -> list[str]:
    if not collections:
        return [f"No collections on the Hub contain arXiv:{arxiv_id}."]
    return [render.collection_entry(i, c, src.hub_url) for i, c in enumerate(collections, 1)]


async def find_models(src: Sources, args: PapersArgs) -> str:
    arxiv_id = need_arxiv_id(args)
    models = await _repos(src, "models", arxiv_id, args.limit)
    return _listing(f"# Models citing arXiv:{arxiv_id} (most downloaded first)",
                    _models_block(src, arxiv_id, models), "")


async def find_datasets(src: Sources, args: PapersArgs) -> str:
    arxiv_id = need_arxiv_id(args)
    datasets = await _repos(src, "datasets", arxiv_id, args.limit)
    hint = f"Next: hf_inspect_dataset with dataset='{datasets[0]['id']}'." if datasets else ""
    return _listing(f"# Datasets citing arXiv:{arxiv_id} (most downloaded first)",
                    _datasets_block(src, arxiv_id, datasets), hint)


async def find_collections(src: Sources, args: PapersArgs) -> str:
    arxiv_id = need_arxiv_id(args)
    collections = await _collections(src, arxiv_id, args.limit)
    return _listing(f"# Collections containing arXiv:{arxiv_id} (most upvoted first)",
                    _collections_block(src, arxiv_id, collections), "")


async def find_all_resources(src: Sources, args: PapersArgs) -> str:
    arxiv_id = need_arxiv_id(args)
    results = await asyncio.gather(
        _repos(src, "models", arxiv_id, args.limit), _repos(src, "datasets", arxiv_id, args.limit),
        _collections(src, arxiv_id, args.limit), return_exceptions=True,
    )
    _reraise_unexpected(*results)
    lines = [f"# Hub resources citing arXiv:{arxiv_id}", f"{src.hub_url}/papers/{arxiv_id}"]
    blocks = (("Models", _models_block), ("Datasets", _datasets_block), ("Collections", _collections_block))
    for (title, block), result in zip(blocks, results, strict=True):
        body = [f"Unavailable: {result}"] if isinstance(result, BaseException) else block(src, arxiv_id, result)
        lines += ["", f"## {title}", *body]
    return "\n".join(lines)


# ---- shared --------------------------------------------------------------------------------------

def _listing(head: str, entries: list[str], footer: str) -> str:
    parts = [head, *entries]
    if footer:
        parts.append(footer)
    return "\n\n".join(parts)


def _reraise_unexpected(*results: Any) -> None:
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, SourceError):
            raise result


OPERATIONS: dict[str, Operation] = {
    "trending": trending,
    "search": search,
    "paper_details": paper_details,
    "read_paper": read_paper,
    "citation_graph": citation_graph,
    "snippet_search": snippet_search,
    "recommend": recommend,
    "find_datasets": find_datasets,
    "find_models": find_models,
    "find_collections": find_collections,
    "find_all_resources": find_all_resources,
}
