"""The chart of a job's metrics against steps, as PNG bytes (matplotlib, Agg backend, imported when
first needed: it costs a second of start-up that most processes never need)."""

from __future__ import annotations

import io
import math
from typing import Any

LOSSES = ("loss", "eval_loss")
RATE = "learning_rate"
MAX_OTHERS = 3


def _series(points: dict[str, Any], name: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for x, y in points.get(name) or []:
        value = float(y)
        if math.isfinite(value):
            xs.append(float(x))
            ys.append(value)
    return xs, ys


def left_metrics(points: dict[str, Any]) -> list[str]:
    """Loss and eval loss when the run logged them; otherwise its other metrics with the most points."""
    losses = [n for n in LOSSES if len(_series(points, n)[0]) >= 1]
    if losses:
        return losses
    others = sorted((n for n in points if n != RATE), key=lambda n: -len(_series(points, n)[0]))
    return [n for n in others if len(_series(points, n)[0]) >= 1][:MAX_OTHERS]


def render_chart(points: dict[str, Any], *, job_id: str, model: str | None) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    handles = []
    for name, style in zip(left_metrics(points), ("-o", "-s", "-^"), strict=False):
        xs, ys = _series(points, name)
        (line,) = ax.plot(xs, ys, style, markersize=3, linewidth=1.5, label=name)
        handles.append(line)
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(", ".join(h.get_label() for h in handles) or "value")
    ax.grid(True, alpha=0.3)
    xs, ys = _series(points, RATE)
    if xs:
        rate_ax = ax.twinx()
        (line,) = rate_ax.plot(xs, ys, "--", color="tab:gray", linewidth=1.2, label="learning rate")
        rate_ax.set_ylabel("learning rate")
        rate_ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        handles.append(line)
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize="small")
    fig.suptitle(f"Job {job_id}" + (f" · {model}" if model else ""), fontsize=11)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()
