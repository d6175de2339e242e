"""`team_history`: the workspace's earlier runs, so a plan starts from what the team already tried.

Read-only and free: no approval. The runs come through the `TeamHistory` port
(`ctx.deps.team_history`), which the bot binds to the turn's own workspace.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from intern.agent.context_deps import required
from intern.agent.errors import ToolArgumentError
from intern.agent.pricing import format_duration
from intern.agent.recipe import hyperparams_text, recipe_of_spec
from intern.agent.tools.base import Check, Tool, ToolResult

if TYPE_CHECKING:
    from collections.abc import Callable

    from intern.agent.context_deps import ToolContext
    from intern.agent.ports import RunSummary, TeamHistory

log = logging.getLogger(__name__)
OUTCOME_TEXT = {"timed_out": "timed out"}


class HistoryArgs(BaseModel):
    """Search the team's earlier training and evaluation runs in this workspace."""

    query: str = Field("", max_length=500, description="Words to find in the task, model, dataset, method, "
                                                        "hardware or outcome (all must match, as prefixes); "
                                                        "empty for the latest runs")
    status: str | None = Field(None, description="Only runs with this outcome: completed, failed, cancelled, "
                                                 "timed out or running")
    limit: int = Field(10, ge=1, le=50, description="How many runs (newest first)")


def port(ctx: ToolContext) -> TeamHistory:
    return required(ctx.deps.team_history, "The team's run history is not available in this session.")


async def handle(ctx: ToolContext, args: HistoryArgs) -> ToolResult:
    try:
        history = port(ctx)
        found = await history.runs(args.query, args.status, args.limit)
    except ValueError as exc:
        raise ToolArgumentError(str(exc)) from None
    what = f' matching "{args.query.strip()}"' if args.query.strip() else ""
    if args.status:
        what += f" with outcome {args.status}"
    if not found:
        return ToolResult(f"No runs of this workspace{what}. Nothing to learn from yet: size the run from the "
                          "recipe and the size guide.")
    head = f"{len(found)} run(s) of this workspace{what}, newest first:"
    return ToolResult("\n".join([head, *(describe_run(i, r, history.mention) for i, r in enumerate(found, 1))]))


def describe_run(n: int, r: RunSummary, mention: Callable[[str], str]) -> str:
    outcome = OUTCOME_TEXT.get(r.outcome, r.outcome)
    if r.error_signature:
        outcome += f": {r.error_signature}"
    spent = []
    if r.runtime_seconds is not None:
        spent.append(f"ran {format_duration(r.runtime_seconds)}")
    if r.cost_usd is not None:
        spent.append(f"cost ${r.cost_usd:.2f}")
    what = " of ".join(x for x in (r.method, r.base_model) if x) or "unknown recipe"
    if r.datasets:
        what += " on " + ", ".join(r.datasets)
    lines = [f"{n}. {r.launched_at[:10]} job {r.hf_job_id}: {outcome}" + (f" ({', '.join(spent)})" if spent else ""),
             f"   {what} · {r.flavor}, timeout {format_duration(r.timeout_seconds)}"]
    detail = [x for x in (hyperparams_text(r.hyperparams), metrics_text(r.metrics)) if x]
    if detail:
        lines.append("   " + " · ".join(detail))
    tail = [f"asked by {mention(r.requester)}" + (f": {r.task}" if r.task else "")]
    if r.output_repo:
        tail.append(f"output {r.output_repo}")
    if r.code_pin:
        tail.append(f"code {r.code_pin}")
    lines.append("   " + " · ".join(tail))
    return "\n".join(lines)


def metrics_text(metrics: dict[str, object]) -> str:
    shown = [k for k in ("eval_loss", "train_loss", "loss", "reward", "epoch") if k in metrics]
    return ", ".join(f"{k} {_num(metrics[k])}" for k in shown[:4])


def _num(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


history_tool = Tool(
    name="team_history",
    description=(
        "The team's earlier runs in this workspace (newest first): task, model, dataset, method, key "
        "hyperparameters, hardware, runtime, cost, outcome with the error signature of failures (e.g. CUDA out of "
        "memory), final metrics and output repo. Consult it before planning a training run: reuse what worked, "
        "avoid sizes that ran out of memory and learning rates that diverged."
    ),
    args=HistoryArgs,
    handler=handle,
)


async def similar_run_checks(ctx: ToolContext, spec: dict[str, object]) -> list[Check]:
    """Card lines from the workspace's earlier runs on the same base model and dataset: the latest
    failure (so it is not repeated) and the latest success (a sizing hint)."""
    history = ctx.deps.team_history
    recipe = recipe_of_spec(spec)
    if history is None or not recipe.base_model or not recipe.dataset:
        return []
    try:
        failed, done = await history.similar(recipe.base_model, recipe.dataset)
    except Exception:
        log.exception("could not read the workspace's earlier runs for the card")
        return []
    out = []
    if failed is not None:
        out.append(Check("warn", f"Similar run failed: {failed.hf_job_id} on {failed.launched_at[:10]}: "
                                 f"{failed.error_signature or 'no known error signature'} on {failed.flavor}"))
    if done is not None:
        spent = ", ".join(x for x in (
            f"ran {format_duration(done.runtime_seconds)}" if done.runtime_seconds is not None else "",
            f"cost ${done.cost_usd:.2f}" if done.cost_usd is not None else "") if x)
        out.append(Check("ok", f"Similar run completed: {done.hf_job_id} on {done.launched_at[:10]} on "
                               f"{done.flavor}" + (f" ({spent})" if spent else "") + " — a sizing hint"))
    return out
