"""arXiv and Semantic Scholar identifiers.

The contract speaks bare arXiv ids (`2401.00001`); people paste prefixed ids and URLs, so those are
accepted and reduced to the bare id. The version suffix is dropped: the Hub and Semantic Scholar key
papers without it, and arXiv serves the latest version for a bare id.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from intern.agent.errors import ToolArgumentError

_NEW_STYLE = re.compile(r"(?P<yymm>\d{4})\.(?P<num>\d{4,5})(?:v\d+)?")
_OLD_STYLE = re.compile(r"(?P<archive>[a-z]+(?:-[a-z]+)*(?:\.[A-Za-z]{2})?)/(?P<num>\d{7})(?:v\d+)?")
_S2_SHA = re.compile(r"[0-9a-f]{40}")
_URL_MARKERS = ("abs", "pdf", "html", "papers", "format")
_PREFIX = re.compile(r"^(?:arxiv\s*:\s*)", re.IGNORECASE)

EXAMPLE = "2401.00001"


def normalise_arxiv_id(raw: str) -> str:
    """The bare arXiv id in `raw` (id, `arXiv:` id or arXiv/Hub URL), or a ToolArgumentError."""
    text = (raw or "").strip()
    candidate = _from_url(text) if _looks_like_url(text) else text
    candidate = _PREFIX.sub("", candidate).strip()
    candidate = re.sub(r"\.pdf$", "", candidate, flags=re.IGNORECASE)
    bare = _match_bare(candidate)
    if bare is None:
        raise ToolArgumentError(
            f"{raw!r} is not an arXiv id. Give a bare id such as {EXAMPLE} (also accepted: "
            f"arXiv:{EXAMPLE}, https://arxiv.org/abs/{EXAMPLE}v2); use operation='search' to find one."
        )
    return bare


def _looks_like_url(text: str) -> bool:
    # `math.GT/0309136` is an old-style id, not a host; hosts end in a real top-level domain.
    return "://" in text or re.match(r"^[\w.-]+\.(?:org|co|com|io)/", text, re.IGNORECASE) is not None


def _from_url(text: str) -> str:
    url = text if "://" in text else f"https://{text}"
    parts = [p for p in urlsplit(url).path.split("/") if p]
    for i, part in enumerate(parts):
        if part.lower() in _URL_MARKERS and i + 1 < len(parts):
            return "/".join(parts[i + 1:])
    return "/".join(parts)


def _match_bare(candidate: str) -> str | None:
    new = _NEW_STYLE.fullmatch(candidate)
    if new:
        month = int(new["yymm"][2:])
        return f"{new['yymm']}.{new['num']}" if 1 <= month <= 12 else None
    old = _OLD_STYLE.fullmatch(candidate)
    if old:
        return f"{old['archive']}/{old['num']}"
    return None


def s2_ref(arxiv_id: str) -> str:
    """How Semantic Scholar addresses a paper by its arXiv id."""
    return f"ARXIV:{arxiv_id}"


def s2_paper_ref(raw: str) -> str:
    """A Semantic Scholar paper reference from an arXiv id (any accepted form) or a 40-hex S2 paperId."""
    text = (raw or "").strip()
    if _S2_SHA.fullmatch(text.lower()):
        return text.lower()
    return s2_ref(normalise_arxiv_id(text))


def arxiv_id_in(text: str | None) -> str | None:
    """The first arXiv abs/pdf id mentioned in free text (Semantic Scholar snippet disclaimers name it)."""
    if not text:
        return None
    found = re.search(r"arxiv\.org/(?:abs|pdf)/([^\s,;)]+?)(?:\.pdf)?(?=[\s,;)]|$)", text, re.IGNORECASE)
    if not found:
        return None
    return _match_bare(found.group(1))
