"""Code from the sandbox for `hf_jobs`: the runs repo commit, its pin, and the job command around it.

After approval the files stored with the approval are committed once to the runs repo (INTERN_RUNS_REPO,
default `<namespace>/intern-runs`, private, created on first use) under `runs/<approval id>/`. A
resumed launch finds the commit again by that folder (`paths-info` with `expand` names the commit that
last touched it; a run's folder is written once), so a crash never commits twice. The job mounts the
folder read-only at /project, pinned to the commit, and runs in it.

The label `intern-code` names the repo and the commit as `<repo>@<commit>`; the job's volume names both
too. Runs launched before the label took that form carry `<owner>--<name>--<commit>`, which `pin_text`
still reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from intern.agent.errors import ToolFeedback, retryable
from intern.agent.tools.code_snapshot import MOUNT, CodeSnapshot, SnapshotFile, entry_of, normalized

if TYPE_CHECKING:
    from intern.agent.context_deps import ToolContext

CODE_LABEL = "intern-code"
RUNS_REPO_NAME = "intern-runs"
IN_PROJECT = ["sh", "-c", 'cd /project && exec "$@"', "sh"]  # run the words that follow in /project


def hub_error(exc: Exception, what: str) -> str:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 404:
        return f"{what} was not found in this namespace."
    if status in (401, 403):
        return f"The Hub refused access to {what} (HTTP {status}): the configured token lacks permission."
    return f"The Hub could not answer about {what}: {type(exc).__name__}: {str(exc)[:300]}"


def _is_url(text: str) -> bool:
    return text.startswith(("https://", "http://"))


def is_relative_file(script: str) -> bool:
    path = script.strip()
    return (bool(path) and "\n" not in path and not _is_url(path) and not path.startswith(("/", "~"))
            and not normalized(path).startswith("..") and len(path) <= 500)


@dataclass(frozen=True)
class CodePin:
    """Where a run's code is: a folder of the runs repo at one commit."""

    repo: str
    commit: str
    folder: str

    def volume(self) -> Any:
        from huggingface_hub import Volume

        return Volume(type="model", source=self.repo, revision=self.commit, path=self.folder, mount_path=MOUNT,
                      read_only=True)

    def label(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return f"{self.repo}@{self.commit}"


def pin_text(label: str) -> str:
    """`owner/name@commit` from an `intern-code` label value (also the older `owner--name--commit` form)."""
    parts = label.split("--")
    if len(parts) == 3 and re.fullmatch(r"[0-9a-f]{40}", parts[2]):
        return f"{parts[0]}/{parts[1]}@{parts[2]}"
    return label


def runs_repo(ctx: ToolContext, namespace: str) -> str:
    return ctx.config.runs_repo or f"{namespace}/{RUNS_REPO_NAME}"


def code_command(command: list[str] | None, dependencies: list[str] | None, entry: SnapshotFile | None) -> list[str]:
    """The job's command for code mounted at /project: `command`, or the entry run with uv, in /project."""
    if command:
        return [*IN_PROJECT, *command]
    assert entry is not None
    withs = [w for d in dependencies or [] for w in ("--with", d)]
    return [*IN_PROJECT, "uv", "run", *withs, f"{MOUNT}/{entry.path}"]


def pin_of(job: Any) -> CodePin | None:
    """The code pin of a job Intern launched with code from a sandbox (its /project volume)."""
    for volume in getattr(job, "volumes", None) or []:
        if volume.mount_path == MOUNT and volume.type == "model" and volume.revision:
            return CodePin(volume.source, volume.revision, volume.path or "")
    return None


async def code_pin(ctx: ToolContext, sandbox_path: str | None, ns: str) -> CodePin | None:
    """For `sandbox_path`: the approved files committed to the runs repo (once), and where."""
    if sandbox_path is None:
        return None
    store = ctx.deps.approved_code
    code = await store.load(ctx.approval_id) if store is not None and ctx.approval_id else None
    if code is None:
        raise ToolFeedback("The files this approval covers are not stored with it, so nothing was committed or "
                           "launched. Request the run again (a new card).")
    repo, folder = runs_repo(ctx, ns), f"runs/{ctx.approval_id}"
    found = await _committed(ctx, repo, folder)
    if found is not None:
        return CodePin(repo, found, folder)
    try:
        return CodePin(repo, await _commit(ctx, code, repo, folder), folder)
    except Exception as exc:
        if retryable(exc):  # the answer was lost, not necessarily the commit
            found = await _committed(ctx, repo, folder)
            if found is not None:
                return CodePin(repo, found, folder)
        raise ToolFeedback(f"Could not commit the approved code to {repo}: " + hub_error(exc, repo)
                           + " Nothing was launched.") from exc


async def _commit(ctx: ToolContext, code: CodeSnapshot, repo: str, folder: str) -> str:
    from huggingface_hub import CommitOperationAdd

    api = ctx.hub.api
    await ctx.hub.call(api.create_repo, repo, repo_type="model", private=True, exist_ok=True)
    ops = [CommitOperationAdd(path_in_repo=f"{folder}/{f.path}", path_or_fileobj=f.data) for f in code.files]
    info = await ctx.hub.call(api.create_commit, repo, operations=ops, repo_type="model",
                              commit_message=f"Intern run {ctx.approval_id}",
                              commit_description=(f"{len(code.files)} files from the sandbox {code.kind} {code.root}, "
                                                  f"approved in session {ctx.session_id}."))
    return str(info.oid)


async def _committed(ctx: ToolContext, repo: str, folder: str) -> str | None:
    """The commit that wrote the run's folder, if it exists (a run's folder is written once)."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        items = await ctx.hub.read(ctx.hub.api.get_paths_info, repo, [folder], expand=True, repo_type="model")
    except (RepositoryNotFoundError, RevisionNotFoundError):
        return None
    except Exception as exc:
        raise ToolFeedback(f"Could not ask the Hub whether this run's code is already in {repo} ("
                           + hub_error(exc, repo) + "), so nothing was committed or launched. Try again in a "
                           "moment.") from exc
    for item in items:
        last = getattr(item, "last_commit", None)
        if item.path == folder and last is not None:
            return str(last.oid)
    return None


async def approved_entry(ctx: ToolContext, script: str | None, command: list[str] | None) -> SnapshotFile | None:
    store = ctx.deps.approved_code
    code = await store.load(ctx.approval_id) if store is not None and ctx.approval_id else None
    assert code is not None  # code_pin loaded it before
    return entry_of(code, script, command)
