"""Argument validation per operation, policies, and the schema the model sees."""

from __future__ import annotations

from typing import Any

import pytest

from intern.agent.errors import ToolArgumentError
from intern.agent.tools.base import canonical_spec
from intern.agent.tools.repos import GIT_REQUIRED
from intern.agent.tools.repos import repo_files_tool as files
from intern.agent.tools.repos import repo_git_tool as git

REPO = {"repo_id": "intern-test/tiny"}


def refused(tool: Any, **raw: Any) -> str:
    with pytest.raises(ToolArgumentError) as exc:
        tool.parse({**REPO, **raw})
    return str(exc.value)


@pytest.mark.parametrize(("raw", "message"), [
    ({"operation": "read"}, "operation 'read' needs `path`"),
    ({"operation": "upload", "path": "a.py"}, "operation 'upload' needs `content`"),
    ({"operation": "upload", "content": "x"}, "operation 'upload' needs `path`"),
    ({"operation": "delete"}, "operation 'delete' needs exactly one of `path`"),
    ({"operation": "delete", "path": "a", "patterns": ["*.txt"]}, "operation 'delete' needs exactly one of"),
    ({"operation": "read", "path": "a", "content": "x"}, "operation 'read' does not use `content`"),
    ({"operation": "list", "create_pr": True, "commit_message": "m"},
     "operation 'list' does not use `commit_message`, `create_pr`"),
    ({"operation": "read", "path": "data/"}, "operation 'read' needs a file `path`"),
    ({"operation": "upload", "path": "../etc/passwd", "content": "x"}, "must be a path inside the repository"),
    ({"operation": "upload", "path": ".git/config", "content": "x"}, "cannot be inside .git/"),
    ({"operation": "upload", "path": "a", "content": "x", "create_pr": True, "revision": "refs/pr/2"},
     "to add to an existing one, set revision='refs/pr/N' without create_pr"),
    ({"operation": "read", "path": "a", "limit": 0}, "limit"),
    ({"operation": "list", "repo_type": "bucket"}, "repo_type"),
    ({"operation": "list", "recursive": True}, "recursive: Extra inputs are not permitted"),
])
def test_files_arguments_per_operation(raw: dict[str, Any], message: str) -> None:
    assert message in refused(files, **raw)


@pytest.mark.parametrize(("raw", "message"), [
    ({"operation": "create_branch"}, "operation 'create_branch' needs `branch`"),
    ({"operation": "delete_branch"}, "operation 'delete_branch' needs `branch`"),
    ({"operation": "create_tag"}, "operation 'create_tag' needs `tag`"),
    ({"operation": "delete_tag", "tag": "v1", "revision": "main"}, "operation 'delete_tag' does not use `revision`"),
    ({"operation": "create_pr"}, "operation 'create_pr' needs `title`"),
    ({"operation": "get_pr"}, "operation 'get_pr' needs `pr_num`"),
    ({"operation": "merge_pr"}, "operation 'merge_pr' needs `pr_num`"),
    ({"operation": "close_pr"}, "operation 'close_pr' needs `pr_num`"),
    ({"operation": "comment_pr", "pr_num": 3}, "operation 'comment_pr' needs `comment`"),
    ({"operation": "get_pr", "pr_num": 0}, "pr_num"),
    ({"operation": "update_repo"}, "operation 'update_repo' needs `private`"),
    ({"operation": "create_repo", "repo_type": "space"}, "needs `space_sdk`"),
    ({"operation": "create_repo", "space_sdk": "gradio"}, "`space_sdk` is only for repo_type 'space'"),
    ({"operation": "list_refs", "branch": "main"}, "operation 'list_refs' does not use `branch`"),
    ({"operation": "rebase"}, "operation"),
])
def test_git_arguments_per_operation(raw: dict[str, Any], message: str) -> None:
    assert message in refused(git, **raw)


@pytest.mark.parametrize("repo_id", ["https://huggingface.co/a/b", "datasets/a/b", "a/b/c", "a b/c", ""])
def test_repo_id_is_checked(repo_id: str) -> None:
    with pytest.raises(ToolArgumentError, match="repo_id"):
        files.parse({"operation": "list", "repo_id": repo_id})


def test_only_create_repo_takes_a_bare_name() -> None:
    assert git.parse({"operation": "create_repo", "repo_id": "fresh"})
    with pytest.raises(ToolArgumentError, match="needs the full repo_id"):
        git.parse({"operation": "list_refs", "repo_id": "fresh"})


def test_policies() -> None:
    def files_policy(op: str, **raw: Any) -> str:
        return files.policy(files.parse({"operation": op, **REPO, **raw}))

    assert files_policy("list") == files_policy("read", path="a") == "none"
    assert files_policy("upload", path="a", content="x") == files_policy("delete", path="a") == "hub_write"
    required = {"branch": "b", "tag": "t", "title": "Title", "pr_num": 1, "comment": "c", "private": True}
    for op in ("create_branch", "delete_branch", "list_refs", "create_tag", "delete_tag", "create_pr", "list_prs",
               "get_pr", "merge_pr", "close_pr", "comment_pr", "create_repo", "update_repo"):
        args = git.parse({"operation": op, **REPO, **{k: required[k] for k in GIT_REQUIRED[op]}})
        expected = "none" if op in ("list_refs", "list_prs", "get_pr") else "hub_write"
        assert git.policy(args) == expected, op
        # the approved spec, replayed with its defaults filled in, is accepted as it is
        assert git.args.model_validate(canonical_spec(args)) == args


def test_upload_spec_round_trips() -> None:
    args = files.parse({"operation": "upload", **REPO, "path": "/src/a.py", "content": "x", "create_pr": True})
    spec = canonical_spec(args)
    assert spec["path"] == "src/a.py" and spec["offset"] == 1
    assert files.args.model_validate(spec) == args


def test_schema_matches_the_contract() -> None:
    assert (files.name, git.name) == ("hf_repo_files", "hf_repo_git")
    assert not files.read_only and not git.read_only
    assert files.describe is not None and git.describe is not None
    fparams = files.schema()["function"]["parameters"]
    assert fparams["properties"]["operation"]["enum"] == ["list", "read", "upload", "delete"]
    assert {"repo_id", "repo_type", "revision", "path", "content", "patterns", "create_pr",
            "commit_message"} <= set(fparams["properties"])
    gparams = git.schema()["function"]["parameters"]
    assert gparams["properties"]["operation"]["enum"] == [
        "create_branch", "delete_branch", "list_refs", "create_tag", "delete_tag", "create_pr", "list_prs",
        "get_pr", "merge_pr", "close_pr", "comment_pr", "create_repo", "update_repo"]
    assert {"repo_id", "repo_type", "branch", "from_rev", "tag", "revision", "pr_num", "title", "description",
            "comment", "private"} <= set(gparams["properties"])
    assert fparams["required"] == gparams["required"] == ["operation", "repo_id"]
