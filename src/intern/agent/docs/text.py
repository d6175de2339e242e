"""Markdown helpers: what gets indexed, the snippet shown for a hit, and one section of a page.

Hugging Face's markdown carries doc-builder syntax (`<Tip>`, `[[open-in-colab]]`, explicit heading
anchors `## Title[[anchor]]`, HTML comments); it is kept in fetched pages but not indexed.
"""

from __future__ import annotations

import bisect
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
    # Each substitution runs only when its marker is present: most lines have none.
    if "<!--" in text:
        text = _COMMENT.sub("", text)
    if "[[" in text:
        text = _MARKER.sub("", text)
    if "](" in text:
        text = _LINK.sub(r"\1", _IMAGE.sub(r"\1", text))
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "`" in text or "**" in text or "__" in text:
        text = _EMPHASIS.sub("", text)
    return " ".join(text.split())


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


_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")



class SnippetPicker:
    """Chooses the paragraph of a page that best matches a query, cheaply.

    Matching is by stem prefix ("quantiz" finds "quantization" and "quantize") at the start of a
    word, with one plain alternation searched over the lower-cased markdown. A paragraph scores by
    the distinct query words it and its section heading contain; prose beats code. It is string
    searching in C plus a little bookkeeping, far cheaper than the search that found the page.
    """

    def __init__(self, stems: list[str]) -> None:
        prefixes = sorted({s for s in stems if len(s) >= 2}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(p) for p in prefixes)) if prefixes else None

    def pick(self, markdown: str, width: int = 240) -> tuple[Heading | None, str]:
        body = strip_frontmatter(markdown) if markdown.startswith("---") else markdown
        if "<!--" in body:
            body = _COMMENT.sub("", body)
        outline = _Outline(body)
        pos = self._best_paragraph(body, outline)
        if pos is None:
            pos = _first_prose(body)
        para_start = body.rfind("\n\n", 0, pos) + 2 if pos else 0
        para_end = body.find("\n\n", pos)
        para_end = para_end if para_end >= 0 else len(body)
        # Clean only a window around the match: paragraphs (code blocks especially) can be long.
        lo = max(para_start, pos - width // 4)
        lo = body.rfind(" ", para_start, lo) + 1 if lo > para_start else para_start
        hi = min(para_end, lo + width + width // 2)
        heading = outline.before(pos)
        return (heading if heading and heading.level >= 2 else None,
                _trim(inline_text(body[lo:hi]), width, lo > para_start, hi < para_end))

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

    def _best_paragraph(self, text: str, outline: _Outline) -> int | None:
        """Position of the first match in the best-scoring paragraph."""
        found = self._matches(text)
        if not found:
            return None
        breaks = [m.start() for m in _PARAGRAPH_BREAK.finditer(text)]
        paragraphs: dict[int, tuple[int, set[str], int]] = {}  # index -> (first match, stems, count)
        heading_stems: dict[int, set[str]] = {}  # heading words count for the paragraphs under them
        for pos, stem in found:
            heading = outline.index_at(pos)
            if heading >= 0:
                heading_stems.setdefault(heading, set()).add(stem)
                continue
            index = bisect.bisect_left(breaks, pos)
            first, stems, count = paragraphs.get(index, (pos, set(), 0))
            stems.add(stem)
            paragraphs[index] = (first, stems, count + 1)
        if not paragraphs:
            return found[0][0]

        def score(first: int, stems: set[str], count: int) -> int:
            in_heading = heading_stems.get(outline.index_before(first), set())
            para_start = text.rfind("\n\n", 0, first) + 2
            code = text.startswith("```", para_start)
            return 10 * len(stems | in_heading) + 3 * len(in_heading) + min(count, 5) - (8 if code else 0)

        return max(paragraphs.values(), key=lambda p: (score(*p), -p[0]))[0]


class _Outline:
    """The headings of a page (not `# comments` inside code blocks), found once per page."""

    def __init__(self, text: str) -> None:
        fences = _line_starts(text, "```")
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.raw: list[str] = []
        for start in _line_starts(text, "#"):
            end = text.find("\n", start)
            end = end if end >= 0 else len(text)
            line = text[start:end]
            hashes = len(line) - len(line.lstrip("#"))
            if hashes <= 6 and line[hashes:hashes + 1] in (" ", "\t") and bisect.bisect_left(fences, start) % 2 == 0:
                self.starts.append(start)
                self.ends.append(end)
                self.raw.append(line)

    def index_before(self, pos: int) -> int:
        return bisect.bisect_right(self.starts, pos) - 1

    def index_at(self, pos: int) -> int:
        i = self.index_before(pos)
        return i if i >= 0 and pos < self.ends[i] else -1

    def before(self, pos: int) -> Heading | None:
        i = self.index_before(pos)
        return parse_heading(self.raw[i]) if i >= 0 else None


def _line_starts(text: str, prefix: str) -> list[int]:
    """Positions of the lines that begin with `prefix` (str.find is much faster than a ^-regex)."""
    found = [0] if text.startswith(prefix) else []
    needle = "\n" + prefix
    pos = text.find(needle)
    while pos >= 0:
        found.append(pos + 1)
        pos = text.find(needle, pos + 1)
    return found


def _trim(text: str, width: int, cut_before: bool, cut_after: bool) -> str:
    if len(text) > width:
        cut = text.rfind(" ", 0, width)
        text = text[:cut if cut > width // 2 else width]
        cut_after = True
    return ("…" if cut_before else "") + text.strip() + ("…" if cut_after else "")


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


def words(text: str) -> list[str]:
    return _WORD.findall(text)
