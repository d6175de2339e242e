"""The arguments of `hf_papers`, as the model sees them (the JSON schema comes from this model)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_LIMIT = 10
MAX_LIMIT = 50

Operation = Literal[
    "trending", "search", "paper_details", "read_paper", "citation_graph", "snippet_search", "recommend",
    "find_datasets", "find_models", "find_collections", "find_all_resources",
]

# Semantic Scholar's fields of study; the API matches them exactly, so they are canonicalised here.
FIELDS_OF_STUDY = (
    "Computer Science", "Medicine", "Chemistry", "Biology", "Materials Science", "Physics", "Geology",
    "Psychology", "Art", "History", "Geography", "Sociology", "Business", "Political Science", "Economics",
    "Philosophy", "Mathematics", "Engineering", "Environmental Science", "Agricultural and Food Sciences",
    "Education", "Law", "Linguistics",
)
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_PARTIAL_DATE = re.compile(r"\d{4}(?:-\d{2}(?:-\d{2})?)?")


class PapersArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operation: Operation = Field(description="What to do; see the tool description.")
    query: str | None = Field(None, description="Search words (trending: keyword filter; search; snippet_search).")
    arxiv_id: str | None = Field(None, description="A bare arXiv id such as 2401.00001.")
    section: str | None = Field(
        None, description="read_paper: a section number ('3', '3.2', 'A') or title ('Experiments'); "
                          "omit for the abstract and table of contents.")
    direction: Literal["references", "citations", "both"] = Field(
        "both", description="citation_graph: papers this one cites (references), papers citing it, or both.")
    limit: int = Field(DEFAULT_LIMIT, description=f"How many results (default {DEFAULT_LIMIT}, at most {MAX_LIMIT}).")
    date: str | None = Field(None, description="trending: the day (YYYY-MM-DD) of Daily Papers to list.")
    positive_ids: list[str] | None = Field(None, description="recommend: arXiv ids of papers to find more like.")
    negative_ids: list[str] | None = Field(None, description="recommend: arXiv ids of papers to steer away from.")
    date_from: str | None = Field(
        None, description="search/snippet_search: earliest publication date (YYYY, YYYY-MM or YYYY-MM-DD).")
    date_to: str | None = Field(None, description="search/snippet_search: latest publication date.")
    fields_of_study: list[str] | None = Field(
        None, description="search/snippet_search: e.g. ['Computer Science', 'Mathematics'].")
    min_citations: int | None = Field(None, ge=0, description="search/snippet_search: minimum citation count.")
    sort: Literal["relevance", "citations", "newest", "oldest"] | None = Field(
        None, description="search: order of Semantic Scholar results.")

    @field_validator("limit", mode="before")
    @classmethod
    def _clamp_limit(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return max(1, min(int(value), MAX_LIMIT))
        return value

    @field_validator("positive_ids", "negative_ids", "fields_of_study", mode="before")
    @classmethod
    def _split_text_list(cls, value: Any) -> Any:
        # Models often send "a, b" where a list is asked for; both mean the same.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("date")
    @classmethod
    def _check_day(cls, value: str | None) -> str | None:
        if value is not None and not _DAY.fullmatch(value.strip()):
            raise ValueError("use the form YYYY-MM-DD, e.g. 2025-09-08")
        return value.strip() if value else value

    @field_validator("date_from", "date_to")
    @classmethod
    def _check_partial_date(cls, value: str | None) -> str | None:
        if value is not None and not _PARTIAL_DATE.fullmatch(value.strip()):
            raise ValueError("use YYYY, YYYY-MM or YYYY-MM-DD")
        return value.strip() if value else value

    @field_validator("fields_of_study")
    @classmethod
    def _canonical_fields(cls, value: list[str] | None) -> list[str] | None:
        if not value:
            return None
        known = {f.casefold(): f for f in FIELDS_OF_STUDY}
        unknown = [v for v in value if v.strip().casefold() not in known]
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; choose from {', '.join(FIELDS_OF_STUDY)}")
        return [known[v.strip().casefold()] for v in value]

    @property
    def s2_filters(self) -> bool:
        """Whether the search asks for something only Semantic Scholar can filter or sort by."""
        return bool(self.date_from or self.date_to or self.fields_of_study or self.min_citations is not None
                    or self.sort)

    def s2_filter_params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self.date_from or self.date_to:
            params["publicationDateOrYear"] = f"{self.date_from or ''}:{self.date_to or ''}"
        if self.fields_of_study:
            params["fieldsOfStudy"] = ",".join(self.fields_of_study)
        if self.min_citations is not None:
            params["minCitationCount"] = str(self.min_citations)
        return params
