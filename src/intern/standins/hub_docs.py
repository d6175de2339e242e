"""Documentation routes of the Hub stand-in, laid out like the real site.

- `GET /docs/<set>` (and `/learn/<course>`) redirects to the set's first page.
- `GET /docs/<set>/<page>` is an HTML page with the sidebar (`<nav class="… flex-auto …">`: group
  titles and links in toctree order) and the page body in `<div class="prose-doc …">`.
- `GET /docs/<set>/<page>.md` is the page's markdown (`text/markdown`).
- `GET /.well-known/openapi.json` is the OpenAPI description.

State (on `hub.state`, all optional):
- `docs_sets`: list of `SnapshotSet` served (default: the shipped snapshot);
- `docs_redirects`: {path: location} answered with a 302 before anything else (redirect tests);
- `docs_html_only`: paths whose `.md` variant answers 404 (pages that must be converted from HTML);
- `docs_down`: set names whose pages answer 503 (crawl failure tests);
- `openapi_text`: the spec served (default: the shipped sample).
"""

from __future__ import annotations

import html
import re
from typing import Any

from aiohttp import web

from intern.agent.docs.snapshot import SnapshotSet, load_snapshot, snapshot_openapi_text
from intern.agent.docs.text import parse_heading


def add_routes(app: web.Application, hub: Any) -> None:
    async def docs(request: web.Request) -> web.StreamResponse:
        return _docs_response(hub, request.path)

    async def openapi(request: web.Request) -> web.StreamResponse:
        text = hub.state.get("openapi_text") or snapshot_openapi_text()
        return web.Response(text=text, content_type="application/json")

    app.router.add_get("/docs/{tail:.*}", docs)
    app.router.add_get("/learn/{tail:.*}", docs)
    app.router.add_get("/.well-known/openapi.json", openapi)


def _sets(hub: Any) -> list[SnapshotSet]:
    if "docs_sets" not in hub.state:
        hub.state["docs_sets"] = load_snapshot()
    return hub.state["docs_sets"]


def _docs_response(hub: Any, path: str) -> web.StreamResponse:
    redirects: dict[str, str] = hub.state.get("docs_redirects", {})
    if path in redirects:
        raise web.HTTPFound(redirects[path])
    snap = next((s for s in _sets(hub) if path == s.path or path.startswith(s.path + "/")), None)
    if snap is None:
        raise web.HTTPNotFound(text="no such documentation")
    if snap.name in hub.state.get("docs_down", set()):
        raise web.HTTPServiceUnavailable(text="documentation temporarily unavailable")
    rest = path[len(snap.path):].strip("/")
    if not rest:
        first = next((e.local for e in snap.toc if e.local in snap.pages), None)
        if first is None:
            raise web.HTTPNotFound()
        raise web.HTTPFound(f"{snap.path}/{first}")
    if rest.endswith(".md"):
        local = rest[:-3]
        if local not in snap.pages or path[:-3] in hub.state.get("docs_html_only", set()):
            raise web.HTTPNotFound(text="not found")
        return web.Response(text=snap.pages[local], content_type="text/markdown", charset="utf-8")
    if rest not in snap.pages:
        raise web.HTTPNotFound(text="not found")
    return web.Response(text=_page_html(snap, rest), content_type="text/html", charset="utf-8")


def _page_html(snap: SnapshotSet, local: str) -> str:
    title = next((e.title for e in snap.toc if e.local == local), local)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<script>window.hydrate = true;</script></head><body>"
        "<header class='navbar'><a href='/'>Hugging Face</a><a href='/models'>Models</a></header>"
        "<div class='flex min-h-screen'>"
        f"<nav class='top-0 sticky flex-auto overflow-y-auto pr-4'>{_sidebar(snap)}</nav>"
        f"<div class='prose-doc prose relative mx-auto max-w-4xl break-words'>{render_markdown(snap.pages[local])}</div>"
        "</div><footer>Footer links</footer></body></html>"
    )


def _sidebar(snap: SnapshotSet) -> str:
    parts, group = [], None
    for entry in snap.toc:
        if entry.section != group:
            group = entry.section
            parts.append(f"<h3 class='font-semibold'>{html.escape(group)}</h3>")
        parts.append(f"<a class='block' href='{snap.path}/{entry.local}'>{html.escape(entry.title)}</a>")
    return "".join(parts)


_INLINE_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = _INLINE_CODE.sub(lambda m: f"<code>{m.group(1)}</code>", out)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    return _LINK.sub(lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>', out)


def render_markdown(markdown: str) -> str:
    """Enough of markdown for the snapshot's pages: headings, paragraphs, lists, tables, code."""
    out: list[str] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
            out.append(f"<pre><code>{html.escape(chr(10).join(lines[i + 1:end]))}</code></pre>")
            i = end + 1
            continue
        heading = parse_heading(line)
        if heading is not None:
            out.append(f"<h{heading.level} id='{heading.anchor}'>{_inline(heading.text)}</h{heading.level}>")
        elif line.startswith("|"):
            i = _table(lines, i, out)
            continue
        elif re.match(r"^\s*([-*]|\d+\.)\s", line):
            i = _list(lines, i, out)
            continue
        elif line.strip():
            para = [line]
            while i + 1 < len(lines) and lines[i + 1].strip() and not re.match(r"^(#|```|\||\s*[-*]\s|\d+\.\s)", lines[i + 1]):
                i += 1
                para.append(lines[i])
            out.append(f"<p>{_inline(' '.join(para))}</p>")
        i += 1
    return "\n".join(out)


def _table(lines: list[str], i: int, out: list[str]) -> int:
    rows = []
    while i < len(lines) and lines[i].startswith("|"):
        cells = [c.strip() for c in lines[i].strip("|").split("|")]
        if not all(re.fullmatch(r":?-+:?", c) for c in cells):
            rows.append(cells)
        i += 1
    head, body = rows[0], rows[1:]
    out.append("<table><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr></thead><tbody>"
               + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body)
               + "</tbody></table>")
    return i


def _list(lines: list[str], i: int, out: list[str]) -> int:
    ordered = bool(re.match(r"^\s*\d+\.\s", lines[i]))
    items = []
    while i < len(lines) and re.match(r"^\s*([-*]|\d+\.)\s", lines[i]):
        items.append(re.sub(r"^\s*([-*]|\d+\.)\s+", "", lines[i]))
        i += 1
    tag = "ol" if ordered else "ul"
    out.append(f"<{tag}>" + "".join(f"<li>{_inline(item)}</li>" for item in items) + f"</{tag}>")
    return i
