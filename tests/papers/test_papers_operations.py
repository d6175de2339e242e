"""Every hf_papers operation through the real httpx client against the Hub, Semantic Scholar and arXiv
stand-ins."""

from __future__ import annotations

from typing import Any

import pytest

from intern.agent.errors import ToolArgumentError, ToolFeedback
from intern.agent.tools.papers import papers_tool
from intern.standins.arxiv import PageSection, PaperPage


async def run(ctx: Any, **args: Any) -> str:
    result = await papers_tool.handler(ctx, papers_tool.parse(args))
    assert not result.is_error
    return result.content


def order_of(text: str, *needles: str) -> list[int]:
    return [text.index(n) for n in needles]


def test_tool_contract() -> None:
    assert papers_tool.name == "hf_papers"
    assert papers_tool.read_only is True
    assert papers_tool.policy(papers_tool.parse({"operation": "trending"})) == "none"
    params = papers_tool.schema()["function"]["parameters"]["properties"]
    for name in ("operation", "query", "arxiv_id", "section", "direction", "limit", "date", "positive_ids",
                 "negative_ids"):
        assert name in params
    assert set(params["operation"]["enum"]) == {
        "trending", "search", "paper_details", "read_paper", "citation_graph", "snippet_search", "recommend",
        "find_datasets", "find_models", "find_collections", "find_all_resources"}
    assert set(params["direction"]["enum"]) == {"references", "citations", "both"}


async def test_trending_lists_daily_papers_by_trend(world: Any, make_ctx: Any) -> None:
    text = await run(make_ctx(), operation="trending")
    assert world.hub.calls("/api/daily_papers")[-1].query == {"limit": "10", "sort": "trending"}
    a, b, c = order_of(text, "Sparse Attention for Long", "Why Language Models Hallucinate", "Direct Preference")
    assert a < b < c
    assert "arxiv_id 2509.04664" in text and "26 upvotes" in text and "3 comments" in text
    assert "Language models produce incorrect statements" in text  # the Hub's AI summary


async def test_trending_for_a_date_and_with_a_keyword_filter(world: Any, make_ctx: Any) -> None:
    ctx = make_ctx()
    day = await run(ctx, operation="trending", date="2025-09-09")
    assert world.hub.calls("/api/daily_papers")[-1].query == {"limit": "10", "date": "2025-09-09"}
    assert "Direct Preference Optimization" in day and "Sparse Attention" not in day
    filtered = await run(ctx, operation="trending", query="binary classification")
    assert "Why Language Models Hallucinate" in filtered  # matched on the Hub's ai_keywords
    assert "Sparse Attention" not in filtered and "Direct Preference" not in filtered
    none = await run(ctx, operation="trending", date="2025-09-09", query="protein")
    assert none.startswith("No Daily Papers of 2025-09-09 matching 'protein'")


async def test_trending_rejects_a_malformed_date(make_ctx: Any) -> None:
    with pytest.raises(ToolArgumentError, match="YYYY-MM-DD"):
        papers_tool.parse({"operation": "trending", "date": "last tuesday"})


async def test_search_uses_the_hub_without_filters(world: Any, make_ctx: Any) -> None:
    text = await run(make_ctx(), operation="search", query="preference optimization", limit=5)
    assert world.hub.calls("/api/papers/search")[-1].query == {"q": "preference optimization", "limit": "5"}
    assert "Direct Preference Optimization at Scale" in text and "arxiv_id 2509.01234" in text
    assert not world.s2.requests


async def test_search_with_filters_goes_to_semantic_scholar(world: Any, make_ctx: Any) -> None:
    text = await run(make_ctx(), operation="search", query="attention", date_from="2020", date_to="2024-12",
                     fields_of_study=["computer science"], min_citations=1)
    sent = world.s2.calls("/graph/v1/paper/search")[-1].query
    assert sent["publicationDateOrYear"] == "2020:2024-12"
    assert sent["fieldsOfStudy"] == "Computer Science" and sent["minCitationCount"] == "1"
    assert "Sparse Attention for Long Context Transformers" in text  # 2024, 3 citations
    assert "Longformer" in text  # 2020, 1 citation
    assert "Dense Attention Is All You Need" not in text  # 2017
    assert "Protein folding" not in text  # Biology, 0 citations
    assert "A Survey of Attention" in text and "Sparse Mixture" not in text  # 2025
    assert not world.hub.calls("/api/papers/search")


