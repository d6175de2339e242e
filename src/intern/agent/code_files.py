"""The code a job runs from the sandbox, as read when its approval card was prepared (plain data)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal


@dataclass(frozen=True)
class SnapshotFile:
    path: str  # relative to the snapshot's root, "/"-separated
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")


@dataclass(frozen=True)
class CodeSnapshot:
    root: str  # where it was read in the sandbox
    kind: Literal["file", "folder"]
    files: tuple[SnapshotFile, ...]
    skipped: tuple[str, ...] = ()

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def manifest(self) -> dict[str, Any]:
        """What the spec hash covers: every file's path, size and full sha256."""
        return {"root": self.root, "kind": self.kind,
                "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files]}

    def get(self, path: str) -> SnapshotFile | None:
        return next((f for f in self.files if f.path == path), None)

    def listing(self) -> str:
        width = max(len(f.path) for f in self.files)
        rows = [f"{f.path:<{width}}  {size_text(f.size):>9}  sha256 {f.sha256[:12]}" for f in self.files]
        head = (f"{len(self.files)} file{'s' if len(self.files) != 1 else ''}, {size_text(self.total_bytes)}, "
                f"from the sandbox {self.kind} {self.root}")
        if self.skipped:
            head += f" (left out: {', '.join(self.skipped[:10])})"
        return head + "\n" + "\n".join(rows)


def size_text(n: int) -> str:
    for unit, size in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
