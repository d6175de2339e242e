"""Hub errors come back as tool results the model can act on, and a refused write changes nothing."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from intern.agent.context_deps import ToolContext
from intern.agent.errors import ToolFeedback
from intern.agent.hub import HubClient
from intern.agent.tools.repos import repo_files_tool as files
from intern.agent.tools.repos import repo_git_tool as git
from intern.standins.hub import HubStandIn
from intern.standins.hub_repos import Repo, RepoStore
from tests.repos.helpers import call, run

REPO = "intern-test/tiny"


def seed(store: RepoStore, **settings: object) -> Repo:
    return store.add(REPO, files={"config.json": "{}\n", "train.py": "print(1)\n"}, **settings)


def snapshot(repo: Repo) -> tuple[dict[str, str], dict[str, str], int, int]:
    return dict(repo.branches), dict(repo.tags), len(repo.commits), len(repo.discussions)


async def test_commit_without_write_access_suggests_a_pull_request(ctx: ToolContext, store: RepoStore) -> None:
    repo = seed(store, can_write=False)
    before = snapshot(repo)
    out = await call(ctx, files, operation="upload", repo_id=REPO, path="train.py", content="print(2)\n")
    assert out.card is not None  # reading the repo for the card is allowed
    assert out.result.is_error
    assert out.result.content.startswith(f"This Hub token is not allowed to commit to model {REPO} (403: ")
    assert "set create_pr=true" in out.result.content
    assert snapshot(repo) == before
    as_pr = await run(ctx, files, operation="upload", repo_id=REPO, path="train.py", content="print(2)\n",
                      create_pr=True)
    assert "Opened pull request #1" in as_pr.content
    assert repo.head().files["train.py"] == b"print(1)\n"


async def test_git_writes_without_write_access(ctx: ToolContext, store: RepoStore) -> None:
    repo = seed(store, can_write=False)
    before = snapshot(repo)
    for raw in ({"operation": "create_branch", "branch": "x"}, {"operation": "create_tag", "tag": "v1"},
                {"operation": "update_repo", "private": True}):
        out = await run(ctx, git, repo_id=REPO, **raw)
        assert out.is_error and "(403: " in out.content and "create_pr" not in out.content, out.content
    assert snapshot(repo) == before and not repo.private
    await run(ctx, git, operation="create_pr", repo_id=REPO, title="Proposal")  # anyone may open one
    merged = await run(ctx, git, operation="merge_pr", repo_id=REPO, pr_num=1)
    assert merged.is_error and "not allowed to merge pull requests in" in merged.content


async def test_missing_repository(ctx: ToolContext, store: RepoStore) -> None:
    for raw in ({"operation": "list"}, {"operation": "read", "path": "a.txt"},
                {"operation": "upload", "path": "a.txt", "content": "x"}):
        out = await call(ctx, files, repo_id="intern-test/nope", **raw)
        assert out.card is None and out.result.is_error
        assert "model intern-test/nope was not found" in out.result.content
    refs = await run(ctx, git, operation="list_refs", repo_id="intern-test/nope", repo_type="dataset")
    assert "dataset intern-test/nope was not found" in refs.content


async def test_missing_revision(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    read = await run(ctx, files, operation="read", repo_id=REPO, path="train.py", revision="v9")
    assert read.is_error and "Revision 'v9' does not exist" in read.content and "list_refs" in read.content
    upload = await call(ctx, files, operation="upload", repo_id=REPO, path="a", content="x", revision="nope")
    assert upload.card is None and "Revision 'nope' does not exist" in upload.result.content
    branch = await run(ctx, git, operation="create_branch", repo_id=REPO, branch="b", from_rev="missing")
    assert "Revision 'missing' does not exist" in branch.content


async def test_gated_repository(ctx: ToolContext, store: RepoStore, hub: HubStandIn) -> None:
    seed(store, gated="manual", gated_access=False)
    listed = await run(ctx, files, operation="list", repo_id=REPO)
    assert not listed.is_error  # the file list of a gated repo is public
    read = await run(ctx, files, operation="read", repo_id=REPO, path="train.py")
    assert read.is_error
    assert read.content == (f"model {REPO} is gated and this Hub token has not been granted access. Someone must "
                            f"accept its conditions at {hub.url}/{REPO}; then retry.")
    anonymous = HubClient(endpoint=hub.url, token=None, namespace=hub.user)
    try:
        logged_out = await run(replace(ctx, hub=anonymous), files, operation="read", repo_id=REPO, path="train.py")
    finally:
        anonymous.close()
    assert logged_out.is_error and logged_out.content.startswith(f"model {REPO} is gated")
    repo = store.get("model", REPO)
    assert repo is not None
    repo.gated_access = True
    granted = await run(ctx, files, operation="read", repo_id=REPO, path="train.py")
    assert granted.content.splitlines()[1] == "     1	print(1)"


async def test_existing_branch_created_after_the_card(ctx: ToolContext, store: RepoStore) -> None:
    repo = seed(store)
    args = git.parse({"operation": "create_branch", "repo_id": REPO, "branch": "exp"})
    assert git.describe is not None
    await git.describe(ctx, args)  # no such branch yet: the card is made
    repo.branches["exp"] = repo.branches["main"]  # someone else makes it while the card waits
    with pytest.raises(ToolFeedback) as raised:
        await git.handler(ctx, args)
    assert str(raised.value) == (f"Conflict on model {REPO}: branch 'exp' already exists; pick another name "
                                 "(Hub: Reference already exists: refs/heads/exp).")
    asked_again = await call(ctx, git, operation="create_branch", repo_id=REPO, branch="exp")
    assert asked_again.card is None and "Branch 'exp' already exists" in asked_again.result.content


async def test_existing_tag_and_repo_conflicts_at_execution(ctx: ToolContext, store: RepoStore) -> None:
    repo = seed(store)
    tag_args = git.parse({"operation": "create_tag", "repo_id": REPO, "tag": "v1"})
    repo.tags["v1"] = repo.branches["main"]
    with pytest.raises(ToolFeedback, match="tag 'v1' already exists"):
        await git.handler(ctx, tag_args)
    repo_args = git.parse({"operation": "create_repo", "repo_id": "intern-test/made"})
    store.add("intern-test/made")
    with pytest.raises(ToolFeedback, match="intern-test/made already exists; choose another name"):
        await git.handler(ctx, repo_args)
    assert len(store.repos) == 2


async def test_merge_conflict_changes_nothing(ctx: ToolContext, store: RepoStore) -> None:
    repo = seed(store)
    await run(ctx, files, operation="upload", repo_id=REPO, path="train.py", content="print(2)\n", create_pr=True)
    await run(ctx, files, operation="upload", repo_id=REPO, path="train.py", content="print(3)\n")
    before = snapshot(repo)
    out = await run(ctx, git, operation="merge_pr", repo_id=REPO, pr_num=1)
    assert out.is_error and "conflicts with its target branch" in out.content
    assert snapshot(repo) == before and repo.discussions[0].status == "open"


async def test_missing_pull_request_and_file_to_delete(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    pr = await run(ctx, git, operation="get_pr", repo_id=REPO, pr_num=7)
    assert pr.is_error and pr.content.startswith(f"Pull request #7 does not exist in model {REPO}; use list_prs")
    card_refused = await call(ctx, git, operation="comment_pr", repo_id=REPO, pr_num=7, comment="hi")
    assert card_refused.card is None and "does not exist" in card_refused.result.content


async def test_rejected_token(hub: HubStandIn, ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    bad = HubClient(endpoint=hub.url, token="hf_wrong", namespace=hub.user)
    try:
        out = await run(replace(ctx, hub=bad), git, operation="list_refs", repo_id=REPO)
    finally:
        bad.close()
    assert out.is_error and out.content.startswith("The Hub rejected the token (401")


async def test_private_repo_without_a_token(hub: HubStandIn, ctx: ToolContext, store: RepoStore) -> None:
    seed(store, private=True)
    anonymous = HubClient(endpoint=hub.url, token=None, namespace=hub.user)
    try:
        out = await run(replace(ctx, hub=anonymous), files, operation="list", repo_id=REPO)
    finally:
        anonymous.close()
    assert out.is_error and "or it is private and this token cannot see it" in out.content
    assert not (await run(ctx, files, operation="list", repo_id=REPO)).is_error


async def test_create_repo_in_a_foreign_namespace(ctx: ToolContext, store: RepoStore) -> None:
    out = await run(ctx, git, operation="create_repo", repo_id="big-org/model")
    assert out.is_error
    assert out.content.startswith("This Hub token is not allowed to create model big-org/model (403: ")
    assert store.repos == {}
    store.namespaces.add("big-org")
    assert not (await run(ctx, git, operation="create_repo", repo_id="big-org/model")).is_error


async def test_unreachable_hub(ctx: ToolContext) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the call: nothing listens there
    down = HubClient(endpoint=f"http://127.0.0.1:{port}", token="hf_x", namespace="intern-test")
    try:
        out = await run(replace(ctx, hub=down), git, operation="list_refs", repo_id=REPO)
    finally:
        down.close()
    assert out.is_error and out.content.startswith(f"Could not reach the Hub at http://127.0.0.1:{port}")
