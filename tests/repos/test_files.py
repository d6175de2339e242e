"""hf_repo_files end to end: the tool, the real HfApi and the Hub stand-in."""

from __future__ import annotations

import pytest

from intern.agent.context_deps import ToolContext
from intern.agent.tools.repos import files as files_module
from intern.agent.tools.repos import repo_files_tool as files
from intern.standins.hub import HubStandIn
from intern.standins.hub_repos import RepoStore
from tests.repos.helpers import call, field, run

REPO = "intern-test/tiny"


def seed(store: RepoStore, **settings: object) -> None:
    store.add(REPO, files={
        "config.json": '{"hidden_size": 64}\n',
        "train.py": "".join(f"line {i}\n" for i in range(1, 1001)),
        "data/a.jsonl": '{"text": "a"}\n',
        "data/b.jsonl": '{"text": "b"}\n' * 3,
        "data/sub/c.txt": "c\n",
        "model.safetensors": b"\x00\x01\x02" * 100,
    }, **settings)


async def test_list_shows_every_file_with_sizes(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    result = await run(ctx, files, operation="list", repo_id=REPO)
    assert not result.is_error
    lines = result.content.splitlines()
    assert lines[0].startswith(f"model {REPO} @ main: 7 files")
    assert "train.py\t8.9 kB" in lines
    assert "model.safetensors\t300 B  (LFS)" in lines
    assert "data/sub/c.txt\t2 B" in lines


async def test_list_filters_by_patterns_and_folder(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    by_glob = await run(ctx, files, operation="list", repo_id=REPO, patterns=["*.jsonl"])
    assert by_glob.artifacts["files"] == ["data/a.jsonl", "data/b.jsonl"]
    by_folder = await run(ctx, files, operation="list", repo_id=REPO, path="data/sub")
    assert by_folder.artifacts["files"] == ["data/sub/c.txt"]
    none = await run(ctx, files, operation="list", repo_id=REPO, patterns=["*.parquet"])
    assert "No files match" in none.content


async def test_list_follows_tree_pagination(ctx: ToolContext, store: RepoStore, hub: HubStandIn) -> None:
    seed(store)
    store.tree_page_size = 2
    result = await run(ctx, files, operation="list", repo_id=REPO)
    assert len(result.artifacts["files"]) == 7
    assert len(hub.calls("/tree/main", "GET")) >= 4  # 9 entries (files and folders), 2 per page


async def test_list_at_revision_and_missing_folder(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    repo = store.get("model", REPO)
    assert repo is not None
    repo.branches["old"] = next(iter(repo.commits))  # the initial commit: .gitattributes only
    old = await run(ctx, files, operation="list", repo_id=REPO, revision="old")
    assert old.artifacts["files"] == [".gitattributes"]
    missing = await run(ctx, files, operation="list", repo_id=REPO, path="nope")
    assert missing.is_error and "nope" in missing.content


async def test_read_numbers_lines_and_pages(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    first = await run(ctx, files, operation="read", repo_id=REPO, path="train.py", limit=3)
    assert first.content.splitlines() == [
        f"model {REPO} @ main: train.py (8.9 kB), lines 1–3 of 1000",
        "     1\tline 1", "     2\tline 2", "     3\tline 3",
        "… 997 more lines; read again with offset=4.",
    ]
    later = await run(ctx, files, operation="read", repo_id=REPO, path="train.py", offset=999, limit=10)
    assert later.content.splitlines()[1:] == ["   999\tline 999", "  1000\tline 1000"]
    past = await run(ctx, files, operation="read", repo_id=REPO, path="train.py", offset=5000)
    assert past.is_error and "past the end" in past.content


async def test_read_refuses_binary_folders_and_missing_files(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    binary = await run(ctx, files, operation="read", repo_id=REPO, path="model.safetensors")
    assert binary.is_error and "binary file" in binary.content
    folder = await run(ctx, files, operation="read", repo_id=REPO, path="data")
    assert folder.is_error and "is a folder" in folder.content
    missing = await run(ctx, files, operation="read", repo_id=REPO, path="nope.txt")
    assert missing.is_error and "No file 'nope.txt'" in missing.content


async def test_read_of_a_large_file_fetches_only_its_start(ctx: ToolContext, store: RepoStore,
                                                           hub: HubStandIn) -> None:
    big = "".join(f"row {i:07d}\n" for i in range(300_000))  # 3.6 MB
    store.add(REPO, files={"big.txt": big})
    result = await run(ctx, files, operation="read", repo_id=REPO, path="big.txt", limit=2)
    assert "only the first 2 MB were read" in result.content
    assert result.content.splitlines()[1] == "     1\trow 0000000"
    download = hub.calls("/resolve/main/big.txt", "GET")[-1]
    assert download.headers["Range"] == "bytes=0-1999999"


async def test_read_a_pull_request_revision(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    opened = await run(ctx, files, operation="upload", repo_id=REPO, path="config.json",
                       content='{"hidden_size": 128}\n', create_pr=True)
    assert opened.artifacts["pr_num"] == 1
    in_pr = await run(ctx, files, operation="read", repo_id=REPO, path="config.json", revision="refs/pr/1")
    assert '"hidden_size": 128' in in_pr.content
    on_main = await run(ctx, files, operation="read", repo_id=REPO, path="config.json")
    assert '"hidden_size": 64' in on_main.content


async def test_upload_commits_to_the_branch(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    repo = store.get("model", REPO)
    assert repo is not None
    repo.branches["dev"] = repo.branches["main"]
    out = await call(ctx, files, operation="upload", repo_id=REPO, path="src/app.py", content="print('hi')\n",
                     revision="dev", commit_message="Add app")
    assert out.card is not None and out.card.kind == "hub_write"
    assert not out.result.is_error, out.result.content
    head = repo.head("dev")
    assert head.files["src/app.py"] == b"print('hi')\n"
    assert head.title == "Add app" == field(out.card, "Commit message")
    assert head.oid == out.result.artifacts["commit"]
    assert "src/app.py" not in repo.head("main").files
    assert f"Committed src/app.py (12 B) to model {REPO} @ dev: commit {head.oid[:12]}" in out.result.content


async def test_upload_as_pull_request_leaves_main_alone(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    repo = store.get("model", REPO)
    assert repo is not None
    main_before = repo.branches["main"]
    out = await run(ctx, files, operation="upload", repo_id=REPO, path="README.md", content="# Tiny\n",
                    create_pr=True)
    assert "Opened pull request #1" in out.content and "revision='refs/pr/1'" in out.content
    assert repo.branches["main"] == main_before
    assert repo.commits[repo.pr_heads[1]].files["README.md"] == b"# Tiny\n"
    more = await run(ctx, files, operation="upload", repo_id=REPO, path="notes.md", content="more\n",
                     revision="refs/pr/1")
    assert not more.is_error
    assert "notes.md" in repo.commits[repo.pr_heads[1]].files


async def test_upload_of_identical_content_commits_nothing(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    repo = store.get("model", REPO)
    assert repo is not None
    before = len(repo.commits)
    out = await call(ctx, files, operation="upload", repo_id=REPO, path="config.json",
                     content='{"hidden_size": 64}\n')
    assert "already has exactly this content" in out.result.content
    assert out.card is not None and any("No change" in c.text for c in out.card.checks)
    assert len(repo.commits) == before


async def test_upload_of_invalid_readme_metadata_writes_nothing(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    repo = store.get("model", REPO)
    assert repo is not None
    before = dict(repo.branches)
    out = await run(ctx, files, operation="upload", repo_id=REPO, path="README.md",
                    content="---\nlicense: [mit\n---\n# Tiny\n")
    assert out.is_error and "Invalid metadata in README.md" in out.content
    assert repo.branches == before


async def test_delete_a_file_a_folder_and_by_pattern(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    repo = store.get("model", REPO)
    assert repo is not None
    one = await run(ctx, files, operation="delete", repo_id=REPO, path="config.json")
    assert not one.is_error and "config.json" not in repo.head().files
    folder = await call(ctx, files, operation="delete", repo_id=REPO, path="data/sub/")
    assert "Committed folder data/sub/" in folder.result.content
    assert folder.card is not None and field(folder.card, "Commit message") == repo.head().title == "Delete data/sub/"
    assert "data/sub/c.txt" not in repo.head().files and "data/a.jsonl" in repo.head().files
    globbed = await run(ctx, files, operation="delete", repo_id=REPO, patterns=["*.jsonl"])
    assert "2 files matching ['*.jsonl']" in globbed.content
    assert sorted(repo.head().files) == [".gitattributes", "model.safetensors", "train.py"]
    assert repo.head().title == "Delete files matching *.jsonl"


async def test_delete_of_nothing_is_refused_before_approval(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    missing = await call(ctx, files, operation="delete", repo_id=REPO, path="nope.bin")
    assert missing.card is None and missing.result.is_error
    assert "No file or folder 'nope.bin'" in missing.result.content
    unmatched = await call(ctx, files, operation="delete", repo_id=REPO, patterns=["*.ckpt"])
    assert unmatched.card is None and "nothing to delete" in unmatched.result.content


async def test_dataset_and_space_repos(ctx: ToolContext, store: RepoStore) -> None:
    store.add("intern-test/ds", "dataset", files={"train.jsonl": '{"a": 1}\n'})
    store.add("intern-test/app", "space", files={"app.py": "import gradio\n"}, sdk="gradio")
    read = await run(ctx, files, operation="read", repo_id="intern-test/ds", repo_type="dataset",
                     path="train.jsonl")
    assert read.content.splitlines()[1] == '     1\t{"a": 1}'
    up = await run(ctx, files, operation="upload", repo_id="intern-test/app", repo_type="space", path="app.py",
                   content="import gradio as gr\n")
    assert "/spaces/intern-test/app/commit/" in up.content
    space = store.get("space", "intern-test/app")
    assert space is not None and space.head().files["app.py"] == b"import gradio as gr\n"
    wrong_type = await run(ctx, files, operation="list", repo_id="intern-test/ds")
    assert wrong_type.is_error and "model intern-test/ds was not found" in wrong_type.content


async def test_long_listings_are_cut_and_say_so(ctx: ToolContext, store: RepoStore,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    store.add(REPO, files={f"shards/{i:03d}.txt": "x" for i in range(30)})
    monkeypatch.setattr(files_module, "LIST_MAX_SHOWN", 5)
    shown = await run(ctx, files, operation="list", repo_id=REPO)
    assert shown.artifacts["files"] == [".gitattributes", *(f"shards/{i:03d}.txt" for i in range(4))]
    assert "… 26 more; narrow with `path` or `patterns`." in shown.content
    monkeypatch.setattr(files_module, "LIST_MAX_SCANNED", 10)
    scanned = await run(ctx, files, operation="list", repo_id=REPO, path="shards")
    assert "The listing stopped after 10 entries" in scanned.content
    refused = await call(ctx, files, operation="delete", repo_id=REPO, patterns=["shards/*"])
    assert refused.card is None and "too many files to match patterns" in refused.result.content
    folder = await call(ctx, files, operation="delete", repo_id=REPO, path="shards/")
    assert folder.card is not None and field(folder.card, "Files") == "10+ files, at least 10 B"
    assert "partial" in folder.card.checks[0].text
    repo = store.get("model", REPO)
    assert repo is not None and list(repo.head().files) == [".gitattributes"]
