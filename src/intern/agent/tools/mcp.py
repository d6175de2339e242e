"""MCP servers named in INTERN_MCP_SERVERS contribute their tools to the agent.

INTERN_MCP_SERVERS is a JSON object, one entry per server:

    {"files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/data"],
               "env": {"SOME_TOKEN": "..."}},
     "tracker": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer ..."}}}

`command` starts the server as a subprocess and talks to it over stdio (the subprocess gets only a few
harmless variables such as PATH and HOME from the bot's environment, plus `env`); `url` talks
Streamable HTTP, sending `headers` with every request. Optional per server: `timeout_seconds` (the
longest one call may take, default 300) and `approve_all` (every tool of the server waits for
approval, whatever its annotations say).

Every server is connected once, at start. A server that cannot be reached is logged and left out;
the bot starts without its tools. Each listed tool becomes `mcp_<server>_<tool>` (cut to the 64
characters and the character set tool names allow), with the tool's own input schema, against which
the arguments are checked before anything is sent. A tool the server annotates `readOnlyHint: true`
runs at once (and the research sub-agent may use it); every other tool waits for a click on an
approval card that shows its arguments, and is never auto-approved. Header and env values are never
logged.

Each connection lives in a task of its own, which opens and closes it: the SDK's transports are
anyio task groups, which must be left by the task that entered them.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import logging
import re
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from intern.agent.errors import ToolFeedback
from intern.agent.tools.base import ApprovalInfo, Check, Tool, ToolResult

if TYPE_CHECKING:
    from intern.agent.context_deps import ToolContext

log = logging.getLogger(__name__)

SETTING = "INTERN_MCP_SERVERS"
SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
NOT_IN_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")
TOOL_NAME_MAX = 64
DESCRIPTION_MAX_CHARS = 1_500
RESULT_MAX_CHARS = 20_000
ERRORS_SHOWN = 5
CONNECT_TIMEOUT = 20.0
RECONNECT_INTERVAL = 30.0  # a server that went away is tried again at most this often (seconds)
LIST_PAGES_MAX = 50
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_KEY|CREDENTIAL|AUTH|COOKIE|SESSION)",
                         re.I)


# ---------------------------------------------------------------- configuration

class _ServerBase(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    timeout_seconds: float = Field(300.0, gt=0, le=3600)
    approve_all: bool = False


class StdioServer(_ServerBase):
    command: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, repr=False)
    cwd: str | None = None

    def where(self) -> str:
        return f"command {self.command.rsplit('/', 1)[-1]}"  # never the args or env: they may hold secrets

    def secret_values(self) -> list[str]:
        return [v for k, v in self.env.items() if SECRET_NAME.search(k)]


class HttpServer(_ServerBase):
    url: str = Field(repr=False)
    headers: dict[str, str] = Field(default_factory=dict, repr=False)

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        parts = urlsplit(v.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL")
        return v.strip()

    def where(self) -> str:
        return safe_url(self.url)

    def secret_values(self) -> list[str]:
        out: list[str] = []
        for value in self.headers.values():
            out.append(value)
            scheme, _, credential = value.partition(" ")
            if credential and scheme.isalpha():  # "Bearer xyz": the credential alone may show up too
                out.append(credential)
        parts = urlsplit(self.url)
        out += [p for p in (parts.password, parts.query) if p]
        return out


ServerConfig = StdioServer | HttpServer


class McpConfigError(ValueError):
    """INTERN_MCP_SERVERS cannot be read; the message names the setting and never quotes a value."""


def safe_url(url: str) -> str:
    """scheme://host[:port]/path: no user, password or query, which may carry credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def parse_servers(raw: str | None) -> dict[str, ServerConfig]:
    """The servers INTERN_MCP_SERVERS names; McpConfigError says what is wrong, without quoting values."""
    if raw is None or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise McpConfigError(f"{SETTING} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                             'expected an object like {"name": {"command": "...", "args": []}} or '
                             '{"name": {"url": "https://..."}}') from None
    if not isinstance(data, dict):
        raise McpConfigError(f"{SETTING} must be a JSON object mapping server names to their settings")
    out: dict[str, ServerConfig] = {}
    for name, entry in data.items():
        if not SERVER_NAME.match(name):
            raise McpConfigError(f"{SETTING}: server name {name[:40]!r} must be 1-32 letters, digits, '_' or '-'")
        if not isinstance(entry, dict):
            raise McpConfigError(f"{SETTING}: server {name!r} must be an object with `command` or `url`")
        if ("command" in entry) == ("url" in entry):
            raise McpConfigError(f"{SETTING}: server {name!r} needs exactly one of `command` (a subprocess "
                                 "over stdio) or `url` (Streamable HTTP)")
        model: type[ServerConfig] = StdioServer if "command" in entry else HttpServer
        try:
            out[name] = model.model_validate(entry)
        except ValidationError as exc:
            problems = "; ".join(f"`{'.'.join(str(p) for p in e['loc']) or name}`: {e['msg']}"
                                 for e in exc.errors(include_url=False, include_input=False))
            raise McpConfigError(f"{SETTING}: server {name!r}: {problems}") from None
    return out


