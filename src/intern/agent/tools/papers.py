"""`hf_papers`: find, read and trace research papers (Hub papers, Semantic Scholar, arXiv HTML)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from intern.agent.errors import ToolFeedback
from intern.agent.papers.args import MAX_LIMIT, PapersArgs
from intern.agent.papers.operations import OPERATIONS
from intern.agent.papers.sources import SourceError, Sources
from intern.agent.tools.base import Tool, ToolResult

if TYPE_CHECKING:
    from intern.agent.context_deps import ToolContext

MAX_OUTPUT_CHARS = 24_000

DESCRIPTION = f"""Research papers: discover, read, trace citations, and find Hub models/datasets built on them.
Operations (arguments):
- trending: today's Daily Papers on the Hub (date='YYYY-MM-DD' for another day; query filters by keywords).
- search: find papers (query). Adding date_from/date_to, fields_of_study, min_citations or sort searches
  Semantic Scholar with those filters instead of the Hub.
- paper_details: title, authors, upvotes, citations, code link, AI summary and abstract (arxiv_id).
- read_paper: the paper's text from arXiv HTML (arxiv_id). Without section: abstract + table of contents;
  with section='3' / '3.2' / 'Experiments': that section's full text. Falls back to the abstract + PDF link.
- citation_graph: references and/or citing papers with influential flags and citation contexts
  (arxiv_id, direction='references'|'citations'|'both').
- snippet_search: full-text passages from papers matching query (same optional filters as search).
- recommend: similar papers for one paper (arxiv_id), or from positive_ids with optional negative_ids.
- find_models, find_datasets, find_collections, find_all_resources: Hub repos/collections citing arxiv_id.
arxiv_id is a bare arXiv id such as 2401.00001. limit: results per list (default 10, max {MAX_LIMIT})."""


async def handle(ctx: ToolContext, args: PapersArgs) -> ToolResult:
    operation = OPERATIONS[args.operation]
    try:
        text = await operation(Sources(ctx), args)
    except SourceError as exc:
        raise ToolFeedback(str(exc)) from exc
    return ToolResult(_bounded(text), artifacts={"operation": args.operation})


def _bounded(text: str) -> str:
    if len(text) <= MAX_OUTPUT_CHARS:
        return text
    cut = text[:MAX_OUTPUT_CHARS].rsplit("\n", 1)[0]
    return f"{cut}\n\n[Output cut at {MAX_OUTPUT_CHARS:,} characters; ask for fewer results or one section.]"


papers_tool = Tool(
    name="hf_papers",
    description=DESCRIPTION,
    args=PapersArgs,
    handler=handle,
    policy=lambda _args: "none",
    read_only=True,
)
