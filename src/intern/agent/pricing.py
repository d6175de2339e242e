"""Hardware prices: one table. Live from the Hub's hardware list (cached), this static copy as fallback.

Prices are kept per hour internally; the Hub sends them per `unitLabel` (usually per minute).
The same table feeds cost estimates, the approval checks and the hardware table in the prompts; what a
GPU can hold and compute is in `intern.agent.hardware`.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

from intern.agent.errors import ToolArgumentError
from intern.agent.hardware import GPUS


@dataclass(frozen=True)
class Flavor:
    name: str
    pretty_name: str
    hourly_usd: float
    gpus: int = 0
    gpu_model: str | None = None
    vram_gb: int = 0  # total across GPUs, as the Hub lists it ("4x A100 (320 GB)")
    cpu: str = ""
    ram: str = ""

    @property
    def is_gpu(self) -> bool:
        return self.gpus > 0

    @property
    def is_free(self) -> bool:
        return self.hourly_usd == 0

    @property
    def vram_per_gpu(self) -> int:
        """What one process can use: a plain script does not pool the GPUs' memory."""
        return self.vram_gb // self.gpus if self.gpus else 0

    def gpu_text(self) -> str:
        """'4x A100, 80 GB each' / '1x L4, 24 GB' (per GPU, never the sum)."""
        each = " each" if self.gpus > 1 else ""
        return f"{self.gpus}x {self.gpu_model}, {self.vram_per_gpu} GB{each}"


def _f(name: str, pretty: str, hourly: float, gpus: int = 0, model: str | None = None, vram: int = 0,
       cpu: str = "", ram: str = "") -> Flavor:
    return Flavor(name, pretty, hourly, gpus, model, vram, cpu, ram)


# Static fallback, from the Hub's published Jobs hardware list (per-hour figures).
STATIC_FLAVORS: tuple[Flavor, ...] = (
    _f("cpu-basic", "CPU Basic", 0.01, cpu="2 vCPU", ram="16 GB"),
    _f("cpu-upgrade", "CPU Upgrade", 0.03, cpu="8 vCPU", ram="32 GB"),
    _f("cpu-xl", "CPU XL", 1.00, cpu="16 vCPU", ram="124 GB"),
    _f("cpu-performance", "CPU Performance", 1.90, cpu="32 vCPU", ram="256 GB"),
    _f("t4-small", "Nvidia T4 - small", 0.40, 1, "T4", 16),
    _f("t4-medium", "Nvidia T4 - medium", 0.60, 1, "T4", 16),
    _f("l4x1", "1x Nvidia L4", 0.80, 1, "L4", 24),
    _f("l4x4", "4x Nvidia L4", 3.80, 4, "L4", 96),
    _f("a10g-small", "Nvidia A10G - small", 1.00, 1, "A10G", 24),
    _f("a10g-large", "Nvidia A10G - large", 1.50, 1, "A10G", 24),
    _f("a10g-largex2", "2x Nvidia A10G - large", 3.00, 2, "A10G", 48),
    _f("a10g-largex4", "4x Nvidia A10G - large", 5.00, 4, "A10G", 96),
    _f("l40sx1", "1x Nvidia L40S", 1.80, 1, "L40S", 48),
    _f("l40sx4", "4x Nvidia L40S", 8.30, 4, "L40S", 192),
    _f("l40sx8", "8x Nvidia L40S", 23.50, 8, "L40S", 384),
    _f("a100-large", "Nvidia A100 - large", 2.50, 1, "A100", 80),
    _f("a100x4", "4x Nvidia A100", 10.00, 4, "A100", 320),
    _f("a100x8", "8x Nvidia A100", 20.00, 8, "A100", 640),
    _f("rtx-pro-6000", "1x RTX PRO 6000", 2.75, 1, "RTX PRO 6000", 96),
    _f("rtx-pro-6000x2", "2x RTX PRO 6000", 5.50, 2, "RTX PRO 6000", 192),
    _f("rtx-pro-6000x4", "4x RTX PRO 6000", 11.00, 4, "RTX PRO 6000", 384),
    _f("rtx-pro-6000x8", "8x RTX PRO 6000", 22.00, 8, "RTX PRO 6000", 768),
    _f("h200", "1x Nvidia H200", 5.00, 1, "H200", 141),
    _f("h200x2", "2x Nvidia H200", 10.00, 2, "H200", 282),
    _f("h200x4", "4x Nvidia H200", 20.00, 4, "H200", 564),
    _f("h200x8", "8x Nvidia H200", 40.00, 8, "H200", 1128),
)

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
