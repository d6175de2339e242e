"""Installs the test network guard in every child Python process of the test session.

The session puts this folder first on PYTHONPATH, so Python's `site` imports this module at
start-up. A `sitecustomize` that this one shadows (a distribution's own) is still run afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import intern_netguard  # type: ignore[import-not-found]  # beside this file, on PYTHONPATH

intern_netguard.install()


def _run_shadowed_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        candidate = os.path.join(entry or os.getcwd(), "sitecustomize.py")
        if os.path.abspath(entry or os.getcwd()) == here or not os.path.isfile(candidate):
            continue
        spec = importlib.util.spec_from_file_location("_shadowed_sitecustomize", candidate)
        if spec is not None and spec.loader is not None:
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
        return


_run_shadowed_sitecustomize()
