"""The network guard refuses, before any packet leaves, every connection and lookup outside loopback,
in the test process and in child Python processes; loopback keeps working in both."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from tests.support import network_guard
from tests.support.network_guard import NetworkGuardError, expected_refusals

TEST_NET = "192.0.2.1"  # RFC 5737 TEST-NET-1: documentation only, never routed


@pytest.fixture(autouse=True)
def _guard_is_in_place() -> None:
    # Refuse to run a test that would really try to connect if the guard were missing.
    assert network_guard.guard.is_installed()
    assert getattr(socket.socket.connect, "__wrapped__", None) is not None


def test_tcp_connect_outside_loopback_is_refused() -> None:
    with expected_refusals() as refused, socket.socket() as sock, pytest.raises(NetworkGuardError):
        sock.connect((TEST_NET, 9))
    assert len(refused) == 1 and TEST_NET in refused[0]


def test_refusal_is_not_an_oserror_so_libraries_cannot_fall_back_quietly() -> None:
    assert not issubclass(NetworkGuardError, OSError)


def test_connect_ex_udp_sendto_and_ipv6_are_refused() -> None:
    with expected_refusals() as refused:
        with socket.socket() as sock, pytest.raises(NetworkGuardError):
            sock.connect_ex((TEST_NET, 9))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, pytest.raises(NetworkGuardError):
            udp.sendto(b"x", (TEST_NET, 53))
        with socket.socket(socket.AF_INET6) as sock6, pytest.raises(NetworkGuardError):
            sock6.connect(("2001:db8::1", 9))
    assert len(refused) == 3


def test_dns_lookup_of_a_remote_name_is_refused() -> None:
    with expected_refusals() as refused:
        with pytest.raises(NetworkGuardError):
            socket.getaddrinfo("example.com", 443)
        with pytest.raises(NetworkGuardError):
            socket.gethostbyname("huggingface.co")
    assert len(refused) == 2


async def test_clients_are_refused_too() -> None:
    with expected_refusals() as refused:
        with pytest.raises(NetworkGuardError):
            await asyncio.open_connection(TEST_NET, 9)
        async with httpx.AsyncClient() as client:
            with pytest.raises(NetworkGuardError):
                await client.get("https://example.com/")
    assert refused


async def test_loopback_and_local_names_work() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        _, writer = await asyncio.open_connection("localhost", port)
        writer.close()
        assert socket.getaddrinfo("localhost", port)
    with socket.socket(socket.AF_UNIX) as unix_sock:
        assert unix_sock.family == socket.AF_UNIX


def test_refusals_swallowed_by_a_library_still_fail_the_test() -> None:
    with socket.socket() as sock:
        try:
            sock.connect((TEST_NET, 9))
        except NetworkGuardError:
            pass  # as a library that falls back quietly would
    refused = network_guard.guard.take_violations()
    assert refused and TEST_NET in refused[0]  # what the autouse check would have reported


CHILD_SCRIPT = textwrap.dedent(f"""
    import json, socket, sys
    guard = sys.modules.get("intern_netguard")
    if guard is None or not guard.is_installed():
        print(json.dumps({{"installed": False}}))
        sys.exit(0)  # never try a real connection without the guard
    outcome = {{"installed": True}}
    for name, attempt in (
        ("connect", lambda: socket.create_connection(("{TEST_NET}", 9), timeout=1)),
        ("dns", lambda: socket.getaddrinfo("example.com", 80)),
    ):
        try:
            attempt()
            outcome[name] = "connected"
        except Exception as exc:
            outcome[name] = type(exc).__module__ + "." + type(exc).__name__
    server = socket.create_server(("127.0.0.1", 0))
    socket.create_connection(server.getsockname()).close()
    outcome["loopback"] = "ok"
    print(json.dumps(outcome))
""")


def test_child_python_processes_are_guarded() -> None:
    assert os.environ["PYTHONPATH"].split(os.pathsep)[0] == str(network_guard.GUARD_DIR)
    with expected_refusals() as refused:
        result = subprocess.run([sys.executable, "-c", CHILD_SCRIPT], capture_output=True, text=True,
                                timeout=60, check=True)
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"installed": True, "connect": "intern_netguard.NetworkGuardError",
                       "dns": "intern_netguard.NetworkGuardError", "loopback": "ok"}
    assert len(refused) == 2 and all(line.startswith("(child)") for line in refused)


def test_child_refusals_are_reported_to_the_session() -> None:
    script = "import socket\ntry:\n    socket.gethostbyname('example.org')\nexcept Exception:\n    pass\n"
    subprocess.run([sys.executable, "-c", script], timeout=60, check=True)
    refused = network_guard.guard.take_violations()
    assert len(refused) == 1 and "example.org" in refused[0]


def test_a_shadowed_sitecustomize_still_runs(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text("import builtins\nbuiltins.SHADOWED_SITECUSTOMIZE_RAN = True\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(network_guard.GUARD_DIR), str(tmp_path)])}
    script = ("import builtins, sys\n"
              "print(getattr(builtins, 'SHADOWED_SITECUSTOMIZE_RAN', False), sys.modules['intern_netguard'].is_installed())")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
                            check=True)
    assert result.stdout.split() == ["True", "True"]
