"""Paper research for the `hf_papers` tool: Hub papers, Semantic Scholar and arXiv HTML."""
