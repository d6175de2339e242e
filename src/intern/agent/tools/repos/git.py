"""`hf_repo_git`: branches, tags, pull requests and repositories on the Hub; every write waits for an approval
card."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from intern.agent.errors import ToolFeedback
from intern.agent.tools.base import ApprovalInfo, Check, Policy, Tool, ToolResult
from intern.agent.tools.repos.common import (
    RepoType,
    Target,
    check_operation,
    hub,
    take,
    validate_repo_id,
)

if TYPE_CHECKING:
    from intern.agent.context_deps import ToolContext

PRS_SHOWN = 50
PR_DIFF_CHARS = 20_000

GitOperation = Literal["create_branch", "delete_branch", "list_refs", "create_tag", "delete_tag", "create_pr",
                       "list_prs", "get_pr", "merge_pr", "close_pr", "comment_pr", "create_repo", "update_repo"]
GIT_READS = {"list_refs", "list_prs", "get_pr"}
GIT_REQUIRED: dict[str, tuple[str, ...]] = {
    "create_branch": ("branch",), "delete_branch": ("branch",), "list_refs": (), "create_tag": ("tag",),
    "delete_tag": ("tag",), "create_pr": ("title",), "list_prs": (), "get_pr": ("pr_num",),
    "merge_pr": ("pr_num",), "close_pr": ("pr_num",), "comment_pr": ("pr_num", "comment"), "create_repo": (),
    "update_repo": ("private",),
}
GIT_USED: dict[str, set[str]] = {
    "create_branch": {"branch", "from_rev"}, "delete_branch": {"branch"}, "list_refs": set(),
    "create_tag": {"tag", "revision", "description"}, "delete_tag": {"tag"},
    "create_pr": {"title", "description"}, "list_prs": set(), "get_pr": {"pr_num"},
    "merge_pr": {"pr_num", "comment"}, "close_pr": {"pr_num", "comment"}, "comment_pr": {"pr_num", "comment"},
    "create_repo": {"private", "space_sdk"}, "update_repo": {"private"},
}
GIT_HINTS = {"branch": "the branch name", "tag": "the tag name", "title": "the pull request title",
             "pr_num": "the pull request number", "comment": "the comment text",
             "private": "true for private, false for public"}


class RepoGitArgs(BaseModel):
    """Branches, tags, pull requests and repository settings on the Hub."""

    model_config = ConfigDict(extra="forbid")

    operation: GitOperation = Field(description="create_branch | delete_branch | list_refs | create_tag | "
                                                "delete_tag | create_pr | list_prs | get_pr | merge_pr | "
                                                "close_pr | comment_pr | create_repo | update_repo")
    repo_id: str = Field(description="Repository id 'namespace/name' (create_repo also takes a bare name: "
                                     "it is created under the token's namespace)")
    repo_type: RepoType = Field("model", description="model (default), dataset or space")
    branch: str | None = Field(None, description="create_branch/delete_branch: branch name")
    from_rev: str | None = Field(None, description="create_branch: where the branch starts (default main)")
    tag: str | None = Field(None, description="create_tag/delete_tag: tag name")
    revision: str | None = Field(None, description="create_tag: what to tag (default main)")
    pr_num: int | None = Field(None, ge=1, description="get_pr/merge_pr/close_pr/comment_pr: pull request number")
    title: str | None = Field(None, description="create_pr: title")
    description: str | None = Field(None, description="create_pr: description; create_tag: tag message")
    comment: str | None = Field(None, description="comment_pr: the comment; merge_pr/close_pr: optional comment")
    private: bool | None = Field(None, description="create_repo: private or public (default public); "
                                                   "update_repo: the new visibility")
    space_sdk: Literal["gradio", "streamlit", "docker", "static"] | None = Field(
        None, description="create_repo with repo_type=space: the Space SDK")

    @field_validator("repo_id")
    @classmethod
    def _repo_id(cls, v: str) -> str:
        return validate_repo_id(v)

    @model_validator(mode="after")
    def _per_operation(self) -> RepoGitArgs:
        op = self.operation
        check_operation(self, op, GIT_REQUIRED[op], GIT_USED[op], GIT_HINTS)
        if op != "create_repo" and "/" not in self.repo_id:
            raise ValueError(f"operation '{op}' needs the full repo_id 'namespace/name'")
        if op == "create_repo" and self.repo_type == "space" and self.space_sdk is None:
            raise ValueError("operation 'create_repo' of a space needs `space_sdk` (gradio, streamlit, docker "
                             "or static)")
        if op == "create_repo" and self.space_sdk is not None and self.repo_type != "space":
            raise ValueError("`space_sdk` is only for repo_type 'space'")
        return self


# ---------------------------------------------------------------- hf_repo_git

def git_policy(args: RepoGitArgs) -> Policy:
    return "none" if args.operation in GIT_READS else "hub_write"


def _git_target(args: RepoGitArgs, **extra: Any) -> Target:
    return Target(args.repo_id, args.repo_type, **extra)


async def full_repo_id(ctx: ToolContext, args: RepoGitArgs) -> str:
    return args.repo_id if "/" in args.repo_id else f"{await ctx.hub.namespace()}/{args.repo_id}"


async def op_list_refs(ctx: ToolContext, args: RepoGitArgs) -> ToolResult:
    refs = await hub(ctx, _git_target(args), ctx.hub.api.list_repo_refs, args.repo_id, repo_type=args.repo_type,
                     include_pull_requests=True)
    lines = [f"{args.repo_type} {args.repo_id}", "Branches:"]
    lines += [f"  {b.name}\t{b.target_commit[:12]}" for b in refs.branches] or ["  (none)"]
    lines += ["Tags:", *([f"  {t.name}\t{t.target_commit[:12]}" for t in refs.tags] or ["  (none)"])]
    prs = refs.pull_requests or []
    lines += ["Pull request refs:", *([f"  {p.ref}\t{p.target_commit[:12]}" for p in prs] or ["  (none)"])]
    return ToolResult("\n".join(lines))


async def op_list_prs(ctx: ToolContext, args: RepoGitArgs) -> ToolResult:
    prs = await hub(ctx, _git_target(args), take, ctx.hub.api.get_repo_discussions, PRS_SHOWN + 1, args.repo_id,
                    discussion_type="pull_request", repo_type=args.repo_type)
    if not prs:
        return ToolResult(f"No pull requests on {args.repo_type} {args.repo_id}.")
    lines = [f"Pull requests on {args.repo_type} {args.repo_id} (newest first):"]
    lines += [f"#{p.num} [{p.status}] {p.title} — by {p.author}, {p.created_at:%Y-%m-%d}" for p in prs[:PRS_SHOWN]]
    if len(prs) > PRS_SHOWN:
        lines.append(f"(only the newest {PRS_SHOWN} are shown)")
    return ToolResult("\n".join(lines))


async def pr_details(ctx: ToolContext, args: RepoGitArgs) -> Any:
    assert args.pr_num is not None
    target = _git_target(args, missing=f"Pull request #{args.pr_num} does not exist in {args.repo_type} "
                                       f"{args.repo_id}; use list_prs")
    return await hub(ctx, target, ctx.hub.api.get_discussion_details, args.repo_id, args.pr_num,
                     repo_type=args.repo_type)


async def op_get_pr(ctx: ToolContext, args: RepoGitArgs) -> ToolResult:
    from huggingface_hub.community import DiscussionComment, DiscussionCommit, DiscussionStatusChange

    d = await pr_details(ctx, args)
    kind = "Pull request" if d.is_pull_request else "Discussion"
    lines = [f"{kind} #{d.num} [{d.status}] {d.title} — by {d.author}, {d.created_at:%Y-%m-%d}"]
    if d.is_pull_request:
        lines.append(f"Target: {d.target_branch}; ref: refs/pr/{d.num}")
        conflicts = d.conflicting_files
        lines.append(f"Conflicting files: {', '.join(conflicts) if isinstance(conflicts, list) and conflicts else 'none'}")
        if d.merge_commit_oid:
            lines.append(f"Merge commit: {d.merge_commit_oid}")
    lines.append("Events:")
    for e in d.events:
        if isinstance(e, DiscussionComment) and not e.hidden:
            lines.append(f"- {e.created_at:%Y-%m-%d %H:%M} {e.author} commented: {e.content[:1000]}")
        elif isinstance(e, DiscussionCommit):
            lines.append(f"- {e.created_at:%Y-%m-%d %H:%M} {e.author} committed {e.oid[:12]} {e.summary}")
        elif isinstance(e, DiscussionStatusChange):
            lines.append(f"- {e.created_at:%Y-%m-%d %H:%M} {e.author} set status to {e.new_status}")
    if d.diff:
        cut = " (truncated)" if len(d.diff) > PR_DIFF_CHARS else ""
        lines += [f"Diff{cut}:", d.diff[:PR_DIFF_CHARS]]
    return ToolResult("\n".join(lines))


async def op_write(ctx: ToolContext, args: RepoGitArgs) -> ToolResult:
    api, op, label = ctx.hub.api, args.operation, f"{args.repo_type} {args.repo_id}"
    if op == "create_branch":
        await hub(ctx, _git_target(args, revision=args.from_rev, action="create branches in",
                                   conflict=f"branch '{args.branch}' already exists; pick another name"),
                  api.create_branch, args.repo_id, branch=args.branch, revision=args.from_rev,
                  repo_type=args.repo_type)
        return ToolResult(f"Created branch '{args.branch}' in {label} from {args.from_rev or 'main'}.")
    if op == "delete_branch":
        await hub(ctx, _git_target(args, revision=args.branch, action="delete branches in"), api.delete_branch,
                  args.repo_id, branch=args.branch, repo_type=args.repo_type)
        return ToolResult(f"Deleted branch '{args.branch}' from {label}.")
    if op == "create_tag":
        await hub(ctx, _git_target(args, revision=args.revision, action="create tags in",
                                   conflict=f"tag '{args.tag}' already exists"), api.create_tag, args.repo_id,
                  tag=args.tag, tag_message=args.description, revision=args.revision, repo_type=args.repo_type)
        return ToolResult(f"Tagged {args.revision or 'main'} of {label} as '{args.tag}'.")
    if op == "delete_tag":
        await hub(ctx, _git_target(args, revision=args.tag, action="delete tags in"), api.delete_tag,
                  args.repo_id, tag=args.tag, repo_type=args.repo_type)
        return ToolResult(f"Deleted tag '{args.tag}' from {label}.")
    return await op_pr_write(ctx, args)


async def op_pr_write(ctx: ToolContext, args: RepoGitArgs) -> ToolResult:
    api, op, label = ctx.hub.api, args.operation, f"{args.repo_type} {args.repo_id}"
    missing = f"Pull request #{args.pr_num} does not exist in {label}; use list_prs"
    if op == "create_pr":
        assert args.title is not None
        pr = await hub(ctx, _git_target(args, action="open pull requests on"), api.create_pull_request,
                       args.repo_id, args.title, description=args.description, repo_type=args.repo_type)
        return ToolResult(f"Opened draft pull request #{pr.num} on {label}: {pr.url}\nPut changes in it with "
                          f"hf_repo_files upload/delete and revision='refs/pr/{pr.num}'.",
                          artifacts={"pr_num": pr.num, "pr_url": pr.url})
    assert args.pr_num is not None
    if op == "merge_pr":
        await hub(ctx, _git_target(args, action="merge pull requests in", missing=missing,
                                   conflict="the pull request conflicts with its target branch; update it first"),
                  api.merge_pull_request, args.repo_id, args.pr_num, comment=args.comment, repo_type=args.repo_type)
        return ToolResult(f"Merged pull request #{args.pr_num} on {label}.")
    if op == "close_pr":
        await hub(ctx, _git_target(args, action="close pull requests in", missing=missing),
                  api.change_discussion_status, args.repo_id, args.pr_num, "closed", comment=args.comment,
                  repo_type=args.repo_type)
        return ToolResult(f"Closed pull request #{args.pr_num} on {label}.")
    assert args.comment is not None
    await hub(ctx, _git_target(args, action="comment on", missing=missing), api.comment_discussion,
              args.repo_id, args.pr_num, args.comment, repo_type=args.repo_type)
    return ToolResult(f"Commented on #{args.pr_num} of {label}.")


async def op_create_repo(ctx: ToolContext, args: RepoGitArgs) -> ToolResult:
    repo_id = await full_repo_id(ctx, args)
    target = Target(repo_id, args.repo_type, action="create",
                    conflict=f"{repo_id} already exists; choose another name or upload to it")
    url = await hub(ctx, target, ctx.hub.api.create_repo, repo_id, private=args.private,
                    repo_type=args.repo_type, space_sdk=args.space_sdk)
    visibility = "private" if args.private else "public"
    return ToolResult(f"Created {visibility} {args.repo_type} {repo_id}: {url}", artifacts={"url": str(url)})


async def op_update_repo(ctx: ToolContext, args: RepoGitArgs) -> ToolResult:
    await hub(ctx, _git_target(args, action="change the settings of"), ctx.hub.api.update_repo_settings,
              args.repo_id, private=args.private, repo_type=args.repo_type)
    return ToolResult(f"{args.repo_type} {args.repo_id} is now {'private' if args.private else 'public'}.")


async def git_handler(ctx: ToolContext, args: RepoGitArgs) -> ToolResult:
    ops: dict[str, Callable[[ToolContext, RepoGitArgs], Any]] = {
        "list_refs": op_list_refs, "list_prs": op_list_prs, "get_pr": op_get_pr,
        "create_repo": op_create_repo, "update_repo": op_update_repo,
    }
    return await ops.get(args.operation, op_write)(ctx, args)


async def git_describe(ctx: ToolContext, args: RepoGitArgs) -> ApprovalInfo:
    if args.operation == "create_repo":
        return await _describe_create_repo(ctx, args)
    repo = await hub(ctx, _git_target(args), ctx.hub.api.repo_info, args.repo_id, repo_type=args.repo_type)
    visibility = "private" if repo.private else "public"
    info = ApprovalInfo(kind="hub_write", title="", auto_approvable=False,
                        fields=[("Repo", f"{args.repo_id} ({args.repo_type}, {visibility})")])
    if args.operation == "update_repo":
        new = "private" if args.private else "public"
        info.title = f"Make {args.repo_id} {new}"
        info.fields.append(("Visibility", f"{visibility} → {new}"))
        if new == visibility:
            info.checks.append(Check("warn", f"The repo is already {new}: nothing changes"))
        elif new == "public":
            info.checks.append(Check("warn", "Everything in the repo becomes visible to anyone"))
        return info
    if args.operation in ("create_branch", "delete_branch", "create_tag", "delete_tag"):
        await _describe_ref(ctx, args, info)
    else:
        await _describe_pr(ctx, args, info)
    return info


async def _describe_ref(ctx: ToolContext, args: RepoGitArgs, info: ApprovalInfo) -> None:
    refs = await hub(ctx, _git_target(args), ctx.hub.api.list_repo_refs, args.repo_id, repo_type=args.repo_type)
    branches = {b.name: b.target_commit for b in refs.branches}
    tags = {t.name: t.target_commit for t in refs.tags}
    op = args.operation
    if op == "create_branch":
        info.title = f"Create branch {args.branch}"
        info.fields += [("Branch", f"{args.branch} (new)"), ("From", args.from_rev or "main")]
        if args.branch in branches:
            raise ToolFeedback(f"Branch '{args.branch}' already exists in {args.repo_type} {args.repo_id}.")
    elif op == "delete_branch":
        info.title = f"Delete branch {args.branch}"
        if args.branch == "main":
            raise ToolFeedback("main is the default branch of the repo; it cannot be deleted.")
        if args.branch not in branches:
            raise ToolFeedback(f"There is no branch '{args.branch}' in {args.repo_type} {args.repo_id}; "
                               f"branches: {', '.join(sorted(branches))}.")
        info.fields.append(("Branch", f"{args.branch} (at {branches[args.branch or ''][:12]})"))
        info.checks.append(Check("warn", "Commits only on this branch will no longer be reachable by name"))
    elif op == "create_tag":
        info.title = f"Tag {args.revision or 'main'} as {args.tag}"
        info.fields += [("Tag", f"{args.tag} (new)"), ("Revision", args.revision or "main")]
        if args.description:
            info.fields.append(("Message", args.description))
        if args.tag in tags:
            raise ToolFeedback(f"Tag '{args.tag}' already exists in {args.repo_type} {args.repo_id}.")
    else:
        info.title = f"Delete tag {args.tag}"
        if args.tag not in tags:
            raise ToolFeedback(f"There is no tag '{args.tag}' in {args.repo_type} {args.repo_id}; "
                               f"tags: {', '.join(sorted(tags)) or 'none'}.")
        info.fields.append(("Tag", f"{args.tag} (at {tags[args.tag or ''][:12]})"))


async def _describe_pr(ctx: ToolContext, args: RepoGitArgs, info: ApprovalInfo) -> None:
    op = args.operation
    if op == "create_pr":
        info.title = f"Open pull request: {args.title}"
        info.fields.append(("Title", args.title or ""))
        info.body, info.body_label = args.description or "(no description)", "Description"
        return
    d = await pr_details(ctx, args)
    info.fields.append(("Pull request", f"#{d.num} [{d.status}] {d.title} by {d.author}"))
    if op in ("merge_pr", "close_pr") and d.status in ("closed", "merged"):
        raise ToolFeedback(f"#{d.num} in {args.repo_id} is already {d.status}.")
    if op == "comment_pr":
        info.title = f"Comment on #{d.num}"
        info.body, info.body_label = args.comment, "Comment"
        return
    if not d.is_pull_request:
        raise ToolFeedback(f"#{d.num} in {args.repo_id} is a discussion, not a pull request.")
    if op == "close_pr":
        info.title = f"Close pull request #{d.num}"
    else:
        info.title = f"Merge pull request #{d.num} into {d.target_branch.removeprefix('refs/heads/')}"
        changed = [line.split(" b/", 1)[-1] for line in (d.diff or "").splitlines() if line.startswith("diff --git")]
        info.fields += [("Target branch", d.target_branch), ("Files changed", ", ".join(changed) or "none")]
        info.body, info.body_label = (d.diff or None), "Diff"
        if d.conflicting_files:
            info.checks.append(Check("error", f"Conflicts with {d.target_branch}: {d.conflicting_files}"))
        if not changed:
            info.checks.append(Check("warn", "The pull request has no changes"))
    if args.comment:
        info.fields.append(("Comment", args.comment))


async def _describe_create_repo(ctx: ToolContext, args: RepoGitArgs) -> ApprovalInfo:
    from huggingface_hub.errors import RepositoryNotFoundError

    repo_id = await full_repo_id(ctx, args)
    try:
        await hub(ctx, Target(repo_id, args.repo_type), ctx.hub.api.repo_info, repo_id, repo_type=args.repo_type)
    except ToolFeedback as exc:
        if not isinstance(exc.__cause__, RepositoryNotFoundError):
            raise
    else:
        raise ToolFeedback(f"{args.repo_type} {repo_id} already exists; upload to it or choose another name.")
    visibility = "private" if args.private else "public"
    fields = [("Repo", f"{repo_id} ({args.repo_type}, new)"), ("Visibility", visibility)]
    if args.space_sdk:
        fields.append(("Space SDK", args.space_sdk))
    checks = [] if args.private else [Check("warn", "The repo will be public: anyone can see what is pushed")]
    return ApprovalInfo(kind="hub_write", title=f"Create {visibility} {args.repo_type} {repo_id}", fields=fields,
                        checks=checks, auto_approvable=False)


repo_git_tool = Tool(
    name="hf_repo_git",
    description=(
        "Branches, tags, pull requests and repositories on the Hugging Face Hub. Reads: list_refs, list_prs, "
        "get_pr (details, comments and diff). Writes, each after an approval click: create_branch (from "
        "from_rev), delete_branch, create_tag (of revision), delete_tag, create_pr (a draft; then upload to "
        "revision='refs/pr/N' with hf_repo_files), merge_pr, close_pr, comment_pr, create_repo (private "
        "true/false; a Space needs space_sdk) and update_repo (change visibility with private)."
    ),
    args=RepoGitArgs,
    handler=git_handler,
    policy=git_policy,
    describe=git_describe,
    read_only=False,
)
