"""hf_repo_git end to end: the tool, the real HfApi and the Hub stand-in."""

from __future__ import annotations

from intern.agent.context_deps import ToolContext
from intern.agent.tools.repos import repo_files_tool as files
from intern.agent.tools.repos import repo_git_tool as git
from intern.standins.hub_repos import RepoStore
from tests.repos.helpers import call, run

REPO = "intern-test/tiny"


def seed(store: RepoStore) -> None:
    store.add(REPO, files={"config.json": '{"layers": 2}\n', "train.py": "print('train')\n"})


async def test_branches(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    repo = store.get("model", REPO)
    assert repo is not None
    first_commit = next(iter(repo.commits))
    made = await call(ctx, git, operation="create_branch", repo_id=REPO, branch="exp", from_rev=first_commit)
    assert made.card is not None and not made.result.is_error, made.result.content
    assert repo.branches["exp"] == first_commit
    refs = await run(ctx, git, operation="list_refs", repo_id=REPO)
    assert f"  exp\t{first_commit[:12]}" in refs.content.splitlines()
    assert f"  main\t{repo.branches['main'][:12]}" in refs.content.splitlines()
    gone = await run(ctx, git, operation="delete_branch", repo_id=REPO, branch="exp")
    assert gone.content == f"Deleted branch 'exp' from model {REPO}."
    assert "exp" not in repo.branches


async def test_tags(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    repo = store.get("model", REPO)
    assert repo is not None
    tagged = await run(ctx, git, operation="create_tag", repo_id=REPO, tag="v1.0", description="first release")
    assert tagged.content == f"Tagged main of model {REPO} as 'v1.0'."
    assert repo.tags["v1.0"] == repo.branches["main"]
    refs = await run(ctx, git, operation="list_refs", repo_id=REPO)
    assert f"  v1.0\t{repo.branches['main'][:12]}" in refs.content.splitlines()
    await run(ctx, git, operation="delete_tag", repo_id=REPO, tag="v1.0")
    assert repo.tags == {}


async def test_pull_request_lifecycle(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    repo = store.get("model", REPO)
    assert repo is not None
    opened = await run(ctx, git, operation="create_pr", repo_id=REPO, title="Deeper model",
                       description="Doubles the layers.")
    assert opened.artifacts["pr_num"] == 1 and "draft pull request #1" in opened.content
    change = await run(ctx, files, operation="upload", repo_id=REPO, path="config.json",
                       content='{"layers": 4}\n', revision="refs/pr/1")
    assert not change.is_error, change.content
    await run(ctx, git, operation="comment_pr", repo_id=REPO, pr_num=1, comment="Ready for review")

    listed = await run(ctx, git, operation="list_prs", repo_id=REPO)
    assert listed.content.splitlines()[1].startswith("#1 [open] Deeper model — by intern-test")
    details = await run(ctx, git, operation="get_pr", repo_id=REPO, pr_num=1)
    text = details.content
    assert text.startswith("Pull request #1 [open] Deeper model — by intern-test")
    assert "Target: refs/heads/main" in text and "Conflicting files: none" in text
    assert "intern-test commented: Doubles the layers." in text
    assert "intern-test commented: Ready for review" in text
    assert '-{"layers": 2}\n+{"layers": 4}' in text

    merged = await call(ctx, git, operation="merge_pr", repo_id=REPO, pr_num=1, comment="Thanks")
    assert merged.result.content == f"Merged pull request #1 on model {REPO}."
    assert repo.head().files["config.json"] == b'{"layers": 4}\n'
    assert repo.head().files["train.py"] == b"print('train')\n"
    after = await run(ctx, git, operation="get_pr", repo_id=REPO, pr_num=1)
    assert after.content.startswith("Pull request #1 [merged]") and f"Merge commit: {repo.branches['main']}" in after.content


async def test_close_pull_request(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    await run(ctx, git, operation="create_pr", repo_id=REPO, title="Not needed")
    closed = await run(ctx, git, operation="close_pr", repo_id=REPO, pr_num=1, comment="Superseded")
    assert closed.content == f"Closed pull request #1 on model {REPO}."
    repo = store.get("model", REPO)
    assert repo is not None and repo.discussions[0].status == "closed"
    again = await call(ctx, git, operation="close_pr", repo_id=REPO, pr_num=1)
    assert again.card is None and "already closed" in again.result.content


async def test_create_repo_under_the_token_namespace(ctx: ToolContext, store: RepoStore) -> None:
    made = await call(ctx, git, operation="create_repo", repo_id="fresh-model", private=True)
    assert made.card is not None and ("Repo", "intern-test/fresh-model (model, new)") in made.card.fields
    assert made.result.content.startswith("Created private model intern-test/fresh-model: http://")
    repo = store.get("model", "intern-test/fresh-model")
    assert repo is not None and repo.private
    space = await run(ctx, git, operation="create_repo", repo_id="intern-test/demo", repo_type="space",
                      space_sdk="gradio")
    assert not space.is_error, space.content
    created = store.get("space", "intern-test/demo")
    assert created is not None and created.sdk == "gradio" and not created.private


async def test_update_repo_visibility(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    out = await run(ctx, git, operation="update_repo", repo_id=REPO, private=True)
    assert out.content == f"model {REPO} is now private."
    repo = store.get("model", REPO)
    assert repo is not None and repo.private
    await run(ctx, git, operation="update_repo", repo_id=REPO, private=False)
    assert not repo.private


async def test_list_prs_on_a_repo_without_any(ctx: ToolContext, store: RepoStore) -> None:
    seed(store)
    out = await run(ctx, git, operation="list_prs", repo_id=REPO)
    assert out.content == f"No pull requests on model {REPO}."
