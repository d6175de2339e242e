"""Fetching from Hugging Face hosts only, with the token kept on the Hub host.

Allowed: huggingface.co, hf.co and their subdomains (on the default ports), and the configured Hub
endpoint (`HF_ENDPOINT`, which may be a mirror or a local stand-in). The user's token is attached
only when a request goes to exactly the configured Hub origin (scheme, host and port). Redirects are
followed by hand so that every hop is checked: a hop to any other host is refused, and the token is
dropped as soon as a hop leaves the Hub origin (it is never re-attached after that).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from bs4 import BeautifulSoup
from markdownify import markdownify

HF_DOMAINS = ("huggingface.co", "hf.co")
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
MAX_BYTES = 4 * 1024 * 1024
REQUEST_TIMEOUT_S = 30.0


class HostNotAllowed(Exception):
    def __init__(self, url: str, *, via_redirect_from: str | None = None) -> None:
        self.url = url
        self.via_redirect_from = via_redirect_from
        where = f" (a redirect from {via_redirect_from})" if via_redirect_from else ""
        super().__init__(f"{url}{where} is not on a Hugging Face host")


class FetchError(Exception):
    def __init__(self, url: str, status: int | None, message: str) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    status: int
    content_type: str
    text: str
    truncated: bool = False

    @property
    def is_html(self) -> bool:
        return "html" in self.content_type


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host.rstrip(".").lower(), url.port or default


@dataclass(frozen=True)
class HostPolicy:
    hub_endpoint: str

    @property
    def hub_origin(self) -> tuple[str, str, int | None]:
        return _origin(httpx.URL(self.hub_endpoint))

    def allowed(self, url: httpx.URL) -> bool:
        if url.scheme not in ("http", "https") or url.userinfo:
            return False
        if _origin(url) == self.hub_origin:
            return True
        host = url.host.rstrip(".").lower()
        on_hf = any(host == d or host.endswith("." + d) for d in HF_DOMAINS)
        return on_hf and url.port in (None, 80, 443)

    def is_hub(self, url: httpx.URL) -> bool:
        return _origin(url) == self.hub_origin


async def safe_get(http: httpx.AsyncClient, url: str, *, policy: HostPolicy, token: str | None = None,
                   accept: str | None = None, max_bytes: int = MAX_BYTES) -> Fetched:
    """GET with every redirect hop checked against `policy`; the token only ever goes to the Hub origin."""
    current = httpx.URL(url)
    if not policy.allowed(current):
        raise HostNotAllowed(str(current))
    may_send_token = token is not None
    for _ in range(MAX_REDIRECTS + 1):
        send_token = may_send_token and policy.is_hub(current)
        response = await _get_once(http, current, token if send_token else None, accept)
        try:
            if response.status_code in REDIRECT_CODES and "location" in response.headers:
                target = current.join(response.headers["location"])
                if not policy.allowed(target):
                    raise HostNotAllowed(str(target), via_redirect_from=str(current))
                if not policy.is_hub(target):
                    may_send_token = False  # once off the Hub host, never again in this chain
                current = target
                continue
            body, truncated = await _read_capped(response, max_bytes)
        finally:
            await response.aclose()
        text = body.decode(response.encoding or "utf-8", errors="replace")
        if response.status_code >= 400:
            raise FetchError(str(current), response.status_code, f"HTTP {response.status_code} from {current}")
        return Fetched(str(current), response.status_code, response.headers.get("content-type", ""), text, truncated)
    raise FetchError(url, None, f"more than {MAX_REDIRECTS} redirects from {url}")


async def _get_once(http: httpx.AsyncClient, url: httpx.URL, token: str | None,
                    accept: str | None) -> httpx.Response:
    request = http.build_request("GET", url, timeout=REQUEST_TIMEOUT_S)
    # Whatever the shared client carries by default, only this function decides about credentials.
    request.headers.pop("Authorization", None)
    request.headers.pop("Cookie", None)
    if token:
        request.headers["Authorization"] = f"Bearer {token}"
    if accept:
        request.headers["Accept"] = accept
    try:
        return await http.send(request, follow_redirects=False, stream=True)
    except httpx.HTTPError as exc:
        raise FetchError(str(url), None, f"could not reach {url.host}: {type(exc).__name__}: {exc}") from exc


async def _read_capped(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            return b"".join(chunks)[:max_bytes], True
    return b"".join(chunks), False


CONTENT_SELECTORS = (".prose-doc", "main article", "article", "main", "body")


def html_to_markdown(html: str) -> str:
    """The page's main content as markdown (navigation, scripts and styles left out)."""
    soup = BeautifulSoup(html, "lxml")
    for tag in soup(["script", "style", "noscript", "svg", "nav", "header", "footer"]):
        tag.decompose()
    content = next((found for sel in CONTENT_SELECTORS if (found := soup.select_one(sel)) is not None), soup)
    markdown = markdownify(str(content), heading_style="ATX", bullets="-", code_language="")
    lines = [line.rstrip() for line in markdown.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()
