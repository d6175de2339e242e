"""A Semantic Scholar stand-in speaking the Academic Graph and Recommendations APIs' JSON.

Shapes follow reference/semantic_scholar/*.json: paper objects with only the requested `fields`
(plus `paperId`), edge lists `{offset, next?, data[{contexts, intents, isInfluential, citedPaper|citingPaper}]}`,
`/paper/search` `{total, offset, next?, data}`, `/paper/search/bulk` `{total, token, data}`,
`{recommendedPapers}`, snippet search `{data[{snippet, score, paper}], retrievalVersion}`, and 404
`{"error": "Paper with id X not found"}`.

Search, recommendations and snippets are computed from the stored papers (word overlap), so a test
checks behaviour, not canned answers. `fail_next(429, retry_after=...)` makes the next requests fail
the way the real API throttles; every request's `x-api-key` stays in `requests` for tests to check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from intern.standins.base import StandIn

PAPER_FIELDS = {
    "paperId", "corpusId", "externalIds", "url", "title", "abstract", "venue", "publicationVenue", "year",
    "referenceCount", "citationCount", "influentialCitationCount", "isOpenAccess", "openAccessPdf",
    "fieldsOfStudy", "s2FieldsOfStudy", "publicationTypes", "publicationDate", "journal", "citationStyles",
    "authors", "tldr", "embedding",
}
EDGE_FIELDS = {"contexts", "intents", "contextsWithIntent", "isInfluential"}
SORTABLE = {"paperId", "publicationDate", "citationCount"}


@dataclass
class Injected:
    status: int
    retry_after: str | None
    path_contains: str | None
    remaining: int


@dataclass
class SemanticScholarStandIn(StandIn):
    papers: dict[str, dict[str, Any]] = field(default_factory=dict)  # paperId -> full paper object
    edges: list[dict[str, Any]] = field(default_factory=list)  # {"citing", "cited", contexts, intents, ...}
    snippets: list[dict[str, Any]] = field(default_factory=list)  # {"paperId", "text", "section", "kind"}
    require_api_key: str | None = None
    injected: list[Injected] = field(default_factory=list)

    # ---- test helpers ----------------------------------------------------------------------------

    def add_paper(self, paper_id: str, title: str, *, arxiv_id: str | None = None, abstract: str = "",
                  year: int | None = None, publication_date: str | None = None, venue: str = "",
                  fields_of_study: list[str] | None = None, authors: list[str] | None = None,
                  tldr: str | None = None, corpus_id: int | None = None) -> dict[str, Any]:
        corpus = corpus_id if corpus_id is not None else 10_000_000 + len(self.papers)
        external: dict[str, Any] = {"CorpusId": corpus}
        if arxiv_id:
            external["ArXiv"] = arxiv_id
        paper = {
            "paperId": paper_id, "externalIds": external, "corpusId": corpus, "publicationVenue": None,
            "url": f"https://www.semanticscholar.org/paper/{paper_id}", "title": title,
            "abstract": abstract or None, "venue": venue, "year": year, "referenceCount": 0, "citationCount": 0,
            "influentialCitationCount": 0, "isOpenAccess": bool(arxiv_id),
            "openAccessPdf": {"url": f"https://arxiv.org/pdf/{arxiv_id}", "status": "GREEN"} if arxiv_id else None,
            "fieldsOfStudy": fields_of_study,
            "s2FieldsOfStudy": [{"category": f, "source": "external"} for f in fields_of_study or []],
            "publicationTypes": ["JournalArticle"], "publicationDate": publication_date, "journal": None,
            "authors": [{"authorId": str(1000 + i), "name": n} for i, n in enumerate(authors or [])],
            "tldr": {"model": "tldr@v2.0.0", "text": tldr} if tldr else None,
        }
        self.papers[paper_id] = paper
        return paper

    def cite(self, citing: str, cited: str, *, contexts: list[str] | None = None, intents: list[str] | None = None,
             influential: bool = False) -> None:
        """`citing` cites `cited` (both paperIds); counts on both papers follow."""
        contexts = contexts or []
        intents = intents or []
        self.edges.append({
            "citing": citing, "cited": cited, "contexts": contexts, "intents": intents,
            "isInfluential": influential,
            "contextsWithIntent": [{"context": c, "intents": intents} for c in contexts],
        })
        self.papers[citing]["referenceCount"] += 1
        self.papers[cited]["citationCount"] += 1
        if influential:
            self.papers[cited]["influentialCitationCount"] += 1

    def add_snippet(self, paper_id: str, text: str, *, section: str | None = None, kind: str = "body") -> None:
        self.snippets.append({"paperId": paper_id, "text": text, "section": section, "kind": kind})

    def fail_next(self, status: int = 429, *, times: int = 1, retry_after: str | None = None,
                  path_contains: str | None = None) -> None:
        self.injected.append(Injected(status, retry_after, path_contains, times))

    def api_keys(self) -> list[str | None]:
        return [_header(r.headers, "x-api-key") for r in self.requests]

    # ---- routes ----------------------------------------------------------------------------------

    def setup(self, app: web.Application) -> None:
        app.middlewares.append(self._gate)
        app.router.add_get("/graph/v1/paper/search/bulk", self._search_bulk)
        app.router.add_get("/graph/v1/paper/search", self._search_relevance)
        app.router.add_get("/graph/v1/snippet/search", self._snippet_search)
        app.router.add_get("/graph/v1/paper/{paper_id:.+}/citations", self._citations)
        app.router.add_get("/graph/v1/paper/{paper_id:.+}/references", self._references)
        app.router.add_get("/graph/v1/paper/{paper_id:.+}", self._paper)
        app.router.add_get("/recommendations/v1/papers/forpaper/{paper_id:.+}", self._for_paper)
        app.router.add_post("/recommendations/v1/papers/", self._from_lists)
        app.router.add_post("/recommendations/v1/papers", self._from_lists)

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        for inj in self.injected:
            if inj.remaining > 0 and (inj.path_contains is None or inj.path_contains in request.path):
                inj.remaining -= 1
                headers = {"Retry-After": inj.retry_after} if inj.retry_after is not None else {}
                body = ({"message": "Too Many Requests. Please wait and try again or apply for a key for "
                                    "higher rate limits. https://www.semanticscholar.org/product/api"
                                    "#api-key-form", "code": "429"}
                        if inj.status == 429 else {"message": "Internal Server Error"})
                return web.json_response(body, status=inj.status, headers=headers)
        if self.require_api_key is not None and _header(request.headers, "x-api-key") != self.require_api_key:
            return web.json_response({"message": "Forbidden"}, status=403)
        return await handler(request)

    # ---- papers ----------------------------------------------------------------------------------

    def resolve(self, ref: str) -> dict[str, Any] | None:
        kind, _, value = ref.partition(":")
        if not value:
            return self.papers.get(ref.lower())
        kind = kind.lower()
        for paper in self.papers.values():
            ext = paper["externalIds"]
            if kind == "arxiv" and ext.get("ArXiv") == value:
                return paper
            if kind == "corpusid" and str(paper["corpusId"]) == value:
                return paper
            if kind == "doi" and str(ext.get("DOI", "")).lower() == value.lower():
                return paper
        return None

    async def _paper(self, request: web.Request) -> web.Response:
        fields = _fields(request, PAPER_FIELDS | {"citations", "references"})
        if isinstance(fields, web.Response):
            return fields
        paper = self.resolve(request.match_info["paper_id"])
        if paper is None:
            return _not_found(request.match_info["paper_id"])
        return web.json_response(_project(paper, fields or {"title"}))

    async def _citations(self, request: web.Request) -> web.Response:
        return await self._edge_list(request, "cited", "citing", "citingPaper")

    async def _references(self, request: web.Request) -> web.Response:
        return await self._edge_list(request, "citing", "cited", "citedPaper")

    async def _edge_list(self, request: web.Request, this_side: str, other_side: str, key: str) -> web.Response:
        fields = _fields(request, PAPER_FIELDS | EDGE_FIELDS)
        if isinstance(fields, web.Response):
            return fields
        paper = self.resolve(request.match_info["paper_id"])
        if paper is None:
            return _not_found(request.match_info["paper_id"])
        window = _window(request, default=100, top=1000)
        if isinstance(window, web.Response):
            return window
        offset, limit = window
        edges = [e for e in self.edges if e[this_side] == paper["paperId"]]
        paper_fields = (fields or {"title"}) - EDGE_FIELDS
        rows = []
        for edge in edges[offset:offset + limit]:
            row = {k: edge[k] for k in sorted(fields & EDGE_FIELDS)}
            row[key] = _project(self.papers[edge[other_side]], paper_fields)
            rows.append(row)
        body: dict[str, Any] = {"offset": offset, "data": rows}
        if offset + limit < len(edges):
            body["next"] = offset + limit
        return web.json_response(body)

    # ---- search ----------------------------------------------------------------------------------

    def _matching(self, request: web.Request, *, every_word: bool) -> list[tuple[int, dict[str, Any]]]:
        words = _words(request.query.get("query", ""))
        found = []
        for paper in self.papers.values():
            text = _words(f"{paper['title']} {paper.get('abstract') or ''}")
            hits = sum(1 for w in words if w in text)
            if (hits == len(words) if every_word else hits > 0) and _passes_filters(paper, request):
                found.append((hits, paper))
        return found

    async def _search_relevance(self, request: web.Request) -> web.Response:
        fields = _fields(request, PAPER_FIELDS)
        if isinstance(fields, web.Response):
            return fields
        if not request.query.get("query"):
            return web.json_response({"error": "Missing required parameter: query"}, status=400)
        window = _window(request, default=100, top=100)
        if isinstance(window, web.Response):
            return window
        offset, limit = window
        found = sorted(self._matching(request, every_word=False),
                       key=lambda t: (t[0], t[1]["citationCount"]), reverse=True)
        rows = [_project(p, fields or {"title"}) for _, p in found[offset:offset + limit]]
        body: dict[str, Any] = {"total": len(found), "offset": offset, "data": rows}
        if offset + limit < len(found):
            body["next"] = offset + limit
        return web.json_response(body)

    async def _search_bulk(self, request: web.Request) -> web.Response:
        fields = _fields(request, PAPER_FIELDS)
        if isinstance(fields, web.Response):
            return fields
        found = [p for _, p in self._matching(request, every_word=True)]
        sort = request.query.get("sort", "paperId:asc")
        name, _, order = sort.partition(":")
        if name not in SORTABLE or order not in ("", "asc", "desc"):
            return web.json_response({"error": f"Unacceptable query params: [sort={sort}]"}, status=400)
        found.sort(key=lambda p: (p.get(name) is not None, p.get(name) or 0), reverse=order == "desc")
        # Bulk search pages by token, 1,000 at a time; `limit` is not one of its parameters.
        start = int(request.query.get("token") or 0)
        batch = found[start:start + 1000]
        token = str(start + 1000) if start + 1000 < len(found) else None
        return web.json_response({"total": len(found), "token": token,
                                  "data": [_project(p, fields or {"title"}) for p in batch]})

    async def _snippet_search(self, request: web.Request) -> web.Response:
        query = request.query.get("query")
        if not query:
            return web.json_response({"error": "Missing required parameter: query"}, status=400)
        window = _window(request, default=10, top=1000)
        if isinstance(window, web.Response):
            return window
        _, limit = window
        words = _words(query)
        scored = []
        for snip in self.snippets:
            paper = self.papers[snip["paperId"]]
            hits = sum(1 for w in words if w in _words(snip["text"]))
            if hits and _passes_filters(paper, request):
                scored.append((hits / len(words), snip, paper))
        scored.sort(key=lambda t: t[0], reverse=True)
        return web.json_response({"data": [_snippet_match(score, snip, paper) for score, snip, paper in scored[:limit]],
                                  "retrievalVersion": "pa1-v1"})

    # ---- recommendations -------------------------------------------------------------------------

    async def _for_paper(self, request: web.Request) -> web.Response:
        fields = _fields(request, PAPER_FIELDS)
        if isinstance(fields, web.Response):
            return fields
        paper = self.resolve(request.match_info["paper_id"])
        if paper is None:
            return _not_found(request.match_info["paper_id"])
        return self._recommend(request, [paper], [], fields)

    async def _from_lists(self, request: web.Request) -> web.Response:
        fields = _fields(request, PAPER_FIELDS)
        if isinstance(fields, web.Response):
            return fields
        body = await request.json()
        refs = {"positive": body.get("positivePaperIds") or [], "negative": body.get("negativePaperIds") or []}
        if not refs["positive"]:
            return web.json_response({"error": "positivePaperIds must not be empty"}, status=400)
        resolved: dict[str, list[dict[str, Any]]] = {"positive": [], "negative": []}
        for side, ids in refs.items():
            for ref in ids:
                paper = self.resolve(ref)
                if paper is None:
                    return _not_found(ref)
                resolved[side].append(paper)
        return self._recommend(request, resolved["positive"], resolved["negative"], fields)

    def _recommend(self, request: web.Request, liked: list[dict[str, Any]], disliked: list[dict[str, Any]],
                   fields: set[str] | None) -> web.Response:
        window = _window(request, default=100, top=500)
        if isinstance(window, web.Response):
            return window
        _, limit = window
        seen = {p["paperId"] for p in liked + disliked}
        scored = []
        for paper in self.papers.values():
            if paper["paperId"] in seen:
                continue
            score = sum(_overlap(paper, p) for p in liked) - sum(_overlap(paper, p) for p in disliked)
            if score > 0:
                scored.append((score, paper["citationCount"], paper))
        scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
        return web.json_response({"recommendedPapers": [_project(p, fields or {"title"}) for *_, p in scored[:limit]]})


# ---- helpers -------------------------------------------------------------------------------------

_STOP = {"a", "an", "and", "the", "of", "for", "in", "on", "to", "with", "we", "is", "are", "by", "as", "from",
         "that", "this", "our"}


def _header(headers: Any, name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return str(value)
    return None


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.casefold()) if w not in _STOP}


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> int:
    return len(_words(f"{a['title']} {a.get('abstract') or ''}") & _words(f"{b['title']} {b.get('abstract') or ''}"))


def _not_found(ref: str) -> web.Response:
    return web.json_response({"error": f"Paper with id {ref} not found"}, status=404)


def _fields(request: web.Request, allowed: set[str]) -> set[str] | web.Response:
    raw = request.query.get("fields")
    if not raw:
        return set()
    wanted = {f.strip() for f in raw.split(",") if f.strip()}
    unknown = sorted(f for f in wanted if f.split(".")[0] not in allowed)
    if unknown:
        return web.json_response({"error": f"Unrecognized or unsupported fields: [{', '.join(unknown)}]"},
                                 status=400)
    return wanted


def _window(request: web.Request, *, default: int, top: int) -> tuple[int, int] | web.Response:
    try:
        offset = int(request.query.get("offset", 0))
        limit = int(request.query.get("limit", default))
    except ValueError:
        return web.json_response({"error": "Unacceptable query params: offset/limit must be integers"}, status=400)
    if limit > top or limit < 1:
        return web.json_response({"error": f"Unacceptable query params: [limit={limit}], max is {top}"}, status=400)
    return offset, limit


def _project(paper: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    out = {"paperId": paper["paperId"]}
    for name in sorted(fields):
        top = name.split(".")[0]
        if top in paper:
            out[top] = paper[top]
    return out


def _passes_filters(paper: dict[str, Any], request: web.Request) -> bool:
    span = request.query.get("publicationDateOrYear")
    if span:
        start, _, end = span.partition(":")
        when = paper.get("publicationDate") or (str(paper["year"]) if paper.get("year") else "")
        if not when or (start and when < start) or (end and when[: len(end)] > end):
            return False
    if request.query.get("year"):
        start, _, end = request.query["year"].partition("-")
        year = paper.get("year") or 0
        if year < int(start or 0) or (end and year > int(end)):
            return False
    if request.query.get("fieldsOfStudy"):
        wanted = set(request.query["fieldsOfStudy"].split(","))
        if not wanted & set(paper.get("fieldsOfStudy") or []):
            return False
    minimum = request.query.get("minCitationCount")
    return not (minimum and paper["citationCount"] < int(minimum))


def _snippet_match(score: float, snip: dict[str, Any], paper: dict[str, Any]) -> dict[str, Any]:
    arxiv = paper["externalIds"].get("ArXiv")
    open_access = {
        "license": "CCBY", "status": "GREEN",
        "disclaimer": ("Notice: This snippet is extracted from the open access paper or abstract available at "
                       f"https://arxiv.org/abs/{arxiv}, which is subject to the license by the author or "
                       "copyright owner provided with this content. Please go to the source to verify the "
                       "license and copyright information for your use."),
    } if arxiv else None
    text = snip["text"]
    return {
        "snippet": {
            "text": text, "snippetKind": snip["kind"], "section": snip["section"],
            "snippetOffset": {"start": 0, "end": len(text)},
            "annotations": {"sentences": [{"start": 0, "end": len(text)}], "refMentions": []},
        },
        "score": round(score, 6),
        "paper": {"corpusId": str(paper["corpusId"]), "title": paper["title"],
                  "authors": [a["name"] for a in paper["authors"]], "openAccessInfo": open_access},
    }
