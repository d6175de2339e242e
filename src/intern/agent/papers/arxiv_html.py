"""arXiv HTML (LaTeXML) to a readable document: title, authors, abstract and numbered sections.

LaTeXML marks structure with classes (`ltx_section`, `ltx_title_section`, `ltx_tag`, `ltx_para`, ...);
sections nest as elements, so a section's level is its nesting depth. Math is kept as its TeX source
(`alttext`), which a model reads better than MathML; arXiv's injected "Report issue" buttons are noise.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from bs4 import BeautifulSoup, Comment, NavigableString, Tag

SECTION_CLASSES = ("ltx_chapter", "ltx_section", "ltx_appendix", "ltx_subsection", "ltx_subsubsection",
                   "ltx_bibliography", "ltx_index")
_NOISE = ("button", "script", "style", "nav", "header", "footer", "noscript")
_NOISE_CLASSES = ("ltx_page_header", "ltx_page_footer", "ltx_page_navbar", "ltx_TOC", "ltx_dates")
_BLOCK_CONTAINERS = ("div", "blockquote", "section", "article", "span")


@dataclass
class Section:
    number: str  # "3", "3.2", "A", or "" for unnumbered ones (References, Acknowledgements)
    title: str
    level: int  # 1 = top-level section
    anchor: str
    body: str  # the section's own text, without its subsections

    @property
    def label(self) -> str:
        return f"{self.number} {self.title}".strip()


@dataclass
class PaperDocument:
    title: str
    authors: list[str]
    abstract: str
    sections: list[Section] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PaperDocument:
        sections = [Section(**s) for s in data.get("sections", [])]
        return cls(title=data["title"], authors=list(data["authors"]), abstract=data["abstract"],
                   sections=sections)

    def subtree(self, index: int) -> list[Section]:
        """The section at `index` followed by all of its subsections."""
        head = self.sections[index]
        out = [head]
        for sec in self.sections[index + 1:]:
            if sec.level <= head.level:
                break
            out.append(sec)
        return out


def parse_paper_html(html: str) -> PaperDocument:
    soup = BeautifulSoup(html, "lxml")
    _clean(soup)
    root = soup.find("article", class_="ltx_document") or soup.find(class_="ltx_document") or soup.body or soup
    doc = PaperDocument(title=_title(root), authors=_authors(root), abstract=_abstract(root))
    _collect_sections(root, 1, doc.sections)
    if not doc.abstract:
        doc.abstract = _abstract_from_sections(doc.sections)
    return doc


def find_section(doc: PaperDocument, wanted: str) -> int | None:
    """Index of the section named by number ("3", "3.2", "A", "Section 3") or by title, else None."""
    query = _norm_query(wanted)
    if not query:
        return None
    checks = (
        lambda s: s.number.casefold() == query,
        lambda s: s.title.casefold() == query,
        lambda s: s.label.casefold() == query,
        lambda s: query in s.title.casefold(),
    )
    for check in checks:
        for i, sec in enumerate(doc.sections):
            if check(sec):
                return i
    return None


def render_sections(sections: list[Section]) -> str:
    """The sections as markdown; the first one's heading is left to the caller."""
    parts: list[str] = []
    base = sections[0].level if sections else 1
    for i, sec in enumerate(sections):
        if i:
            parts.append(f"{'#' * min(3 + sec.level - base, 6)} {sec.label}")
        if sec.body:
            parts.append(sec.body)
    return "\n\n".join(parts)


# ---- cleaning ------------------------------------------------------------------------------------

def _clean(soup: BeautifulSoup) -> None:
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    for el in soup.find_all(_NOISE):
        el.decompose()
    for cls in _NOISE_CLASSES:
        for el in soup.find_all(class_=cls):
            el.decompose()
    for img in soup.find_all("img"):
        img.decompose()
    for math in soup.find_all("math"):
        tex = str(math.get("alttext") or math.get_text()).strip()
        fence = "$$" if math.get("display") == "block" else "$"
        math.replace_with(NavigableString(f"{fence}{tex}{fence}"))
    for note in soup.find_all(class_="ltx_note"):
        if note.parent is not None:  # a note inside an already inlined note went with it
            _inline_footnote(note)


def _inline_footnote(note: Tag) -> None:
    content = note.find(class_="ltx_note_content")
    if content is None:
        note.decompose()
        return
    for mark in content.find_all(class_="ltx_note_mark"):
        mark.decompose()
    text = _inline(content)
    note.replace_with(NavigableString(f" (footnote: {text})" if text else ""))


# ---- front matter --------------------------------------------------------------------------------

def _title(root: Tag) -> str:
    el = root.find(class_="ltx_title_document") or root.find("h1")
    return re.sub(r"^Title:\s*", "", _inline(el)) if el else ""


def _authors(root: Tag) -> list[str]:
    names = []
    for person in root.find_all(class_="ltx_personname"):
        first_line = []
        for child in person.children:
            if isinstance(child, Tag) and (child.name == "br" or "ltx_break" in _classes(child)):
                break
            first_line.append(child.get_text() if isinstance(child, Tag) else str(child))
        name = _squash("".join(first_line)).strip(" ,")
        if name:
            names.append(name)
    return names


