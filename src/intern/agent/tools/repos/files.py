"""`hf_repo_files`: list, read, upload and delete files in a Hub repository; writes wait for an approval card
that shows the diff."""

from __future__ import annotations

import difflib
import fnmatch
from typing import TYPE_CHECKING, Any, Literal, TypeGuard

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from intern.agent.errors import ToolFeedback
from intern.agent.tools.base import ApprovalInfo, Check, Policy, Tool, ToolResult
from intern.agent.tools.repos.common import (
    RepoType,
    Target,
    check_operation,
    fetch_bytes,
    fmt_size,
    git_blob_oid,
    hub,
    looks_binary,
    take,
    validate_repo_id,
    validate_repo_path,
)

if TYPE_CHECKING:
    from huggingface_hub.hf_api import RepoFile, RepoFolder

    from intern.agent.context_deps import ToolContext

READ_MAX_BYTES = 2_000_000  # a larger file is read from its start only
READ_DEFAULT_LINES = 400
READ_MAX_LINE_CHARS = 2_000
DIFF_MAX_BYTES = 200_000  # above this, the card shows sizes instead of a diff
UPLOAD_MAX_BYTES = 10_000_000  # the Hub stores larger files through LFS/Xet, which a tool call cannot feed
LIST_MAX_SHOWN = 500
LIST_MAX_SCANNED = 20_000

FilesOperation = Literal["list", "read", "upload", "delete"]
FILES_USED: dict[str, set[str]] = {
    "list": {"revision", "path", "patterns"},
    "read": {"revision", "path", "offset", "limit"},
    "upload": {"revision", "path", "content", "create_pr", "commit_message"},
    "delete": {"revision", "path", "patterns", "create_pr", "commit_message"},
}
FILES_REQUIRED: dict[str, tuple[str, ...]] = {"list": (), "read": ("path",), "upload": ("path", "content"),
                                              "delete": ()}
FILES_HINTS = {"path": "the file's path in the repository, e.g. 'train.py'",
               "content": "the full text of the file to write"}


