"""Hub paper routes for the HubStandIn: `/api/papers/{id}`, `/api/papers/search`, `/api/daily_papers`,
and the arXiv-citation listings `/api/models?filter=arxiv:<id>`, `/api/datasets?filter=arxiv:<id>`,
`/api/collections?item=papers/<id>`.

State on the hub (fill it with the helpers below):
- `hub.state["papers"]`: arXiv id -> the `/api/papers/{id}` object (shape of
  reference/hub_api/papers_paper_info.json).
- `hub.state["daily_papers"]`: Daily Papers submissions, each `{"paper": id, "submittedOnDailyAt": iso,
  "numComments": n, "submittedBy": {...}}`; served as wrapper items with the paper object inside.
- `hub.state["paper_repos"]`: {"model": [...], "dataset": [...]} list-API repo objects; a repo cites a
  paper through an `arxiv:<id>` tag, as on the Hub.
- `hub.state["paper_collections"]`: collection objects (shape of GET /api/collections/{slug}).

The repo and collection listings are answered by a middleware, and only for paper filters, so they
coexist with whichever module serves the general `/api/models`, `/api/datasets` and `/api/collections`.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from aiohttp import web

_ids = itertools.count(0x68BE5810C123124955EF0000)
LIST_KEYS_MODEL = ("_id", "id", "likes", "trendingScore", "private", "downloads", "tags", "pipeline_tag",
                   "library_name", "createdAt", "modelId")
LIST_KEYS_DATASET = ("_id", "id", "author", "disabled", "gated", "lastModified", "likes", "trendingScore",
                     "private", "sha", "description", "downloads", "tags", "createdAt", "key")
COLLECTION_LIST_ITEMS = 4  # the list endpoint truncates each collection's items, as huggingface_hub warns
SORT_KEYS = {"downloads": "downloads", "likes": "likes", "trendingScore": "trendingScore",
             "createdAt": "createdAt", "lastModified": "lastModified", "upvotes": "upvotes",
             "trending": "upvotes"}


def add_routes(app: web.Application, hub: Any) -> None:
    hub.state.setdefault("papers", {})
    hub.state.setdefault("daily_papers", [])
    hub.state.setdefault("paper_repos", {"model": [], "dataset": []})
    hub.state.setdefault("paper_collections", [])
    app.router.add_get("/api/daily_papers", _daily_papers(hub))
    app.router.add_get("/api/papers/search", _search(hub))
    app.router.add_get("/api/papers/{paper_id:.+}", _paper(hub))
    app.middlewares.append(_citing_listings(hub))


# ---- helpers for tests ---------------------------------------------------------------------------

def new_object_id() -> str:
    return f"{next(_ids):x}"


def add_paper(hub: Any, paper: dict[str, Any], *, daily_on: str | None = None, num_comments: int = 0,
              submitted_by: str = "taesiri") -> dict[str, Any]:
    """Store a paper (an /api/papers/{id} object); with `daily_on` (ISO time) also list it in Daily Papers."""
    hub.state["papers"][paper["id"]] = paper
    if daily_on:
        hub.state["daily_papers"].append({
            "paper": paper["id"], "submittedOnDailyAt": daily_on, "numComments": num_comments,
            "submittedBy": {"_id": new_object_id(), "avatarUrl": "", "fullname": submitted_by,
                            "name": submitted_by, "type": "user", "isPro": False},
        })
    return paper


def add_citing_repo(hub: Any, kind: str, repo_id: str, arxiv_ids: list[str], **fields: Any) -> dict[str, Any]:
    """A model or dataset whose card links the given arXiv papers (the Hub tags it `arxiv:<id>`)."""
    base: dict[str, Any] = {
        "_id": new_object_id(), "id": repo_id, "likes": 0, "trendingScore": 0, "private": False,
        "downloads": 0, "createdAt": "2025-01-01T00:00:00.000Z", "tags": [],
    }
    if kind == "model":
        base.update({"modelId": repo_id, "pipeline_tag": None, "library_name": None})
    else:
        base.update({"author": repo_id.split("/")[0], "disabled": False, "gated": False, "sha": "0" * 40,
                     "lastModified": "2025-01-01T00:00:00.000Z", "description": "", "key": ""})
    base.update(fields)
    base["tags"] = [*base["tags"], *(f"arxiv:{a}" for a in arxiv_ids)]
    hub.state["paper_repos"][kind].append(base)
    return base


def add_collection(hub: Any, owner: str, title: str, items: list[tuple[str, str]], *, upvotes: int = 0,
                   description: str = "") -> dict[str, Any]:
    """A collection; `items` are (type, id) pairs such as ("paper", "2509.04664")."""
    object_id = new_object_id()
    slug = f"{owner}/{re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')}-{object_id[:24]}"
    collection = {
        "slug": slug, "title": title, "description": description, "lastUpdated": "2025-09-17T21:06:21.356Z",
        "gating": False,
        "owner": {"_id": new_object_id(), "avatarUrl": "", "fullname": owner, "name": owner, "type": "org",
                  "isHf": False, "isHfAdmin": False, "isMod": False, "followerCount": 0,
                  "isUserFollowing": False},
        "items": [{"_id": new_object_id(), "id": item_id, "type": kind, "position": pos,
                   **({"title": item_id} if kind == "paper" else {"author": item_id.split("/")[0]})}
                  for pos, (kind, item_id) in enumerate(items)],
        "position": 0, "theme": "pink", "private": False, "shareUrl": f"https://hf.co/collections/{slug}",
        "upvotes": upvotes, "isUpvotedByUser": False,
    }
    hub.state["paper_collections"].append(collection)
    return collection


# ---- papers --------------------------------------------------------------------------------------

def _not_found(message: str) -> web.Response:
    return web.json_response({"error": message}, status=404, headers={"X-Error-Message": message})


def _bad_request(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400, headers={"X-Error-Message": message})


def _wrapped(paper: dict[str, Any], submission: dict[str, Any] | None) -> dict[str, Any]:
    submission = submission or {}
    return {
        "paper": paper,
        "publishedAt": submission.get("submittedOnDailyAt") or paper.get("submittedOnDailyAt")
        or paper.get("publishedAt"),
        "title": paper.get("title"),
        "summary": paper.get("summary"),
        "thumbnail": f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{paper['id']}.png",
        "numComments": submission.get("numComments", 0),
        "submittedBy": submission.get("submittedBy") or paper.get("submittedOnDailyBy"),
        "isAuthorParticipating": False,
    }


def _int_param(request: web.Request, name: str, default: int, top: int) -> int | web.Response:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return max(0, min(int(raw), top))
    except ValueError:
        return _bad_request(f"Invalid {name}: {raw}")


def _daily_papers(hub: Any) -> Any:
    async def handler(request: web.Request) -> web.Response:
        limit = _int_param(request, "limit", 50, 100)
        page = _int_param(request, "p", 0, 10_000)
        if isinstance(limit, web.Response):
            return limit
        if isinstance(page, web.Response):
            return page
        date = request.query.get("date")
        if date is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
            return _bad_request(f"Invalid date: {date}")
        rows = [(s, hub.state["papers"][s["paper"]]) for s in hub.state["daily_papers"]
                if s["paper"] in hub.state["papers"]]
        if date:
            rows = [r for r in rows if r[0]["submittedOnDailyAt"][:10] == date]
        if request.query.get("submitter"):
            rows = [r for r in rows if r[0]["submittedBy"]["name"] == request.query["submitter"]]
        if request.query.get("sort") == "trending":
            rows.sort(key=lambda r: r[1].get("upvotes") or 0, reverse=True)
        else:
            rows.sort(key=lambda r: r[0]["submittedOnDailyAt"], reverse=True)
        rows = rows[page * limit:(page + 1) * limit]
        return web.json_response([_wrapped(paper, sub) for sub, paper in rows])

    return handler


def _search(hub: Any) -> Any:
    async def handler(request: web.Request) -> web.Response:
        limit = _int_param(request, "limit", 50, 120)
        if isinstance(limit, web.Response):
            return limit
        words = re.findall(r"\w+", (request.query.get("q") or "").casefold())
        scored = []
        for paper in hub.state["papers"].values():
            text = " ".join([paper.get("title") or "", paper.get("summary") or "",
                             " ".join(paper.get("ai_keywords") or [])]).casefold()
            hits = sum(1 for w in words if w in text)
            if hits:
                scored.append((hits, paper.get("upvotes") or 0, paper))
        scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
        return web.json_response([_wrapped(p, None) for _, _, p in scored[:limit]])

    return handler


def _paper(hub: Any) -> Any:
    async def handler(request: web.Request) -> web.Response:
        paper_id = request.match_info["paper_id"]
        paper = hub.state["papers"].get(paper_id)
        if paper is None:
            return _not_found("Paper not found")
        return web.json_response(paper)

    return handler


# ---- repos and collections citing a paper --------------------------------------------------------

def _citing_listings(hub: Any) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method == "GET":
            if request.path in ("/api/models", "/api/datasets"):
                wanted = [f for f in request.query.getall("filter", []) if f.startswith("arxiv:")]
                if wanted:
                    kind = "model" if request.path == "/api/models" else "dataset"
                    return _repo_listing(hub, kind, wanted, request)
            if request.path == "/api/collections":
                items = [i for i in request.query.getall("item", []) if i.startswith("papers/")]
                if items:
                    return _collection_listing(hub, items, request)
        return await handler(request)

    return middleware


def _sorted_limited(rows: list[dict[str, Any]], request: web.Request) -> list[dict[str, Any]] | web.Response:
    sort = request.query.get("sort")
    if sort is not None:
        key = SORT_KEYS.get(sort)
        if key is None:
            return _bad_request(f"Invalid sort: {sort}")
        descending = request.query.get("direction", "-1") == "-1"
        rows = sorted(rows, key=lambda r: r.get(key) or 0, reverse=descending)
    limit = _int_param(request, "limit", 1000, 1000)
    if isinstance(limit, web.Response):
        return limit
    return rows[:limit]


def _repo_listing(hub: Any, kind: str, filters: list[str], request: web.Request) -> web.Response:
    rows = [r for r in hub.state["paper_repos"][kind] if all(f in r["tags"] for f in filters)]
    picked = _sorted_limited(rows, request)
    if isinstance(picked, web.Response):
        return picked
    keys = LIST_KEYS_MODEL if kind == "model" else LIST_KEYS_DATASET
    return web.json_response([{k: r[k] for k in keys if k in r} for r in picked])


def _collection_listing(hub: Any, items: list[str], request: web.Request) -> web.Response:
    paper_ids = {i.removeprefix("papers/") for i in items}
    rows = [c for c in hub.state["paper_collections"]
            if any(it["type"] == "paper" and it["id"] in paper_ids for it in c["items"])]
    picked = _sorted_limited(rows, request)
    if isinstance(picked, web.Response):
        return picked
    return web.json_response([{**c, "items": c["items"][:COLLECTION_LIST_ITEMS]} for c in picked])
