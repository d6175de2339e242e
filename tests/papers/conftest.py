"""A small paper world spread over the three stand-ins, and tool contexts pointing at them.

`data/hub_paper_2509.04664.json` is the real captured /api/papers object from
reference/hub_api/papers_paper_info.json; the other papers are test values in the same shapes.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from intern.agent.cache import MemoryCache
from intern.agent.context_deps import AgentConfig, ToolContext, ToolDeps
from intern.agent.hub import HubClient
from intern.agent.papers.sources import RetryPolicy
from intern.agent.plan import PlanState
from intern.agent.pricing import PriceTable
from intern.standins import hub_papers
from intern.standins.arxiv import ArxivStandIn, PageSection, PaperPage
from intern.standins.hub import HubStandIn
from intern.standins.semantic_scholar import SemanticScholarStandIn

DATA = Path(__file__).parent / "data"
HALLUCINATE = "2509.04664"  # on the Hub (real object) and S2; no arXiv HTML in this world
SPARSE = "2401.00001"  # on the Hub, S2 and arXiv HTML
DPO = "2509.01234"  # Daily Papers on the next day
REWARD = "2402.00002"  # only on Semantic Scholar
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.05, max_delay=5.0, budget=10.0)


def s2_id(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


class Events:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def emit(self, event: Any) -> None:
        self.seen.append(event)


@dataclass
class World:
    hub: HubStandIn
    s2: SemanticScholarStandIn
    arxiv: ArxivStandIn
    clients: list[Any] = field(default_factory=list)

    def all_requests(self) -> int:
        return len(self.hub.requests) + len(self.s2.requests) + len(self.arxiv.requests)


def hub_paper(arxiv_id: str, title: str, summary: str, upvotes: int, published: str, authors: list[str],
              **extra: Any) -> dict[str, Any]:
    """A Hub paper object in the real one's shape, with this paper's values."""
    paper = copy.deepcopy(json.loads((DATA / "hub_paper_2509.04664.json").read_text()))
    paper.update({"id": arxiv_id, "title": title, "summary": summary, "upvotes": upvotes,
                  "authors": [{"_id": hub_papers.new_object_id(), "name": n, "hidden": False} for n in authors],
                  "publishedAt": published, "submittedOnDailyAt": published, "ai_summary": None,
                  "ai_keywords": [], "discussionId": hub_papers.new_object_id()})
    paper.update(extra)
    return paper


def seed_hub(hub: HubStandIn) -> None:
    real = json.loads((DATA / "hub_paper_2509.04664.json").read_text())
    hub_papers.add_paper(hub, real, daily_on="2025-09-08T02:44:20.973Z", num_comments=3)
    hub_papers.add_paper(hub, hub_paper(
        SPARSE, "Sparse Attention for Long Context Transformers",
        "We propose a sparse attention pattern that scales transformers to long context windows.", 40,
        "2024-01-01T10:00:00.000Z", ["Ada Example", "Bo Sample"], githubRepo="https://github.com/example/sparse-attn", githubStars=1234,
        ai_keywords=["sparse attention", "long context"],
    ), daily_on="2025-09-08T05:00:00.000Z")
    hub_papers.add_paper(hub, hub_paper(
        DPO, "Direct Preference Optimization at Scale",
        "We study preference optimization for large language models without a reward model.", 12,
        "2025-09-05T10:00:00.000Z", ["Eve Tester"],
    ), daily_on="2025-09-09T06:00:00.000Z")
    hub_papers.add_citing_repo(hub, "model", "example/sparse-7b", [SPARSE], downloads=5000, likes=40,
                               pipeline_tag="text-generation", library_name="transformers")
    hub_papers.add_citing_repo(hub, "model", "example/sparse-1b", [SPARSE], downloads=90000, likes=7,
                               pipeline_tag="text-generation", library_name="transformers")
    hub_papers.add_citing_repo(hub, "model", "other/unrelated", [DPO], downloads=10**6)
    hub_papers.add_citing_repo(hub, "dataset", "example/long-context-eval", [SPARSE], downloads=321,
                               description="Long-context evaluation suite.", tags=["task_categories:text-generation"])
    hub_papers.add_collection(hub, "example", "Long context reading list",
                              [("paper", SPARSE), ("model", "example/sparse-7b")], upvotes=17)
    hub_papers.add_collection(hub, "someone", "Preference tuning", [("paper", DPO)], upvotes=99)


def seed_s2(s2: SemanticScholarStandIn) -> None:
    s2.add_paper(s2_id("hallucinate"), "Why Language Models Hallucinate", arxiv_id=HALLUCINATE,
                 abstract="Language models hallucinate because training and evaluation reward guessing.",
                 year=2025, publication_date="2025-09-04", fields_of_study=["Computer Science"],
                 authors=["Adam Tauman Kalai", "Ofir Nachum"], tldr="Benchmarks reward guessing.")
    s2.add_paper(s2_id("sparse"), "Sparse Attention for Long Context Transformers", arxiv_id=SPARSE,
                 abstract="A sparse attention pattern for long context transformers.", year=2024,
                 publication_date="2024-01-01", venue="ICLR", fields_of_study=["Computer Science"],
                 authors=["Ada Example", "Bo Sample"])
    s2.add_paper(s2_id("reward"), "Scaling Laws for Reward Models", arxiv_id=REWARD,
                 abstract="Reward model overoptimization follows scaling laws in preference optimization.",
                 year=2024, publication_date="2024-02-01", fields_of_study=["Computer Science"], authors=["C. D."])
    s2.add_paper(s2_id("dense"), "Dense Attention Is All You Need", arxiv_id="1706.03762",
                 abstract="Attention transformers for sequence transduction.", year=2017,
                 publication_date="2017-06-12", venue="NeurIPS", fields_of_study=["Computer Science"])
    s2.add_paper(s2_id("longformer"), "Longformer: long context attention", arxiv_id="2004.05150",
                 abstract="Sparse attention for long documents in transformers.", year=2020,
                 publication_date="2020-04-10", fields_of_study=["Computer Science"])
    s2.add_paper(s2_id("bio"), "Protein folding with attention", abstract="Attention for proteins.", year=2021,
                 publication_date="2021-07-01", fields_of_study=["Biology"])
    for name, title, year in (("citer-a", "Efficient Long Context Models", 2024),
                              ("citer-b", "A Survey of Attention", 2024),
                              ("citer-c", "Sparse Mixture of Attention Heads", 2025)):
        s2.add_paper(s2_id(name), title, year=year, publication_date=f"{year}-03-01",
                     fields_of_study=["Computer Science"], abstract="attention transformers")
    sparse = s2_id("sparse")
    # Stored (and so served) with the influential edges last: the tool must put them first itself.
    s2.cite(sparse, s2_id("longformer"), contexts=["Longformer [3] uses a sliding window."], intents=["methodology"])
    s2.cite(sparse, s2_id("dense"), contexts=["We build on dense attention [12]."], intents=["background"],
            influential=True)
    s2.cite(s2_id("citer-c"), sparse, contexts=[], intents=[])
    s2.cite(s2_id("citer-b"), sparse, contexts=["Sparse attention [21] reduces cost."], intents=["background"])
    s2.cite(s2_id("citer-a"), sparse, contexts=["We adopt the sparse pattern of [7]."], intents=["methodology"],
            influential=True)
    for _ in range(5):  # make citer-b the most cited, so influence, not popularity, decides the order
        s2.cite(s2_id("bio"), s2_id("citer-b"))
    s2.add_snippet(sparse, "Our sparse attention pattern attends to a sliding window plus global tokens, "
                           "reducing the quadratic cost of attention.", section="Method")
    s2.add_snippet(s2_id("bio"), "Attention over residues helps protein folding.", section="Results")


def seed_arxiv(arxiv: ArxivStandIn) -> None:
    arxiv.add(PaperPage(
        arxiv_id=SPARSE, title="Sparse Attention for Long Context Transformers", authors=["Ada Example", "Bo Sample"],
        abstract="We propose a sparse attention pattern with cost $O(n \\log n)$ that scales to long contexts.",
        sections=[
            PageSection("Introduction", ["Long context matters for reading whole books."]),
            PageSection("Method", ["Our method has two parts."], subsections=[
                PageSection("Sparse Attention", ["Each token attends to a window weighted by $\\alpha$."],
                            bullets=["Local window of 512 tokens.", "Global tokens every 64 positions."]),
                PageSection("Training", ["We train with learning rate $\\eta = 3 \\times 10^{-4}$."]),
            ]),
            PageSection("Experiments", ["We evaluate on long-document benchmarks."],
                        figure_caption="Perplexity against context length.",
                        table=[["Model", "PPL"], ["Dense", "12.1"], ["Sparse", "11.4"]]),
            PageSection("Conclusion", ["Sparse attention scales."]),
        ],
        appendices=[PageSection("Hyperparameters", ["Batch size 256, warmup 2000 steps."])],
        bibliography=["A. Vaswani et al. Attention is all you need. 2017.", "I. Beltagy et al. Longformer. 2020."],
    ))
    arxiv.add(PaperPage(arxiv_id=HALLUCINATE, title="Why Language Models Hallucinate", authors=[], abstract="",
                        html=False))


@pytest.fixture
async def world() -> AsyncIterator[World]:
    w = World(HubStandIn(), SemanticScholarStandIn(), ArxivStandIn())
    seed_hub(w.hub)
    seed_s2(w.s2)
    seed_arxiv(w.arxiv)
    for server in (w.hub, w.s2, w.arxiv):
        await server.start()
    try:
        yield w
    finally:
        for client in w.clients:
            await client.aclose() if isinstance(client, httpx.AsyncClient) else client.close()
        for server in (w.hub, w.s2, w.arxiv):
            await server.stop()


@pytest.fixture
def make_ctx(world: World) -> Callable[..., ToolContext]:
    """Tool contexts on the stand-ins (HF_HOME is a temp dir, set by tests/support/standin_fixtures.py)."""

    def build(*, cache: Any = None, s2_api_key: str | None = None, retry: RetryPolicy | None = FAST_RETRY,
              s2_url: str | None = None) -> ToolContext:
        http = httpx.AsyncClient()
        hub_client = HubClient(endpoint=world.hub.url, token=None, namespace="intern-test")
        world.clients += [http, hub_client]
        config = AgentConfig(model="test", research_model="test", hf_endpoint=world.hub.url,
                             semantic_scholar_url=s2_url or world.s2.url, arxiv_url=world.arxiv.url)
        return ToolContext(session_id="s1", config=config, hub=hub_client, http=http, prices=PriceTable(),
                           plan=PlanState(), events=Events(),
                           deps=ToolDeps(cache=cache, s2_api_key=s2_api_key, s2_retry=retry))

    return build


@pytest.fixture
def memory_cache() -> MemoryCache:
    return MemoryCache()
