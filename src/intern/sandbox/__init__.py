"""The sandbox Space that Intern ships: its exec server, Dockerfile and requirements, as package data.

`space_files()` is exactly what is uploaded to a new sandbox Space (and what the Hub stand-in builds
and runs in tests). The server is standalone: it imports only the standard library and the edit
module, which travels with it as `intern_edit.py`.
"""

from __future__ import annotations

from importlib import resources

TOKEN_ENV = "INTERN_SANDBOX_TOKEN"  # the Space secret holding the sandbox's own token
TOKEN_HEADER = "X-Intern-Sandbox-Token"
APP_PORT = 7860

README = f"""---
title: Intern sandbox
emoji: 🧪
colorFrom: gray
colorTo: blue
sdk: docker
app_port: {APP_PORT}
pinned: false
---

A private, temporary sandbox that Intern created for one chat session to try code in. It is deleted
when the session ends or after it has been idle for a while.
"""


def space_files() -> dict[str, bytes]:
    here = resources.files("intern.sandbox")
    return {
        "README.md": README.encode("utf-8"),
        "Dockerfile": here.joinpath("Dockerfile").read_bytes(),
        "requirements.txt": here.joinpath("requirements.txt").read_bytes(),
        "server.py": here.joinpath("server.py").read_bytes(),
        "intern_edit.py": resources.files("intern.agent").joinpath("edit.py").read_bytes(),
    }
