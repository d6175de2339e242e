"""Code from the sandbox for a job: read once when the approval card is prepared, exactly as it will run.

`take(ctx, path)` asks the session's sandbox server for a file or a folder (`POST /snapshot`) and keeps
the bytes. What can travel: regular UTF-8 text files, at most 200 of them and 20 MB in all, none over
10 MB (the Hub stores larger files through LFS, which the runs repo does not use), no link leaving the
tree. Folders that tools generate (`__pycache__`, `.git`, …) are left out and said so. Anything else is
an argument error that names the files to trim, and nothing is posted, committed or launched.

A file that holds a secret (a known token value, or what the redactor recognises as a credential) is
refused too: the snapshot is stored with the approval and committed as it is, so a secret in it would
end up in the database and in the runs repo. Jobs read secrets from their environment (HF_TOKEN is
injected).

The snapshot is what the card lists (path, size, sha256) and what the spec hash covers; after approval
exactly these bytes are committed, whatever happened in the sandbox meanwhile.
"""

from __future__ import annotations

import ast
import asyncio
import posixpath
from typing import TYPE_CHECKING, Any

from intern.agent.code_files import CodeSnapshot, SnapshotFile, size_text
from intern.agent.errors import ToolArgumentError

if TYPE_CHECKING:
    from intern.agent.context_deps import ToolContext

MAX_FILES = 200
MAX_BYTES = 20 * 1024 * 1024
MAX_FILE_BYTES = 10 * 1024 * 1024  # above this the Hub takes a file only through LFS
MOUNT = "/project"
TRIM_HINT = ("Move what the job does not need (data, checkpoints, outputs, environments) out of the folder — jobs "
             "load data and models from the Hub — or point sandbox_path at a subfolder with only the code.")


# ---------------------------------------------------------------- reading the sandbox

async def take(ctx: ToolContext, path: str) -> CodeSnapshot:
    """The file or folder at `path` in this session's sandbox, checked against the limits and for secrets."""
    from intern.agent.tools.sandbox import call

    body, _ = await call(ctx, "snapshot", {"path": path, "max_files": MAX_FILES, "max_bytes": MAX_BYTES},
                         wait_seconds=120.0, new_sandbox=False)
    snapshot = _checked(body)
    # Scanning 20 MB for secrets takes a second or two of CPU: off the event loop, which keeps serving.
    await asyncio.to_thread(refuse_secrets, ctx, snapshot)
    return snapshot


def _checked(body: dict[str, Any]) -> CodeSnapshot:
    root, kind = str(body.get("path") or ""), body.get("kind")
    entries: list[dict[str, Any]] = list(body.get("files") or [])
    if not body.get("complete"):
        raise ToolArgumentError(_over_limits(root, body))
    if kind == "folder" and not entries:
        raise ToolArgumentError(f"sandbox_path {root} is an empty folder: there is no code to run. Nothing was "
                                "posted, committed or launched.")
    problems = [p for p in (_problem_line(e) for e in entries) if p]
    big = [e for e in entries if "problem" not in e and int(e.get("size") or 0) > MAX_FILE_BYTES]
    if big:
        problems.append("Files over 10 MB (the Hub keeps those only through LFS): " + _names(big)
                        + ". Put data on the Hub and load it from there.")
    if problems:
        raise ToolArgumentError(f"sandbox_path {root} cannot be sent to a job as it is:\n- " + "\n- ".join(problems)
                                + "\nNothing was posted, committed or launched.")
    files = tuple(SnapshotFile(str(e["path"]).replace("\\", "/"), str(e["content"]).encode("utf-8"))
                  for e in sorted(entries, key=lambda e: str(e["path"])))
    return CodeSnapshot(root, "file" if kind == "file" else "folder", files, tuple(body.get("skipped") or ()))


def _over_limits(root: str, body: dict[str, Any]) -> str:
    count, size = int(body.get("count") or 0), int(body.get("bytes") or 0)
    top = sorted((body.get("top") or {}).items(), key=lambda kv: (kv[1][1], kv[1][0]), reverse=True)
    where = ", ".join(f"{name} ({n} file{'s' if n != 1 else ''}, {size_text(b)})" for name, (n, b) in top[:6])
    return (f"sandbox_path {root} holds {count:,} files, {size_text(size)} in all; a job takes at most {MAX_FILES} "
            f"files and {size_text(MAX_BYTES)} of text. Largest parts: {where or 'n/a'}. {TRIM_HINT} Nothing was "
            "posted, committed or launched.")


