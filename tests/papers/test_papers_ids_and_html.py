"""arXiv id normalisation and the LaTeXML parser, on a real arXiv page excerpt and a stand-in page."""

from __future__ import annotations

from pathlib import Path

import pytest

from intern.agent.errors import ToolArgumentError
from intern.agent.papers.arxiv_html import find_section, parse_paper_html, render_sections
from intern.agent.papers.ids import arxiv_id_in, normalise_arxiv_id, s2_paper_ref
from intern.standins.arxiv import PageSection, PaperPage, render_page

EXCERPT = Path(__file__).parent / "data" / "arxiv_excerpt_cognitive_type.html"


@pytest.mark.parametrize(("raw", "bare"), [
    ("2401.00001", "2401.00001"),
    ("2401.00001v3", "2401.00001"),
    ("arXiv:2401.00001", "2401.00001"),
    ("ARXIV: 1706.03762", "1706.03762"),
    ("https://arxiv.org/abs/2401.00001v2", "2401.00001"),
    ("arxiv.org/pdf/2401.00001v1.pdf", "2401.00001"),
    ("https://arxiv.org/html/2401.00001v1/", "2401.00001"),
    ("https://huggingface.co/papers/2509.04664", "2509.04664"),
    ("hep-th/9901001v2", "hep-th/9901001"),
    ("math.GT/0309136", "math.GT/0309136"),
    ("https://arxiv.org/abs/hep-th/9901001", "hep-th/9901001"),
])
def test_arxiv_ids_are_normalised(raw: str, bare: str) -> None:
    assert normalise_arxiv_id(raw) == bare


@pytest.mark.parametrize("raw", ["", "attention is all you need", "2413.00001", "2401.001", "1234",
                                 "https://example.com/paper", "10.1145/3544585"])
def test_malformed_ids_are_argument_errors_naming_the_expected_form(raw: str) -> None:
    with pytest.raises(ToolArgumentError) as err:
        normalise_arxiv_id(raw)
    assert "2401.00001" in str(err.value)


def test_s2_refs_and_disclaimer_ids() -> None:
    assert s2_paper_ref("arXiv:2401.00001v2") == "ARXIV:2401.00001"
    assert s2_paper_ref("2D5673CAA9E6AF3A7B82A43F19EE920992DB07AD") == "2d5673caa9e6af3a7b82a43f19ee920992db07ad"
    notice = "Notice: This snippet is extracted from ... available at https://arxiv.org/abs/1805.02262, which is"
    assert arxiv_id_in(notice) == "1805.02262"
    assert arxiv_id_in("available at https://www.aclweb.org/anthology/P18-1", ) is None


def test_real_arxiv_excerpt_parses_into_numbered_sections_without_buttons() -> None:
    doc = parse_paper_html(EXCERPT.read_text())
    assert doc.title == "The Cognitive Type Project - Mapping Typography to Cognition"
    assert doc.authors == ["Nik Bear Brown"]
    assert [(s.number, s.level) for s in doc.sections] == [("1", 1), ("1.1", 2), ("1.2", 2), ("1.3", 2),
                                                           ("1.5.1", 3)]
    assert doc.sections[2].title == "Introduction"
    # this author wrote the abstract as subsection 1.1; it stands in for the missing ltx_abstract
    assert doc.abstract.startswith("The Cognitive Type Project is focused on developing computational tools")
    text = render_sections(doc.subtree(0))
    assert "Report issue" not in text
    assert "$\\beta$" in text and "italic_" not in text  # math as its alttext, not MathML text
    assert "- Eye Tracking: Measures where" in text
    assert "[Figure 1: Tobii Pro Glasses - Tobii Pro, 2017]" in text
    assert "characters omitted" not in text  # HTML comments are not content
    assert "43. Woods, R. J." in text


def test_sections_are_found_by_number_title_and_prefix() -> None:
    doc = parse_paper_html(EXCERPT.read_text())
    assert doc.sections[find_section(doc, "1.2") or 0].title == "Introduction"
    assert doc.sections[find_section(doc, "Section 1.3") or 0].number == "1.3"
    assert doc.sections[find_section(doc, "introduction") or 0].number == "1.2"
    assert doc.sections[find_section(doc, "cognitive properties") or 0].number == "1.3"
    assert find_section(doc, "Results") is None


def test_standin_page_round_trips_through_the_parser() -> None:
    page = PaperPage(
        arxiv_id="2401.00001", title="T", authors=["A One", "B Two"], abstract="Cost is $O(n)$.",
        sections=[PageSection("Intro", ["Hello <world> & co."], subsections=[PageSection("Deep", ["x"])])],
        appendices=[PageSection("Extra", ["More."])], bibliography=["Ref one."],
    )
    doc = parse_paper_html(render_page(page))
    assert doc.title == "T" and doc.authors == ["A One", "B Two"]
    assert doc.abstract == "Cost is $O(n)$."
    assert [(s.label, s.level) for s in doc.sections] == [("1 Intro", 1), ("1.1 Deep", 2), ("A Extra", 1),
                                                          ("References", 1)]
    assert doc.sections[0].body == "Hello <world> & co."
    assert doc.sections[3].body == "[1] Ref one."
