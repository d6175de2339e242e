"""Refuses every socket connection and name lookup that would leave this machine.

The test session installs it (tests/support/network_guard.py), and so does every child Python
process started with this folder first on PYTHONPATH (through `sitecustomize.py` beside it). It
uses the standard library only, because it runs before anything else is importable.

A refusal happens before the real call, so no packet (not even a DNS query) is sent. Every refusal
is also recorded, in memory and, when INTERN_NETGUARD_LOG_DIR is set, in a file per process, so a
library that swallows the error still cannot make a test pass quietly.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import threading
import traceback
from collections.abc import Callable
from typing import Any

LOG_DIR_ENV = "INTERN_NETGUARD_LOG_DIR"
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
# Address families whose connections cannot reach another machine.
LOCAL_FAMILIES = frozenset(
    f for f in (getattr(socket, "AF_UNIX", None), getattr(socket, "AF_NETLINK", None)) if f is not None
)


class NetworkGuardError(RuntimeError):
    """A connection or name lookup outside loopback was refused before anything was sent.

    Not an OSError on purpose: libraries that fall back quietly on connection errors would
    swallow an OSError, and the test would pass without anyone noticing the attempt.
    """


_lock = threading.Lock()
_violations: list[str] = []
_originals: dict[str, Any] = {}


def _hosts_file_names() -> frozenset[str]:
    """Names that /etc/hosts answers: looking them up never sends a query."""
    names: set[str] = set()
    try:
        with open("/etc/hosts", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                fields = line.split("#", 1)[0].split()
                names.update(f.lower().rstrip(".") for f in fields[1:])
    except OSError:
        pass
    return frozenset(names)


_HOSTS_NAMES = _hosts_file_names()


def _as_text(host: Any) -> str:
    if isinstance(host, bytes | bytearray):
        return bytes(host).decode("ascii", "replace")
    return str(host)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_loopback_host(host: Any) -> bool:
    """True for loopback addresses (127.0.0.0/8, ::1) and names that are local by definition."""
    text = _as_text(host).strip().lower().rstrip(".")
    if text in LOCAL_NAMES or text.endswith(".localhost"):
        return True
    ip = _ip(text)
    return ip is not None and ip.is_loopback


def _lookup_allowed(host: Any) -> bool:
    """A lookup sends nothing when the host is empty, an address literal, or answered by /etc/hosts."""
    if host is None:
        return True
    text = _as_text(host).strip().lower().rstrip(".")
    return text == "" or is_loopback_host(text) or _ip(text) is not None or text in _HOSTS_NAMES


def _record(what: str) -> str:
    stack = "".join(traceback.format_stack(limit=12)[:-3])
    message = f"[pid {os.getpid()}] {what}"
    with _lock:
        _violations.append(f"{message}\n{stack}")
    log_dir = os.environ.get(LOG_DIR_ENV)
    if log_dir:
        try:
            with open(os.path.join(log_dir, f"{os.getpid()}.log"), "a", encoding="utf-8") as fh:
                fh.write(message.replace("\n", " ") + "\n")
        except OSError:
            pass
    return message


def _refuse(what: str) -> NetworkGuardError:
    message = _record(what)
    return NetworkGuardError(
        f"network guard: {message} refused; tests may reach only loopback (127.0.0.0/8, ::1) "
        "and unix sockets"
    )


def _check_address(sock: socket.socket, address: Any, action: str) -> None:
    family = sock.family
    if family in LOCAL_FAMILIES:
        return
    if family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple) and address:
        if is_loopback_host(address[0]):
            return
    raise _refuse(f"{action} to {address!r} (family {family!r})")


def _guard_method(name: str, address_of: Callable[[tuple[Any, ...]], Any]) -> None:
    original = getattr(socket.socket, name)
    _originals[name] = original

    @functools.wraps(original)
    def guarded(self: socket.socket, *args: Any) -> Any:
        address = address_of(args)
        if address is not None:
            _check_address(self, address, name)
        return original(self, *args)

    setattr(socket.socket, name, guarded)


def _guard_lookup(name: str, host_of: Callable[[tuple[Any, ...], dict[str, Any]], Any]) -> None:
    original = getattr(socket, name)
    _originals[name] = original

    @functools.wraps(original)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        host = host_of(args, kwargs)
        if not _lookup_allowed(host):
            raise _refuse(f"{name}({host!r})")
        return original(*args, **kwargs)

    setattr(socket, name, guarded)


def _sendto_address(args: tuple[Any, ...]) -> Any:
    return args[-1] if len(args) >= 2 else None


def _sendmsg_address(args: tuple[Any, ...]) -> Any:
    return args[3] if len(args) >= 4 else None


def _first(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return args[0] if args else kwargs.get("host")


def _reverse_lookup_host(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """gethostbyaddr/getnameinfo ask DNS about an address unless it is loopback or numeric-only."""
    if not args:
        return None
    target = args[0][0] if isinstance(args[0], tuple) else args[0]
    flags = args[1] if len(args) > 1 and isinstance(args[0], tuple) else 0
    if flags & socket.NI_NUMERICHOST:
        return None
    text = _as_text(target)
    return text if not is_loopback_host(text) else None


def install() -> None:
    """Patch the socket module in this process. Idempotent."""
    if is_installed():
        return
    _guard_method("connect", lambda a: a[0] if a else None)
    _guard_method("connect_ex", lambda a: a[0] if a else None)
    _guard_method("sendto", _sendto_address)
    _guard_method("sendmsg", _sendmsg_address)
    _guard_lookup("getaddrinfo", _first)
    _guard_lookup("gethostbyname", _first)
    _guard_lookup("gethostbyname_ex", _first)
    _guard_lookup("gethostbyaddr", _reverse_lookup_host)
    _guard_lookup("getnameinfo", _reverse_lookup_host)
    socket.socket._intern_netguard = True  # type: ignore[attr-defined]


def is_installed() -> bool:
    return bool(getattr(socket.socket, "_intern_netguard", False))


def take_violations() -> list[str]:
    """Refusals recorded in this process since the last call, and those logged by child processes."""
    with _lock:
        taken = list(_violations)
        _violations.clear()
    return taken + _take_logged_by_children()


def _take_logged_by_children() -> list[str]:
    log_dir = os.environ.get(LOG_DIR_ENV)
    if not log_dir or not os.path.isdir(log_dir):
        return []
    taken: list[str] = []
    own = f"{os.getpid()}.log"
    for name in sorted(os.listdir(log_dir)):
        if name == own:
            os.unlink(os.path.join(log_dir, name))  # already counted from memory
            continue
        path = os.path.join(log_dir, name)
        try:
            with open(path, encoding="utf-8") as fh:
                taken.extend(f"(child) {line.rstrip()}" for line in fh if line.strip())
            os.unlink(path)
        except OSError:
            continue
    return taken
