"""What both repository tools share: argument checks, Hub calls, and errors that say what to do next."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel

from intern.agent.errors import ToolFeedback

if TYPE_CHECKING:
    from huggingface_hub import HfApi

    from intern.agent.context_deps import ToolContext

T = TypeVar("T")
RepoType = Literal["model", "dataset", "space"]
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


# ---------------------------------------------------------------- arguments

def validate_repo_id(value: str) -> str:
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


def validate_repo_path(value: str | None) -> str | None:
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


def check_operation(model: BaseModel, op: str, required: tuple[str, ...], used: set[str],
                     hints: dict[str, str]) -> None:
    for name in required:
        if getattr(model, name) in (None, "", []):
            raise ValueError(f"operation '{op}' needs `{name}` ({hints[name]})")
    unused = sorted(_given(model) - used - {"operation", "repo_id", "repo_type"})
    if unused:
        names = ", ".join(f"`{n}`" for n in unused)
        raise ValueError(f"operation '{op}' does not use {names}; remove {'it' if len(unused) == 1 else 'them'}")


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
