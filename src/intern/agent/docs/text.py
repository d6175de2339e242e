"""Markdown helpers: what gets indexed, the snippet shown for a hit, and one section of a page.

Hugging Face's markdown carries doc-builder syntax (`<Tip>`, `[[open-in-colab]]`, explicit heading
anchors `## Title[[anchor]]`, HTML comments); it is kept in fetched pages but not indexed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FRONTMATTER = re.compile(r"\A---\n.*?\n---\n", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_TAG = re.compile(r"</?[A-Za-z][^>\n]*>")
_MARKER = re.compile(r"\[\[[^\]]*\]\]")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_EMPHASIS = re.compile(r"(\*\*|__|`)")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str


@dataclass(frozen=True)
class Block:
    heading: Heading | None
    text: str


def strip_frontmatter(markdown: str) -> str:
    return _FRONTMATTER.sub("", markdown, count=1)


def slugify(text: str) -> str:
    text = _EMPHASIS.sub("", text).lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[\s]+", "-", text.strip())


def parse_heading(line: str) -> Heading | None:
    match = _HEADING.match(line)
    if not match:
        return None
    raw = match.group(2)
    explicit = re.search(r"\[\[([^\]]+)\]\]\s*$", raw)
    text = inline_text(raw)
    return Heading(len(match.group(1)), text, explicit.group(1) if explicit else slugify(text))


def inline_text(text: str) -> str:
    """Markdown inline syntax and doc-builder markers removed, for display and indexing."""
    text = _MARKER.sub("", _COMMENT.sub("", text))
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _TAG.sub(" ", text)
    return re.sub(r"\s+", " ", _EMPHASIS.sub("", text)).strip()


def page_title(markdown: str) -> str | None:
    for line in _lines_outside_code(markdown):
        heading = parse_heading(line)
        if heading and heading.level == 1:
            return heading.text
    return None


def headings(markdown: str) -> list[Heading]:
    return [h for line in _lines_outside_code(markdown) if (h := parse_heading(line))]


def _lines_outside_code(markdown: str) -> list[str]:
    out, in_code = [], False
    for line in strip_frontmatter(markdown).splitlines():
        if _FENCE.match(line):
            in_code = not in_code
            continue
        if not in_code:
            out.append(line)
    return out


def blocks(markdown: str, max_chars: int = 60_000) -> list[Block]:
    """Paragraphs, list groups and code blocks, each with the heading it sits under."""
    out: list[Block] = []
    current: Heading | None = None
    buf: list[str] = []
    in_code = False

    def flush() -> None:
        text = "\n".join(buf).strip()
        if text:
            out.append(Block(current, text))
        buf.clear()

    for line in _COMMENT.sub("", strip_frontmatter(markdown[:max_chars])).splitlines():
        if _FENCE.match(line):
            flush()  # a code block is a block of its own
            in_code = not in_code
            continue
        heading = None if in_code else parse_heading(line)
        if heading is not None:
            flush()
            current = heading
        elif not line.strip() and not in_code:
            flush()
        else:
            buf.append(line)
    flush()
    return out


def plain_text(markdown: str) -> str:
    """The words of a page for the index: prose and code, without markup."""
    lines = []
    for line in _COMMENT.sub("", strip_frontmatter(markdown)).splitlines():
        if _FENCE.match(line):
            continue
        lines.append(inline_text(line))
    return "\n".join(line for line in lines if line)


def section(markdown: str, anchor: str) -> str | None:
    """The part of a page under the heading with this anchor, down to the next heading of its level."""
    lines = markdown.splitlines()
    start, level, in_code = None, 0, False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            in_code = not in_code
            continue
        heading = None if in_code else parse_heading(line)
        if heading is None:
            continue
        if start is None and heading.anchor == anchor.lower():
            start, level = i, heading.level
        elif start is not None and heading.level <= level:
            return "\n".join(lines[start:i]).strip()
    return "\n".join(lines[start:]).strip() if start is not None else None


class SnippetPicker:
    """Chooses the block of a page that best matches a query, cheaply.

    Matching is by stem prefix ("quantiz" finds "quantization" and "quantize") with one compiled
    regular expression per query, so picking a snippet costs far less than the search itself.
    """

    def __init__(self, stems: list[str]) -> None:
        prefixes = sorted({s for s in stems if len(s) >= 2}, key=len, reverse=True)
        self.stems = prefixes
        self._pattern = (
            re.compile(r"\b(" + "|".join(re.escape(p) for p in prefixes) + r")\w*", re.I) if prefixes else None
        )

    def pick(self, markdown: str, width: int = 240) -> tuple[Heading | None, str]:
        candidates = blocks(markdown)
        if not candidates:
            return None, ""
        best, best_score = candidates[0], -1.0
        for block in candidates:
            score = self._score(block)
            if score > best_score:
                best, best_score = block, score
        return best.heading, self._window(inline_text(best.text), width)

    def _score(self, block: Block) -> float:
        if self._pattern is None:
            return 0.0
        found = [m.group(1).lower() for m in self._pattern.finditer(block.text)]
        heading_hits = len(self._pattern.findall(block.heading.text)) if block.heading else 0
        return len(set(found)) * 10 + min(len(found), 10) + heading_hits * 5

    def _window(self, text: str, width: int) -> str:
        if len(text) <= width:
            return text
        match = self._pattern.search(text) if self._pattern else None
        start = max(0, match.start() - width // 4) if match else 0
        start = text.rfind(" ", 0, start) + 1 if start else 0
        piece = text[start:start + width]
        cut = piece.rfind(" ")
        if start + width < len(text) and cut > width // 2:
            piece = piece[:cut]
        return ("…" if start else "") + piece.strip() + ("…" if start + len(piece) < len(text) else "")


def words(text: str) -> list[str]:
    return _WORD.findall(text)
