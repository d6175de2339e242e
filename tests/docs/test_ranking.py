"""Ranking on the shipped snapshot: realistic questions find the page that answers them."""

from __future__ import annotations

import pytest

from intern.agent.docs import DocsIndex, resolve_endpoint
from intern.agent.docs.text import headings
from tests.docs.ranking_cases import CASES


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 20
    assert len({expected for _, _, expected in CASES}) >= 20


@pytest.mark.parametrize(("endpoint", "question", "expected"), CASES, ids=[c[1] for c in CASES])
def test_answering_page_is_in_top_three(snapshot_index: DocsIndex, endpoint: str, question: str,
                                        expected: str) -> None:
    hits = snapshot_index.search(question, sets=resolve_endpoint(endpoint), limit=3).hits
    assert expected in [h.path for h in hits], [h.path for h in hits]


def test_hits_stay_inside_the_requested_set(snapshot_index: DocsIndex) -> None:
    hits = snapshot_index.search("LoRA adapters", sets=["peft"], limit=10).hits
    assert hits and {h.set for h in hits} == {"peft"}
    everywhere = snapshot_index.search("LoRA adapters", limit=10).hits
    assert len({h.set for h in everywhere}) > 1


def test_hit_has_title_section_snippet_and_a_real_anchor(snapshot_index: DocsIndex) -> None:
    hit = snapshot_index.search("reference model DPO PEFT", sets=["trl"], limit=1).hits[0]
    assert hit.path == "/docs/trl/dpo_trainer"
    assert hit.title == "DPO Trainer"
    assert hit.section == "Trainers"
    assert "reference" in hit.snippet.lower()
    page = snapshot_index.page(hit.path)
    assert page is not None
    assert hit.anchor in {h.anchor for h in headings(page["markdown"])}
    assert hit.url("https://huggingface.co") == f"https://huggingface.co/docs/trl/dpo_trainer#{hit.anchor}"


def test_snippet_comes_from_the_matching_section(snapshot_index: DocsIndex) -> None:
    hit = snapshot_index.search("reward function completions", sets=["trl"], limit=1).hits[0]
    assert hit.path == "/docs/trl/grpo_trainer"
    assert hit.heading == "Reward functions"
