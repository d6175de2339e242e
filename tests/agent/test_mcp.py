"""MCP servers named in INTERN_MCP_SERVERS: real servers (the mcp package's MCPServer) run as a stdio
subprocess and over Streamable HTTP on loopback; their tools join the registry under the approval
policy, bad settings and unreachable servers are reported without leaking a secret."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from intern.agent.errors import ToolArgumentError, ToolFeedback
from intern.agent.events import ToolFinished
from intern.agent.tools.base import canonical_spec
from intern.agent.tools.mcp import McpConnections, arguments_model, connect_servers, parse_servers, tool_name
from intern.agent.tools.research import offered_tools
from intern.bot.settings import Settings
from tests.agent.agent_fakes import ScriptedLLM, reply, task
from tests.support.ports import free_port

pytest.importorskip("mcp.server.mcpserver")

SERVER = '''
import json, os, sys

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

server = MCPServer("demo")
if os.path.exists(os.environ.get("DEMO_REFUSE") or "/nonexistent"):
    sys.exit(4)  # plays a server that can no longer start
if os.environ.get("DEMO_PIDFILE"):
    with open(os.environ["DEMO_PIDFILE"], "w") as f:
        f.write(str(os.getpid()))


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def lookup(key: str, limit: int = 3) -> str:
    """Look up a key in the demo store."""
    return f"{key} -> value-{key} (limit {limit}, greeting {os.environ.get('DEMO_GREETING', 'none')})"


@server.tool(annotations=ToolAnnotations(destructive_hint=True))
def write_note(path: str, text: str, tag: str | None) -> str:
    """Write a note into the demo store."""
    with open(os.environ["DEMO_NOTES"], "a") as f:
        f.write(json.dumps({"path": path, "text": text, "tag": tag}) + "\\n")
    return f"wrote {len(text)} characters to {path}"


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def fail(reason: str) -> str:
    """Always fails."""
    raise ToolError(f"cannot do that: {reason}")


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def crash() -> str:
    """Ends the server process."""
    os._exit(3)


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def header_seen(ctx: Context) -> str:
    """Whether the request carried the expected X-Demo-Key header."""
    seen = (ctx.headers or {}).get("x-demo-key")
    return "header ok" if seen and seen == os.environ.get("DEMO_EXPECTED_KEY") else "header missing"


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
'''

HEADER_SECRET = "hdr-sekrit-7f3a9c"
LOOKUP_SCHEMA = {"type": "object", "properties": {"key": {"title": "Key", "type": "string"},
                                                  "limit": {"default": 3, "title": "Limit", "type": "integer"}},
                 "required": ["key"]}


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "demo_server.py"
    path.write_text(SERVER)
    return path


def stdio_entry(script: Path, tmp_path: Path, **env: str) -> dict[str, Any]:
    # PYTHONPATH carries the test suite's network guard into the server process.
    return {"command": sys.executable, "args": [str(script)],
            "env": {"PYTHONPATH": os.environ.get("PYTHONPATH", ""), "DEMO_GREETING": "hello",
                    "DEMO_NOTES": str(tmp_path / "notes.jsonl"), **env}}


@pytest.fixture
async def demo(script: Path, tmp_path: Path) -> AsyncIterator[McpConnections]:
    conns = await connect_servers(parse_servers(json.dumps({"demo": stdio_entry(script, tmp_path)})))
    assert conns.skipped == {}, conns.skipped
    yield conns
    await conns.aclose()


def tool(conns: McpConnections, name: str) -> Any:
    found = [t for t in conns.tools if t.name == name]
    assert found, f"{name} not among {[t.name for t in conns.tools]}"
    return found[0]


@pytest.fixture
def http_server(script: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "DEMO_EXPECTED_KEY": HEADER_SECRET, "DEMO_NOTES": str(tmp_path / "notes.jsonl")}
    proc = subprocess.Popen([sys.executable, str(script), "http", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "the HTTP MCP server exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the HTTP MCP server did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# ---------------------------------------------------------------- settings

@pytest.mark.parametrize("raw, says", [
    ("{not json", "not valid JSON"),
    ("[]", "must be a JSON object"),
    ('{"bad name!": {"command": "x"}}', "server name"),
    ('{"a": {"command": "x", "url": "http://127.0.0.1/mcp"}}', "exactly one of `command`"),
    ('{"a": {"args": ["x"]}}', "exactly one of `command`"),
    ('{"a": {"url": "ftp://127.0.0.1/mcp"}}', "http:// or https://"),
    ('{"a": {"command": "x", "colour": "blue"}}', "colour"),
    (json.dumps({"a": {"url": "http://127.0.0.1/mcp", "headers": {"Authorization": [HEADER_SECRET]}}}),
     "headers.Authorization"),
])
def test_a_bad_setting_is_a_clear_error_that_names_it_and_quotes_no_value(raw: str, says: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERN_MCP_SERVERS", raw)
    with pytest.raises(ValidationError) as caught:
        Settings()  # type: ignore[call-arg]
    text = str(caught.value)
    assert "INTERN_MCP_SERVERS" in text and says in text
    assert HEADER_SECRET not in text


def test_good_settings_parse_and_their_secrets_reach_the_redactor_list() -> None:
    raw = json.dumps({"files": {"command": "mcp-files", "args": ["/data"], "env": {"FILES_TOKEN": "env-sekrit-1",
                                                                                    "MODE": "readonly"}},
                      "web": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer tok-sekrit-2"},
                              "timeout_seconds": 60, "approve_all": True}})
    s = Settings(INTERN_MCP_SERVERS=raw)  # type: ignore[call-arg]
    servers = s.mcp_server_configs
    assert set(servers) == {"files", "web"} and servers["web"].approve_all and servers["web"].timeout_seconds == 60
    secrets = s.secret_values()
    assert {"env-sekrit-1", "Bearer tok-sekrit-2", "tok-sekrit-2"} <= set(secrets)
    assert "readonly" not in secrets  # a plain setting, not a credential
    assert "sekrit" not in repr(servers)
    assert Settings().mcp_server_configs == {}  # type: ignore[call-arg]


# ---------------------------------------------------------------- names and schemas

def test_tool_names_fit_the_llm_charset_and_stay_unique() -> None:
    assert tool_name("demo", "read.file/v2", set()) == "mcp_demo_read_file_v2"
    long_a, long_b = "x" * 80 + "a", "x" * 80 + "b"
    a, b = tool_name("srv", long_a, set()), tool_name("srv", long_b, set())
    assert a and b and a != b and len(a) == len(b) == 64
    clash = tool_name("demo", "a_b", {"mcp_demo_a_b"})
    assert clash and clash != "mcp_demo_a_b" and clash.startswith("mcp_demo_a_b_")
    for name in (a, b, clash):
        assert all(c.isalnum() or c in "_-" for c in name)


def test_an_invalid_input_schema_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid"):
        arguments_model("t", {"type": "object", "properties": {"x": {"type": "no-such-type"}}})
    with pytest.raises(ValueError, match="not an object"):
        arguments_model("t", {"type": "string"})


# ---------------------------------------------------------------- a stdio server

async def test_stdio_server_tools_join_under_their_names_and_schemas(demo: McpConnections) -> None:
    names = {t.name for t in demo.tools}
    assert {"mcp_demo_lookup", "mcp_demo_write_note", "mcp_demo_fail", "mcp_demo_crash"} <= names
    lookup = tool(demo, "mcp_demo_lookup")
    fn = lookup.schema()["function"]
    assert fn["parameters"] == LOOKUP_SCHEMA
    assert "Look up a key in the demo store." in fn["description"]
    assert lookup.read_only and lookup.policy(lookup.parse({"key": "a"})) == "none" and lookup.describe is None
    write = tool(demo, "mcp_demo_write_note")
    assert not write.read_only and write.describe is not None
    assert write.schema()["function"]["parameters"]["required"] == ["path", "text", "tag"]


async def test_a_read_only_call_runs_and_returns_the_servers_text(demo: McpConnections) -> None:
    lookup = tool(demo, "mcp_demo_lookup")
    result = await lookup.handler(None, lookup.parse({"key": "alpha", "limit": 7}))
    assert not result.is_error
    assert result.content == "alpha -> value-alpha (limit 7, greeting hello)"


async def test_a_write_tool_needs_an_approval_that_shows_its_arguments(demo: McpConnections, tmp_path: Path) -> None:
    write = tool(demo, "mcp_demo_write_note")
    args = write.parse({"path": "/notes/today.md", "text": "ship it", "tag": None})
    assert write.policy(args) == "hub_write"
    info = await write.describe(None, args)
    assert info.kind == "hub_write" and info.auto_approvable is False
    assert info.title == "MCP tool demo/write_note"
    assert info.body_label == "Arguments"
    assert json.loads(info.body or "") == {"path": "/notes/today.md", "text": "ship it", "tag": None}
    assert ("Tool", "write_note") in info.fields
    assert not (tmp_path / "notes.jsonl").exists()  # describing ran nothing

    # What is approved is replayed exactly, a null included (the tool requires `tag`).
    spec = canonical_spec(args)
    assert spec == {"path": "/notes/today.md", "text": "ship it", "tag": None}
    result = await write.handler(None, write.args.model_validate(spec))
    assert result.content == "wrote 7 characters to /notes/today.md" and not result.is_error
    assert json.loads((tmp_path / "notes.jsonl").read_text()) == {"path": "/notes/today.md", "text": "ship it",
                                                                 "tag": None}


async def test_invalid_arguments_never_reach_the_server(demo: McpConnections) -> None:
    lookup = tool(demo, "mcp_demo_lookup")
    with pytest.raises(ToolArgumentError) as caught:
        lookup.parse({"key": 1, "limit": "many"})
    text = str(caught.value)
    assert "mcp_demo_lookup" in text and "key: 1 is not of type 'string'" in text and "limit:" in text
    with pytest.raises(ToolArgumentError, match="'key' is a required property"):
        lookup.parse({})
    with pytest.raises(ToolArgumentError, match="not valid JSON"):
        lookup.parse("{nope")


async def test_an_error_the_tool_reports_comes_back_as_an_error_result(demo: McpConnections) -> None:
    fail = tool(demo, "mcp_demo_fail")
    result = await fail.handler(None, fail.parse({"reason": "no disk"}))
    assert result.is_error and "cannot do that: no disk" in result.content


async def test_through_the_agent_loop(demo: McpConnections, harness: Any, tmp_path: Path) -> None:
    """Bad arguments and results go back to the model as tool messages; the write waits for the gate and
    then runs with exactly the approved arguments."""
    llm = ScriptedLLM().queue(
        reply(None, ("mcp_demo_lookup", {"key": 5}), ("mcp_demo_lookup", {"key": "beta"})),
        reply(None, ("mcp_demo_write_note", {"path": "n.md", "text": "hi", "tag": "t1"})),
        reply("done"),
    )
    h = harness(llm, demo.tools)
    h.gate.default = "approved"

    outcome = await h.agent.run([task()])

    assert outcome.status == "done"
    offered = {t["function"]["name"] for t in llm.chat_requests[0]["tools"]}
    assert {"mcp_demo_lookup", "mcp_demo_write_note"} <= offered
    results = [m["content"] for m in h.transcript.messages if m["role"] == "tool"]
    assert "Invalid arguments for mcp_demo_lookup" in results[0] and "is not of type 'string'" in results[0]
    assert results[1] == "beta -> value-beta (limit 3, greeting hello)"
    assert results[2] == "wrote 2 characters to n.md"
    [request] = h.gate.requests
    assert request.tool == "mcp_demo_write_note" and request.info.kind == "hub_write"
    assert request.spec == {"path": "n.md", "text": "hi", "tag": "t1"}
    finished = {e.name: e.ok for e in h.sink.of(ToolFinished)}
    assert finished == {"mcp_demo_lookup": True, "mcp_demo_write_note": True}
    assert (tmp_path / "notes.jsonl").exists()


async def test_a_pending_write_runs_nothing(demo: McpConnections, harness: Any, tmp_path: Path) -> None:
    llm = ScriptedLLM().queue(reply(None, ("mcp_demo_write_note", {"path": "n.md", "text": "hi", "tag": None})))
    h = harness(llm, demo.tools)

    outcome = await h.agent.run([task()])

    assert outcome.status == "suspended" and len(h.gate.requests) == 1
    assert not (tmp_path / "notes.jsonl").exists()


async def test_a_server_that_died_is_reconnected_at_the_next_call_and_not_hammered(script: Path,
                                                                                  tmp_path: Path) -> None:
    pidfile, refuse = tmp_path / "pid", tmp_path / "refuse"
    conns = await connect_servers(parse_servers(json.dumps(
        {"demo": stdio_entry(script, tmp_path, DEMO_PIDFILE=str(pidfile), DEMO_REFUSE=str(refuse))})))
    try:
        server = conns.servers["demo"]
        crash, lookup = tool(conns, "mcp_demo_crash"), tool(conns, "mcp_demo_lookup")
        first = int(pidfile.read_text())
        with pytest.raises(ToolFeedback, match=r"MCP server 'demo' is not available \(the connection was closed"):
            await crash.handler(None, crash.parse({}))
        await gone(first)

        # The next call starts the server again and runs.
        result = await lookup.handler(None, lookup.parse({"key": "a"}))
        assert "a -> value-a" in result.content and not result.is_error
        second = int(pidfile.read_text())
        assert second != first and process_alive(second)

        # A server that cannot be started: one attempt, a clear reason, then no retry until the interval.
        refuse.write_text("no")
        with pytest.raises(ToolFeedback, match="not available"):
            await crash.handler(None, crash.parse({}))
        await gone(second)
        server.reconnect_interval = 0.0
        with pytest.raises(ToolFeedback, match="reconnecting failed"):
            await lookup.handler(None, lookup.parse({"key": "a"}))
        server.reconnect_interval = 30.0
        started = time.monotonic()
        with pytest.raises(ToolFeedback, match="tries to reach it again at most every 30s"):
            await lookup.handler(None, lookup.parse({"key": "a"}))
        assert time.monotonic() - started < 1.0  # no new attempt within the interval
        write = tool(conns, "mcp_demo_write_note")
        with pytest.raises(ToolFeedback, match="not available"):  # no approval card for a call that cannot run
            await write.describe(None, write.parse({"path": "p", "text": "t", "tag": None}))

        # Reachable again: the next attempt after the interval succeeds.
        refuse.unlink()
        server.reconnect_interval = 0.0
        result = await lookup.handler(None, lookup.parse({"key": "b"}))
        assert "b -> value-b" in result.content
    finally:
        await conns.aclose()
    assert not await server.available()  # closed for good: never started again after shutdown


async def test_closing_stops_the_server_process(script: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    conns = await connect_servers(parse_servers(json.dumps(
        {"demo": stdio_entry(script, tmp_path, DEMO_PIDFILE=str(pidfile))})))
    pid = int(pidfile.read_text())
    assert process_alive(pid)
    await conns.aclose()
    await gone(pid)


async def gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while process_alive(pid):
        assert time.monotonic() < deadline, f"the stdio server (pid {pid}) outlived its connection"
        await asyncio.sleep(0.05)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


# ---------------------------------------------------------------- unreachable servers

async def test_unreachable_servers_are_skipped_and_logged_without_secrets(script: Path, tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="intern.agent.tools.mcp")
    secrets = ["query-sekrit-1", "Bearer hdr-sekrit-2", "env-sekrit-3", "arg-sekrit-4", "env-sekrit-5"]
    servers = {
        "web": {"url": f"http://user:pw-sekrit@127.0.0.1:{free_port()}/mcp?api_key={secrets[0]}",
                "headers": {"Authorization": secrets[1]}},
        "missing": {"command": "/nonexistent/mcp-server", "args": ["--password", secrets[3]],
                    "env": {"SERVICE_TOKEN": secrets[2]}},
        "quits": {"command": sys.executable, "args": ["-c", "import sys; sys.exit(1)"],
                  "env": {"API_KEY": secrets[4]}},
        "demo": stdio_entry(script, tmp_path),
    }
    conns = await connect_servers(parse_servers(json.dumps(servers)))
    try:
        assert set(conns.skipped) == {"web", "missing", "quits"}
        assert "mcp_demo_lookup" in {t.name for t in conns.tools}
        assert not any(t.name.startswith(("mcp_web_", "mcp_missing_", "mcp_quits_")) for t in conns.tools)
        logged = caplog.text
        for name in ("web", "missing", "quits"):
            assert f"MCP server '{name}'" in logged and "not reachable" in logged
        assert "http://127.0.0.1:" in logged  # where, without user, password or query
        for secret in [*secrets, "pw-sekrit", "hdr-sekrit-2"]:
            assert secret not in logged
            assert secret not in json.dumps(conns.skipped)
    finally:
        await conns.aclose()


async def test_a_server_that_never_answers_does_not_hold_up_the_start(tmp_path: Path) -> None:
    hang = {"command": sys.executable, "args": ["-c", "import time; time.sleep(60)"]}
    started = time.monotonic()
    conns = await connect_servers(parse_servers(json.dumps({"slow": hang})), timeout=1.0)
    await conns.aclose()
    assert conns.skipped == {"slow": "no answer within 1s"} and conns.tools == []
    assert time.monotonic() - started < 15


# ---------------------------------------------------------------- Streamable HTTP

async def test_streamable_http_server_with_headers(http_server: str, tmp_path: Path) -> None:
    servers = {"remote": {"url": http_server, "headers": {"X-Demo-Key": HEADER_SECRET}}}
    conns = await connect_servers(parse_servers(json.dumps(servers)))
    try:
        assert conns.skipped == {}
        lookup, write = tool(conns, "mcp_remote_lookup"), tool(conns, "mcp_remote_write_note")
        assert lookup.schema()["function"]["parameters"] == LOOKUP_SCHEMA
        seen = tool(conns, "mcp_remote_header_seen")
        assert (await seen.handler(None, seen.parse({}))).content == "header ok"
        result = await lookup.handler(None, lookup.parse({"key": "gamma"}))
        assert result.content.startswith("gamma -> value-gamma (limit 3")
        args = write.parse({"path": "r.md", "text": "remote", "tag": None})
        assert write.policy(args) == "hub_write"
        info = await write.describe(None, args)
        assert info.title == "MCP tool remote/write_note" and '"text": "remote"' in (info.body or "")
        assert HEADER_SECRET not in json.dumps(info.fields)
        assert (await write.handler(None, args)).content == "wrote 6 characters to r.md"
    finally:
        await conns.aclose()


async def test_approve_all_puts_even_read_only_tools_behind_approval(http_server: str) -> None:
    servers = {"remote": {"url": http_server, "approve_all": True}}
    conns = await connect_servers(parse_servers(json.dumps(servers)))
    try:
        lookup = tool(conns, "mcp_remote_lookup")
        assert not lookup.read_only and lookup.policy(lookup.parse({"key": "k"})) == "hub_write"
        seen = tool(conns, "mcp_remote_header_seen")  # no header configured this time
        info = await seen.describe(None, seen.parse({}))
        assert info.kind == "hub_write" and info.checks[0].level == "ok"
    finally:
        await conns.aclose()


# ---------------------------------------------------------------- wiring and doctor

async def test_build_runtime_registers_the_tools_and_close_runtime_stops_the_servers(script: Path,
                                                                                     tmp_path: Path) -> None:
    from intern.bot.wiring import build_runtime, close_runtime

    pidfile = tmp_path / "pid"
    servers = {"demo": stdio_entry(script, tmp_path, DEMO_PIDFILE=str(pidfile), API_TOKEN="env-sekrit-9"),
               "gone": {"url": f"http://127.0.0.1:{free_port()}/mcp", "headers": {"Authorization": "Bearer x-sekrit"}}}
    settings = Settings(INTERN_DATABASE_URL=f"sqlite:///{tmp_path}/intern.db",  # type: ignore[call-arg]
                        INTERN_DOCS_DIR=str(tmp_path / "docs"), INTERN_MCP_SERVERS=json.dumps(servers))
    rt = await build_runtime(settings)
    try:
        names = rt.tools.names()
        assert "mcp_demo_lookup" in names and "mcp_demo_write_note" in names and "hf_jobs" in names
        assert not any(n.startswith("mcp_gone_") for n in names)
        offered = offered_tools(rt.tools).names()  # what the research sub-agent may call
        assert "mcp_demo_lookup" in offered and "mcp_demo_write_note" not in offered
        assert rt.redactor.redact("token env-sekrit-9 and Bearer x-sekrit") == "token [REDACTED] and [REDACTED]"
        pid = int(pidfile.read_text())
        assert process_alive(pid)
    finally:
        await close_runtime(rt)
    await gone(pid)


async def test_doctor_reports_each_server(script: Path, tmp_path: Path) -> None:
    from intern.bot.doctor import check_mcp

    servers = {"demo": stdio_entry(script, tmp_path),
               "gone": {"url": f"http://127.0.0.1:{free_port()}/mcp", "headers": {"Authorization": "Bearer d-sekrit"}}}
    findings = await check_mcp(Settings(INTERN_MCP_SERVERS=json.dumps(servers)), False)  # type: ignore[call-arg]
    by_text = {f.status: f.text for f in findings}
    assert set(by_text) == {"ok", "warn"}
    assert "'demo'" in by_text["ok"] and "5 tool(s), 4 read-only, 1 behind approval" in by_text["ok"]
    assert "'gone'" in by_text["warn"] and "cannot be reached" in by_text["warn"]
    assert "d-sekrit" not in json.dumps([f.__dict__ for f in findings])
    assert await check_mcp(Settings(), False) == []  # type: ignore[call-arg]