async def test_search_sorted_by_citations_uses_bulk_search(world: Any, make_ctx: Any) -> None:
    text = await run(make_ctx(), operation="search", query="attention", sort="citations", limit=3)
    sent = world.s2.calls("/graph/v1/paper/search/bulk")[-1].query
    assert sent["sort"] == "citationCount:desc" and "limit" not in sent
    a, b, c = order_of(text, "A Survey of Attention", "Sparse Attention for Long", "Dense Attention")
    assert a < b < c
    assert "— 3 of 7" in text and "Longformer" not in text


async def test_search_falls_back_to_the_hub_when_semantic_scholar_is_down(world: Any, make_ctx: Any) -> None:
    world.s2.fail_next(503, times=10)
    text = await run(make_ctx(), operation="search", query="sparse attention", min_citations=5)
    assert "Sparse Attention for Long Context Transformers" in text
    assert "Semantic Scholar is failing (HTTP 503" in text and "without the date/field/citation filters" in text


async def test_paper_details_merges_hub_and_semantic_scholar(world: Any, make_ctx: Any) -> None:
    text = await run(make_ctx(), operation="paper_details", arxiv_id="https://arxiv.org/abs/2401.00001v2")
    assert world.hub.calls("/api/papers/2401.00001")
    assert world.s2.calls("/graph/v1/paper/ARXIV:2401.00001")
    assert text.startswith("# Sparse Attention for Long Context Transformers")
    assert "40 upvotes" in text and "https://github.com/example/sparse-attn (1,234★)" in text
    assert "3 citations (1 influential) · 2 references" in text and "Venue: ICLR (2024)" in text
    assert "Authors: Ada Example, Bo Sample" in text


async def test_paper_details_for_a_paper_only_semantic_scholar_knows(make_ctx: Any) -> None:
    text = await run(make_ctx(), operation="paper_details", arxiv_id="2402.00002")
    assert "Scaling Laws for Reward Models" in text and "Not on the Hub's paper pages" in text
    assert "Reward model overoptimization" in text


async def test_paper_details_says_when_citations_are_unavailable(world: Any, make_ctx: Any) -> None:
    world.s2.fail_next(500, times=10)
    text = await run(make_ctx(), operation="paper_details", arxiv_id="2509.04664")
    assert "Why Language Models Hallucinate" in text
    assert "Citation counts unavailable: Semantic Scholar is failing (HTTP 500" in text


async def test_paper_details_for_an_unknown_paper_is_feedback(make_ctx: Any) -> None:
    with pytest.raises(ToolFeedback, match=r"No paper arXiv:2312\.99999 on the Hub or Semantic Scholar"):
        await run(make_ctx(), operation="paper_details", arxiv_id="2312.99999")


async def test_read_paper_without_section_gives_abstract_and_contents(world: Any, make_ctx: Any) -> None:
    text = await run(make_ctx(), operation="read_paper", arxiv_id="arXiv:2401.00001")
    assert world.arxiv.calls("/html/2401.00001")
    assert "## Abstract\nWe propose a sparse attention pattern with cost $O(n \\log n)$" in text
    for line in ("- 1 Introduction (7 words)", "- 2 Method (", "  - 2.1 Sparse Attention (", "  - 2.2 Training (",
                 "- 3 Experiments (", "- A Hyperparameters (", "- References ("):
        assert line in text
    assert "Report issue" not in text and "Generated by LaTeXML" not in text and "Back to arXiv" not in text


