"""`hf_repo_files` and `hf_repo_git`: files, branches, tags, pull requests and repositories on the Hub.

Reads (list, read, list_refs, list_prs, get_pr) run at once. Every write is a Hub write: it waits
for a click on an approval card built by `describe`, which shows the repository, the branch and,
for a small text file, the diff against what the Hub holds now. A commit is atomic on the Hub, so
a failed write leaves nothing half-written. Hub errors come back as tool results that say what to
do next (a 403 on a commit suggests a pull request, a missing revision points to list_refs).
"""

from __future__ import annotations

import difflib
import fnmatch
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeGuard, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from intern.agent.errors import ToolFeedback
from intern.agent.tools.base import ApprovalInfo, Check, Policy, Tool, ToolResult

if TYPE_CHECKING:
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile, RepoFolder

    from intern.agent.context_deps import ToolContext

T = TypeVar("T")
RepoType = Literal["model", "dataset", "space"]
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}

READ_MAX_BYTES = 2_000_000  # a larger file is read from its start only
READ_DEFAULT_LINES = 400
READ_MAX_LINE_CHARS = 2_000
DIFF_MAX_BYTES = 200_000  # above this, the card shows sizes instead of a diff
UPLOAD_MAX_BYTES = 10_000_000  # the Hub stores larger files through LFS/Xet, which a tool call cannot feed
LIST_MAX_SHOWN = 500
LIST_MAX_SCANNED = 20_000
PRS_SHOWN = 50
PR_DIFF_CHARS = 20_000


# ---------------------------------------------------------------- arguments

def _validate_repo_id(value: str) -> str:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    value = value.strip()
    for prefix in ("https://huggingface.co/", "datasets/", "spaces/", "models/"):
        if value.startswith(prefix):
            raise ValueError(f"repo_id must be 'namespace/name' without a URL or '{prefix}' prefix; "
                             "give the type in repo_type")
    try:
        validate_repo_id(value)
    except HFValidationError as exc:
        raise ValueError(str(exc)) from None
    return value


def _validate_repo_path(value: str | None) -> str | None:
    if value is None:
        return None
    path = value.strip().lstrip("/")
    if path.startswith("./"):
        path = path[2:]
    if not path or any(part in ("..", ".") for part in path.rstrip("/").split("/")):
        raise ValueError(f"path {value!r} must be a path inside the repository, e.g. 'config.json' or 'data/'")
    if path.split("/")[0] == ".git":
        raise ValueError("path cannot be inside .git/")
    return path


def _given(model: BaseModel) -> set[str]:
    """Arguments set to something other than their default (a replayed spec carries every default)."""
    fields = type(model).model_fields
    return {name for name, f in fields.items() if getattr(model, name) != f.default}


