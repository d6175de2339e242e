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


MAX_MATCHES = 64


class SnippetPicker:
    """Chooses the passage of a page that best matches a query, cheaply.

    Matching is by stem prefix ("quantiz" finds "quantization" and "quantize") at the start of a
    word, with one plain alternation searched over the lower-cased markdown; the passage is the
    paragraph around the densest cluster of distinct query words, with the heading it sits under.
    It is string searching in C, so a snippet costs far less than the search that found the page.
    """

    def __init__(self, stems: list[str]) -> None:
        prefixes = sorted({s for s in stems if len(s) >= 2}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(p) for p in prefixes)) if prefixes else None

    def pick(self, markdown: str, width: int = 240) -> tuple[Heading | None, str]:
        body = _COMMENT.sub("", strip_frontmatter(markdown))
        pos = self._best_position(body, width)
        if pos is None:
            pos = _first_prose(body)
        para_start = body.rfind("\n\n", 0, pos) + 2 if pos else 0
        para_end = body.find("\n\n", pos)
        para_end = para_end if para_end >= 0 else len(body)
        # Clean only a window around the match: paragraphs (code blocks especially) can be long.
        lo = max(para_start, pos - width // 4)
        lo = body.rfind(" ", para_start, lo) + 1 if lo > para_start else para_start
        hi = min(para_end, lo + width * 2)
        return _heading_before(body, pos), _trim(inline_text(body[lo:hi]), width, lo > para_start, hi < para_end)

    def _matches(self, text: str) -> list[tuple[int, str]]:
        if self._pattern is None:
            return []
        lowered = text.lower()
        found = []
        for m in self._pattern.finditer(lowered):
            pos = m.start()
            if pos and lowered[pos - 1].isalnum():
                continue  # inside a word ("train" in "pretrained"); after "_" counts as a word start
            found.append((pos, m.group()))
            if len(found) >= MAX_MATCHES:
                break
        return found

    def _best_position(self, text: str, width: int) -> int | None:
        found = self._matches(text)
        found = [(pos, stem) for pos, stem in found if not _in_heading_line(text, pos)] or found
        best, best_count = None, 0
        counts: dict[str, int] = {}
        end = 0
        for pos, stem in found:  # sliding window: distinct stems within `width` characters
            while end < len(found) and found[end][0] - pos < width:
                counts[found[end][1]] = counts.get(found[end][1], 0) + 1
                end += 1
            if len(counts) > best_count:
                best, best_count = pos, len(counts)
            counts[stem] -= 1
            if not counts[stem]:
                del counts[stem]
        return best



def _trim(text: str, width: int, cut_before: bool, cut_after: bool) -> str:
    if len(text) > width:
        cut = text.rfind(" ", 0, width)
        text = text[:cut if cut > width // 2 else width]
        cut_after = True
    return ("…" if cut_before else "") + text.strip() + ("…" if cut_after else "")


def _in_heading_line(text: str, pos: int) -> bool:
    line_start = text.rfind("\n", 0, pos) + 1
    return text.startswith("#", line_start)


def _first_prose(text: str) -> int:
    """Where the first paragraph that is not a heading starts."""
    pos = 0
    while pos < len(text):
        end = text.find("\n\n", pos)
        chunk = text[pos:end if end >= 0 else len(text)].strip()
        if chunk and not chunk.startswith(("#", "```", "<")):
            return text.find(chunk, pos)
        if end < 0:
            break
        pos = end + 2
    return 0


def _heading_before(text: str, pos: int) -> Heading | None:
    """The nearest heading above `pos` (level 2 or deeper), skipping `# comments` inside code blocks."""
    cursor = pos
    while (cursor := text.rfind("\n#", 0, cursor)) >= 0:
        line_end = text.find("\n", cursor + 1)
        heading = parse_heading(text[cursor + 1:line_end if line_end >= 0 else len(text)])
        if heading is not None and text.count("```", 0, cursor) % 2 == 0:
            return heading if heading.level >= 2 else None
    return None


def words(text: str) -> list[str]:
    return _WORD.findall(text)
