"""The shipped snapshot is complete and laid out like the real docs, and the stand-in serves it the
way the site does."""

from __future__ import annotations

from importlib import resources
from typing import Any

import httpx
import yaml

from intern.agent.docs.sets import SETS_BY_NAME
from intern.agent.docs.snapshot import load_snapshot, parse_toctree, snapshot_root
from intern.agent.docs.text import page_title


def test_every_toctree_entry_has_a_page_and_every_page_is_listed() -> None:
    root = snapshot_root()
    for snap in load_snapshot():
        listed = {e.local for e in snap.toc}
        assert listed == set(snap.pages), snap.name
        kind, name = snap.path.strip("/").split("/")
        directory = root / kind / name
        on_disk = {str(p) for p in _markdown_files(directory)}
        assert on_disk == {f"{local}.md" for local in listed}, snap.name


def _markdown_files(directory: Any, prefix: str = "") -> list[str]:
    out = []
    for entry in directory.iterdir():
        if entry.is_dir():
            out += _markdown_files(entry, f"{prefix}{entry.name}/")
        elif entry.name.endswith(".md"):
            out.append(f"{prefix}{entry.name}")
    return out


def test_snapshot_covers_the_training_sets_with_short_titled_pages() -> None:
    sets = {s.name: s for s in load_snapshot()}
    assert set(sets) <= set(SETS_BY_NAME)
    assert {"hub", "transformers", "trl", "peft", "datasets", "accelerate", "huggingface_hub", "bitsandbytes",
            "text-generation-inference", "inference-providers"} <= set(sets)
    pages = [(name, local, md) for name, s in sets.items() for local, md in s.pages.items()]
    assert 40 <= len(pages) <= 90
    for name, local, markdown in pages:
        assert page_title(markdown), f"{name}/{local} has no title"
        assert len(markdown) < 4000, f"{name}/{local} is not short"
    for local in ("sft_trainer", "dpo_trainer", "grpo_trainer", "kto_trainer", "dataset_formats"):
        assert local in sets["trl"].pages
    assert {"jobs", "jobs-configuration", "jobs-schedule"} <= set(sets["hub"].pages)


def test_nested_toctree_groups_name_the_innermost_group() -> None:
    toc = parse_toctree(yaml.safe_load(
        "- sections:\n  - local: index\n    title: Home\n  title: Start\n"
        "- sections:\n  - sections:\n    - local: sft\n      title: SFT\n    title: Trainers\n"
        "  - local: models\n    title: Models\n  title: API\n"))
    assert [(e.section, e.local, e.title) for e in toc] == [
        ("Start", "index", "Home"), ("Trainers", "sft", "SFT"), ("API", "models", "Models")]


def test_snapshot_ships_as_package_data() -> None:
    assert (resources.files("intern") / "docs_snapshot" / "docs" / "trl" / "_toctree.yml").is_file()
    assert (resources.files("intern") / "docs_snapshot" / "openapi.json").is_file()


async def test_stand_in_serves_docs_like_the_site(hub: Any) -> None:
    async with httpx.AsyncClient(base_url=hub.url) as client:
        bare = await client.get("/docs/trl")
        assert bare.status_code == 302 and bare.headers["location"] == "/docs/trl/index"
        page = await client.get("/docs/trl/sft_trainer")
        assert page.headers["content-type"].startswith("text/html")
        assert "<nav class='top-0 sticky flex-auto" in page.text and "href='/docs/trl/dpo_trainer'" in page.text
        markdown = await client.get("/docs/trl/sft_trainer.md")
        assert markdown.headers["content-type"].startswith("text/markdown")
        assert markdown.text.startswith("# SFT Trainer")
        assert (await client.get("/docs/trl/nope")).status_code == 404
        course = await client.get("/learn/llm-course")
        assert course.headers["location"] == "/learn/llm-course/chapter3/1"
        spec = await client.get("/.well-known/openapi.json")
        assert spec.json()["openapi"].startswith("3.")