async def test_read_paper_section_by_number_includes_subsections(make_ctx: Any) -> None:
    text = await run(make_ctx(), operation="read_paper", arxiv_id="2401.00001", section="2")
    assert "## 2 Method" in text and "Our method has two parts." in text
    assert "#### 2.1 Sparse Attention" in text and "weighted by $\\alpha$" in text
    assert "- Local window of 512 tokens." in text
    assert "$\\eta = 3 \\times 10^{-4}$" in text and "italic_" not in text and "η" not in text
    assert "Next section: 3 Experiments" in text
    assert "Long context matters" not in text  # section 1 is not part of it


async def test_read_paper_section_by_title_and_appendix(make_ctx: Any) -> None:
    ctx = make_ctx()
    experiments = await run(ctx, operation="read_paper", arxiv_id="2401.00001", section="experiments")
    assert "## 3 Experiments" in experiments
    assert "[Figure 1: Perplexity against context length.]" in experiments
    assert "| Sparse | 11.4 |" in experiments
    sub = await run(ctx, operation="read_paper", arxiv_id="2401.00001", section="Training")
    assert "## 2.2 Training" in sub and "Our method has two parts." not in sub
    appendix = await run(ctx, operation="read_paper", arxiv_id="2401.00001", section="Appendix A")
    assert "## A Hyperparameters" in appendix and "Batch size 256" in appendix
    refs = await run(ctx, operation="read_paper", arxiv_id="2401.00001", section="references")
    assert "[2] I. Beltagy et al. Longformer. 2020." in refs


async def test_a_long_section_is_cut_with_a_pointer_to_its_subsections(world: Any, make_ctx: Any) -> None:
    paragraph = "Tokens attend locally and globally in every layer of the model. " * 20
    world.arxiv.add(PaperPage(arxiv_id="2403.00003", title="Long", authors=["A"], abstract="Short.", sections=[
        PageSection("Analysis", [paragraph] * 12, subsections=[PageSection("Layers", ["Deep text."]),
                                                               PageSection("Heads", ["More text."])]),
        PageSection("Discussion", ["Done."]),
    ]))
    text = await run(make_ctx(), operation="read_paper", arxiv_id="2403.00003", section="1")
    assert "[Section cut at 12,000 of " in text and "Read a subsection (1.1, 1.2) for the rest.]" in text
    assert "Deep text." not in text and text.endswith("Next section: 2 Discussion")
    assert len(text) < 12_500
    whole = await run(make_ctx(), operation="read_paper", arxiv_id="2403.00003", section="1.1")
    assert "Deep text." in whole


async def test_read_paper_unknown_section_lists_the_sections(make_ctx: Any) -> None:
    with pytest.raises(ToolFeedback) as err:
        await run(make_ctx(), operation="read_paper", arxiv_id="2401.00001", section="Ablations")
    assert "has no section 'Ablations'" in str(err.value)
    assert "- 3 Experiments" in str(err.value) and "- 2.1 Sparse Attention" in str(err.value)


async def test_read_paper_falls_back_to_abstract_and_pdf_without_html(world: Any, make_ctx: Any) -> None:
    text = await run(make_ctx(), operation="read_paper", arxiv_id="2509.04664", section="2")
    assert world.arxiv.calls("/html/2509.04664")
    assert "arXiv has no HTML version of this paper" in text
    assert f"PDF): {world.arxiv.url}/pdf/2509.04664" in text
    assert "Like students facing hard exam questions" in text


async def test_read_paper_fallback_uses_semantic_scholar_when_the_hub_lacks_the_paper(make_ctx: Any) -> None:
    text = await run(make_ctx(), operation="read_paper", arxiv_id="2402.00002")
    assert "# Scaling Laws for Reward Models" in text and "Reward model overoptimization" in text


async def test_read_paper_when_arxiv_is_down_still_gives_the_abstract(world: Any, make_ctx: Any) -> None:
    await world.arxiv.stop()
    text = await run(make_ctx(), operation="read_paper", arxiv_id="2401.00001")
    assert "could not be fetched (arXiv could not be reached" in text
    assert "We propose a sparse attention pattern that scales" in text


