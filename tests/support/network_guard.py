"""pytest plugin: no test may reach anything but loopback, in this process or in a child process.

The guard itself is `sitecustomize_dir/intern_netguard.py` (standard library only). This plugin
installs it in the test process as soon as it is loaded, puts its folder first on PYTHONPATH so that
child Python processes install it too (via `sitecustomize.py`), and fails any test during which a
refusal was recorded, even when a library caught and hid the error.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest

GUARD_DIR = Path(__file__).resolve().parent / "sitecustomize_dir"


def _load_core() -> ModuleType:
    """One module object, whether sitecustomize already imported it (PYTHONPATH set before start) or not."""
    existing = sys.modules.get("intern_netguard")
    if existing is not None:
        return existing
    spec = importlib.util.spec_from_file_location("intern_netguard", GUARD_DIR / "intern_netguard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["intern_netguard"] = module
    spec.loader.exec_module(module)
    return module


guard = _load_core()
guard.install()
NetworkGuardError: type[RuntimeError] = guard.NetworkGuardError
_log_dir: str | None = None


def _prepend_pythonpath(path: str) -> None:
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != path]
    os.environ["PYTHONPATH"] = os.pathsep.join([path, *parts])


def pytest_configure(config: pytest.Config) -> None:
    global _log_dir
    _prepend_pythonpath(str(GUARD_DIR))
    # A worker of a parallel run (pytest-xdist) inherits the controller's environment: it takes a
    # folder of its own, so its children's refusals are charged to its own tests.
    if not os.environ.get(guard.LOG_DIR_ENV) or os.environ.get("PYTEST_XDIST_WORKER"):
        _log_dir = tempfile.mkdtemp(prefix="intern-netguard-")
        os.environ[guard.LOG_DIR_ENV] = _log_dir


def pytest_unconfigure(config: pytest.Config) -> None:
    if _log_dir is not None:
        shutil.rmtree(_log_dir, ignore_errors=True)
        os.environ.pop(guard.LOG_DIR_ENV, None)


@contextmanager
def expected_refusals() -> Iterator[list[str]]:
    """For tests that provoke the guard on purpose: the refusals inside the block are handed to the
    test (to assert on) instead of failing it. Refusals from before the block are kept for the check."""
    earlier = guard.take_violations()
    seen: list[str] = []
    try:
        yield seen
    finally:
        seen.extend(guard.take_violations())
        _restore(earlier)


def _restore(violations: list[str]) -> None:
    with guard._lock:
        guard._violations[:0] = violations


@pytest.fixture(autouse=True)
def _no_network_attempts() -> Iterator[None]:
    yield
    refused = guard.take_violations()
    if refused:
        shown = "\n\n".join(refused[:5])
        pytest.fail(
            f"{len(refused)} network access(es) outside loopback were attempted (and refused) during "
            f"this test or before it:\n{shown}",
            pytrace=False,
        )
