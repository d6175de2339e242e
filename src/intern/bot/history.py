"""The team's memory of runs as the agent, the `history` command and the App Home see it, always
bound to one workspace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from intern.agent.pricing import format_duration
from intern.agent.tools.history import OUTCOME_TEXT
from intern.bot import runs
from intern.bot.cards import money
from intern.bot.chat import Command, Reply, who
from intern.bot.models import RunRecord
from intern.bot.policy import month_of
from intern.bot.run_logs import headline_metric

if TYPE_CHECKING:
    from intern.agent.ports import RunSummary
    from intern.bot.runtime import Runtime

COMMAND_LIMIT = 15


def summary_of(r: RunRecord) -> RunSummary:
    from intern.agent.ports import RunSummary

    datasets = tuple(d.get("id", "") + (f" ({'/'.join(x for x in (d.get('config'), d.get('split')) if x)})"
                                         if d.get("config") or d.get("split") else "") for d in r.datasets or [])
    return RunSummary(hf_job_id=r.hf_job_id, launched_at=r.launched_at.isoformat(),
                      requester=r.requester, task=r.task, outcome=r.outcome, flavor=r.flavor,
                      timeout_seconds=r.timeout_seconds,
                      method=r.method, base_model=r.base_model, datasets=datasets, hyperparams=dict(r.hyperparams),
                      runtime_seconds=r.runtime_seconds, cost_usd=r.cost_usd, error_signature=r.error_signature,
                      metrics=dict(r.metrics), output_repo=r.output_repo, code_pin=r.code_pin, url=r.url)


@dataclass
class WorkspaceHistory:
    """The `TeamHistory` port of one turn: the runs of its session's workspace."""

    rt: Runtime
    platform: str
    workspace: str

    async def runs(self, query: str, status: str | None, limit: int) -> list[RunSummary]:
        outcome = runs.status_value(status)
        async with self.rt.db.session() as db:
            found = await runs.search(db, self.platform, self.workspace, query, outcome, limit)
        return [summary_of(r) for r in found]

    async def similar(self, base_model: str, dataset: str) -> tuple[RunSummary | None, RunSummary | None]:
        async with self.rt.db.session() as db:
            found = await runs.similar(db, self.platform, self.workspace, base_model, dataset)
        return (summary_of(found.failed) if found.failed else None,
                summary_of(found.succeeded) if found.succeeded else None)

    def mention(self, user: str) -> str:
        return self.rt.spell(self.platform, who(user))


# --- `@intern history [words]` ------------------------------------------------------------------------

HEADER = "date · who · model · dataset · hardware · runtime · cost · outcome · metric · link"


async def history_command(rt: Runtime, cmd: Command) -> Reply:
    c = cmd.conversation
    words, status = split_status(cmd.args)
    async with rt.db.session() as db:
        found = await runs.search(db, c.platform, c.workspace, words, status, COMMAND_LIMIT)
    what = f' matching "{cmd.args.strip()}"' if cmd.args.strip() else ""
    if not found:
        return Reply(f"No runs of this workspace{what} yet." if what else
                     "No runs in this workspace yet: every job Intern launches is listed here.")
    lines = [f"*Runs of this workspace{what}* (newest first, {len(found)} shown)", HEADER]
    lines += [table_row(r) for r in found]
    return Reply("\n".join(lines))


def split_status(args: str) -> tuple[str, str | None]:
    """`failed qwen` filters by outcome as well as by words: a leading outcome word is the status."""
    words = args.split()
    if words:
        try:
            status = runs.status_value(words[0])
        except ValueError:
            return args, None
        if status is not None:
            return " ".join(words[1:]), status
    return args, None


def table_row(r: RunRecord) -> str:
    outcome = OUTCOME_TEXT.get(r.outcome, r.outcome) + (f" ({r.error_signature})" if r.error_signature else "")
    metric = headline_metric(r.metrics or {})
    cells = [r.launched_at.strftime("%Y-%m-%d"), who(r.requester), r.base_model or "?", r.dataset or "?",
             r.flavor, format_duration(r.runtime_seconds) if r.runtime_seconds is not None else "—",
             money(r.cost_usd) if r.cost_usd is not None else f"≤{money(r.estimated_cost_usd)}", outcome,
             f"{metric[0]} {_num(metric[1])}" if metric else "—", r.url or f"`{r.hf_job_id}`"]
    return "• " + " · ".join(cells)


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# --- App Home -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HomeRuns:
    latest: list[RunRecord]
    spend_by_outcome: dict[str, float]
    month: str


async def home_runs(rt: Runtime, platform: str, workspace: str, limit: int = 5) -> HomeRuns:
    from datetime import UTC, datetime

    month = month_of()
    start = datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=UTC)
    async with rt.db.session() as db:
        latest = await runs.search(db, platform, workspace, None, None, limit)
        spend = await runs.spend_by_outcome(db, platform, workspace, start)
    return HomeRuns(latest, spend, month)