def _check_operation(model: BaseModel, op: str, required: tuple[str, ...], used: set[str],
                     hints: dict[str, str]) -> None:
    for name in required:
        if getattr(model, name) in (None, "", []):
            raise ValueError(f"operation '{op}' needs `{name}` ({hints[name]})")
    unused = sorted(_given(model) - used - {"operation", "repo_id", "repo_type"})
    if unused:
        names = ", ".join(f"`{n}`" for n in unused)
        raise ValueError(f"operation '{op}' does not use {names}; remove {'it' if len(unused) == 1 else 'them'}")


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
        return _validate_repo_id(v)

    @field_validator("path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        return _validate_repo_path(v)

    @model_validator(mode="after")
    def _per_operation(self) -> RepoFilesArgs:
        op = self.operation
        _check_operation(self, op, FILES_REQUIRED[op], FILES_USED[op], FILES_HINTS)
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
        return _validate_repo_id(v)

    @model_validator(mode="after")
    def _per_operation(self) -> RepoGitArgs:
        op = self.operation
        _check_operation(self, op, GIT_REQUIRED[op], GIT_USED[op], GIT_HINTS)
        if op != "create_repo" and "/" not in self.repo_id:
            raise ValueError(f"operation '{op}' needs the full repo_id 'namespace/name'")
        if op == "create_repo" and self.repo_type == "space" and self.space_sdk is None:
            raise ValueError("operation 'create_repo' of a space needs `space_sdk` (gradio, streamlit, docker "
                             "or static)")
        if op == "create_repo" and self.space_sdk is not None and self.repo_type != "space":
            raise ValueError("`space_sdk` is only for repo_type 'space'")
        return self


# ---------------------------------------------------------------- Hub calls and their errors

@dataclass(frozen=True)
class Target:
    """What a Hub call is about, so an error can say what went wrong and what to do."""

    repo_id: str
    repo_type: str
    revision: str | None = None
    path: str | None = None
    action: str = "read"  # "read", or a verb phrase for a write ("commit to", "create branches in", ...)
    pr_possible: bool = False
    conflict: str | None = None  # what a 409 means here
    missing: str | None = None  # what a plain 404 means here

    @property
    def label(self) -> str:
        return f"{self.repo_type} {self.repo_id}"

    def url(self, endpoint: str) -> str:
        return f"{endpoint}/{URL_PREFIX[self.repo_type]}{self.repo_id}"


def explain(exc: Exception, target: Target, endpoint: str) -> str | None:
    """A message the model can act on, or None for an error that is not the Hub's."""
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    label, rev = target.label, target.revision or "main"
    if isinstance(exc, GatedRepoError):
        return (f"{label} is gated and this Hub token has not been granted access. Someone must accept its "
                f"conditions at {target.url(endpoint)}; then retry.")
    if isinstance(exc, RepositoryNotFoundError):
        return (f"{label} was not found, or it is private and this token cannot see it. Check repo_id and "
                "repo_type (model, dataset or space).")
    if isinstance(exc, RevisionNotFoundError):
        return (f"Revision '{rev}' does not exist in {label}. Use hf_repo_git list_refs to see its branches "
                "and tags.")
    if isinstance(exc, RemoteEntryNotFoundError):
        return (f"No file or folder '{target.path}' in {label} at revision '{rev}'. Use hf_repo_files list to "
                "see what is there.")
    if isinstance(exc, HfHubHTTPError):
        return _explain_status(exc.response.status_code, exc.server_message or str(exc).strip(), target)
    if isinstance(exc, httpx2.TransportError):
        return f"Could not reach the Hub at {endpoint} ({type(exc).__name__}: {exc}). Retry in a moment."
    if isinstance(exc, ValueError):
        return f"The request for {label} was refused before sending: {exc}"
    return None


def _explain_status(status: int, server: str, target: Target) -> str:
    label = target.label
    if status == 401:
        return (f"The Hub rejected the token (401: {server}). HF_TOKEN must be set to a valid token; "
                "tell the user, retrying will not help.")
    if status == 403:
        pr = " or set create_pr=true to propose the change as a pull request instead" if target.pr_possible else ""
        return (f"This Hub token is not allowed to {target.action} {label} (403: {server}). Ask an owner of "
                f"{target.repo_id.split('/')[0]} for write access{pr}.")
    if status == 409:
        return f"Conflict on {label}: {target.conflict or server} (Hub: {server})."
    if status == 412:
        return f"{label} changed while this commit was being made ({server}). Read it again and retry."
    if status == 404 and target.missing:
        return f"{target.missing} (Hub: {server})."
    return f"The Hub refused the request on {label} (HTTP {status}: {server})."


async def hub(ctx: ToolContext, target: Target, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    try:
        return await ctx.hub.call(fn, *args, **kwargs)
    except Exception as exc:
        message = explain(exc, target, ctx.hub.endpoint)
        if message is None:
            raise
        raise ToolFeedback(message) from exc


def take(items: Callable[..., Iterable[T]], limit: int | None, /, *args: Any, **kwargs: Any) -> list[T]:
    """Consumes a paginated generator inside the executor thread (its pages are HTTP calls)."""
    return list(itertools.islice(items(*args, **kwargs), limit))


def fetch_bytes(api: HfApi, repo_id: str, path: str, *, repo_type: str, revision: str | None,
                max_bytes: int, ranged: bool) -> bytes:
    """The start of a file through the resolve URL, in memory (nothing lands in the download cache)."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    url = hf_hub_url(repo_id, path, repo_type=repo_type, revision=revision, endpoint=api.endpoint)
    headers = build_hf_headers(token=api.token, library_name=api.library_name,
                               library_version=api.library_version, user_agent=api.user_agent,
                               headers=api.headers)
    if ranged:
        headers["Range"] = f"bytes=0-{max_bytes - 1}"
    out = bytearray()
    with get_session().stream("GET", url, headers=headers) as response:
        hf_raise_for_status(response)
        for chunk in response.iter_bytes():
            out += chunk
            if len(out) >= max_bytes:
                break
    return bytes(out[:max_bytes])


def fmt_size(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def git_blob_oid(data: bytes) -> str:
    from huggingface_hub.utils.sha import git_hash

    return git_hash(data)


def looks_binary(data: bytes, truncated: bool) -> bool:
    if b"\x00" in data[:8000]:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a read cut at a byte limit may split the last character
        return not (truncated and exc.start >= len(data) - 3)
    return False


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
