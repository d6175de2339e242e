"""Intern's sandbox exec server. It runs inside a private Hugging Face Space (Docker SDK), one per
chat session, and lets the agent run commands and read, write and edit files there.

HTTP with JSON bodies, standard library only: nothing to install, nothing to break at build time.
Every request except `GET /health` must carry the sandbox's own random token in the header
`X-Intern-Sandbox-Token`, checked before the body is read. The token arrives as the Space secret
INTERN_SANDBOX_TOKEN. Taking it out of `os.environ` would not be enough: the kernel keeps the
environment the process started with, readable by the commands in /proc/<server pid>/environ. So the
server starts itself again (the same process, a new program) with the token out of its environment,
handed over through a pipe that is read once and closed; it also makes itself non-dumpable, which
puts its /proc files and memory out of reach of a process of the same user that is not root. The
write token of the Hub is never given here; the read-only one may be, as HF_TOKEN.

    POST /bash  {command, timeout}                      -> {exit_code, output, timed_out, seconds, output_bytes}
    POST /read  {path, offset, limit}                   -> {path, content, start, end, total_lines, next_offset}
    POST /write {path, content}                         -> {path, bytes, created}
    POST /edit  {path, old_str, new_str, replace_all}   -> {path, replacements, match, snippet}
    POST /snapshot {path, max_files, max_bytes}         -> {path, kind, files, skipped, count, bytes, complete}

`/snapshot` lists a file or a folder for a job to run (see `Snapshot`): every entry with its size and,
when the whole tree is within the limits, the text of each regular UTF-8 file; entries that cannot
travel (binary, a link leaving the tree, a special file) are marked with the problem instead.

A file that exists must have been read (and not changed since) before it is overwritten or edited.
Writes are atomic: a temporary file in the same folder, flushed, then renamed over the target.
A command that runs past its timeout is killed with everything it started (its process group, and
any descendant that left the group).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from intern_edit import EditError, apply_edit  # shipped beside this file

TOKEN_ENV = "INTERN_SANDBOX_TOKEN"
TOKEN_FD_ENV = "INTERN_SANDBOX_TOKEN_FD"  # set only by the server for its own second start
PR_SET_DUMPABLE = 4
TOKEN_HEADER = "X-Intern-Sandbox-Token"
OUTPUT_LIMIT = 25_000  # characters of command output or file text in one answer
OUTPUT_HEAD = 10_000  # of which the start; the end of an output usually holds the error
MAX_TIMEOUT = 3600
MAX_BODY = 64 * 1024 * 1024
MAX_READ_BYTES = 64 * 1024 * 1024
LINE_LIMIT = 2000  # characters shown of one line
DEFAULT_READ_LINES = 2000
KILL_GRACE = 2.0


class Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ---------------------------------------------------------------- commands

class Commands:
    """Runs commands; remembers every process group it started, so shutdown can end them all."""

    def __init__(self, workdir: str, env: dict[str, str]) -> None:
        self.workdir, self.env = workdir, env
        self.groups: set[int] = set()
        self.lock = threading.Lock()

    def run(self, command: str, timeout: float) -> dict[str, Any]:
        started = time.monotonic()
        with tempfile.TemporaryFile() as out:
            proc = subprocess.Popen(["bash", "-c", command], cwd=self.workdir, env=self.env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            with self.lock:
                self.groups.add(proc.pid)
            timed_out = False
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_tree(proc)
            text, size = clipped_output(out)
        return {"exit_code": proc.returncode, "output": text, "timed_out": timed_out,
                "seconds": round(time.monotonic() - started, 3), "output_bytes": size}

    def shutdown(self) -> None:
        with self.lock:
            groups = list(self.groups)
        for pgid in groups:
            signal_group(pgid, signal.SIGKILL)


def descendants(root: int) -> list[int]:
    """Every living descendant of `root`, found through /proc (empty where there is no /proc)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1].isdigit():
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def signal_pids(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the group and to descendants that left it, a short grace, then SIGKILL to all."""
    family = descendants(proc.pid)
    signal_group(proc.pid, signal.SIGTERM)
    signal_pids(family, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE
    while time.monotonic() < deadline and (proc.poll() is None or any(alive(p) for p in family)):
        time.sleep(0.05)
    family += [p for p in descendants(proc.pid) if p not in family]
    signal_group(proc.pid, signal.SIGKILL)
    signal_pids(family, signal.SIGKILL)
    proc.wait()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def clipped_output(fh: Any) -> tuple[str, int]:
    """The output, or its head and tail with a note when it is longer than OUTPUT_LIMIT characters."""
    size = fh.seek(0, os.SEEK_END)
    tail_chars = OUTPUT_LIMIT - OUTPUT_HEAD
    fh.seek(0)
    if size <= OUTPUT_LIMIT * 4:
        text = fh.read().decode("utf-8", "replace")
        if len(text) <= OUTPUT_LIMIT:
            return text, size
        head, tail = text[:OUTPUT_HEAD], text[-tail_chars:]
        omitted = f"{len(text) - OUTPUT_HEAD - tail_chars:,} characters"
    else:
        head = fh.read(OUTPUT_HEAD * 4).decode("utf-8", "replace")[:OUTPUT_HEAD]
        fh.seek(size - tail_chars * 4)
        tail = fh.read().decode("utf-8", "replace")[-tail_chars:]
        omitted = f"about {size - len(head.encode()) - len(tail.encode()):,} bytes"
    note = (f"\n\n[... output cut: {omitted} omitted from the middle ({size:,} bytes in all). Send long "
            "output to a file and look at parts of it (grep, tail, or a read with offset) ...]\n\n")
    return head + note + tail, size


# ---------------------------------------------------------------- files

class Files:
    """Paths resolve against the work folder. Remembers what was read (by content hash) per path."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.seen: dict[str, str] = {}
        self.lock = threading.Lock()

    def resolve(self, path: str) -> str:
        if not isinstance(path, str) or not path.strip():
            raise Refusal(400, "path is required")
        return os.path.realpath(os.path.join(self.workdir, os.path.expanduser(path.strip())))

    def read(self, path: str, offset: int, limit: int) -> dict[str, Any]:
        full = self.resolve(path)
        data = self._bytes(full)
        with self.lock:
            self.seen[full] = digest(data)
        if b"\x00" in data[:8192]:
            raise Refusal(400, f"{full} is a binary file ({len(data):,} bytes); inspect it with a command "
                               "(file, xxd | head, python) instead.")
        return page(full, data.decode("utf-8", "replace"), offset, limit)

    def write(self, path: str, content: str) -> dict[str, Any]:
        full = self.resolve(path)
        data = content.encode("utf-8")
        with self.lock:
            created = not os.path.lexists(full)
            if not created:
                self._check_read(full, self._bytes(full))
            atomic_write(full, data)
            self.seen[full] = digest(data)
        return {"path": full, "bytes": len(data), "created": created}

    def edit(self, path: str, old: str, new: str, replace_all: bool) -> dict[str, Any]:
        full = self.resolve(path)
        with self.lock:
            if not os.path.exists(full):
                raise Refusal(404, f"{full} does not exist. To create a file, write it.")
            data = self._bytes(full)
            self._check_read(full, data)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise Refusal(400, f"{full} is not UTF-8 text; change it with a command instead.") from None
            try:
                result = apply_edit(text, old, new, replace_all=replace_all)
            except EditError as exc:
                raise Refusal(422, str(exc)) from None
            out = result.text.encode("utf-8")
            atomic_write(full, out)
            self.seen[full] = digest(out)
        return {"path": full, "replacements": result.count, "match": result.how,
                "snippet": snippet(result.text, result.lines[0], result.new_lines)}

    def _bytes(self, full: str) -> bytes:
        if os.path.isdir(full):
            raise Refusal(400, f"{full} is a folder; list it with a command (ls -la).")
        try:
            size = os.path.getsize(full)
            if size > MAX_READ_BYTES:
                raise Refusal(413, f"{full} is {size:,} bytes, too large to handle whole; use head, tail, "
                                   "sed -n or grep in a command.")
            with open(full, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise Refusal(404, f"{full} does not exist.") from None
        except PermissionError:
            raise Refusal(403, f"{full} cannot be read (permission denied).") from None

    def _check_read(self, full: str, current: bytes) -> None:
        known = self.seen.get(full)
        if known is None:
            raise Refusal(409, f"{full} exists and has not been read in this sandbox yet. Read it first, "
                               "then write or edit it.")
        if known != digest(current):
            raise Refusal(409, f"{full} has changed since it was last read (a command may have modified it). "
                               "Read it again, then write or edit it.")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write(full: str, data: bytes) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename it over the target:
    a reader sees the old file or the new one, never a part."""
    folder = os.path.dirname(full)
    os.makedirs(folder, exist_ok=True)
    try:
        mode: int | None = os.stat(full).st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(full)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, full)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def numbered(number: int, line: str) -> str:
    if len(line) > LINE_LIMIT:
        line = line[:LINE_LIMIT] + f" ... [{len(line) - LINE_LIMIT:,} more characters on this line]"
    return f"{number:6d}\t{line}"


def split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def page(full: str, text: str, offset: int, limit: int) -> dict[str, Any]:
    lines = split_lines(text)
    total = len(lines)
    if total and offset > total:
        raise Refusal(400, f"offset {offset} is past the end: {full} has {total} lines.")
    out: list[str] = []
    size, end = 0, offset - 1
    for number in range(offset, min(total, offset + limit - 1) + 1):
        row = numbered(number, lines[number - 1])
        if out and size + len(row) + 1 > OUTPUT_LIMIT:
            break
        out.append(row)
        size += len(row) + 1
        end = number
    return {"path": full, "content": "\n".join(out), "start": offset, "end": end, "total_lines": total,
            "next_offset": end + 1 if end < total else None}


def snippet(text: str, first_line: int, count: int, context: int = 3) -> str:
    lines = split_lines(text)
    lo, hi = max(1, first_line - context), min(len(lines), first_line + count - 1 + context)
    return "\n".join(numbered(n, lines[n - 1]) for n in range(lo, hi + 1))


# ---------------------------------------------------------------- snapshots of code for a job

SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".ipynb_checkpoints", ".mypy_cache", ".pytest_cache",
                          ".ruff_cache"})  # generated by tools, never part of a project


class Snapshot:
    """A file or a folder as a job would get it. Entries are read only when the tree is within the
    limits (counted from the directory listing first, so a folder of checkpoints is never read whole)."""

    def __init__(self, files: Files) -> None:
        self.files = files

    def take(self, path: str, max_files: int, max_bytes: int) -> dict[str, Any]:
        root = self.files.resolve(path)
        if not os.path.lexists(root):
            raise Refusal(404, f"{root} does not exist.")
        if os.path.isdir(root):
            entries, skipped = self._walk(root)
            kind = "folder"
        else:
            entries, skipped, kind = [self._entry(os.path.dirname(root), root)], [], "file"
        count, size = len(entries), sum(e["size"] for e in entries)
        complete = count <= max_files and size <= max_bytes
        if complete:
            for entry in entries:
                if "problem" not in entry:
                    self._read(os.path.join(os.path.dirname(root) if kind == "file" else root, entry["path"]),
                               entry)
        top: dict[str, list[int]] = {}
        if not complete:
            for entry in entries:  # where the files are, by top-level folder, to say what to trim
                head = entry["path"].split(os.sep)[0] + ("/" if os.sep in entry["path"] else "")
                top.setdefault(head, [0, 0])
                top[head][0] += 1
                top[head][1] += entry["size"]
            entries.sort(key=lambda e: e["size"], reverse=True)
            entries = entries[:20]
        return {"path": root, "kind": kind, "files": entries, "skipped": skipped, "count": count, "bytes": size,
                "complete": complete, "top": top}

    def _walk(self, root: str) -> tuple[list[dict[str, Any]], list[str]]:
        entries: list[dict[str, Any]] = []
        skipped: list[str] = []
        for folder, dirs, names in os.walk(root):
            linked = [d for d in dirs if os.path.islink(os.path.join(folder, d))]  # listed, never followed
            skipped += [os.path.relpath(os.path.join(folder, d), root) + "/" for d in sorted(dirs)
                        if d in SKIPPED_DIRS and d not in linked]
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and d not in linked)
            for name in sorted(names + linked):
                entries.append(self._entry(root, os.path.join(folder, name)))
        return entries, skipped

    def _entry(self, root: str, full: str) -> dict[str, Any]:
        rel = os.path.relpath(full, root)
        if os.path.islink(full):
            target = os.path.realpath(full)
            inside = target == root or target.startswith(root.rstrip(os.sep) + os.sep)
            if not inside:
                return {"path": rel, "size": 0, "problem": "link_outside", "target": target}
            if os.path.isdir(target):
                return {"path": rel, "size": 0, "problem": "link_to_folder", "target": target}
        try:
            st = os.stat(full)
        except OSError as exc:
            return {"path": rel, "size": 0, "problem": "unreadable", "detail": exc.strerror or str(exc)}
        if not stat.S_ISREG(st.st_mode):
            return {"path": rel, "size": 0, "problem": "special"}
        return {"path": rel, "size": st.st_size}

    @staticmethod
    def _read(full: str, entry: dict[str, Any]) -> None:
        try:
            with open(full, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            entry.update(problem="unreadable", detail=exc.strerror or str(exc))
            return
        entry["size"] = len(data)
        if b"\x00" in data:
            entry["problem"] = "binary"
            return
        try:
            entry["content"] = data.decode("utf-8")
        except UnicodeDecodeError:
            entry["problem"] = "binary"


# ---------------------------------------------------------------- HTTP

class Handler(BaseHTTPRequestHandler):
    server_version = "intern-sandbox/1"
    protocol_version = "HTTP/1.1"
    token = ""
    files: Files
    commands: Commands

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def do_GET(self) -> None:
        if self.path in ("/", "/health"):
            self.reply(200, {"ok": True})
        else:
            self.reply(404, {"error": f"no route GET {self.path}"})

    def do_POST(self) -> None:
        try:
            if not self.authorized():
                # Nothing of the body is read for a caller without the token: the connection is dropped.
                self.close_connection = True
                raise Refusal(401, "missing or wrong sandbox token")
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.close_connection = True
                raise Refusal(413, f"request body over {MAX_BODY:,} bytes")
            body = self.rfile.read(length) if length else b""
            self.reply(200, self.route(self.path, parse(body)))
        except Refusal as exc:
            self.reply(exc.status, {"error": exc.message})
        except Exception as exc:  # the agent gets the reason, the server keeps serving
            self.reply(500, {"error": f"{type(exc).__name__}: {exc}"})

    def authorized(self) -> bool:
        given = self.headers.get(TOKEN_HEADER) or ""
        return bool(self.token) and hmac.compare_digest(given.encode(), self.token.encode())

    def route(self, path: str, req: dict[str, Any]) -> dict[str, Any]:
        if path == "/bash":
            return self.commands.run(text(req, "command"), timeout_of(req))
        if path == "/read":
            return self.files.read(text(req, "path"), number(req, "offset", 1), number(req, "limit", DEFAULT_READ_LINES))
        if path == "/write":
            return self.files.write(text(req, "path"), text(req, "content", allow_empty=True))
        if path == "/snapshot":
            return Snapshot(self.files).take(text(req, "path"), number(req, "max_files", 200),
                                             number(req, "max_bytes", 20 * 1024 * 1024))
        if path == "/edit":
            return self.files.edit(text(req, "path"), text(req, "old_str", allow_empty=True),
                                   text(req, "new_str", allow_empty=True), bool(req.get("replace_all", False)))
        raise Refusal(404, f"no route POST {path}")

    def reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:  # said, so that the client does not send its next request down it
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)


def parse(body: bytes) -> dict[str, Any]:
    try:
        req = json.loads(body or b"{}")
    except ValueError:
        raise Refusal(400, "the body is not JSON") from None
    if not isinstance(req, dict):
        raise Refusal(400, "the body must be a JSON object")
    return req


def text(req: dict[str, Any], key: str, *, allow_empty: bool = False) -> str:
    value = req.get(key)
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise Refusal(400, f"{key} must be a {'string' if allow_empty else 'non-empty string'}")
    return value


def number(req: dict[str, Any], key: str, default: int) -> int:
    value = req.get(key, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise Refusal(400, f"{key} must be a whole number of at least 1")
    return value


def timeout_of(req: dict[str, Any]) -> float:
    value = req.get("timeout", 120)
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= MAX_TIMEOUT:
        raise Refusal(400, f"timeout must be a number of seconds between 1 and {MAX_TIMEOUT}")
    return float(value)


def restart_without_token() -> None:
    """Run this program again in the same process with the token out of the environment the kernel
    keeps for it; the token follows through a pipe (written now, read by the new program)."""
    token = os.environ.pop(TOKEN_ENV)
    read_end, write_end = os.pipe()
    os.write(write_end, token.encode("utf-8"))
    os.close(write_end)
    os.set_inheritable(read_end, True)
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, TOKEN_FD_ENV: str(read_end)})


def token_from_pipe() -> str:
    fd = os.environ.pop(TOKEN_FD_ENV, "")
    if not fd.isdigit():
        return ""
    try:
        chunks = []
        while chunk := os.read(int(fd), 4096):
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8")
    except OSError:
        return ""
    finally:
        try:
            os.close(int(fd))
        except OSError:
            pass


def not_dumpable() -> None:
    """/proc/<pid>/environ, mem and the rest become root's: out of reach of the commands' user."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: nothing there to hide from


def main() -> int:
    if TOKEN_ENV in os.environ:
        restart_without_token()
    token = token_from_pipe()
    not_dumpable()
    if len(token) < 16:
        print(f"{TOKEN_ENV} is missing or too short: refusing to serve without a token.", file=sys.stderr)
        return 2
    workdir = os.path.abspath(os.environ.get("INTERN_SANDBOX_WORKDIR") or os.getcwd())
    os.makedirs(workdir, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    Handler.token = token
    Handler.files = Files(workdir)
    Handler.commands = Commands(workdir, env)
    host = os.environ.get("INTERN_SANDBOX_HOST", "0.0.0.0")
    port = int(os.environ.get("PORT", "7860"))
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True

    def stop(_sig: int, _frame: Any) -> None:
        Handler.commands.shutdown()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"intern sandbox serving on {host}:{port}, work folder {workdir}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        Handler.commands.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