def secret_values(servers: dict[str, ServerConfig]) -> list[str]:
    """Header values, credentials in URLs and env values under secret-looking names, for the redactor."""
    return [v for s in servers.values() for v in s.secret_values() if v]


def scrub(text: str, secrets: Iterable[str]) -> str:
    for s in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(s, "[REDACTED]")
    return text


# ---------------------------------------------------------------- arguments

class McpArguments(BaseModel):
    """The arguments of one MCP tool: any JSON object, checked against the tool's input schema."""

    model_config = ConfigDict(extra="allow")

    input_schema: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}
    validator: ClassVar[Any] = None

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise PydanticCustomError("mcp_arguments", "the arguments must be a JSON object")
        if cls.validator is None:
            return data
        try:
            errors = sorted(cls.validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
        except Exception:  # an unresolvable $ref and the like: the server checks them itself
            log.debug("could not check arguments against an MCP tool schema", exc_info=True)
            return data
        if errors:
            lines = [f"{'.'.join(str(p) for p in e.absolute_path) or '(arguments)'}: {e.message[:300]}"
                     for e in errors[:ERRORS_SHOWN]]
            if len(errors) > ERRORS_SHOWN:
                lines.append(f"and {len(errors) - ERRORS_SHOWN} more")
            raise PydanticCustomError("mcp_arguments", "{detail}", {"detail": "; ".join(lines)})
        return data

    @model_serializer(mode="plain")
    def _dump(self) -> dict[str, Any]:
        # Exactly what was given: the approval stores this and replays it, so nothing may drop out
        # (a `null` the tool expects must survive `exclude_none`).
        return copy.deepcopy(self.__pydantic_extra__ or {})

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return copy.deepcopy(cls.input_schema)

    def arguments(self) -> dict[str, Any]:
        return copy.deepcopy(self.__pydantic_extra__ or {})


def arguments_model(name: str, schema: dict[str, Any]) -> type[McpArguments]:
    """A model for `schema`; ValueError when the schema is not a valid JSON Schema for an object."""
    from jsonschema import Draft202012Validator, validators  # type: ignore[import-untyped]
    from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]

    if not isinstance(schema, dict) or schema.get("type", "object") != "object":
        raise ValueError("its input schema is not an object schema")
    schema = copy.deepcopy(schema)
    schema["type"] = "object"
    schema.setdefault("properties", {})
    with warnings.catch_warnings():  # an unknown $schema: the default draft, without a deprecation warning
        warnings.simplefilter("ignore")
        validator_class = validators.validator_for(schema, default=Draft202012Validator)
    try:
        validator_class.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"its input schema is invalid: {exc.message[:200]}") from None
    model: type[McpArguments] = type(f"Mcp_{name}", (McpArguments,), {"__module__": __name__})
    model.input_schema = schema
    model.validator = validator_class(schema)
    return model


# ---------------------------------------------------------------- connections

