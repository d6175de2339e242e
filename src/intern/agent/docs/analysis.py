"""How text becomes search terms, the same way for pages and queries.

Words are split inside identifiers (`push_to_hub`, `LoraConfig`) and kept whole too, while letters
and digits stay together (`4bit`, `7B`, `bf16`, `qwen2`), lower-cased, stripped of stop words (including the filler of questions: "how do I …"), and
stemmed with the Porter2 (English Snowball) stemmer so "running" matches "run".
"""

from __future__ import annotations

import re
from functools import lru_cache

from whoosh.analysis import (
    STOP_WORDS,
    Analyzer,
    Filter,
    IntraWordFilter,
    LowercaseFilter,
    RegexTokenizer,
    StemFilter,
    StopFilter,
)
from whoosh.lang.porter2 import stem

QUESTION_WORDS = frozenset({
    "how", "what", "which", "why", "where", "do", "does", "did", "i", "me", "my", "should", "want",
    "need", "there", "way", "get", "set", "some", "about", "into", "its", "our",
})


_BRITISH = re.compile(r"(?<=\w{3})is(ation|ations|e|es|ed|ing|er|ers)$")


class SpellingFilter(Filter):
    """British -ise/-isation spellings become -ize/-ization, so "quantisation" finds "quantization"."""

    def __call__(self, tokens):  # type: ignore[no-untyped-def]
        for token in tokens:
            if "is" in token.text:
                token.text = _BRITISH.sub(r"iz\1", token.text)
            yield token


def docs_analyzer() -> Analyzer:
    return (
        RegexTokenizer(r"\w+(\.?\w+)*")
        | IntraWordFilter(splitnums=False, mergewords=True)
        | LowercaseFilter()
        | StopFilter(stoplist=STOP_WORDS | QUESTION_WORDS, minsize=2)
        | SpellingFilter()
        | StemFilter(stemfn=stem, cachesize=100_000)
    )


@lru_cache(maxsize=1)
def _shared() -> Analyzer:
    return docs_analyzer()


def terms(text: str) -> list[str]:
    """The search terms of a text, in order, without duplicates."""
    seen: dict[str, None] = {}
    for token in _shared()(text):
        seen.setdefault(token.text, None)
    return list(seen)