class RepoFilesArgs(BaseModel):
    """List, read, upload or delete files in a Hub repository (model, dataset or Space)."""

    model_config = ConfigDict(extra="forbid")

    operation: FilesOperation = Field(description="list | read | upload | delete")
    repo_id: str = Field(description="Repository id 'namespace/name', e.g. 'meta-llama/Llama-3.1-8B'")
    repo_type: RepoType = Field("model", description="model (default), dataset or space")
    revision: str | None = Field(None, description="Branch, tag, commit or 'refs/pr/N' (default main). For "
                                                   "upload/delete: the branch or pull request to commit to")
    path: str | None = Field(None, description="File path (read, upload), file or folder (delete), folder to "
                                               "list under (list)")
    content: str | None = Field(None, description="upload: the full text content of the file")
    patterns: list[str] | None = Field(None, description="Glob patterns, e.g. ['*.json', 'checkpoints/*']: "
                                                         "list only matching files, or delete every match")
    create_pr: bool = Field(False, description="upload/delete: open a pull request instead of committing to "
                                               "the branch (works without write access to the repo)")
    commit_message: str | None = Field(None, description="upload/delete: commit title")
    offset: int = Field(1, ge=1, description="read: first line to show (1-based)")
    limit: int = Field(READ_DEFAULT_LINES, ge=1, le=5_000, description="read: number of lines to show")

    @field_validator("repo_id")
    @classmethod
    def _repo_id(cls, v: str) -> str:
        return validate_repo_id(v)

    @field_validator("path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        return validate_repo_path(v)

    @model_validator(mode="after")
    def _per_operation(self) -> RepoFilesArgs:
        op = self.operation
        check_operation(self, op, FILES_REQUIRED[op], FILES_USED[op], FILES_HINTS)
        if op == "delete" and (self.path is None) == (not self.patterns):
            raise ValueError("operation 'delete' needs exactly one of `path` (a file, or a folder ending "
                             "with '/') or `patterns` (globs of files to delete)")
        if op in ("upload", "read") and self.path and self.path.endswith("/"):
            raise ValueError(f"operation '{op}' needs a file `path`, not a folder")
        if self.create_pr and (self.revision or "").startswith("refs/pr/"):
            raise ValueError("`create_pr` opens a new pull request; to add to an existing one, set "
                             "revision='refs/pr/N' without create_pr")
        if op == "upload" and self.content is not None and len(self.content.encode()) > UPLOAD_MAX_BYTES:
            raise ValueError("content is larger than 10 MB; write big files from a job and push them with "
                             "huggingface_hub there")
        return self


# ---------------------------------------------------------------- hf_repo_files

def files_policy(args: RepoFilesArgs) -> Policy:
    return "hub_write" if args.operation in ("upload", "delete") else "none"


def _target(args: RepoFilesArgs, **extra: Any) -> Target:
    return Target(args.repo_id, args.repo_type, args.revision, args.path, **extra)


def _where(args: RepoFilesArgs) -> str:
    return f"{args.repo_type} {args.repo_id} @ {args.revision or 'main'}"


def is_file(entry: RepoFile | RepoFolder) -> TypeGuard[RepoFile]:
    from huggingface_hub.hf_api import RepoFile

    return isinstance(entry, RepoFile)


async def path_info(ctx: ToolContext, args: RepoFilesArgs, path: str) -> RepoFile | RepoFolder | None:
    found = await hub(ctx, _target(args), ctx.hub.api.get_paths_info, args.repo_id, [path.rstrip("/")],
                      revision=args.revision, repo_type=args.repo_type)
    return found[0] if found else None


async def list_files(ctx: ToolContext, args: RepoFilesArgs) -> tuple[list[RepoFile], bool]:
    """The files under `args.path` (all of them when it is None), and whether the listing was cut."""
    from huggingface_hub.hf_api import RepoFile

    entries = await hub(ctx, _target(args), take, ctx.hub.api.list_repo_tree, LIST_MAX_SCANNED, args.repo_id,
                        args.path, recursive=True, revision=args.revision, repo_type=args.repo_type)
    return [e for e in entries if isinstance(e, RepoFile)], len(entries) >= LIST_MAX_SCANNED


def matches(path: str, patterns: list[str] | None) -> bool:
    if not patterns:
        return True
    return any(fnmatch.fnmatchcase(path, p + "*" if p.endswith("/") else p) for p in patterns)


async def op_list(ctx: ToolContext, args: RepoFilesArgs) -> ToolResult:
    files, cut = await list_files(ctx, args)
    chosen = sorted((f for f in files if matches(f.path, args.patterns)), key=lambda f: f.path)
    scope = (f" under {args.path}" if args.path else "") + (f" matching {args.patterns}" if args.patterns else "")
    total = sum(f.size for f in chosen)
    lines = [f"{_where(args)}: {len(chosen)} files{scope}, {fmt_size(total)}"]
    lines += [f"{f.path}\t{fmt_size(f.size)}{'  (LFS)' if f.lfs else ''}" for f in chosen[:LIST_MAX_SHOWN]]
    if len(chosen) > LIST_MAX_SHOWN:
        lines.append(f"… {len(chosen) - LIST_MAX_SHOWN} more; narrow with `path` or `patterns`.")
    if cut:
        lines.append(f"(The listing stopped after {LIST_MAX_SCANNED} entries; narrow it with `path`.)")
    if not chosen:
        lines.append("No files" + (" match these patterns." if args.patterns else " here."))
    return ToolResult("\n".join(lines), artifacts={"files": [f.path for f in chosen[:LIST_MAX_SHOWN]]})


async def read_file(ctx: ToolContext, args: RepoFilesArgs, path: str, max_bytes: int) -> tuple[bytes, bool]:
    """The file's first `max_bytes` and whether it was cut; a missing file or a folder is feedback."""
    info = await path_info(ctx, args, path)
    if info is None:
        raise ToolFeedback(f"No file '{path}' in {_where(args)}. Use hf_repo_files list to see the files.")
    if not is_file(info):
        raise ToolFeedback(f"'{path}' is a folder in {_where(args)}; use operation 'list' with path='{path}'.")
    size = info.size
    if size == 0:
        return b"", False
    data = await hub(ctx, _target(args), fetch_bytes, ctx.hub.api, args.repo_id, path, repo_type=args.repo_type,
                     revision=args.revision, max_bytes=max_bytes, ranged=size > max_bytes)
    return data, size > max_bytes


async def op_read(ctx: ToolContext, args: RepoFilesArgs) -> ToolResult:
    assert args.path is not None
    data, truncated = await read_file(ctx, args, args.path, READ_MAX_BYTES)
    if looks_binary(data, truncated):
        return ToolResult(f"'{args.path}' in {_where(args)} is a binary file; read shows text files only. "
                          "Use list to see its size, or load it in a job.", is_error=True)
    lines = data.decode("utf-8", errors="ignore").splitlines()
    start = args.offset - 1
    shown = lines[start:start + args.limit]
    cut = " (only the first 2 MB were read)" if truncated else ""
    if start >= len(lines) and lines:
        return ToolResult(f"'{args.path}' has {len(lines)} lines{cut}; offset {args.offset} is past the end.",
                          is_error=True)
    head = (f"{_where(args)}: {args.path} ({fmt_size(len(data))}{cut}), lines {start + 1}–{start + len(shown)} "
            f"of {len(lines)}")
    body = [f"{n:>6}\t{_clip(line)}" for n, line in enumerate(shown, start + 1)]
    rest = len(lines) - start - len(shown)
    if rest > 0:
        body.append(f"… {rest} more lines; read again with offset={start + len(shown) + 1}.")
    return ToolResult("\n".join([head, *body]))


def _clip(line: str) -> str:
    return line if len(line) <= READ_MAX_LINE_CHARS else line[:READ_MAX_LINE_CHARS] + " …(line truncated)"


async def op_upload(ctx: ToolContext, args: RepoFilesArgs) -> ToolResult:
    from huggingface_hub import CommitOperationAdd

    assert args.path is not None and args.content is not None
    data = args.content.encode("utf-8")
    current = await path_info(ctx, args, args.path)
    if current is not None and getattr(current, "blob_id", None) == git_blob_oid(data):
        return ToolResult(f"{args.path} in {_where(args)} already has exactly this content; nothing committed.")
    return await commit(ctx, args, [CommitOperationAdd(args.path, data)], f"{args.path} ({fmt_size(len(data))})")


async def deletions(ctx: ToolContext, args: RepoFilesArgs) -> tuple[list[tuple[str, int]], bool]:
    """(path, size) of every file the delete removes (a folder path lists the files inside it), and
    whether that list was cut (only a folder's can be: the folder goes as a whole)."""
    if args.patterns:
        files, cut = await list_files(ctx, args.model_copy(update={"path": None}))
        if cut:
            raise ToolFeedback(f"{_where(args)} has too many files to match patterns against; delete a folder "
                               "with `path` instead.")
        found = [(f.path, f.size) for f in files if matches(f.path, args.patterns)]
        if not found:
            raise ToolFeedback(f"No file in {_where(args)} matches {args.patterns}; nothing to delete.")
        return sorted(found), False
    assert args.path is not None
    info = await path_info(ctx, args, args.path)
    if info is None:
        raise ToolFeedback(f"No file or folder '{args.path}' in {_where(args)}; nothing to delete.")
    if is_file(info):
        return [(info.path, info.size)], False
    files, cut = await list_files(ctx, args.model_copy(update={"path": info.path}))
    return sorted((f.path, f.size) for f in files), cut


async def op_delete(ctx: ToolContext, args: RepoFilesArgs) -> ToolResult:
    from huggingface_hub import CommitOperationDelete

    if args.path is not None and not args.patterns:
        info = await path_info(ctx, args, args.path)
        if info is None:
            raise ToolFeedback(f"No file or folder '{args.path}' in {_where(args)}; nothing to delete.")
        is_folder = not is_file(info)
        ops = [CommitOperationDelete(info.path + ("/" if is_folder else ""), is_folder=is_folder)]
        what = f"folder {info.path}/" if is_folder else info.path
    else:
        doomed, _ = await deletions(ctx, args)
        ops = [CommitOperationDelete(p, is_folder=False) for p, _ in doomed]
        what = f"{len(doomed)} files matching {args.patterns}"
    return await commit(ctx, args, ops, what)


def commit_message(args: RepoFilesArgs) -> str:
    """The same text on the card and in the commit."""
    if args.commit_message:
        return args.commit_message
    if args.operation == "upload":
        return f"Upload {args.path}"
    return f"Delete {args.path}" if args.path else f"Delete files matching {', '.join(args.patterns or [])}"


async def commit(ctx: ToolContext, args: RepoFilesArgs, ops: list[Any], what: str) -> ToolResult:
    target = _target(args, action="commit to", pr_possible=not args.create_pr)
    info = await hub(ctx, target, ctx.hub.api.create_commit, args.repo_id, ops, commit_message=commit_message(args),
                     repo_type=args.repo_type, revision=args.revision, create_pr=args.create_pr)
    artifacts: dict[str, Any] = {"commit": info.oid, "commit_url": info.commit_url}
    if info.pr_url:
        artifacts.update(pr_url=info.pr_url, pr_num=info.pr_num)
        return ToolResult(f"Opened pull request #{info.pr_num} on {args.repo_type} {args.repo_id} with {what}: "
                          f"{info.pr_url}\nAdd more changes with revision='{info.pr_revision}'; merge it with "
                          "hf_repo_git merge_pr.", artifacts=artifacts)
    return ToolResult(f"Committed {what} to {_where(args)}: commit {info.oid[:12]} ({info.commit_url})",
                      artifacts=artifacts)


async def files_handler(ctx: ToolContext, args: RepoFilesArgs) -> ToolResult:
    ops = {"list": op_list, "read": op_read, "upload": op_upload, "delete": op_delete}
    return await ops[args.operation](ctx, args)


async def files_describe(ctx: ToolContext, args: RepoFilesArgs) -> ApprovalInfo:
    repo = await hub(ctx, _target(args), ctx.hub.api.repo_info, args.repo_id, repo_type=args.repo_type,
                     revision=args.revision)
    fields = [("Repo", f"{args.repo_id} ({args.repo_type}, {'private' if repo.private else 'public'})"),
              ("Branch", _branch_text(args))]
    if args.operation == "upload":
        info = await _describe_upload(ctx, args)
    else:
        info = await _describe_delete(ctx, args)
    info.fields = fields + info.fields + [("Commit message", commit_message(args))]
    return info


def _branch_text(args: RepoFilesArgs) -> str:
    branch = args.revision or "main"
    return f"new pull request against {branch}" if args.create_pr else branch


async def _describe_upload(ctx: ToolContext, args: RepoFilesArgs) -> ApprovalInfo:
    assert args.path is not None and args.content is not None
    new = args.content.encode("utf-8")
    current = await path_info(ctx, args, args.path)
    info = ApprovalInfo(kind="hub_write", title=f"Upload {args.path} to {args.repo_type} {args.repo_id}",
                        auto_approvable=False)
    old_size = getattr(current, "size", None) if current is not None else None
    change = "new file" if current is None else f"replaces {fmt_size(old_size)}"
    info.fields = [("File", f"{args.path} ({fmt_size(len(new))}, {change})")]
    if current is not None and getattr(current, "blob_id", None) == git_blob_oid(new):
        info.checks.append(Check("warn", "No change: the file on the Hub already has exactly this content"))
    elif len(new) <= DIFF_MAX_BYTES and (old_size or 0) <= DIFF_MAX_BYTES:
        old = b"" if current is None else (await read_file(ctx, args, args.path, DIFF_MAX_BYTES + 1))[0]
        if looks_binary(old, False):
            info.fields.append(("Current file", f"binary, {fmt_size(old_size)}: not diffed"))
        else:
            info.body, info.body_label = unified_diff(args.path, old, new, current is None), "Diff"
    if args.repo_type != "dataset" and args.path.endswith((".parquet", ".arrow")):
        info.checks.append(Check("warn", f"A data file in a {args.repo_type} repo: datasets belong in a "
                                         "dataset repo (repo_type='dataset')"))
    return info


def unified_diff(path: str, old: bytes, new: bytes, created: bool) -> str:
    lines = difflib.unified_diff(old.decode("utf-8", "replace").splitlines(keepends=True),
                                 new.decode("utf-8", "replace").splitlines(keepends=True),
                                 "/dev/null" if created else f"a/{path}", f"b/{path}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


async def _describe_delete(ctx: ToolContext, args: RepoFilesArgs) -> ApprovalInfo:
    doomed, cut = await deletions(ctx, args)
    total = sum(size for _, size in doomed)
    count = f"{len(doomed)}+" if cut else str(len(doomed))
    info = ApprovalInfo(kind="hub_write", title=f"Delete {count} files from {args.repo_type} {args.repo_id}",
                        auto_approvable=False)
    info.fields = [("Files", f"{count} files, {'at least ' if cut else ''}{fmt_size(total)}")]
    if cut:
        info.checks.append(Check("warn", f"The folder has more than {LIST_MAX_SCANNED} entries: the list below "
                                         "is partial, and the whole folder is deleted"))
    info.body = "\n".join(f"{p}\t{fmt_size(s)}" for p, s in doomed)
    info.body_label = "Files deleted"
    if any(p in ("README.md", ".gitattributes") for p, _ in doomed):
        info.checks.append(Check("warn", "Deletes README.md or .gitattributes: the repo card or LFS rules go"))
    return info


repo_files_tool = Tool(
    name="hf_repo_files",
    description=(
        "Files in a Hugging Face Hub repository (model, dataset or Space). `list` shows files with sizes "
        "(optionally under `path` or matching `patterns`); `read` shows a text file with line numbers "
        "(page with `offset`/`limit`); `upload` writes `content` to `path` as one commit; `delete` removes a "
        "file, a folder (path ending with '/') or every file matching `patterns`. upload and delete need an "
        "approval click and commit to `revision` (default main), or open a pull request with create_pr=true."
    ),
    args=RepoFilesArgs,
    handler=files_handler,
    policy=files_policy,
    describe=files_describe,
    read_only=False,
)