async def test_read_paper_for_an_unknown_paper_is_feedback(make_ctx: Any) -> None:
    with pytest.raises(ToolFeedback, match=r"No paper arXiv:2312\.99999 found"):
        await run(make_ctx(), operation="read_paper", arxiv_id="2312.99999")


async def test_citation_graph_both_directions_influential_first_with_contexts(world: Any, make_ctx: Any) -> None:
    text = await run(make_ctx(), operation="citation_graph", arxiv_id="2401.00001")
    for direction in ("references", "citations"):
        sent = world.s2.calls(f"/graph/v1/paper/ARXIV:2401.00001/{direction}")[-1].query
        assert {"contexts", "intents", "isInfluential", "externalIds"} <= set(sent["fields"].split(","))
    refs, cites = text.split("## References")[1].split("## Citations")
    assert "showing 2 of 2" in refs
    assert refs.index("Dense Attention Is All You Need") < refs.index("Longformer")
    assert "arxiv_id 1706.03762 · **influential**" in refs and "> We build on dense attention [12]." in refs
    assert "showing 3 of 3 (1 influential" in cites
    # the influential citer first, then the rest by their own citation counts
    a, b, c = order_of(cites, "Efficient Long Context Models", "A Survey of Attention", "Sparse Mixture")
    assert a < b < c
    assert "intent: methodology" in cites and "> Sparse attention [21] reduces cost." in cites


async def test_citation_graph_one_direction_and_limit(world: Any, make_ctx: Any) -> None:
    text = await run(make_ctx(), operation="citation_graph", arxiv_id="2401.00001", direction="citations", limit=1)
    assert not world.s2.calls("/references")
    assert "## References" not in text and "showing 1 of 3" in text
    assert "Efficient Long Context Models" in text and "A Survey of Attention" not in text


async def test_citation_graph_for_a_paper_semantic_scholar_lacks(make_ctx: Any) -> None:
    with pytest.raises(ToolFeedback, match=r"Semantic Scholar does not know arXiv:2312\.99999"):
        await run(make_ctx(), operation="citation_graph", arxiv_id="2312.99999")


async def test_snippet_search_returns_passages_with_arxiv_ids(world: Any, make_ctx: Any) -> None:
    text = await run(make_ctx(), operation="snippet_search", query="sliding window attention", limit=5)
    assert world.s2.calls("/graph/v1/snippet/search")[-1].query == {"query": "sliding window attention",
                                                                    "limit": "5"}
    first, second = text.split("\n\n")[1:3]
    assert "Sparse Attention for Long Context Transformers** — arxiv_id 2401.00001" in first
    assert "section: Method" in first and "> Our sparse attention pattern attends to a sliding window" in first
    assert "Protein folding with attention** — S2 corpus id" in second


async def test_recommend_for_one_paper(world: Any, make_ctx: Any) -> None:
    text = await run(make_ctx(), operation="recommend", arxiv_id="2401.00001", limit=3)
    call = world.s2.calls("/recommendations/v1/papers/forpaper/ARXIV:2401.00001")[-1]
    assert call.method == "GET" and call.query["limit"] == "3"
    assert "Recommended papers based on arXiv:2401.00001 — 3" in text
    assert "Longformer: long context attention" in text  # the closest in words
    assert "Sparse Attention for Long Context Transformers" not in text


async def test_recommend_from_positive_and_negative_lists(world: Any, make_ctx: Any) -> None:
    text = await run(make_ctx(), operation="recommend", positive_ids="2402.00002, arXiv:2509.04664",
                     negative_ids=["2401.00001"])
    call = world.s2.calls("/recommendations/v1/papers/", "POST")[-1]
    assert call.json == {"positivePaperIds": ["ARXIV:2402.00002", "ARXIV:2509.04664"],
                         "negativePaperIds": ["ARXIV:2401.00001"]}
    assert "based on 2 liked paper(s), 1 disliked" in text
    assert "Sparse Attention for Long Context Transformers" not in text


