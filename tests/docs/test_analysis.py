"""The analyzer: Porter2 stemming, identifier splitting, spelling variants, question filler."""

from __future__ import annotations

from pathlib import Path

from intern.agent.docs.analysis import terms
from intern.agent.docs.index import Page, open_index, write_index


def _page(path: str, markdown: str) -> Page:
    return Page("trl", path, path.rsplit("/", 1)[-1], "Guides", 0, markdown)


def test_porter2_stems_inflections_to_one_term() -> None:
    assert terms("running") == ["run"]
    assert terms("runs") == ["run"]
    assert terms("quantization quantized quantize") == ["quantiz"]


def test_searching_running_finds_a_page_that_only_says_run(tmp_path: Path) -> None:
    write_index(tmp_path, [
        _page("/docs/trl/a", "# Jobs\n\nYou can run the script on a GPU."),
        _page("/docs/trl/b", "# Walking\n\nNothing about that verb here."),
    ], source="live")
    index = open_index(tmp_path)
    try:
        assert [h.path for h in index.search("running").hits] == ["/docs/trl/a"]
        assert [h.path for h in index.search("runs").hits] == ["/docs/trl/a"]
    finally:
        index.close()


def test_identifiers_are_split_and_kept_whole() -> None:
    assert {"push", "hub", "pushtohub"} <= set(terms("push_to_hub"))
    assert {"lora", "config", "loraconfig"} <= set(terms("LoraConfig"))
    assert {"4bit", "bf16", "7b"} <= set(terms("load_in_4bit bf16 Qwen2.5-7B"))


def test_british_spelling_matches_american() -> None:
    assert terms("quantisation") == terms("quantization")
    assert terms("optimised") == terms("optimized")


def test_question_filler_is_not_searched() -> None:
    words = terms("How do I use LoRA with my model?")
    assert {"use", "lora", "model"} <= set(words)
    assert not {"how", "do", "i", "with", "my"} & set(words)
    assert terms("how do I") == []


def test_a_query_of_stop_words_finds_nothing(tmp_path: Path) -> None:
    write_index(tmp_path, [_page("/docs/trl/a", "# A page\n\nHow to do it.")], source="live")
    index = open_index(tmp_path)
    try:
        assert index.search("how do I do it").hits == []
    finally:
        index.close()