def _reason(exc: BaseException) -> str:
    """One line about what went wrong, from the innermost errors of an exception group."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(dict.fromkeys(_reason(e) for e in exc.exceptions))
    text = str(exc).strip().splitlines()  # an MCPError reads as the message the server sent
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


def _is_connection_closed(exc: BaseException) -> bool:
    from anyio import BrokenResourceError, ClosedResourceError, EndOfStream
    from mcp_types import CONNECTION_CLOSED

    return getattr(exc, "code", None) == CONNECTION_CLOSED or \
        isinstance(exc, OSError | ClosedResourceError | BrokenResourceError | EndOfStream)


def _client_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("intern")
    except PackageNotFoundError:
        return "0"


@dataclass
class McpServer:
    """One configured server and its connection, held open by `task` until `close`."""

    name: str
    config: ServerConfig
    client: Any = None
    listed: list[Any] = field(default_factory=list)  # the server's tool descriptions
    tools: list[Tool] = field(default_factory=list)  # the agent tools made from them
    offered: set[str] = field(default_factory=set)  # the server's names of those tools
    down: str | None = None  # why it cannot be called, once it cannot
    lost: str | None = None  # why the connection went away, kept while reconnecting fails
    task: asyncio.Task[None] | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    connect_timeout: float = CONNECT_TIMEOUT
    reconnect_interval: float = RECONNECT_INTERVAL
    closed: bool = False  # closed for good (shutdown): never reconnected
    _last_attempt: float = float("-inf")
    _reconnecting: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def connected(self) -> bool:
        return self.client is not None and self.down is None

    def secrets(self) -> list[str]:
        return self.config.secret_values()

    async def open(self, timeout: float) -> None:
        """Connect and list the tools; raises when that fails (the connection is then closed)."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(self._hold(ready), name=f"mcp-{self.name}")
        try:
            await asyncio.wait_for(asyncio.shield(ready), timeout)
        except BaseException:
            await self.close(wait=0.0, final=False)
            if ready.done() and not ready.cancelled():
                ready.exception()  # retrieved: the error raised here is the one that counts
            raise

    async def _hold(self, ready: asyncio.Future[None]) -> None:
        from mcp import Client
        from mcp.types import Implementation

        try:
            async with contextlib.AsyncExitStack() as stack:
                transport = await self._transport(stack)
                client = await stack.enter_async_context(Client(
                    transport, read_timeout_seconds=self.config.timeout_seconds,
                    client_info=Implementation(name="intern", version=_client_version())))
                self.listed = await self._list_tools(client)
                self.client = client
                ready.set_result(None)
                await self.stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else ConnectionError(_reason(exc)))
            elif not self.stop.is_set() and not isinstance(exc, asyncio.CancelledError):
                self.down = "the connection ended"
                log.warning("MCP server %r: the connection ended: %s", self.name,
                            scrub(_reason(exc), self.secrets()))
            if not isinstance(exc, Exception):
                raise
        finally:
            self.client = None

    async def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        cfg = self.config
        if isinstance(cfg, StdioServer):
            from mcp.client.stdio import StdioServerParameters, stdio_client

            return stdio_client(StdioServerParameters(command=cfg.command, args=cfg.args, env=cfg.env or None,
                                                      cwd=cfg.cwd))
        import httpx2
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        http = await stack.enter_async_context(create_mcp_http_client(
            headers=dict(cfg.headers), timeout=httpx2.Timeout(30.0, read=cfg.timeout_seconds)))
        return streamable_http_client(cfg.url, http_client=http)

    @staticmethod
    async def _list_tools(client: Any) -> list[Any]:
        tools: list[Any] = []
        cursor: str | None = None
        for _ in range(LIST_PAGES_MAX):
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    async def available(self) -> bool:
        """Whether the server can be called now; one that went away is connected again first (at most
        one attempt every `reconnect_interval` seconds, so a dead server costs a turn no time)."""
        if self.connected:
            return True
        async with self._reconnecting:
            if self.connected or self.closed or time.monotonic() - self._last_attempt < self.reconnect_interval:
                return self.connected
            self._last_attempt = time.monotonic()
            why = self.lost = self.lost or self.down or "it is not connected"
            await self.close(wait=0.0, final=False)
            self.stop, self.down = asyncio.Event(), None
            try:
                await self.open(self.connect_timeout)
            except TimeoutError:
                self.down = f"{why}; reconnecting got no answer within {self.connect_timeout:g}s"
            except Exception as exc:
                self.down = f"{why}; reconnecting failed: {scrub(_reason(exc), self.secrets())}"
            if self.down:
                log.warning("MCP server %r (%s) is still not reachable: %s", self.name, self.config.where(), self.down)
                return False
            self.lost = None
            gone = sorted(self.offered - {str(t.name) for t in self.listed})
            log.info("MCP server %r (%s): reconnected%s", self.name, self.config.where(),
                     f"; no longer offers {', '.join(gone)}" if gone else "")
            return True

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        if not await self.available():
            raise ToolFeedback(self.unavailable())
        client = self.client
        if client is None:
            raise ToolFeedback(self.unavailable())
        try:
            return await client.call_tool(tool, arguments)
        except Exception as exc:
            if _is_connection_closed(exc):
                self.down = "the connection was closed"
                log.warning("MCP server %r: the connection was closed during a call to %r", self.name, tool)
                raise ToolFeedback(self.unavailable()) from None
            raise ToolFeedback(f"MCP server {self.name!r} could not run {tool!r}: "
                               f"{scrub(_reason(exc), self.secrets())}") from None

    def unavailable(self) -> str:
        why = self.down or "it is not connected"
        return (f"MCP server {self.name!r} is not available ({why}). Intern tries to reach it again at most "
                f"every {self.reconnect_interval:g}s. Carry on without it or tell the user.")

    async def close(self, wait: float = 10.0, *, final: bool = True) -> None:
        """Close the connection: its task leaves the SDK's contexts (the stdio server is stopped); a task
        still busy after `wait` seconds is cancelled. After a `final` close it is never reconnected."""
        self.closed = self.closed or final
        self.stop.set()
        task, self.task = self.task, None
        if task is None:
            return
        if wait > 0:
            await asyncio.wait({task}, timeout=wait)  # raises nothing the task raised; `task` keeps running
        if not task.done():
            task.cancel()
            await asyncio.wait({task})


