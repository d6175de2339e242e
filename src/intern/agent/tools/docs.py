"""Documentation tools: `explore_hf_docs` (search the index), `fetch_hf_docs` (read one page),
`find_hf_api` (search the Hub's OpenAPI description). All read-only, no approval.

The docs index comes from `ctx.deps.docs_index` (opened once by the bot); `ctx.deps.docs_stale`
may say it is overdue for a refresh. The user's token is read only through
`ctx.hub.token_for_job_secrets()` and only ever sent to the configured Hub host (see docs/web.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel, Field

from intern.agent.context_deps import required
from intern.agent.docs.index import DocHit, DocsIndex
from intern.agent.docs.openapi import ApiSearch, load_search, render
from intern.agent.docs.sets import DOCS_SETS, SETS_BY_NAME, resolve_endpoint
from intern.agent.docs.text import headings, section
from intern.agent.docs.web import Fetched, FetchError, HostNotAllowed, HostPolicy, html_to_markdown, safe_get
from intern.agent.errors import ToolArgumentError, ToolFeedback
from intern.agent.tools.base import Tool, ToolResult

if TYPE_CHECKING:
    from intern.agent.context_deps import ToolContext

DEFAULT_RESULTS = 10
MAX_RESULTS = 50
PAGE_MAX_CHARS = 24_000
API_FULL_RESULTS = 8

# --- explore_hf_docs -------------------------------------------------------------------------------


class ExploreArgs(BaseModel):
    endpoint: str = Field(description=(
        "Documentation set to search, e.g. 'transformers', 'trl', 'hub', 'peft', 'datasets', 'accelerate', "
        "'huggingface_hub', 'bitsandbytes', 'text-generation-inference', 'inference-providers'; "
        "'courses' for the courses, 'all' for every set."))
    query: str | None = Field(None, description=(
        "What you are looking for, in words (e.g. 'DPO dataset format', 'gradient checkpointing', "
        "'schedule a job'). Leave empty to list the set's pages in sidebar order."))
    max_results: int = Field(DEFAULT_RESULTS, ge=1, description=f"How many pages to return (at most {MAX_RESULTS}).")


def _docs_index(ctx: ToolContext) -> DocsIndex:
    return required(ctx.deps.docs_index, "The documentation index is not available in this session. Use "
                    "fetch_hf_docs with a page URL such as https://huggingface.co/docs/trl/sft_trainer instead.")


async def explore_docs(ctx: ToolContext, args: ExploreArgs) -> ToolResult:
    index = _docs_index(ctx)
    sets = resolve_endpoint(args.endpoint)
    limit = min(args.max_results, MAX_RESULTS)
    counts = index.set_counts()
    present = [s for s in sets if counts.get(s)]
    if not present:
        raise ToolFeedback(_missing_set_message(args.endpoint, sets, index, ctx.config.hf_endpoint))
    query = (args.query or "").strip()
    notes = _notes(ctx, index, limit < args.max_results)
    if not query:
        return _listing(ctx, index, present, limit, notes)
    result = index.search(query, sets=present, limit=limit)
    if not result.hits:
        return ToolResult(
            f"No page of {args.endpoint} matched {query!r}. Try other words (names of classes or options work "
            f"well), another set, or no query to list the pages.{notes}",
            artifacts={"hits": []})
    head = f"{args.endpoint}: the {len(result.hits)} best pages for {query!r}"
    lines = [head, *(_hit_lines(i, hit, ctx.config.hf_endpoint, len(sets) > 1) for i, hit in enumerate(result.hits, 1))]
    lines.append("Read a page with fetch_hf_docs(url).")
    return ToolResult("\n".join(lines) + notes, artifacts={"hits": [_hit_dict(h, ctx.config.hf_endpoint)
                                                                    for h in result.hits]})


def _listing(ctx: ToolContext, index: DocsIndex, sets: list[str], limit: int, notes: str) -> ToolResult:
    pages = index.toc(sets)
    shown = pages[:limit]
    lines = [f"{len(shown)} of {len(pages)} pages, in sidebar order:"]
    section_now = None
    for hit in shown:
        label = f"{hit.set} › {hit.section}" if len(sets) > 1 else hit.section
        if label != section_now:
            lines.append(f"[{label or hit.set}]")
            section_now = label
        lines.append(f"- {hit.title}: {hit.url(ctx.config.hf_endpoint)}")
    if len(pages) > limit:
        lines.append(f"({len(pages) - limit} more: raise max_results, or pass a query)")
    return ToolResult("\n".join(lines) + notes, artifacts={"hits": [_hit_dict(h, ctx.config.hf_endpoint)
                                                                    for h in shown]})


def _hit_lines(rank: int, hit: DocHit, base: str, show_set: bool) -> str:
    where = " › ".join(p for p in (hit.set if show_set else "", hit.section, hit.heading or "") if p)
    out = f"{rank}. {hit.title}" + (f" — {where}" if where else "") + f"\n   {hit.url(base)}"
    if hit.snippet:
        out += f"\n   {hit.snippet}"
    return out


def _hit_dict(hit: DocHit, base: str) -> dict[str, Any]:
    return {"set": hit.set, "title": hit.title, "url": hit.url(base), "section": hit.section,
            "heading": hit.heading, "snippet": hit.snippet, "score": round(hit.score, 3)}


def _notes(ctx: ToolContext, index: DocsIndex, capped: bool) -> str:
    notes = []
    if capped:
        notes.append(f"max_results is capped at {MAX_RESULTS}.")
    if index.source != "live":
        notes.append("This index holds the short summaries shipped with Intern (the live documentation has "
                     "not been indexed yet); fetch_hf_docs reads the full, current page.")
    elif ctx.deps.docs_stale or index.stale:
        notes.append(f"The index was built {index.age_hours:.0f} hours ago; pages may have changed since.")
    return "".join(f"\nNote: {n}" for n in notes)


def _missing_set_message(endpoint: str, sets: tuple[str, ...], index: DocsIndex, base: str) -> str:
    have = ", ".join(sorted(index.set_counts())) or "none"
    start = f" (start at {base.rstrip('/')}{SETS_BY_NAME[sets[0]].path})" if len(sets) == 1 else ""
    return (f"The documentation index has no pages for {endpoint!r} ({index.describe()}). Sets it holds: "
            f"{have}. Read its pages directly with fetch_hf_docs{start}, or ask an operator to run "
            "`intern docs index`.")


explore_docs_tool = Tool(
    name="explore_hf_docs",
    description=(
        "Search the Hugging Face documentation (ranked pages with a snippet and URL), or list a set's pages. "
        "Use it before writing training code to check class names, config options and dataset formats "
        "(e.g. trl: SFTConfig, DPO dataset format; peft: LoraConfig; hub: Jobs hardware). Then read the page "
        "with fetch_hf_docs. Sets: " + ", ".join(s.name for s in DOCS_SETS) + "; or 'courses', 'all'."),
    args=ExploreArgs,
    handler=explore_docs,
    read_only=True,
)

# --- fetch_hf_docs ---------------------------------------------------------------------------------


class FetchArgs(BaseModel):
    url: str = Field(description=(
        "A Hugging Face page, e.g. https://huggingface.co/docs/trl/sft_trainer (a '#anchor' returns that "
        "section only). Only huggingface.co, hf.co and their subdomains are fetched."))


def _normalise_url(raw: str, hub: str) -> httpx.URL:
    text = raw.strip()
    if not text:
        raise ToolArgumentError("url is empty: pass a page URL such as https://huggingface.co/docs/trl/sft_trainer")
    if text.startswith("/"):
        text = hub.rstrip("/") + text
    elif "://" not in text:
        text = "https://" + text
    try:
        return httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise ToolArgumentError(f"{raw!r} is not a valid URL ({exc}).") from exc


def _is_docs_page(url: httpx.URL) -> bool:
    path = url.path
    top = path.split("/")[1] if path.count("/") >= 2 else ""
    return top in ("docs", "learn") and not path.endswith((".md", ".json", ".txt"))


async def fetch_docs(ctx: ToolContext, args: FetchArgs) -> ToolResult:
    policy = HostPolicy(ctx.config.hf_endpoint)
    url = _normalise_url(args.url, ctx.config.hf_endpoint)
    if not policy.allowed(url):
        where = url.netloc.decode("ascii", "replace") or args.url
        raise ToolArgumentError(
            f"{where} is not a Hugging Face host. fetch_hf_docs reads only huggingface.co, hf.co and their "
            f"subdomains (and the configured Hub, {httpx.URL(ctx.config.hf_endpoint).netloc.decode()}).")
    anchor = url.fragment
    url = url.copy_with(fragment=None)
    token = ctx.hub.token_for_job_secrets()
    try:
        page = await _fetch_page(ctx.http, url, policy, token)
    except HostNotAllowed as exc:
        raise ToolFeedback(f"Not followed: {exc.via_redirect_from or args.url} redirects to {exc.url}, which is "
                           "not a Hugging Face host.") from exc
    except FetchError as exc:
        hint = " The page does not exist; find the right URL with explore_hf_docs." if exc.status == 404 else ""
        raise ToolFeedback(f"Could not fetch {exc.url}: {exc}.{hint}") from exc
    markdown = html_to_markdown(page.text) if page.is_html else page.text
    # Name the page as explore_hf_docs does, not by the .md variant this tool read.
    shown = page.url.removesuffix(".md") if not url.path.endswith(".md") else page.url
    return ToolResult(_present(shown, markdown, anchor, page.truncated), artifacts={"url": page.url})


async def _fetch_page(http: httpx.AsyncClient, url: httpx.URL, policy: HostPolicy, token: str | None) -> Fetched:
    if _is_docs_page(url):
        try:
            md = await safe_get(http, str(url.copy_with(path=url.path.rstrip("/") + ".md")), policy=policy,
                                token=token, accept="text/markdown, text/plain")
            if not md.is_html and md.text.strip():
                return md
        except FetchError as exc:
            if exc.status is None or exc.status >= 500:
                raise
    return await safe_get(http, str(url), policy=policy, token=token)


def _present(url: str, markdown: str, anchor: str, truncated: bool) -> str:
    head = f"Source: {url}"
    if anchor:
        part = section(markdown, anchor)
        if part is not None:
            return f"{head}#{anchor}\n\n{part}"
        head += f"\n(No section #{anchor} on this page; showing the whole page.)"
    if len(markdown) <= PAGE_MAX_CHARS and not truncated:
        return f"{head}\n\n{markdown}"
    cut = markdown[:PAGE_MAX_CHARS]
    cut = cut[:cut.rfind("\n")] if "\n" in cut else cut
    contents = "\n".join(f"- {'  ' * (h.level - 2)}{h.text}: {url}#{h.anchor}"
                         for h in headings(markdown) if 1 < h.level <= 3)
    return (f"{head}\n\n{cut}\n\n[The page continues ({len(markdown) - len(cut)} more characters). Fetch one "
            f"section by its anchor:]\n{contents}")


fetch_docs_tool = Tool(
    name="fetch_hf_docs",
    description=(
        "Read a Hugging Face documentation page (or any huggingface.co / hf.co page) as markdown. Pass a URL "
        "from explore_hf_docs; add '#anchor' to get one section of a long page."),
    args=FetchArgs,
    handler=fetch_docs,
    read_only=True,
)

# --- find_hf_api -----------------------------------------------------------------------------------


class FindApiArgs(BaseModel):
    query: str | None = Field(None, description=(
        "What the endpoint does, in words: 'create repo', 'upload file commit', 'space logs', 'cancel job', "
        "'list organization members'."))
    tag: str | None = Field(None, description="An API category from the spec (e.g. 'repos', 'jobs', 'spaces'), "
                                              "alone to list the category or with a query to search within it.")


async def find_api(ctx: ToolContext, args: FindApiArgs) -> ToolResult:
    query = (args.query or "").strip()
    try:
        search = await load_search(ctx.http, ctx.config.hf_endpoint, ctx.deps.cache)
    except (FetchError, HostNotAllowed, ValueError) as exc:
        raise ToolFeedback(f"The Hub's API description could not be loaded: {exc}") from exc
    tag = _checked_tag(search, args.tag)
    if not query and tag is None:
        raise ToolArgumentError("Give a query (e.g. 'create repo'), a tag, or both. Tags: " + ", ".join(search.tags))
    note = ""
    if query:
        ops = search.search(query, tag=tag, limit=API_FULL_RESULTS)
        if not ops and tag is not None:
            ops, note = search.in_tag(tag), f"No endpoint in {tag!r} matched {query!r}; all of {tag!r} follow.\n\n"
    else:
        assert tag is not None
        ops = search.in_tag(tag)
    if not ops:
        return ToolResult(f"No Hub API endpoint matched {query!r}. Try other words, or browse a tag: "
                          + ", ".join(search.tags), artifacts={"operations": []})
    return ToolResult(note + _render_ops(ops, ctx.config.hf_endpoint),
                      artifacts={"operations": [op.key for op in ops]})


def _checked_tag(search: ApiSearch, tag: str | None) -> str | None:
    if tag is None or not tag.strip():
        return None
    found = search.canonical_tag(tag)
    if found is None:
        raise ToolArgumentError(f"Unknown tag {tag!r}. Tags in the Hub API: " + ", ".join(search.tags))
    return found


def _render_ops(ops: list[Any], base: str) -> str:
    parts = [render(op, base) for op in ops[:API_FULL_RESULTS]]
    rest = ops[API_FULL_RESULTS:]
    if rest:
        parts.append("More endpoints (search with a query for details):\n"
                     + "\n".join(f"- {op.method} {op.path}: {op.summary}" for op in rest))
    return "\n\n".join(parts)


find_api_tool = Tool(
    name="find_hf_api",
    description=(
        "Find Hugging Face Hub REST API endpoints (from the Hub's OpenAPI description): method, path, "
        "parameters and an example curl request using $HF_TOKEN. Use it when no other tool covers a Hub "
        "operation. Search by words (query), browse a category (tag), or both."),
    args=FindApiArgs,
    handler=find_api,
    read_only=True,
)

__all__ = ["ExploreArgs", "FetchArgs", "FindApiArgs", "explore_docs_tool", "fetch_docs_tool", "find_api_tool"]
