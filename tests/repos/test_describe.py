"""The approval cards of every Hub write: repo, branch, files and sizes, diffs, visibility."""

from __future__ import annotations

import pytest

from intern.agent.context_deps import ToolContext
from intern.agent.errors import ToolFeedback
from intern.agent.tools.repos import repo_files_tool as files
from intern.agent.tools.repos import repo_git_tool as git
from intern.standins.hub_repos import RepoStore
from tests.repos.helpers import card, field, run

REPO = "intern-test/tiny"


def seed(store: RepoStore, **settings: object) -> None:
    store.add(REPO, files={"config.json": '{"hidden_size": 64,\n "layers": 2}\n', "w.bin": b"\x00" * 50,
                           "logs/a.txt": "a" * 10, "logs/b.txt": "b" * 2_000}, **settings)


async def test_upload_card_shows_the_diff_against_the_hub(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    info = await card(ctx, files, operation="upload", repo_id=REPO, path="config.json",
                      content='{"hidden_size": 128,\n "layers": 2}\n')
    assert info.kind == "hub_write" and not info.auto_approvable
    assert info.title == f"Upload config.json to model {REPO}"
    assert info.fields == [("Repo", f"{REPO} (model, public)"), ("Branch", "main"),
                           ("File", "config.json (35 B, replaces 34 B)"),
                           ("Commit message", "Upload config.json")]
    assert info.body_label == "Diff"
    assert info.body == ("--- a/config.json\n+++ b/config.json\n@@ -1,2 +1,2 @@\n"
                         '-{"hidden_size": 64,\n+{"hidden_size": 128,\n  "layers": 2}\n')


async def test_upload_card_for_a_new_file_diffs_against_nothing(ctx: ToolContext, store: RepoStore) -> None:
    seed(store, private=True)
    info = await card(ctx, files, operation="upload", repo_id=REPO, path="notes.md", content="one\ntwo",
                      create_pr=True, commit_message="Add notes")
    assert field(info, "Repo") == f"{REPO} (model, private)"
    assert field(info, "Branch") == "new pull request against main"
    assert field(info, "File") == "notes.md (7 B, new file)"
    assert field(info, "Commit message") == "Add notes"
    assert info.body == "--- /dev/null\n+++ b/notes.md\n@@ -0,0 +1,2 @@\n+one\n+two\n\\ No newline at end of file\n"


async def test_upload_card_for_a_large_or_binary_file_shows_sizes(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    big = await card(ctx, files, operation="upload", repo_id=REPO, path="data.csv", content="x,y\n" * 60_000)
    assert field(big, "File") == "data.csv (240.0 kB, new file)" and big.body is None
    over_binary = await card(ctx, files, operation="upload", repo_id=REPO, path="w.bin", content="text now")
    assert field(over_binary, "File") == "w.bin (8 B, replaces 50 B)"
    assert field(over_binary, "Current file") == "binary, 50 B: not diffed" and over_binary.body is None


async def test_upload_card_warns_about_data_files_in_a_model_repo(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    info = await card(ctx, files, operation="upload", repo_id=REPO, path="train.parquet", content="x")
    assert [c.level for c in info.checks] == ["warn"] and "dataset repo" in info.checks[0].text


async def test_delete_card_lists_files_and_sizes(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    folder = await card(ctx, files, operation="delete", repo_id=REPO, path="logs/", revision="main")
    assert field(folder, "Files") == "2 files, 2.0 kB"
    assert folder.body == "logs/a.txt\t10 B\nlogs/b.txt\t2.0 kB" and folder.body_label == "Files deleted"
    globbed = await card(ctx, files, operation="delete", repo_id=REPO, patterns=["*.bin", "config.*"])
    assert globbed.title == f"Delete 2 files from model {REPO}"
    assert field(globbed, "Commit message") == "Delete files matching *.bin, config.*"
    assert globbed.body == "config.json\t34 B\nw.bin\t50 B"


async def test_visibility_change_is_read_from_the_repo(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    info = await card(ctx, git, operation="update_repo", repo_id=REPO, private=True)
    assert info.title == f"Make {REPO} private" and field(info, "Visibility") == "public → private"
    assert info.checks == []
    repo = store.get("model", REPO)
    assert repo is not None
    repo.private = True
    public = await card(ctx, git, operation="update_repo", repo_id=REPO, private=False)
    assert field(public, "Visibility") == "private → public"
    assert "visible to anyone" in public.checks[0].text
    same = await card(ctx, git, operation="update_repo", repo_id=REPO, private=True)
    assert "already private" in same.checks[0].text


async def test_branch_and_tag_cards(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    repo = store.get("model", REPO)
    assert repo is not None
    head = repo.branches["main"]
    branch = await card(ctx, git, operation="create_branch", repo_id=REPO, branch="exp", from_rev="main")
    assert branch.fields[1:] == [("Branch", "exp (new)"), ("From", "main")]
    repo.branches["old"] = head
    drop = await card(ctx, git, operation="delete_branch", repo_id=REPO, branch="old")
    assert field(drop, "Branch") == f"old (at {head[:12]})"
    tag = await card(ctx, git, operation="create_tag", repo_id=REPO, tag="v2", description="second")
    assert tag.fields[1:] == [("Tag", "v2 (new)"), ("Revision", "main"), ("Message", "second")]
    with pytest.raises(ToolFeedback, match="already exists"):
        await card(ctx, git, operation="create_branch", repo_id=REPO, branch="old")
    with pytest.raises(ToolFeedback, match="main is the default branch"):
        await card(ctx, git, operation="delete_branch", repo_id=REPO, branch="main")
    with pytest.raises(ToolFeedback, match=r"There is no branch 'gone' in model .*; branches: main, old"):
        await card(ctx, git, operation="delete_branch", repo_id=REPO, branch="gone")
    with pytest.raises(ToolFeedback, match="no tag 'v9'"):
        await card(ctx, git, operation="delete_tag", repo_id=REPO, tag="v9")


async def test_merge_card_shows_the_pull_request_diff_and_conflicts(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    await run(ctx, files, operation="upload", repo_id=REPO, path="config.json", content='{"hidden_size": 8}\n',
              create_pr=True)
    info = await card(ctx, git, operation="merge_pr", repo_id=REPO, pr_num=1)
    assert info.title == "Merge pull request #1 into main"
    assert field(info, "Files changed") == "config.json"
    assert info.body_label == "Diff" and info.body is not None and '+{"hidden_size": 8}' in info.body
    assert info.checks == []
    await run(ctx, files, operation="upload", repo_id=REPO, path="config.json", content='{"hidden_size": 9}\n')
    conflicted = await card(ctx, git, operation="merge_pr", repo_id=REPO, pr_num=1)
    assert [(c.level, c.text) for c in conflicted.checks] == [
        ("error", "Conflicts with refs/heads/main: ['config.json']")]


async def test_comment_and_create_pr_cards_carry_the_text(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    opened = await card(ctx, git, operation="create_pr", repo_id=REPO, title="Tune", description="Why: speed")
    assert opened.body == "Why: speed" and opened.body_label == "Description"
    await run(ctx, git, operation="create_pr", repo_id=REPO, title="Tune")
    comment = await card(ctx, git, operation="comment_pr", repo_id=REPO, pr_num=1, comment="Looks good")
    assert comment.body == "Looks good" and field(comment, "Pull request").startswith("#1 [draft] Tune")


async def test_create_repo_card(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    info = await card(ctx, git, operation="create_repo", repo_id="intern-test/new-ds", repo_type="dataset")
    assert info.fields == [("Repo", "intern-test/new-ds (dataset, new)"), ("Visibility", "public")]
    assert "public" in info.checks[0].text
    with pytest.raises(ToolFeedback, match=f"model {REPO} already exists"):
        await card(ctx, git, operation="create_repo", repo_id=REPO)