@dataclass
class McpConnections:
    """The servers connected at start and the tools they offer."""

    servers: dict[str, McpServer] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # server name -> why it was left out
    tools: list[Tool] = field(default_factory=list)

    async def aclose(self) -> None:
        servers = list(self.servers.values())
        self.servers = {}
        await asyncio.gather(*(s.close() for s in servers), return_exceptions=True)


async def connect_servers(servers: dict[str, ServerConfig], *, timeout: float = CONNECT_TIMEOUT) -> McpConnections:
    """Connect every server at once; one that fails is logged and skipped."""
    out = McpConnections()
    if not servers:
        return out
    try:
        import mcp  # noqa: F401
        from mcp import Client  # noqa: F401  (the 2.x client API)
    except ImportError:
        why = "the mcp package (2.x) is not installed: pip install 'intern[mcp]'"
        log.error("%s names %d MCP server(s) but %s; no MCP tools", SETTING, len(servers), why)
        out.skipped = dict.fromkeys(servers, why)
        return out

    async def one(name: str, cfg: ServerConfig) -> None:
        server = McpServer(name, cfg)
        try:
            await server.open(timeout)
        except TimeoutError:
            out.skipped[name] = f"no answer within {timeout:g}s"
        except Exception as exc:
            out.skipped[name] = scrub(_reason(exc), cfg.secret_values())
        else:
            out.servers[name] = server
            return
        log.warning("MCP server %r (%s) is not reachable; starting without its tools: %s", name, cfg.where(),
                    out.skipped[name])

    await asyncio.gather(*(one(n, c) for n, c in servers.items()))
    names: set[str] = set()
    for name in servers:  # in the order configured
        server = out.servers.get(name)
        if server is None:
            continue
        for listed in server.listed:
            tool = make_tool(server, listed, names)
            if tool is not None:
                names.add(tool.name)
                server.tools.append(tool)
                server.offered.add(str(listed.name))
        out.tools += server.tools
        log.info("MCP server %r (%s): %d tool(s), %d of them read-only", name, server.config.where(),
                 len(server.tools), sum(t.read_only for t in server.tools))
    return out


# ---------------------------------------------------------------- tools

def tool_name(server: str, tool: str, taken: set[str]) -> str | None:
    """`mcp_<server>_<tool>` in the characters tool names allow, at most 64; a hash keeps it unique."""
    base = NOT_IN_TOOL_NAME.sub("_", f"mcp_{server}_{tool}")
    if len(base) <= TOOL_NAME_MAX and base not in taken:
        return base
    digest = hashlib.sha256(f"{server}/{tool}".encode()).hexdigest()[:8]
    name = f"{base[:TOOL_NAME_MAX - 9]}_{digest}"
    return None if name in taken else name