def _abstract(root: Tag) -> str:
    block = root.find(class_="ltx_abstract")
    if block is None:
        return ""
    paras = [_inline(p) for p in block.find_all("p")]
    if not paras:
        heading = block.find(class_="ltx_title_abstract")
        if heading:
            heading.decompose()
        paras = [_inline(block)]
    return "\n\n".join(p for p in paras if p)


def _abstract_from_sections(sections: list[Section]) -> str:
    for sec in sections:
        if sec.title.casefold() == "abstract":
            return sec.body
    return ""


# ---- sections ------------------------------------------------------------------------------------

def _classes(el: Tag) -> list[str]:
    value: Any = el.get("class") or []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _is_section(el: Tag) -> bool:
    return any(c in SECTION_CLASSES for c in _classes(el))


def _collect_sections(container: Tag, level: int, out: list[Section]) -> None:
    for child in container.children:
        if not isinstance(child, Tag):
            continue
        if _is_section(child):
            out.append(_section(child, level))
            _collect_sections(child, level + 1, out)
        elif child.name in ("div", "article", "main") and child.find(_is_section):
            _collect_sections(child, level, out)


def _section(el: Tag, level: int) -> Section:
    heading = _heading(el)
    number, title = _split_heading(heading) if heading else ("", "")
    if not title and "ltx_bibliography" in _classes(el):
        title = "References"
    blocks: list[str] = []
    _render_blocks(el, blocks, skip=heading)
    return Section(number=number, title=title, level=level, anchor=str(el.get("id") or ""),
                   body="\n\n".join(b for b in blocks if b))


def _heading(el: Tag) -> Tag | None:
    for child in el.children:
        if isinstance(child, Tag) and child.name in ("h1", "h2", "h3", "h4", "h5", "h6"):
            return child
    return None


def _split_heading(heading: Tag) -> tuple[str, str]:
    tag = heading.find(class_="ltx_tag")
    tag_text = _squash(tag.get_text()) if tag else ""
    full = _inline(heading)
    title = full[len(tag_text):].strip() if tag_text and full.startswith(tag_text) else full
    number = re.sub(r"^(?:appendix|section|chapter)\s+", "", tag_text, flags=re.IGNORECASE).rstrip(".: ")
    return number, title


# ---- body text -----------------------------------------------------------------------------------

def _render_blocks(el: Tag, out: list[str], *, skip: Tag | None = None) -> None:
    for child in el.children:
        if isinstance(child, NavigableString):
            text = _squash(str(child))
            if text:
                out.append(text)
            continue
        if not isinstance(child, Tag) or child is skip or _is_section(child):
            continue
        _render_block(child, out)


def _render_block(el: Tag, out: list[str]) -> None:
    classes = _classes(el)
    if el.name in ("ul", "ol"):
        out.append(_list(el))
    elif el.name == "figure" or "ltx_figure" in classes or "ltx_table" in classes:
        out.append(_figure(el))
    elif el.name == "table" and "ltx_tabular" in classes:
        out.append(_table(el))
    elif el.name == "table":  # equations are laid out in tables
        out.append(_inline(el))
    elif el.name in ("h1", "h2", "h3", "h4", "h5", "h6"):
        out.append(f"**{_inline(el)}**")
    elif "ltx_paragraph" in classes:
        _render_blocks(el, out)
    elif el.name in _BLOCK_CONTAINERS and el.find(("p", "div", "ul", "ol", "table", "figure")):
        _render_blocks(el, out)
    else:
        out.append(_inline(el))


def _list(el: Tag) -> str:
    lines = []
    for item in el.find_all("li", recursive=False):
        tag = item.find(class_="ltx_tag", recursive=False)
        marker = _squash(tag.get_text()) if tag else ""
        if tag:
            tag.extract()
        marker = "-" if marker in ("", "•", "∙", "–", "-", "◦", "▪") else marker
        lines.append(f"{marker} {_inline(item)}")
    return "\n".join(lines)


def _figure(el: Tag) -> str:
    caption_el = el.find("figcaption")
    caption = _inline(caption_el) if caption_el else ""
    if caption_el:
        caption_el.extract()
    tables = [_table(t) for t in el.find_all("table", class_="ltx_tabular")]
    parts = [f"[{caption}]" if caption else "[Figure]"]
    parts.extend(t for t in tables if t)
    return "\n".join(parts)


def _table(el: Tag) -> str:
    rows = []
    for row in el.find_all("tr"):
        cells = [_inline(c) for c in row.find_all(("td", "th"))]
        if any(cells):
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _inline(el: Tag | None) -> str:
    return _squash(el.get_text()) if el is not None else ""


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _norm_query(text: str) -> str:
    query = _squash(text).casefold()
    query = re.sub(r"^(?:§\s*|section\s+|sec\.\s*|appendix\s+)", "", query)
    return query.rstrip(".")