async def test_recommend_needs_a_paper(make_ctx: Any) -> None:
    with pytest.raises(ToolArgumentError, match="needs arxiv_id"):
        await run(make_ctx(), operation="recommend")
    with pytest.raises(ToolArgumentError, match="also needs positive_ids"):
        await run(make_ctx(), operation="recommend", negative_ids=["2401.00001"])
    with pytest.raises(ToolFeedback, match="does not know"):
        await run(make_ctx(), operation="recommend", positive_ids=["2312.99999"])


async def test_find_models_and_datasets_citing_a_paper(world: Any, make_ctx: Any) -> None:
    ctx = make_ctx()
    models = await run(ctx, operation="find_models", arxiv_id="2401.00001")
    assert world.hub.calls("/api/models")[-1].query == {"filter": "arxiv:2401.00001", "sort": "downloads",
                                                         "direction": "-1", "limit": "10"}
    assert models.index("example/sparse-1b") < models.index("example/sparse-7b")
    assert "90,000 downloads" in models and "other/unrelated" not in models
    datasets = await run(ctx, operation="find_datasets", arxiv_id="2401.00001")
    assert "example/long-context-eval" in datasets and "Long-context evaluation suite." in datasets
    assert "hf_inspect_dataset with dataset='example/long-context-eval'" in datasets
    nothing = await run(ctx, operation="find_datasets", arxiv_id="2509.04664")
    assert "No datasets on the Hub cite arXiv:2509.04664" in nothing


async def test_find_collections_and_all_resources(world: Any, make_ctx: Any) -> None:
    ctx = make_ctx()
    collections = await run(ctx, operation="find_collections", arxiv_id="2509.01234")
    assert world.hub.calls("/api/collections")[-1].query["item"] == "papers/2509.01234"
    assert "Preference tuning** by someone — 99 upvotes" in collections
    assert "Long context reading list" not in collections
    everything = await run(ctx, operation="find_all_resources", arxiv_id="2401.00001")
    models, datasets, colls = (everything.split(f"## {h}")[1] for h in ("Models", "Datasets", "Collections"))
    assert "example/sparse-1b" in models and "example/long-context-eval" in datasets
    assert "Long context reading list" in colls and "items: paper 2401.00001; model example/sparse-7b" in colls


async def test_limit_is_capped_at_fifty(world: Any, make_ctx: Any) -> None:
    assert papers_tool.parse({"operation": "trending", "limit": 500}).limit == 50  # type: ignore[attr-defined]
    await run(make_ctx(), operation="find_models", arxiv_id="2401.00001", limit=500)
    assert world.hub.calls("/api/models")[-1].query["limit"] == "50"


@pytest.mark.parametrize("op", ["paper_details", "read_paper", "citation_graph", "find_models", "find_datasets",
                                "find_collections", "find_all_resources"])
async def test_bad_and_missing_ids_are_argument_errors_before_any_request(world: Any, make_ctx: Any,
                                                                          op: str) -> None:
    with pytest.raises(ToolArgumentError, match=r"2401\.00001"):
        await run(make_ctx(), operation=op, arxiv_id="attention-is-all-you-need")
    with pytest.raises(ToolArgumentError, match="needs arxiv_id"):
        await run(make_ctx(), operation=op)
    assert world.all_requests() == 0


async def test_unknown_arguments_and_missing_query_are_argument_errors(make_ctx: Any) -> None:
    with pytest.raises(ToolArgumentError, match="paper_id"):
        papers_tool.parse({"operation": "paper_details", "paper_id": "2401.00001"})
    with pytest.raises(ToolArgumentError, match="unknown field"):
        papers_tool.parse({"operation": "search", "query": "x", "fields_of_study": ["Alchemy"]})
    with pytest.raises(ToolArgumentError, match="needs query"):
        await run(make_ctx(), operation="snippet_search")
