"""Ports for the servers a test starts as processes of their own (`intern serve`, the sandbox server, an
MCP server): the test picks the port, the child binds it later.

A port the kernel handed out for a moment (bind to 0, close) can be handed to another test process in
between, and the suite runs on several workers. So each worker takes ports from a range of its own,
below the kernel's ephemeral range (where the in-process stand-ins' ports come from), in turn, and
checks that the port is free now."""

from __future__ import annotations

import itertools
import os
import random
import socket

SPAN = 2000
FIRST = 20000  # ranges 20000-21999, 22000-23999, ... (under 32768, where the ephemeral range starts)


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...; unset without workers
    return int(worker[2:]) % 6 if worker.startswith("gw") and worker[2:].isdigit() else 6


_start = FIRST + _worker_index() * SPAN
_turns = itertools.cycle(random.sample(range(_start, _start + SPAN), SPAN))


def free_port() -> int:
    for _ in range(SPAN):
        port = next(_turns)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_start}-{_start + SPAN - 1}")
