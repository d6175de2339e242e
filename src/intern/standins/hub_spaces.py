"""Hub stand-in: Spaces. The endpoints and JSON huggingface_hub 2.4.0 uses for `get_space_runtime`,
`add_space_secret` / `delete_space_secret`, `request_space_hardware`, `set_space_sleep_time`,
`restart_space`, `pause_space`, `delete_repo`, `list_spaces` and `list_spaces_hardware`; the Space's
repository itself (creation, commits, files) is held by `hub_repos`.

A Docker Space really runs here. When a commit lands on its `main`, the stand-in "builds" it from the
repository's files the way the Hub would fail it: the README front matter must say `sdk: docker`, the
Dockerfile must have a CMD, and every COPY source must be in the repository. It then writes the files
to a temporary folder and starts the CMD as a subprocess (`python` is this interpreter; there is no
image, so Dockerfile ENV lines are not applied), with the Space's secrets and variables, SPACE_ID and
SPACE_HOST in its environment, PORT set to a free loopback port and INTERN_SANDBOX_HOST=127.0.0.1 so
that the app listens on loopback only. The stage goes BUILDING → APP_STARTING → RUNNING once the port
accepts connections; a process that exits turns the stage to RUNTIME_ERROR with the end of its log in
`errorMessage`. A real runtime names the domain `<owner>-<name>.hf.space`; here it is `127.0.0.1:<port>`.

Changing secrets, hardware or restarting rebuilds a Space that has an app. Deleting it stops the process
(SIGTERM, then SIGKILL to its process group) and removes its folder; so does the stand-in's shutdown.

Test knobs on `SpacesState` (`spaces_state(hub)`): `fail_builds` hands stages and messages to the next
builds (e.g. `("BUILD_ERROR", "pip failed")`), `fail_deletes` makes that many deletions answer 500,
`fail_runtime` that many runtime reads answer 503, `build_seconds` keeps a build in BUILDING that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml  # type: ignore[import-untyped]
from aiohttp import web

from intern.standins.hub_core import auth_error, hub_error
from intern.standins.hub_jobs import HARDWARE, hardware_item
from intern.standins.hub_repos import error, now_iso, repo_not_found, repo_store

if TYPE_CHECKING:
    from intern.standins.hub import HubStandIn

# huggingface_hub's SpaceHardware values; ZeroGPU and cpu-basic cost nothing.
SPACE_FLAVORS = (
    "cpu-basic", "cpu-upgrade", "zero-a10g", "t4-small", "t4-medium", "l4x1", "l4x4", "l40sx1", "l40sx4",
    "l40sx8", "a10g-small", "a10g-large", "a10g-largex2", "a10g-largex4", "a100-large", "a100x4", "a100x8",
    "rtx-pro-6000", "rtx-pro-6000x2", "rtx-pro-6000x4", "rtx-pro-6000x8",
)
FREE_FLAVORS = frozenset({"cpu-basic", "zero-a10g"})
CPU_BASIC_SLEEP = 172800  # the Hub's fixed 48 h for free hardware
COMMIT = re.compile(r"^/api/spaces/([^/]+)/([^/]+)/commit/(.+)$")
LOG_TAIL = 2000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Space:
    space_id: str
    hardware: str = "cpu-basic"  # requested
    sleep_time: int | None = None
    secrets: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    stage: str = "NO_APP_FILE"
    current_hardware: str | None = None
    error: str | None = None
    port: int = field(default_factory=free_port)
    proc: asyncio.subprocess.Process | None = None
    folder: str | None = None
    log_path: str | None = None
    task: asyncio.Task[None] | None = None
    builds: int = 0

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    def runtime(self) -> dict[str, Any]:
        gc = self.sleep_time if self.sleep_time is not None else (
            CPU_BASIC_SLEEP if self.hardware == "cpu-basic" else None)
        body: dict[str, Any] = {
            "stage": self.stage, "hardware": {"current": self.current_hardware, "requested": self.hardware},
            "storage": None, "gcTimeout": gc,
            "replicas": {"requested": 1, **({"current": 1} if self.stage == "RUNNING" else {})},
            "devMode": False, "domains": [{"domain": self.domain, "stage": "READY"}],
        }
        if self.error:
            body["errorMessage"] = self.error
        return body


@dataclass
class SpacesState:
    spaces: dict[str, Space] = field(default_factory=dict)
    fail_builds: list[tuple[str, str]] = field(default_factory=list)
    fail_deletes: int = 0
    fail_runtime: int = 0
    build_seconds: float = 0.0
    start_timeout: float = 30.0

    def running(self) -> list[str]:
        return [s.space_id for s in self.spaces.values() if s.proc is not None and s.proc.returncode is None]


def spaces_state(hub: HubStandIn) -> SpacesState:
    return hub.state.setdefault("spaces", SpacesState())


# ---------------------------------------------------------------- building and running

def front_matter(readme: bytes) -> dict[str, Any]:
    m = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", readme.decode("utf-8", "replace"), re.S)
    if m is None:
        return {}
    try:
        meta = yaml.safe_load(m[1])
    except yaml.YAMLError:
        return {}
    return meta if isinstance(meta, dict) else {}


def dockerfile_lines(text: str) -> list[str]:
    joined = re.sub(r"\\\s*\n", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def build_problem(files: dict[str, bytes]) -> tuple[str, str] | None:
    """Why the Hub would refuse to build these files, or None."""
    meta = front_matter(files.get("README.md", b""))
    if meta.get("sdk") != "docker":
        return "CONFIG_ERROR", "README.md front matter must say `sdk: docker` for this Space"
    if "Dockerfile" not in files:
        return "BUILD_ERROR", "No Dockerfile found in the repository"
    lines = dockerfile_lines(files["Dockerfile"].decode("utf-8", "replace"))
    for line in lines:
        word, _, rest = line.partition(" ")
        if word.upper() in ("COPY", "ADD"):
            sources = [a for a in shlex.split(rest) if not a.startswith("--")][:-1]
            missing = [s for s in sources if s not in (".", "./") and not any(
                p == s.rstrip("/") or p.startswith(s.rstrip("/") + "/") for p in files)]
            if missing:
                return "BUILD_ERROR", f"COPY failed: file not found in build context: {missing[0]}"
    if command(files["Dockerfile"]) is None:
        return "BUILD_ERROR", "The Dockerfile has no CMD"
    return None


def command(dockerfile: bytes) -> list[str] | None:
    cmd = None
    for line in dockerfile_lines(dockerfile.decode("utf-8", "replace")):
        word, _, rest = line.partition(" ")
        if word.upper() == "CMD":
            rest = rest.strip()
            try:
                cmd = json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]
            except ValueError:
                return None
    if not cmd or not all(isinstance(a, str) for a in cmd):
        return None
    if cmd[0] in ("python", "python3"):
        cmd = [sys.executable, *cmd[1:]]
    return cmd


def log_tail(space: Space) -> str:
    if not space.log_path:
        return ""
    with contextlib.suppress(OSError), open(space.log_path, "rb") as fh:
        fh.seek(max(0, os.path.getsize(space.log_path) - LOG_TAIL))
        return fh.read().decode("utf-8", "replace").strip()
    return ""


async def stop_process(space: Space) -> None:
    proc, space.proc = space.proc, None
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout=5)
    except TimeoutError:
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


async def discard(space: Space) -> None:
    """What deleting or shutting down does to a Space: no process, no folder, no build."""
    task, space.task = space.task, None
    if task is not None and task is not asyncio.current_task():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    await stop_process(space)
    remove(space.folder, space.log_path)
    space.folder = space.log_path = None


def remove(*paths: str | None) -> None:
    for path in paths:
        if path and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif path:
            with contextlib.suppress(OSError):
                os.unlink(path)


async def build(hub: HubStandIn, state: SpacesState, space: Space) -> None:
    space.stage, space.error, space.current_hardware = "BUILDING", None, None
    space.builds += 1
    await asyncio.sleep(state.build_seconds)
    repo = repo_store(hub).get("space", space.space_id)
    if repo is None:
        return
    files = dict(repo.head().files)
    problem = state.fail_builds.pop(0) if state.fail_builds else build_problem(files)
    if problem is not None:
        space.stage, space.error = problem
        return
    argv = command(files["Dockerfile"])
    assert argv is not None
    await start(space, files, argv, state.start_timeout)


def materialise(files: dict[str, bytes]) -> str:
    """The repository's files in a fresh folder: what COPY would put in the image."""
    folder = tempfile.mkdtemp(prefix="intern-space-app-")
    for path, data in files.items():
        target = os.path.join(folder, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as fh:
            fh.write(data)
    return folder


async def start(space: Space, files: dict[str, bytes], argv: list[str], start_seconds: float) -> None:
    space.folder = materialise(files)
    fd, space.log_path = tempfile.mkstemp(prefix="intern-space-", suffix=".log")
    env = {**os.environ, **space.variables, **space.secrets, "PORT": str(space.port),
           "INTERN_SANDBOX_HOST": "127.0.0.1", "SPACE_ID": space.space_id, "SPACE_HOST": space.domain}
    space.stage = "APP_STARTING"
    with os.fdopen(fd, "wb") as log:
        proc = await asyncio.create_subprocess_exec(*argv, cwd=space.folder, env=env, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=log, stderr=asyncio.subprocess.STDOUT,
                                                    start_new_session=True)
    space.proc = proc
    if not await port_open(space, proc, start_seconds):
        await stop_process(space)
        space.stage, space.error = "RUNTIME_ERROR", f"The app did not start.\n{log_tail(space)}"
        return
    space.stage, space.current_hardware = "RUNNING", space.hardware
    code = await proc.wait()
    if space.proc is proc:  # not stopped on purpose
        space.proc = None
        space.stage, space.current_hardware = "RUNTIME_ERROR", None
        space.error = f"Exit code: {code}. Reason: {log_tail(space)}"


async def port_open(space: Space, proc: asyncio.subprocess.Process, wait_seconds: float) -> bool:
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while asyncio.get_running_loop().time() < deadline:
        if proc.returncode is not None:
            return False
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", space.port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False


async def rebuild(hub: HubStandIn, state: SpacesState, space: Space) -> None:
    await discard(space)
    space.task = asyncio.create_task(build(hub, state, space))


def has_app(hub: HubStandIn, space: Space) -> bool:
    repo = repo_store(hub).get("space", space.space_id)
    return repo is not None and "Dockerfile" in repo.head().files


# ---------------------------------------------------------------- routes

def add_routes(app: web.Application, hub: HubStandIn) -> None:
    state = spaces_state(hub)
    routes = _Routes(hub, state)
    base = "/api/spaces/{ns}/{name}"
    app.router.add_get("/api/spaces/hardware", routes.hardware_list)
    app.router.add_get("/api/spaces", routes.list_spaces)
    app.router.add_get(base + "/runtime", routes.wrap(routes.runtime))
    app.router.add_post(base + "/secrets", routes.wrap(routes.add_secret))
    app.router.add_delete(base + "/secrets", routes.wrap(routes.delete_secret))
    app.router.add_post(base + "/hardware", routes.wrap(routes.hardware))
    app.router.add_post(base + "/sleeptime", routes.wrap(routes.sleeptime))
    app.router.add_post(base + "/restart", routes.wrap(routes.restart))
    app.router.add_post(base + "/pause", routes.wrap(routes.pause))
    app.router.add_delete("/api/repos/delete", routes.delete_repo)
    # Outside hub_repos' middleware (which answers creation and commits itself), right after the recorder.
    app.middlewares.insert(1, routes.observe)
    app.on_cleanup.append(routes.cleanup)


class _Routes:
    def __init__(self, hub: HubStandIn, state: SpacesState) -> None:
        self.hub, self.state = hub, state

    def wrap(self, handler: Any) -> Any:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if (denied := auth_error(request, self.hub, required=True)) is not None:
                return denied
            space_id = f"{request.match_info['ns']}/{request.match_info['name']}"
            space = self.space(space_id)
            if space is None:
                return repo_not_found(True)
            return await handler(request, space)

        return guarded

    def space(self, space_id: str) -> Space | None:
        if repo_store(self.hub).get("space", space_id) is None:
            return None
        return self.state.spaces.setdefault(space_id, Space(space_id))

    # --- creation and commits, seen on their way through hub_repos

    @web.middleware
    async def observe(self, request: web.Request, handler: Any) -> web.StreamResponse:
        payload: dict[str, Any] = {}
        if request.method == "POST" and request.path == "/api/repos/create":
            payload = await body_json(request)
            hardware = payload.get("hardware")
            if payload.get("type") == "space" and hardware is not None and hardware not in SPACE_FLAVORS:
                return hub_error(400, f"Invalid hardware {hardware!r}")
        response = await handler(request)
        if response.status != 200 or request.method != "POST":
            return response
        if payload.get("type") == "space":
            self.created(payload)
        elif (m := COMMIT.match(request.path)) and m[3] in ("main", "refs/heads/main"):
            space = self.space(f"{m[1]}/{m[2]}")
            if space is not None:
                await rebuild(self.hub, self.state, space)
        return response

    def created(self, payload: dict[str, Any]) -> None:
        space_id = f"{payload.get('organization') or self.hub.user}/{payload['name']}"
        self.state.spaces[space_id] = Space(
            space_id, hardware=payload.get("hardware") or "cpu-basic", sleep_time=payload.get("sleepTimeSeconds"),
            secrets={s["key"]: s["value"] for s in payload.get("secrets") or []},
            variables={v["key"]: v["value"] for v in payload.get("variables") or []})

    # --- runtime and settings

    async def runtime(self, request: web.Request, space: Space) -> web.StreamResponse:
        if self.state.fail_runtime > 0:
            self.state.fail_runtime -= 1
            return hub_error(503, "Service Unavailable")
        return web.json_response(space.runtime())

    async def add_secret(self, request: web.Request, space: Space) -> web.StreamResponse:
        payload = await body_json(request)
        if not isinstance(payload.get("key"), str) or not isinstance(payload.get("value"), str):
            return hub_error(400, "key and value are required")
        space.secrets[payload["key"]] = payload["value"]
        await self.restart_if_built(space)
        return web.json_response({})

    async def delete_secret(self, request: web.Request, space: Space) -> web.StreamResponse:
        payload = await body_json(request)
        space.secrets.pop(str(payload.get("key")), None)
        await self.restart_if_built(space)
        return web.json_response({})

    async def hardware(self, request: web.Request, space: Space) -> web.StreamResponse:
        payload = await body_json(request)
        if payload.get("flavor") not in SPACE_FLAVORS:
            return hub_error(400, f"Invalid hardware {payload.get('flavor')!r}")
        space.hardware = payload["flavor"]
        if payload.get("sleepTimeSeconds") is not None:
            space.sleep_time = int(payload["sleepTimeSeconds"])
        await self.restart_if_built(space)
        return web.json_response(space.runtime())

    async def sleeptime(self, request: web.Request, space: Space) -> web.StreamResponse:
        payload = await body_json(request)
        space.sleep_time = int(payload.get("seconds", -1))
        return web.json_response(space.runtime())

    async def restart(self, request: web.Request, space: Space) -> web.StreamResponse:
        await self.restart_if_built(space)
        return web.json_response(space.runtime())

    async def pause(self, request: web.Request, space: Space) -> web.StreamResponse:
        await discard(space)
        space.stage, space.current_hardware = "PAUSED", None
        return web.json_response(space.runtime())

    async def restart_if_built(self, space: Space) -> None:
        if has_app(self.hub, space):
            await rebuild(self.hub, self.state, space)

    # --- deletion, lists

    async def delete_repo(self, request: web.Request) -> web.StreamResponse:
        if (denied := auth_error(request, self.hub, required=True)) is not None:
            return denied
        if self.state.fail_deletes > 0:
            self.state.fail_deletes -= 1
            return hub_error(500, "Internal Error - We're working hard to fix this as soon as possible!")
        payload = await body_json(request)
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or self.hub.user}/{payload.get('name')}"
        store = repo_store(self.hub)
        if store.get(repo_type, repo_id) is None:
            return error(404, "Repository not found", "RepoNotFound")
        if repo_type == "space" and (space := self.state.spaces.pop(repo_id, None)) is not None:
            await discard(space)
        del store.repos[(repo_type, repo_id)]
        return web.json_response({})

    async def list_spaces(self, request: web.Request) -> web.StreamResponse:
        if (denied := auth_error(request, self.hub, required=False)) is not None:
            return denied
        authorized = self.hub.authorized(request)
        author, search = request.query.get("author"), request.query.get("search")
        items = []
        for (repo_type, repo_id), repo in sorted(repo_store(self.hub).repos.items()):
            if repo_type != "space" or (repo.private and not authorized):
                continue
            if (author and repo_id.split("/")[0] != author) or (search and search not in repo_id):
                continue
            items.append({"_id": repo_id.replace("/", "-"), "id": repo_id, "author": repo_id.split("/")[0],
                          "private": repo.private, "sdk": repo.sdk, "likes": 0, "tags": [repo.sdk or "static"],
                          "createdAt": repo.created_at, "lastModified": now_iso()})
        return web.json_response(items)

    async def hardware_list(self, request: web.Request) -> web.StreamResponse:
        if (denied := auth_error(request, self.hub, required=False)) is not None:
            return denied
        items = []
        for row in HARDWARE:
            if row[0] in SPACE_FLAVORS:
                item = hardware_item(row)
                if row[0] in FREE_FLAVORS:
                    item.update(unitCostMicroUSD=0, unitCostUSD=0.0)
                items.append(item)
        return web.json_response(items)

    async def cleanup(self, app: web.Application) -> None:
        for space in list(self.state.spaces.values()):
            await discard(space)


async def body_json(request: web.Request) -> dict[str, Any]:
    body = await request.read()  # the recorder has buffered it already
    try:
        data = json.loads(body) if body.strip() else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