def _names(entries: list[dict[str, Any]], limit: int = 8) -> str:
    shown = [f"{e['path']} ({size_text(int(e.get('size') or 0))})" for e in entries[:limit]]
    more = f" and {len(entries) - limit} more" if len(entries) > limit else ""
    return ", ".join(shown) + more


def _problem_line(entry: dict[str, Any]) -> str | None:
    problem, path = entry.get("problem"), entry.get("path")
    if problem is None:
        return None
    if problem == "binary":
        return (f"{path} ({size_text(int(entry.get('size') or 0))}) is binary or not UTF-8 text: delete it or move "
                "it out; upload data and weights to a Hub repo and load them from there")
    if problem == "link_outside":
        return f"{path} is a link to {entry.get('target')}, outside the folder: copy what it points to, or remove it"
    if problem == "link_to_folder":
        return f"{path} is a link to a folder ({entry.get('target')}): links to folders are not followed"
    if problem == "special":
        return f"{path} is not a regular file (a socket, pipe or device): remove it"
    return f"{path} cannot be read ({entry.get('detail') or problem})"


def refuse_secrets(ctx: ToolContext, snapshot: CodeSnapshot) -> None:
    from intern.agent.guardrails.redaction import Redactor

    token = ctx.hub.token_for_job_secrets()
    redactor = ctx.deps.redactor or Redactor([token] if token else [])
    found: list[str] = []
    for f in snapshot.files:
        text = f.text
        if (token and token in f.path) or redactor.redact(f.path) != f.path:
            found.append(f"the name {redactor.redact(f.path)!r}")
            continue
        if (token and token in text) or redactor.redact(text) != text:
            lines = [str(i) for i, line in enumerate(text.splitlines(), 1)
                     if (token and token in line) or redactor.redact(line) != line]
            found.append(f"{f.path}" + (f" (line {', '.join(lines[:5])})" if lines else ""))
    if found:
        raise ToolArgumentError(
            "These files hold what looks like a secret (a token, key or password): " + ", ".join(found)
            + ". Intern does not commit secrets: read them from the environment in the job (HF_TOKEN is injected "
            "by Intern; other values go in `env` only when they are not secret). Nothing was posted, committed "
            "or launched.")


# ---------------------------------------------------------------- the entry and what it imports

def entry_of(snapshot: CodeSnapshot, script: str | None, command: list[str] | None) -> SnapshotFile | None:
    """The file the job starts: the file itself, `script` in the folder, or a snapshot file the command names."""
    if snapshot.kind == "file":
        only = snapshot.files[0]
        if script is not None and normalized(script) != only.path:
            raise ToolArgumentError(f"sandbox_path {snapshot.root} is a file, so it is the entry; `script` "
                                    f"({script!r}) must be left out or be {only.path!r}.")
        return only
    if script is not None:
        found = snapshot.get(normalized(script))
        if found is None:
            py = [f.path for f in snapshot.files if f.path.endswith(".py")][:20]
            raise ToolArgumentError(f"`script` {script!r} is not a file of sandbox_path {snapshot.root} (it names "
                                    f"the entry relative to the folder). Python files there: {', '.join(py) or 'none'}.")
        return found
    if not command:
        raise ToolArgumentError(f"sandbox_path {snapshot.root} is a folder: name the entry file in `script` "
                                "(relative to the folder), or give a `command` to run in /project.")
    for word in command:
        hit = snapshot.get(normalized(word.removeprefix(MOUNT + "/")))
        if hit is not None and hit.path.endswith(".py"):
            return hit
    return None


def normalized(path: str) -> str:
    return posixpath.normpath(path.strip().removeprefix("./")).lstrip("/")


def local_modules(snapshot: CodeSnapshot, entry: SnapshotFile) -> dict[str, str]:
    """Source of the snapshot's modules the entry imports, directly or through each other (path -> text)."""
    base = posixpath.dirname(entry.path)
    found: dict[str, str] = {}
    todo = [entry]
    while todo:
        current = todo.pop()
        for name in _imports(current.text):
            for candidate in _module_paths(base, name):
                hit = snapshot.get(candidate)
                if hit is not None and hit.path != entry.path and hit.path not in found:
                    found[hit.path] = hit.text
                    todo.append(hit)
    return found


def _imports(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def _module_paths(base: str, module: str) -> list[str]:
    parts = module.split(".")
    out = []
    for depth in range(1, len(parts) + 1):
        stem = posixpath.join(base, *parts[:depth])
        out += [stem + ".py", stem + "/__init__.py"]
    return out

