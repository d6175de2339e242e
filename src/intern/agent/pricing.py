"""Hardware prices: one table. Live from the Hub's hardware list (cached), this static copy as fallback.

Prices are kept per hour internally; the Hub sends them per `unitLabel` (usually per minute).
The same table feeds cost estimates, the approval checks and the hardware table in the prompts; what a
GPU can hold and compute is in `intern.agent.hardware`.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from intern.agent.errors import ToolArgumentError
from intern.agent.hardware import GPUS, STATIC_FLAVORS, Flavor

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TIMEOUT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)


def parse_timeout(value: str) -> int:
    """'30m' / '2h' / '1d' / '90s' -> seconds. Anything else is an argument error."""
    if not isinstance(value, str):
        raise ToolArgumentError(f"timeout must be a string with a unit such as \"30m\", \"2h\" or \"1d\", not {value!r}")
    m = _TIMEOUT_RE.match(value)
    if not m:
        raise ToolArgumentError(
            f"timeout {value!r} is not understood: use a number with a unit s, m, h or d, e.g. \"30m\", \"2h\", \"1d\""
        )
    seconds = int(float(m.group(1)) * _UNIT_SECONDS[m.group(2).lower()])
    if seconds <= 0:
        raise ToolArgumentError("timeout must be longer than zero")
    return seconds


JOB_TIMEOUT_FORMS = 'a string with a unit ("30m", "2h", "1d") or a whole number of seconds (e.g. 7200)'


def parse_job_timeout(value: object) -> int:
    """A job's timeout as the Hub takes it: a number with a unit s, m, h or d, or a whole number of
    seconds (a JSON number, or digits in a string, as huggingface_hub's `run_job` passes them on)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ToolArgumentError(f"timeout must be {JOB_TIMEOUT_FORMS}, not {value!r}")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, str):
        try:
            return parse_timeout(value)
        except ToolArgumentError:
            raise ToolArgumentError(f"timeout {value!r} is not understood: use {JOB_TIMEOUT_FORMS}") from None
    if isinstance(value, float) and not value.is_integer():
        raise ToolArgumentError(f"timeout {value!r} is not a whole number of seconds: use {JOB_TIMEOUT_FORMS}")
    if value <= 0:
        raise ToolArgumentError("timeout must be longer than zero")
    return int(value)


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds % 86400 == 0 and seconds >= 86400:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600}h"
    if seconds >= 3600:
        h, rem = divmod(seconds, 3600)
        return f"{h}h{rem // 60:02d}m"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def flavor_from_hub(item: Any) -> Flavor:
    """Build a Flavor from huggingface_hub's JobHardwareInfo (price per unit_label)."""
    unit = (getattr(item, "unit_label", None) or "minute").lower()
    per_unit = float(getattr(item, "unit_cost_usd", 0.0) or 0.0)
    factor = {"second": 3600, "minute": 60, "hour": 1}.get(unit, 60)
    acc = getattr(item, "accelerator", None)
    gpus, model, vram = 0, None, 0
    if acc is not None:
        try:
            gpus = int(getattr(acc, "quantity", 1) or 1)
        except (TypeError, ValueError):
            gpus = 1
        model = getattr(acc, "model", None)
        m = re.search(r"(\d+)", str(getattr(acc, "vram", "") or ""))
        vram = int(m.group(1)) if m else 0
    return Flavor(
        name=item.name,
        pretty_name=getattr(item, "pretty_name", item.name) or item.name,
        hourly_usd=round(per_unit * factor, 6),
        gpus=gpus,
        gpu_model=model,
        vram_gb=vram,
        cpu=getattr(item, "cpu", "") or "",
        ram=getattr(item, "ram", "") or "",
    )


class PriceTable:
    """The live table when the Hub answered recently, else the static one. Thread-safe enough for asyncio."""

    def __init__(self, fetch: Any | None = None, ttl_seconds: float = 3600.0) -> None:
        self._fetch = fetch  # async () -> list[Flavor]
        self._ttl = ttl_seconds
        self._flavors: dict[str, Flavor] = {f.name: f for f in STATIC_FLAVORS}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.source = "static"

    async def refresh(self, force: bool = False) -> None:
        if self._fetch is None:
            return
        if not force and self._fetched_at and time.monotonic() - self._fetched_at < self._ttl:
            return
        async with self._lock:
            if not force and self._fetched_at and time.monotonic() - self._fetched_at < self._ttl:
                return
            try:
                flavors = await self._fetch()
            except Exception:
                # The static table stays in force; try again after a short while, not on every call.
                self._fetched_at = time.monotonic() - self._ttl + 60
                return
            if flavors:
                self._flavors = {f.name: f for f in flavors}
                self.source = "hub"
            self._fetched_at = time.monotonic()

    async def get(self, name: str) -> Flavor:
        await self.refresh()
        return self.lookup(name)

    def lookup(self, name: str) -> Flavor:
        f = self._flavors.get(name)
        if f is None:
            known = ", ".join(sorted(self._flavors, key=lambda n: self._flavors[n].hourly_usd))
            raise ToolArgumentError(f"Unknown hardware flavor {name!r}. Known flavors: {known}")
        return f

    def all(self) -> list[Flavor]:
        return sorted(self._flavors.values(), key=lambda f: (f.hourly_usd, f.name))


def max_cost(flavor: Flavor, timeout_seconds: int) -> float:
    return round(flavor.hourly_usd * timeout_seconds / 3600.0, 4)


def hardware_table_markdown(flavors: list[Flavor] | None = None) -> str:
    rows = ["| flavor | GPUs | memory per GPU | bf16 | $/hour |", "|---|---|---|---|---|"]
    for f in flavors or sorted(STATIC_FLAVORS, key=lambda f: (f.hourly_usd, f.name)):
        gpu = f"{f.gpus}x {f.gpu_model}" if f.gpus else "-"
        known = GPUS.get(f.gpu_model or "")
        bf16 = "-" if not f.gpus else "?" if known is None else "yes" if known.bf16 else "no"
        memory = f"{f.vram_per_gpu} GB" if f.gpus else "-"
        rows.append(f"| {f.name} | {gpu} | {memory} | {bf16} | {f.hourly_usd:.2f} |")
    return "\n".join(rows)