def is_read_only(server: McpServer, listed: Any) -> bool:
    annotations = getattr(listed, "annotations", None)
    return not server.config.approve_all and getattr(annotations, "read_only_hint", None) is True


def make_tool(server: McpServer, listed: Any, taken: set[str]) -> Tool | None:
    """The agent tool for one listed MCP tool, or None (logged) when it cannot be offered."""
    remote = str(listed.name)
    name = tool_name(server.name, remote, taken)
    if name is None:
        log.warning("MCP server %r: tool %r clashes with another tool name; left out", server.name, remote[:80])
        return None
    try:
        args = arguments_model(name, listed.input_schema)
    except ValueError as exc:
        log.warning("MCP server %r: tool %r left out: %s", server.name, remote[:80], exc)
        return None
    read_only = is_read_only(server, listed)
    text = " ".join((listed.description or getattr(listed, "title", None) or remote).split())
    if len(text) > DESCRIPTION_MAX_CHARS:
        text = text[:DESCRIPTION_MAX_CHARS - 1] + "…"
    note = "" if read_only else " Each call waits for a person to approve it."
    description = f"[MCP {server.name}] {text}{note}"

    async def handle(ctx: ToolContext, a: McpArguments) -> ToolResult:
        result = await server.call(remote, a.arguments())
        return to_tool_result(result)

    async def describe(ctx: ToolContext, a: McpArguments) -> ApprovalInfo:
        if not await server.available():
            raise ToolFeedback(server.unavailable())
        return approval_info(server, listed, a.arguments())

    if read_only:
        return Tool(name=name, description=description, args=args, handler=handle, read_only=True)
    return Tool(name=name, description=description, args=args, handler=handle, policy=lambda _a: "hub_write",
                describe=describe, read_only=False)


def approval_info(server: McpServer, listed: Any, arguments: dict[str, Any]) -> ApprovalInfo:
    annotations = getattr(listed, "annotations", None)
    checks: list[Check] = []
    if getattr(annotations, "read_only_hint", None) is True:
        checks.append(Check("ok", "The server marks this tool read-only; this server's tools all need approval"))
    elif getattr(annotations, "destructive_hint", None) is False:
        checks.append(Check("ok", "The server marks this tool as additive: it does not delete or overwrite"))
    else:
        checks.append(Check("warn", "The server does not mark this tool read-only: it may change or delete "
                                    "data there"))
    if getattr(annotations, "idempotent_hint", None) is True:
        checks.append(Check("ok", "Repeating the call with the same arguments has no further effect"))
    title = getattr(listed, "title", None) or getattr(annotations, "title", None)
    fields = [("Server", f"{server.name} ({server.config.where()})"), ("Tool", str(listed.name))]
    if title and title != listed.name:
        fields.append(("Title", str(title)[:200]))
    return ApprovalInfo(
        kind="hub_write", title=f"MCP tool {server.name}/{listed.name}", fields=fields,
        body=json.dumps(arguments, indent=2, ensure_ascii=False, sort_keys=True), body_label="Arguments",
        checks=checks, auto_approvable=False,
    )


def to_tool_result(result: Any) -> ToolResult:
    parts: list[str] = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} ({getattr(block, 'mime_type', '?')}), not shown]")
        elif kind == "resource_link":
            parts.append(f"[resource link: {getattr(block, 'uri', '')}]")
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            parts.append(text if text is not None else f"[binary resource {getattr(resource, 'uri', '')}]")
        else:
            parts.append(f"[{kind or 'unknown'} content, not shown]")
    structured = getattr(result, "structured_content", None)
    if not parts and structured is not None:
        parts.append(json.dumps(structured, ensure_ascii=False, indent=1))
    text = "\n".join(parts) or "(the tool returned no content)"
    if len(text) > RESULT_MAX_CHARS:
        text = f"{text[:RESULT_MAX_CHARS]}\n[… {len(text) - RESULT_MAX_CHARS} more characters cut]"
    return ToolResult(text, is_error=bool(getattr(result, "is_error", False)))
