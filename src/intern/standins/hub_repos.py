"""Hub repositories for the stand-in: files per commit, branches, tags, commits, discussions and
pull requests, repo creation and settings — the endpoints and JSON huggingface_hub 2.4.0 uses for
`list_repo_tree`, `get_paths_info` (with `expand`, the last commit of each path), `create_commit` (preupload + NDJSON commit), the resolve URL,
`list_repo_refs`, branch and tag calls, discussions, `create_repo` and `update_repo_settings`.

Other route modules may serve some of the same paths (`/api/models/{id}` for model metadata,
`/api/spaces/{id}/...` for sandboxes). So this module does not add aiohttp routes; a middleware
answers for every repository held here, and for the rest only where no other module has a route.

Permissions are simulated per repository: `can_write=False` makes every write answer 403 (a pull
request can still be opened, as on the Hub), `gated` with `gated_access=False` makes downloads
answer 403 GatedRepo. Files are always stored in full; a binary or large file is reported and
served as an LFS file (tree `lfs` metadata, linked etag and size on download). Uploads the client
would send through LFS/Xet are not supported: `preupload` only ever makes such a file LFS, and a
commit naming an LFS object that was never uploaded is refused, as the Hub does.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import html
import itertools
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import yaml  # type: ignore[import-untyped]
from aiohttp import web

if TYPE_CHECKING:
    from intern.standins.hub import HubStandIn

PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space"}
LFS_THRESHOLD = 10 * 1024 * 1024
DISCUSSIONS_PAGE = 50
_counter = itertools.count(1)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def is_lfs(data: bytes) -> bool:
    return len(data) > LFS_THRESHOLD or b"\x00" in data[:8000]


def new_id() -> str:
    return hashlib.sha1(f"id-{next(_counter)}".encode()).hexdigest()[:24]


@dataclass
class Commit:
    oid: str
    parents: tuple[str, ...]
    title: str
    message: str
    author: str
    date: str
    files: dict[str, bytes]


@dataclass
class Discussion:
    num: int
    title: str
    author: str
    is_pr: bool
    status: str
    created_at: str
    events: list[dict[str, Any]] = field(default_factory=list)
    base_ref: str | None = None  # "refs/heads/main" for a pull request
    start_oid: str | None = None  # commit of the base when the pull request was opened
    merge_oid: str | None = None


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool = False
    gated: str | bool = False
    sdk: str | None = None
    can_write: bool = True
    gated_access: bool = True
    created_at: str = field(default_factory=now_iso)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    pr_heads: dict[int, str] = field(default_factory=dict)  # refs/pr/N
    commits: dict[str, Commit] = field(default_factory=dict)
    discussions: list[Discussion] = field(default_factory=list)

    @property
    def url_path(self) -> str:
        return PREFIX[self.repo_type] + self.repo_id

    def head(self, branch: str = "main") -> Commit:
        return self.commits[self.branches[branch]]

    def resolve(self, rev: str) -> Commit | None:
        for name in (rev, rev.removeprefix("refs/heads/")):
            if name in self.branches:
                return self.commits[self.branches[name]]
        tag = rev.removeprefix("refs/tags/")
        if tag in self.tags:
            return self.commits[self.tags[tag]]
        if (m := re.fullmatch(r"refs/pr/(\d+)", rev)) and int(m[1]) in self.pr_heads:
            return self.commits[self.pr_heads[int(m[1])]]
        return self.commits.get(rev)

    def discussion(self, num: int) -> Discussion | None:
        return next((d for d in self.discussions if d.num == num), None)

    def add_commit(self, parent: Commit | None, files: dict[str, bytes], title: str, message: str,
                   author: str, extra_parents: tuple[str, ...] = ()) -> Commit:
        parents = ((parent.oid,) if parent else ()) + extra_parents
        seed = json.dumps([parents, sorted((p, git_blob_oid(b)) for p, b in files.items()), title,
                           next(_counter)])
        commit = Commit(hashlib.sha1(seed.encode()).hexdigest(), parents, title, message, author,
                        now_iso(), dict(files))
        self.commits[commit.oid] = commit
        return commit


@dataclass
class RepoStore:
    """`hub.state["repos"]`: every repository the stand-in holds, and who may create where."""

    user: str
    repos: dict[tuple[str, str], Repo] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=set)  # besides the user's own
    tree_page_size: int = 1000

    def get(self, repo_type: str, repo_id: str) -> Repo | None:
        return self.repos.get((repo_type, repo_id))

    def add(self, repo_id: str, repo_type: str = "model", *, files: dict[str, bytes | str] | None = None,
            **settings: Any) -> Repo:
        """Creates a repository with an initial commit (`.gitattributes`) and, if given, a second
        commit with `files`; `settings` are Repo fields (private, gated, can_write, gated_access, sdk)."""
        repo = Repo(repo_type, repo_id, **settings)
        first = repo.add_commit(None, {".gitattributes": b"*.bin filter=lfs diff=lfs merge=lfs -text\n"},
                                "initial commit", "", "system")
        repo.branches["main"] = first.oid
        if files:
            data = {p: c.encode() if isinstance(c, str) else c for p, c in files.items()}
            commit = repo.add_commit(first, {**first.files, **data}, "Add files", "", self.user)
            repo.branches["main"] = commit.oid
        self.repos[(repo_type, repo_id)] = repo
        return repo


def repo_store(hub: HubStandIn) -> RepoStore:
    store = hub.state.get("repos")
    if store is None:
        store = hub.state["repos"] = RepoStore(user=hub.user)
    return store


# ---------------------------------------------------------------- errors and small helpers

def error(status: int, message: str, code: str | None = None, **headers: str) -> web.Response:
    hdrs = {"X-Error-Message": message, **headers}
    if code:
        hdrs["X-Error-Code"] = code
    return web.json_response({"error": message}, status=status, headers=hdrs)


def repo_not_found(authenticated: bool) -> web.Response:
    return error(404 if authenticated else 401, "Repository not found", "RepoNotFound")


def revision_not_found(rev: str) -> web.Response:
    return error(404, f"Invalid rev id: {rev}", "RevisionNotFound")


def forbidden(message: str) -> web.Response:
    return error(403, message)


def user_json(name: str) -> dict[str, Any]:
    return {"_id": hashlib.sha1(name.encode()).hexdigest()[:24], "name": name, "fullname": name,
            "avatarUrl": "/avatars/default.svg", "isPro": False, "type": "user"}


async def read_json(request: web.Request) -> dict[str, Any]:
    body = await request.read()  # already buffered by the recording middleware
    return json.loads(body) if body.strip() else {}


def split_rev_path(segments: list[str]) -> tuple[str, str]:
    return unquote(segments[0]), "/".join(unquote(s) for s in segments[1:])


@dataclass
class Call:
    """One request routed here: the repository it names (if any) and who sent it."""

    hub: HubStandIn
    store: RepoStore
    request: web.Request
    repo: Repo | None
    user: str | None

    @property
    def endpoint(self) -> str:
        return self.hub.url

    def need_user(self) -> web.Response | None:
        if self.user is None:
            return error(401, "Invalid credentials in Authorization header")
        return None

    def need_write(self) -> web.Response | None:
        if (missing := self.need_user()) is not None:
            return missing
        assert self.repo is not None
        if not self.repo.can_write:
            return forbidden(f"You don't have the rights to write to {self.repo.repo_type} "
                             f"{self.repo.repo_id}")
        return None


Handler = Callable[..., Awaitable[web.StreamResponse]]


# ---------------------------------------------------------------- repository info and files

def sibling(path: str, data: bytes, blobs: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"rfilename": path}
    if blobs:
        item.update(size=len(data), blobId=git_blob_oid(data))
        if is_lfs(data):
            item["lfs"] = lfs_info(data, key="sha256")
    return item


def lfs_info(data: bytes, key: str = "oid") -> dict[str, Any]:
    sha = hashlib.sha256(data).hexdigest()
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n"
    return {key: sha, "size": len(data), "pointerSize": len(pointer)}


async def repo_info(call: Call, rev: str | None = None) -> web.StreamResponse:
    repo = call.repo
    assert repo is not None
    commit = repo.resolve(rev) if rev is not None else repo.head()
    if commit is None:
        return revision_not_found(rev or "")
    blobs = call.request.query.get("blobs", "").lower() in ("1", "true")
    body: dict[str, Any] = {
        "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24], "id": repo.repo_id,
        "author": repo.repo_id.split("/")[0], "sha": commit.oid, "lastModified": commit.date,
        "createdAt": repo.created_at, "private": repo.private, "gated": repo.gated, "disabled": False,
        "downloads": 0, "likes": 0, "tags": [],
        "siblings": [sibling(p, d, blobs) for p, d in sorted(commit.files.items())],
        "usedStorage": sum(len(d) for d in commit.files.values()),
    }
    if repo.repo_type == "model":
        body["modelId"] = repo.repo_id
    if repo.repo_type == "space":
        body.update(sdk=repo.sdk, subdomain=repo.repo_id.replace("/", "-").lower(),
                    host=f"{call.endpoint}/spaces/{repo.repo_id}")
    return web.json_response(body)


def tree_entries(files: dict[str, bytes], base: str, recursive: bool) -> list[dict[str, Any]] | None:
    prefix = f"{base}/" if base else ""
    if base and not any(p.startswith(prefix) for p in files):
        return None
    entries: dict[str, dict[str, Any]] = {}
    for path, data in sorted(files.items()):
        if not path.startswith(prefix):
            continue
        parts = path[len(prefix):].split("/")
        for depth in range(1, len(parts)):
            folder = prefix + "/".join(parts[:depth])
            if folder not in entries and (recursive or depth == 1):
                entries[folder] = folder_entry(files, folder)
        if recursive or len(parts) == 1:
            entries[path] = file_entry(path, data)
    return [entries[k] for k in sorted(entries)]


def file_entry(path: str, data: bytes) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "file", "oid": git_blob_oid(data), "size": len(data), "path": path}
    if is_lfs(data):
        entry["lfs"] = lfs_info(data)
    return entry


def folder_entry(files: dict[str, bytes], folder: str) -> dict[str, Any]:
    inside = sorted(f"{p}:{git_blob_oid(d)}" for p, d in files.items() if p.startswith(folder + "/"))
    return {"type": "directory", "oid": hashlib.sha1("\n".join(inside).encode()).hexdigest(),
            "size": 0, "path": folder}


async def tree(call: Call, segments: list[str]) -> web.StreamResponse:
    repo = call.repo
    assert repo is not None
    rev, base = split_rev_path(segments)
    commit = repo.resolve(rev)
    if commit is None:
        return revision_not_found(rev)
    recursive = call.request.query.get("recursive", "").lower() in ("1", "true")
    entries = tree_entries(commit.files, base.strip("/"), recursive)
    if entries is None:
        return error(404, f"Entry not found: {base}", "EntryNotFound", **{"X-Repo-Commit": commit.oid})
    size = call.store.tree_page_size
    start = int(call.request.query.get("cursor", "0"))
    page = entries[start:start + size]
    headers = {}
    if start + size < len(entries):
        nxt = call.request.url.update_query(cursor=str(start + size))
        headers["Link"] = f'<{nxt}>; rel="next"'
    return web.json_response(page, headers=headers)


async def paths_info(call: Call, rev: str) -> web.StreamResponse:
    repo = call.repo
    assert repo is not None
    commit = repo.resolve(rev)
    if commit is None:
        return revision_not_found(rev)
    form = await call.request.post()
    expand = str(form.get("expand", "")).lower() in ("1", "true")
    out = []
    for path in form.getall("paths", []):
        path = str(path).strip("/")
        if path in commit.files:
            entry = file_entry(path, commit.files[path])
        elif any(p.startswith(path + "/") for p in commit.files):
            entry = folder_entry(commit.files, path)
        else:
            continue
        if expand:
            last = last_commit(repo, commit, path)
            entry["lastCommit"] = {"id": last.oid, "title": last.title, "date": last.date}
        out.append(entry)
    return web.json_response(out)


def last_commit(repo: Repo, commit: Commit, path: str) -> Commit:
    """The newest commit, along first parents, that changed the file or folder at `path`."""
    def under(c: Commit) -> dict[str, bytes]:
        return {p: d for p, d in c.files.items() if p == path or p.startswith(path + "/")}

    current = commit
    while current.parents:
        parent = repo.commits[current.parents[0]]
        if under(parent) != under(current):
            return current
        current = parent
    return current


async def resolve_file(call: Call, rev: str, path: str) -> web.StreamResponse:
    repo = call.repo
    assert repo is not None
    if repo.gated and call.user is None:
        return error(401, f"Access to {repo.repo_type} {repo.repo_id} is restricted. You must have access to it "
                     "and be authenticated to access it. Please log in.", "GatedRepo")
    if repo.gated and not repo.gated_access:
        return error(403, f"Access to {repo.repo_type} {repo.repo_id} is restricted and you are not in the "
                     f"authorized list. Visit {call.endpoint}/{repo.url_path} to ask for access.",
                     "GatedRepo")
    commit = repo.resolve(rev)
    if commit is None:
        return revision_not_found(rev)
    data = commit.files.get(path)
    if data is None:
        return error(404, "Entry not found", "EntryNotFound", **{"X-Repo-Commit": commit.oid})
    headers = {"ETag": f'"{git_blob_oid(data)}"', "X-Repo-Commit": commit.oid}
    if is_lfs(data):
        # The Hub redirects LFS downloads to a CDN on another host; loopback has no other host, so the
        # content is served here with the headers the redirect would carry.
        sha = hashlib.sha256(data).hexdigest()
        headers.update({"ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data))})
    return serve_bytes(call.request, data, headers)


def serve_bytes(request: web.Request, data: bytes, headers: dict[str, str]) -> web.StreamResponse:
    status, body = 200, data
    if m := re.fullmatch(r"bytes=(\d+)-(\d*)", request.headers.get("Range", "")):
        first = int(m[1])
        last = min(int(m[2]) if m[2] else len(data) - 1, len(data) - 1)
        if first >= len(data):
            return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
        status, body = 206, data[first:last + 1]
        headers = {**headers, "Content-Range": f"bytes {first}-{last}/{len(data)}"}
    headers = {**headers, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
    return web.Response(status=status, body=body, headers=headers)


# ---------------------------------------------------------------- commits

async def preupload(call: Call, rev: str) -> web.StreamResponse:
    repo = call.repo
    assert repo is not None
    if (missing := call.need_user()) is not None:
        return missing
    commit = repo.resolve(rev)
    if commit is None:
        return revision_not_found(rev)
    payload = await read_json(call.request)
    files = []
    for item in payload.get("files", []):
        sample = base64.b64decode(item.get("sample", ""))
        lfs = item.get("size", 0) > LFS_THRESHOLD or b"\x00" in sample
        current = commit.files.get(item["path"])
        oid = None
        if current is not None:
            oid = hashlib.sha256(current).hexdigest() if lfs else git_blob_oid(current)
        files.append({"path": item["path"], "uploadMode": "lfs" if lfs else "regular",
                      "shouldIgnore": False, "oid": oid})
    return web.json_response({"files": files, "commitOid": commit.oid})


def parse_ndjson(body: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    header: dict[str, Any] = {}
    ops = []
    for line in body.splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        if item["key"] == "header":
            header = item["value"]
        else:
            ops.append(item)
    return header, ops


def apply_ops(files: dict[str, bytes], ops: list[dict[str, Any]]) -> web.Response | dict[str, bytes]:
    files = dict(files)
    for op in ops:
        key, value = op["key"], op["value"]
        path = value["path"].strip("/")
        if key == "file":
            files[path] = base64.b64decode(value["content"])
        elif key == "deletedFile":
            if files.pop(path, None) is None:
                return error(404, "A file with this name doesn't exist", "EntryNotFound")
        elif key == "deletedFolder":
            inside = [p for p in files if p.startswith(path + "/")]
            if not inside:
                return error(404, "A file with this name doesn't exist", "EntryNotFound")
            for p in inside:
                del files[p]
        elif key == "lfsFile":
            return error(400, f"LFS object {value.get('oid')} for {path} was never uploaded")
        else:
            return error(400, f"Unknown commit operation {key}")
    return files


async def commit(call: Call, rev: str) -> web.StreamResponse:
    repo = call.repo
    assert repo is not None
    if (missing := call.need_user()) is not None:
        return missing
    create_pr = call.request.query.get("create_pr") == "1"
    pr = None
    if m := re.fullmatch(r"refs/pr/(\d+)", rev):
        pr = repo.discussion(int(m[1]))
        if pr is None or not pr.is_pr or create_pr:
            return revision_not_found(rev)
    else:
        rev = rev.removeprefix("refs/heads/")
        if rev not in repo.branches:
            return revision_not_found(rev)
    if pr is not None and pr.status == "merged":
        return error(400, f"Pull request #{pr.num} is already merged")
    allowed = repo.can_write or create_pr or (pr is not None and pr.author == call.user)
    if not allowed:
        return forbidden("Forbidden: pass `create_pr=1` as a query parameter to create a Pull Request")
    header, ops = parse_ndjson(await call.request.read())
    parent = repo.resolve(rev)
    assert parent is not None
    if header.get("parentCommit") and header["parentCommit"] != parent.oid:
        return error(412, "A commit has happened since. Please refresh and try again.")
    files = apply_ops(parent.files, ops)
    if isinstance(files, web.Response):
        return files
    assert call.user is not None
    new = repo.add_commit(parent, files, header.get("summary") or "Update", header.get("description", ""),
                          call.user)
    body: dict[str, Any] = {"success": True, "commitOid": new.oid, "hookOutput": "",
                            "commitUrl": f"{call.endpoint}/{repo.url_path}/commit/{new.oid}"}
    if create_pr:
        pr = open_pr(repo, call.user, new.title, new.message, base=rev, start=parent.oid, status="open")
        body["pullRequestUrl"] = f"{call.endpoint}/{repo.url_path}/discussions/{pr.num}"
    if pr is not None:
        repo.pr_heads[pr.num] = new.oid
        pr.events.append(event("commit", call.user, {"subject": new.title, "oid": new.oid}))
        pr.status = "open" if pr.status == "draft" else pr.status
    else:
        repo.branches[rev] = new.oid
    return web.json_response(body)


# ---------------------------------------------------------------- refs

def ref_json(name: str, ref: str, oid: str) -> dict[str, str]:
    return {"name": name, "ref": ref, "targetCommit": oid}


async def refs(call: Call) -> web.StreamResponse:
    repo = call.repo
    assert repo is not None
    body: dict[str, Any] = {
        "branches": [ref_json(n, f"refs/heads/{n}", o) for n, o in sorted(repo.branches.items())],
        "converts": [],
        "tags": [ref_json(n, f"refs/tags/{n}", o) for n, o in sorted(repo.tags.items())],
    }
    if call.request.query.get("include_prs"):
        body["pullRequests"] = [ref_json(str(n), f"refs/pr/{n}", o) for n, o in sorted(repo.pr_heads.items())]
    return web.json_response(body)


async def branch(call: Call, name: str) -> web.StreamResponse:
    repo = call.repo
    assert repo is not None
    if (denied := call.need_write()) is not None:
        return denied
    if call.request.method == "DELETE":
        if name not in repo.branches:
            return revision_not_found(name)
        if name == "main":
            return forbidden("You cannot delete the default branch")
        del repo.branches[name]
        return web.json_response({})
    payload = await read_json(call.request)
    if name in repo.branches or name in repo.tags:
        return error(409, f"Reference already exists: refs/heads/{name}")
    start = repo.resolve(payload.get("startingPoint") or "main")
    if start is None:
        return revision_not_found(payload.get("startingPoint", ""))
    repo.branches[name] = start.oid
    return web.json_response({})


async def tag(call: Call, name: str) -> web.StreamResponse:
    repo = call.repo
    assert repo is not None
    if (denied := call.need_write()) is not None:
        return denied
    if call.request.method == "DELETE":
        if name not in repo.tags:
            return revision_not_found(name)
        del repo.tags[name]
        return web.json_response({})
    payload = await read_json(call.request)
    target = repo.resolve(name)  # on POST the path names the revision to tag
    if target is None:
        return revision_not_found(name)
    if payload["tag"] in repo.tags or payload["tag"] in repo.branches:
        return error(409, f"Tag {payload['tag']} already exists")
    repo.tags[payload["tag"]] = target.oid
    return web.json_response({})


# ---------------------------------------------------------------- discussions and pull requests

def event(kind: str, author: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": new_id(), "type": kind, "createdAt": now_iso(), "author": user_json(author), "data": data}


def comment_event(author: str, text: str) -> dict[str, Any]:
    latest = {"raw": text, "html": f"<p>{html.escape(text)}</p>", "updatedAt": now_iso(),
              "author": user_json(author)}
    return event("comment", author, {"edited": False, "hidden": False, "latest": latest, "numEdits": 0,
                                     "editors": [author], "reactions": [], "isReport": False})


def open_pr(repo: Repo, author: str, title: str, description: str, *, base: str, start: str,
            status: str) -> Discussion:
    pr = Discussion(len(repo.discussions) + 1, title, author, True, status, now_iso(),
                    base_ref=f"refs/heads/{base}", start_oid=start)
    pr.events.append(comment_event(author, description))
    repo.discussions.append(pr)
    repo.pr_heads[pr.num] = start
    return pr


def discussion_json(repo: Repo, d: Discussion) -> dict[str, Any]:
    return {"num": d.num, "title": d.title, "status": d.status, "createdAt": d.created_at,
            "isPullRequest": d.is_pr, "author": user_json(d.author), "pinned": False,
            "repo": {"name": repo.repo_id, "type": repo.repo_type}, "topReactions": [],
            "numComments": sum(1 for e in d.events if e["type"] == "comment")}


async def discussions(call: Call) -> web.StreamResponse:
    repo = call.repo
    assert repo is not None
    if call.request.method == "POST":
        return await create_discussion(call)
    q = call.request.query
    kind, status, author = q.get("type", "all"), q.get("status", "all"), q.get("author")
    found = [d for d in reversed(repo.discussions)
             if (kind == "all" or d.is_pr == (kind == "pull_request"))
             and (status == "all" or (d.status in ("open", "draft")) == (status == "open"))
             and (author is None or d.author == author)]
    start = int(q.get("p", "0")) * DISCUSSIONS_PAGE
    return web.json_response({
        "discussions": [discussion_json(repo, d) for d in found[start:start + DISCUSSIONS_PAGE]],
        "count": len(found), "start": start,
        "numClosedDiscussions": sum(1 for d in found if d.status in ("closed", "merged"))})


async def create_discussion(call: Call) -> web.StreamResponse:
    repo = call.repo
    assert repo is not None
    if (missing := call.need_user()) is not None:
        return missing
    assert call.user is not None
    payload = await read_json(call.request)
    title = (payload.get("title") or "").strip()
    if len(title) < 3:
        return error(400, "Title is too short (minimum 3 characters)")
    if payload.get("pullRequest"):
        d = open_pr(repo, call.user, title, payload.get("description", ""), base="main",
                    start=repo.branches["main"], status="draft")
    else:
        d = Discussion(len(repo.discussions) + 1, title, call.user, False, "open", now_iso())
        d.events.append(comment_event(call.user, payload.get("description", "")))
        repo.discussions.append(d)
    return web.json_response({"num": d.num, "pullRequest": d.is_pr, "url": discussion_url(call, d)})


def discussion_url(call: Call, d: Discussion) -> str:
    assert call.repo is not None
    return f"{call.endpoint}/{call.repo.url_path}/discussions/{d.num}"


def pr_changes(repo: Repo, pr: Discussion) -> tuple[dict[str, bytes], dict[str, bytes | None]]:
    """The files at the start of the pull request, and what it changed (None = deleted)."""
    assert pr.start_oid is not None
    start = repo.commits[pr.start_oid].files
    head = repo.commits[repo.pr_heads[pr.num]].files
    changed: dict[str, bytes | None] = {p: head.get(p) for p in set(start) | set(head)
                                        if start.get(p) != head.get(p)}
    return start, changed


def pr_conflicts(repo: Repo, pr: Discussion) -> list[str]:
    if pr.status not in ("open", "draft") or pr.base_ref is None:
        return []
    start, changed = pr_changes(repo, pr)
    target = repo.resolve(pr.base_ref)
    if target is None:
        return sorted(changed)
    return sorted(p for p, new in changed.items()
                  if target.files.get(p) != start.get(p) and target.files.get(p) != new)


def pr_diff(repo: Repo, pr: Discussion) -> str:
    start, changed = pr_changes(repo, pr)
    out: list[str] = []
    for path in sorted(changed):
        old, new = start.get(path), changed[path]
        out.append(f"diff --git a/{path} b/{path}\n")
        if (old and is_lfs(old)) or (new and is_lfs(new)):
            out.append(f"Binary files a/{path} and b/{path} differ\n")
            continue
        out.extend(difflib.unified_diff(
            (old or b"").decode("utf-8", "replace").splitlines(keepends=True),
            (new or b"").decode("utf-8", "replace").splitlines(keepends=True),
            f"a/{path}" if old is not None else "/dev/null", f"b/{path}" if new is not None else "/dev/null"))
    return "".join(out)


async def discussion_details(call: Call, num: int) -> web.StreamResponse:
    repo = call.repo
    assert repo is not None
    d = repo.discussion(num)
    if d is None:
        return error(404, "Discussion not found")
    body = {**discussion_json(repo, d), "events": d.events, "locked": False}
    if d.is_pr:
        body["changes"] = {"base": d.base_ref, **({"mergeCommitId": d.merge_oid} if d.merge_oid else {})}
        body["filesWithConflicts"] = pr_conflicts(repo, d)
        if call.request.query.get("diff") == "1":
            body["diff"] = pr_diff(repo, d)
    return web.json_response(body)


async def discussion_action(call: Call, num: int, action: str) -> web.StreamResponse:
    repo = call.repo
    assert repo is not None
    if (missing := call.need_user()) is not None:
        return missing
    assert call.user is not None
    d = repo.discussion(num)
    if d is None:
        return error(404, "Discussion not found")
    payload = await read_json(call.request)
    if action == "comment":
        text = (payload.get("comment") or "").strip()
        if not text:
            return error(400, "Comment cannot be empty")
        d.events.append(comment_event(call.user, text))
        return web.json_response({"newMessage": d.events[-1]})
    if action == "status":
        return change_status(call, d, payload)
    if action == "merge":
        return merge(call, d, payload)
    return error(404, f"Unknown action {action}")


def change_status(call: Call, d: Discussion, payload: dict[str, Any]) -> web.StreamResponse:
    assert call.repo is not None and call.user is not None
    if not (call.repo.can_write or d.author == call.user):
        return forbidden("Only the author or a repo writer can change the status of this discussion")
    new = payload.get("status")
    if new not in ("open", "closed"):
        return error(400, "Status must be open or closed")
    if d.status == "merged":
        return error(400, "This pull request is already merged")
    if payload.get("comment"):
        d.events.append(comment_event(call.user, payload["comment"]))
    d.status = new
    d.events.append(event("status-change", call.user, {"status": new}))
    return web.json_response({"newStatus": d.events[-1]})


def merge(call: Call, pr: Discussion, payload: dict[str, Any]) -> web.StreamResponse:
    repo, user = call.repo, call.user
    assert repo is not None and user is not None
    if not repo.can_write:
        return forbidden(f"You don't have the rights to merge pull requests in {repo.repo_id}")
    if not pr.is_pr:
        return error(400, "This discussion is not a pull request")
    if pr.status not in ("open", "draft"):
        return error(400, f"This pull request is {pr.status}")
    _, changed = pr_changes(repo, pr)
    if not changed:
        return error(400, "This pull request has no changes to merge")
    if conflicts := pr_conflicts(repo, pr):
        return error(409, f"Cannot merge: conflicting files: {', '.join(conflicts)}")
    assert pr.base_ref is not None
    target = pr.base_ref.removeprefix("refs/heads/")
    head = repo.head(target)
    files = {**head.files, **{p: b for p, b in changed.items() if b is not None}}
    files = {p: b for p, b in files.items() if changed.get(p, b) is not None}
    new = repo.add_commit(head, files, f"{pr.title} (#{pr.num})", "", user,
                          extra_parents=(repo.pr_heads[pr.num],))
    repo.branches[target] = new.oid
    if payload.get("comment"):
        pr.events.append(comment_event(user, payload["comment"]))
    pr.status, pr.merge_oid = "merged", new.oid
    pr.events.append(event("status-change", user, {"status": "merged"}))
    return web.json_response({})


# ---------------------------------------------------------------- repository creation and settings

async def settings(call: Call) -> web.StreamResponse:
    repo = call.repo
    assert repo is not None
    if (denied := call.need_write()) is not None:
        return denied
    payload = await read_json(call.request)
    if "visibility" in payload:
        if payload["visibility"] not in ("public", "private"):
            return error(400, "Invalid visibility")
        repo.private = payload["visibility"] == "private"
    if "gated" in payload:
        repo.gated = payload["gated"]
    return web.json_response({})


async def create_repo(call: Call) -> web.StreamResponse:
    if (missing := call.need_user()) is not None:
        return missing
    payload = await read_json(call.request)
    repo_type = payload.get("type") or "model"
    namespace = payload.get("organization") or call.user
    repo_id = f"{namespace}/{payload['name']}"
    url = f"{call.endpoint}/{PREFIX.get(repo_type, '')}{repo_id}"
    if repo_type not in PREFIX:
        return error(400, f"Invalid repo type {repo_type}")
    if namespace not in call.store.namespaces | {call.user}:
        return forbidden(f'You don\'t have the rights to create a {repo_type} under the namespace "{namespace}"')
    if call.store.get(repo_type, repo_id) is not None:
        return web.json_response({"error": f"You already created this {repo_type} repo", "url": url},
                                 status=409, headers={"X-Error-Message": f"You already created this {repo_type} repo"})
    if repo_type == "space" and payload.get("sdk") not in ("gradio", "streamlit", "docker", "static"):
        return error(400, "A Space needs an sdk")
    call.store.add(repo_id, repo_type, private=payload.get("visibility") == "private",
                   sdk=payload.get("sdk"))
    return web.json_response({"url": url, "name": repo_id, "id": new_id()})


async def validate_yaml(call: Call) -> web.StreamResponse:
    payload = await read_json(call.request)
    content = payload.get("content", "")
    m = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.S)
    if m is None:
        return web.json_response({"errors": [], "warnings": []})
    try:
        meta = yaml.safe_load(m[1])
    except yaml.YAMLError as exc:
        return web.json_response({"errors": [{"message": f"Invalid YAML: {exc}"}], "warnings": []}, status=400)
    if meta is not None and not isinstance(meta, dict):
        return web.json_response({"errors": [{"message": "Metadata must be a mapping"}], "warnings": []},
                                 status=400)
    return web.json_response({"errors": [], "warnings": []})


# ---------------------------------------------------------------- routing

REPO_API = re.compile(r"^/api/(models|datasets|spaces)/([^/]+)/([^/]+)(?:/(.*))?$")
RESOLVE = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+)/([^/]+)/resolve/([^/]+)/(.+)$")


def route_repo_api(method: str, rest: list[str]) -> Callable[[Call], Awaitable[web.StreamResponse]] | None:
    """Maps the part of the path after `/api/{type}s/{namespace}/{name}` to a handler."""
    head, args = (rest[0] if rest else ""), rest[1:]
    table: dict[tuple[str, str], Callable[[Call], Awaitable[web.StreamResponse]] | None] = {
        ("GET", ""): lambda c: repo_info(c),
        ("GET", "revision"): (lambda c: repo_info(c, unquote(args[0]))) if len(args) == 1 else None,
        ("GET", "tree"): (lambda c: tree(c, args)) if args else None,
        ("POST", "paths-info"): (lambda c: paths_info(c, unquote(args[0]))) if len(args) == 1 else None,
        ("POST", "preupload"): (lambda c: preupload(c, unquote(args[0]))) if len(args) == 1 else None,
        ("POST", "commit"): (lambda c: commit(c, unquote(args[0]))) if len(args) == 1 else None,
        ("GET", "refs"): (lambda c: refs(c)) if not args else None,
        ("POST", "branch"): (lambda c: branch(c, unquote(args[0]))) if len(args) == 1 else None,
        ("DELETE", "branch"): (lambda c: branch(c, unquote(args[0]))) if len(args) == 1 else None,
        ("POST", "tag"): (lambda c: tag(c, unquote(args[0]))) if len(args) == 1 else None,
        ("DELETE", "tag"): (lambda c: tag(c, unquote(args[0]))) if len(args) == 1 else None,
        ("PUT", "settings"): (lambda c: settings(c)) if not args else None,
    }
    if head == "discussions":
        return route_discussions(method, args)
    return table.get((method, head))


def route_discussions(method: str, args: list[str]) -> Callable[[Call], Awaitable[web.StreamResponse]] | None:
    if not args and method in ("GET", "POST"):
        return lambda c: discussions(c)
    if not args or not args[0].isdigit():
        return None
    num = int(args[0])
    if len(args) == 1 and method == "GET":
        return lambda c: discussion_details(c, num)
    if len(args) == 2 and method == "POST" and args[1] in ("comment", "status", "merge"):
        return lambda c: discussion_action(c, num, args[1])
    return None


def match(request: web.Request) -> tuple[Callable[[Call], Awaitable[web.StreamResponse]],
                                         tuple[str, str] | None] | None:
    path, method = request.raw_path.split("?", 1)[0], request.method
    if m := REPO_API.match(path):
        fn = route_repo_api(method, m[4].split("/") if m[4] else [])
        return (fn, (PLURAL[m[1]], f"{unquote(m[2])}/{unquote(m[3])}")) if fn else None
    if (m := RESOLVE.match(path)) and method in ("GET", "HEAD"):
        repo_type = PLURAL[m[1]] if m[1] else "model"
        rev, file = unquote(m[4]), unquote(m[5])
        return (lambda c: resolve_file(c, rev, file)), (repo_type, f"{unquote(m[2])}/{unquote(m[3])}")
    fixed = {("POST", "/api/repos/create"): create_repo, ("POST", "/api/validate-yaml"): validate_yaml}
    fn = fixed.get((method, path))
    return (fn, None) if fn else None


def add_routes(app: web.Application, hub: HubStandIn) -> None:
    store = repo_store(hub)

    @web.middleware
    async def repos_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        found = match(request)
        if found is None:
            return await handler(request)
        fn, key = found
        repo = store.get(*key) if key else None
        routed_elsewhere = request.match_info.http_exception is None
        if routed_elsewhere and repo is None:
            return await handler(request)
        user = hub.user if hub.authorized(request) else None
        if user is None and "Authorization" in request.headers:
            return error(401, "Invalid credentials in Authorization header")
        if key is not None and (repo is None or (repo.private and user is None)):
            return repo_not_found(user is not None)
        return await fn(Call(hub, store, request, repo, user))

    app.middlewares.append(repos_middleware)
