"""Markdown helpers: headings and anchors, sections, snippets."""

from __future__ import annotations

from intern.agent.docs.analysis import terms
from intern.agent.docs.text import SnippetPicker, headings, page_title, plain_text, section

PAGE = """---
title: ignored
---
<!-- a comment that must not be indexed -->
# Training guide

Intro paragraph about nothing in particular.

## Setup[[setup-anchor]]

Install the things.

```python
# Load the model (a comment, not a heading)
model = load()
```

The learning rate matters a lot when training adapters.

## Evaluation

Measure accuracy on a held-out split.
"""


def test_title_headings_and_explicit_anchors() -> None:
    assert page_title(PAGE) == "Training guide"
    found = [(h.level, h.text, h.anchor) for h in headings(PAGE)]
    assert found == [(1, "Training guide", "training-guide"), (2, "Setup", "setup-anchor"),
                     (2, "Evaluation", "evaluation")]


def test_plain_text_drops_markup_keeps_code() -> None:
    text = plain_text(PAGE)
    assert "comment that must not" not in text
    assert "model = load()" in text
    assert "[[" not in text and "title: ignored" not in text


def test_section_by_anchor() -> None:
    part = section(PAGE, "setup-anchor")
    assert part is not None
    assert part.startswith("## Setup") and "learning rate" in part and "Evaluation" not in part
    assert section(PAGE, "missing") is None


def test_snippet_heading_ignores_comments_in_code_blocks() -> None:
    heading, snippet = SnippetPicker(terms("learning rate adapters")).pick(PAGE)
    assert heading is not None and heading.text == "Setup"
    assert snippet.startswith("The learning rate matters")


def test_snippet_prefers_the_densest_passage() -> None:
    heading, snippet = SnippetPicker(terms("accuracy held-out split")).pick(PAGE)
    assert heading is not None and heading.anchor == "evaluation"
    assert "held-out" in snippet


def test_snippet_without_match_is_the_first_paragraph() -> None:
    heading, snippet = SnippetPicker(terms("zebra")).pick(PAGE)
    assert heading is None
    assert snippet == "Intro paragraph about nothing in particular."


def test_long_passages_are_cut_at_a_word() -> None:
    long = "# T\n\n" + " ".join(f"word{i}" for i in range(200)) + " needle " + " ".join("x" * 5 for _ in range(100))
    _, snippet = SnippetPicker(terms("needle")).pick(long, width=120)
    assert "needle" in snippet
    assert snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet) <= 122
