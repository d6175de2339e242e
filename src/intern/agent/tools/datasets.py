"""`hf_inspect_dataset`: a Hub dataset seen through the dataset viewer API, and the formats it fits.

The Hub token goes only to the Hub host (HF_ENDPOINT). The viewer gets it when its host is that host
or one of its subdomains (the default `datasets-server.huggingface.co` is a subdomain of
`huggingface.co`), so private datasets the token can read and gated ones its account was granted are
inspected like public ones. A viewer elsewhere (a custom INTERN_DATASETS_SERVER_URL on another host)
is asked without credentials. When the viewer refuses, it does not say whether the dataset is
missing, gated or private; the Hub's own metadata then says which, and the message says what to
request and where.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, Field, field_validator

from intern.agent.datasets_format import FormatReport, classify, clip_row
from intern.agent.errors import ToolFeedback
from intern.agent.tools.base import Tool, ToolResult

if TYPE_CHECKING:
    from intern.agent.context_deps import ToolContext

_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_CACHE_TTL = 600.0
_TIMEOUT = 30.0
_MAX_CONFIGS_SHOWN = 20


class InspectDatasetArgs(BaseModel):
    """Inspect a Hugging Face dataset: configs, splits and row counts, schema, sample rows, parquet sizes,
    and which training formats (TRL trainers) the data fits as it is, with the conversions others need."""

    dataset: str = Field(description="Dataset id on the Hub, e.g. 'HuggingFaceH4/ultrachat_200k'")
    config: str | None = Field(None, description="Config (subset); default: 'default' or the first config")
    split: str | None = Field(None, description="Split; default: 'train' or the first split of the config")
    sample_rows: int = Field(3, ge=0, le=20, description="Sample rows to show (0-20)")

    @field_validator("dataset")
    @classmethod
    def _dataset_id(cls, value: str) -> str:
        value = value.strip()
        for prefix in ("https://huggingface.co/datasets/", "hf://datasets/"):
            if value.startswith(prefix):
                value = value.removeprefix(prefix).split("/tree/")[0].strip("/")
        if not _ID_RE.match(value):
            raise ValueError(f"{value!r} is not a dataset id: use 'owner/name', e.g. 'HuggingFaceH4/ultrachat_200k'")
        return value


class ViewerError(Exception):
    """The dataset viewer answered with an error status."""

    def __init__(self, status: int, code: str | None, body: Any) -> None:
        message = body.get("error") if isinstance(body, dict) else None
        super().__init__(message or f"HTTP {status}")
        self.status, self.code, self.body = status, code, body


def is_hub_host(url: str, hub_endpoint: str) -> bool:
    """`url` is on the Hub's host or a subdomain of it (any port): the Hub token may go there."""
    host = (urlsplit(url).hostname or "").lower()
    hub = (urlsplit(hub_endpoint).hostname or "").lower()
    return bool(host and hub) and (host == hub or host.endswith("." + hub))


def viewer_token(ctx: ToolContext) -> str | None:
    """The Hub token when the configured viewer is a Hub host, else None (see the module docstring)."""
    if not is_hub_host(ctx.config.datasets_server_url, ctx.hub.endpoint):
        return None
    return ctx.hub.token_for_job_secrets()


class DatasetViewer:
    """The few dataset viewer calls the tool makes, cached when the context offers a cache."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, cache: Any | None = None,
                 token: str | None = None) -> None:
        self.http, self.base_url, self.cache = http, base_url.rstrip("/"), cache
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        # Answers seen with one token are not served to another (a private dataset's rows stay with it).
        self._who = hashlib.sha256(token.encode()).hexdigest()[:16] if token else "anonymous"

    @property
    def authenticated(self) -> bool:
        return bool(self._headers)

    async def get(self, path: str, **params: str) -> dict[str, Any]:
        key = (f"dsviewer:{self._who}:{self.base_url}{path}?"
               + "&".join(f"{k}={v}" for k, v in sorted(params.items())))
        if self.cache is not None and (hit := await self.cache.get(key)) is not None:
            return json.loads(hit)
        response = await self.http.get(f"{self.base_url}{path}", params=params, headers=self._headers,
                                       timeout=_TIMEOUT)
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:300]}
        if response.status_code != 200:
            raise ViewerError(response.status_code, response.headers.get("X-Error-Code"), body)
        if self.cache is not None:
            await self.cache.set(key, json.dumps(body), _CACHE_TTL)
        return body


@dataclass
class Inspection:
    dataset: str
    config: str
    split: str
    capabilities: dict[str, bool]
    splits: dict[str, list[str]]
    num_rows: dict[tuple[str, str], int]
    columns_text: list[str]
    rows: list[dict[str, Any]]
    report: FormatReport
    parquet: list[dict[str, Any]] = field(default_factory=list)
    partial: bool = False
    warnings: list[str] = field(default_factory=list)


# --- errors the model can act on -------------------------------------------------------------------

async def _account(ctx: ToolContext) -> str:
    try:
        who = await ctx.hub.read(ctx.hub.api.whoami)
        return f"the account behind Intern's Hub token ({who['name']})"
    except Exception:
        return "the account behind Intern's Hub token"


def _how_asked(ctx: ToolContext, viewer: DatasetViewer) -> str:
    if viewer.authenticated:
        return ""
    if not ctx.hub.has_token:
        return (" The viewer was asked without credentials because Intern has no Hub token: set HF_TOKEN to a token "
                "of an account that can read it.")
    return (f" The viewer at {viewer.base_url} is not on the Hub's host, so Intern does not send it the Hub token; "
            "point INTERN_DATASETS_SERVER_URL at the Hub's dataset viewer to inspect datasets that need it.")


async def _not_accessible(ctx: ToolContext, viewer: DatasetViewer, dataset: str) -> str:
    """The viewer hides whether a dataset is missing, gated or private; the Hub's metadata tells."""
    page = f"{ctx.hub.endpoint}/datasets/{dataset}"
    asked = _how_asked(ctx, viewer)
    generic = (f"Dataset '{dataset}' does not exist, or is private or gated (the dataset viewer does not say "
               "which). Check the id (owner/name) for typos, or search for the dataset with hf_papers "
               "find_datasets." + asked)
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        info = await ctx.hub.call(ctx.hub.api.dataset_info, dataset)
    except Exception as exc:
        if not isinstance(exc, RepositoryNotFoundError) or isinstance(exc, GatedRepoError):
            return generic
        if not ctx.hub.has_token:
            return (f"Dataset '{dataset}' was not found on the Hub (it does not exist, or it is private). Check "
                    "the id (owner/name) for typos, or search with hf_papers find_datasets." + asked)
        return (f"Dataset '{dataset}' was not found on the Hub with Intern's token: it does not exist, or it is "
                f"private and {await _account(ctx)} cannot read it. Check the id (owner/name) for typos, or search "
                "with hf_papers find_datasets. If it is a private dataset of your team, its owners must give that "
                "account read access (membership of the owning organization), or HF_TOKEN must be a token that "
                "can read it.")
    gated = getattr(info, "gated", False)
    if gated:
        how = ("its authors review each request" if gated == "manual"
               else "access is granted as soon as the terms are accepted")
        if not viewer.authenticated:
            return (f"Dataset '{dataset}' is gated ({gated} approval): access is requested on its page, {page} "
                    f"({how}).{asked}")
        return (f"Dataset '{dataset}' is gated ({gated} approval) and {await _account(ctx)} has no access to it. "
                f"Request access on the dataset's page, {page}, logged in as that account ({how}); or set HF_TOKEN "
                "to a token of an account that already has access. Sandboxes and jobs read it with "
                "INTERN_HF_READ_TOKEN (as their HF_TOKEN), whose account needs access too.")
    if getattr(info, "private", False):
        if not viewer.authenticated:
            return f"Dataset '{dataset}' is private: the dataset viewer cannot show it without credentials." + asked
        return (f"Dataset '{dataset}' is private. Intern's token can read it, but the dataset viewer does not "
                "serve it (the viewer shows private datasets only for PRO accounts and Enterprise organizations). "
                "Read its files with hf_repo_files, or load it in a sandbox or job, which read private data with "
                "INTERN_HF_READ_TOKEN as their HF_TOKEN.")
    return generic


async def _explain(ctx: ToolContext, viewer: DatasetViewer, dataset: str, exc: ViewerError) -> ToolFeedback:
    if exc.status in (401, 403) or exc.code in ("ExternalUnauthenticatedError", "ExternalAuthenticatedError",
                                                "NotSupportedPrivateRepositoryError"):
        return ToolFeedback(await _not_accessible(ctx, viewer, dataset))
    if exc.code == "ResponseNotReady":
        return ToolFeedback(f"The dataset viewer has not finished processing '{dataset}' yet (ResponseNotReady). "
                            "Retry in a minute or two; meanwhile its files can be read with hf_repo_files.")
    if exc.status == 404:
        return ToolFeedback(await _not_accessible(ctx, viewer, dataset))
    body = exc.body if isinstance(exc.body, dict) else {}
    cause = f" ({body['cause_exception']}: {body.get('cause_message', '')})" if body.get("cause_exception") else ""
    return ToolFeedback(f"The dataset viewer cannot read '{dataset}' (HTTP {exc.status}, {exc.code or 'no code'}): "
                        f"{exc}{cause}. Its files may be in a format the viewer does not support; read them with "
                        "hf_repo_files or try datasets.load_dataset in a sandbox.")


def _unreachable(viewer: DatasetViewer, exc: httpx.HTTPError) -> ToolFeedback:
    return ToolFeedback(f"Could not reach the dataset viewer at {viewer.base_url} ({type(exc).__name__}: {exc}). "
                        "Try again later.")


# --- the inspection --------------------------------------------------------------------------------

def _choose(splits: dict[str, list[str]], dataset: str, config: str | None, split: str | None) -> tuple[str, str]:
    if not splits:
        raise ToolFeedback(f"The dataset viewer lists no configs or splits for '{dataset}'.")
    if config is None:
        config = "default" if "default" in splits else next(iter(splits))
    elif config not in splits:
        raise ToolFeedback(f"Config '{config}' does not exist in '{dataset}'. Configs: {', '.join(splits)}.")
    names = splits[config]
    if split is None:
        split = "train" if "train" in names else names[0]
    elif split not in names:
        raise ToolFeedback(f"Split '{split}' does not exist in config '{config}' of '{dataset}'. "
                           f"Splits: {', '.join(names)}.")
    return config, split


def _split_map(body: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in body.get("splits", []):
        out.setdefault(item["config"], []).append(item["split"])
    return out


def _rows_from(first_rows: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Rows without the cells the viewer truncated (those are cut JSON, not values)."""
    rows, truncated = [], 0
    for item in first_rows.get("rows", []):
        cut = set(item.get("truncated_cells") or ())
        truncated += len(cut)
        rows.append({k: v for k, v in item.get("row", {}).items() if k not in cut})
    return rows, truncated


def _num_rows(size: dict[str, Any] | None) -> dict[tuple[str, str], int]:
    splits = ((size or {}).get("size") or {}).get("splits") or []
    return {(s["config"], s["split"]): int(s.get("num_rows") or 0) for s in splits}


async def _gather(viewer: DatasetViewer, dataset: str, config: str, split: str) -> dict[str, Any]:
    calls = {
        "size": viewer.get("/size", dataset=dataset),
        "info": viewer.get("/info", dataset=dataset, config=config),
        "first_rows": viewer.get("/first-rows", dataset=dataset, config=config, split=split),
        "parquet": viewer.get("/parquet", dataset=dataset, config=config),
    }
    results = await asyncio.gather(*calls.values(), return_exceptions=True)
    return dict(zip(calls, results, strict=True))


async def inspect_dataset(ctx: ToolContext, dataset: str, config: str | None = None,
                          split: str | None = None) -> Inspection:
    """Everything the viewer knows about one config/split; bad input raises ToolFeedback."""
    viewer = DatasetViewer(ctx.http, ctx.config.datasets_server_url, ctx.deps.cache, viewer_token(ctx))
    try:
        capabilities = await viewer.get("/is-valid", dataset=dataset)
        splits = _split_map(await viewer.get("/splits", dataset=dataset))
    except ViewerError as exc:
        raise await _explain(ctx, viewer, dataset, exc) from None
    except httpx.HTTPError as exc:
        raise _unreachable(viewer, exc) from None
    config, split = _choose(splits, dataset, config, split)
    got = await _gather(viewer, dataset, config, split)
    for value in got.values():
        if isinstance(value, httpx.HTTPError):
            raise _unreachable(viewer, value)
        if isinstance(value, BaseException) and not isinstance(value, ViewerError):
            raise value
    return _build(dataset, config, split, capabilities, splits, got)


def _build(dataset: str, config: str, split: str, capabilities: dict[str, Any], splits: dict[str, list[str]],
           got: dict[str, Any]) -> Inspection:
    ok = {k: v for k, v in got.items() if not isinstance(v, BaseException)}
    warnings = [f"/{k.replace('_', '-')} failed: {v}" for k, v in got.items() if isinstance(v, BaseException)]
    first_rows = ok.get("first_rows") or {}
    info = (ok.get("info") or {}).get("dataset_info") or {}
    features = first_rows.get("features") or info.get("features")
    if not features:
        raise ToolFeedback(f"The dataset viewer could not give the schema of '{dataset}' ({config}/{split}): "
                           + ("; ".join(warnings) or "no features") + ".")
    rows, truncated = _rows_from(first_rows)
    if truncated:
        warnings.append(f"{truncated} cell(s) were too large for the viewer and are left out of the analysis")
    report = classify(features, rows)
    parquet = [f for f in (ok.get("parquet") or {}).get("parquet_files", []) if f.get("split") == split]
    return Inspection(
        dataset=dataset, config=config, split=split,
        capabilities={k: bool(v) for k, v in capabilities.items() if isinstance(v, bool)},
        splits=splits, num_rows=_num_rows(ok.get("size")),
        columns_text=[f"{c.name}: {c.type_text}" for c in report.columns], rows=rows, report=report,
        parquet=parquet, partial=bool((ok.get("parquet") or {}).get("partial")), warnings=warnings)


# --- the report ------------------------------------------------------------------------------------

def _count(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def _bytes(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _splits_lines(ins: Inspection) -> list[str]:
    lines = ["Configs and splits (rows):"]
    for config in list(ins.splits)[:_MAX_CONFIGS_SHOWN]:
        parts = [f"{s} {_count(ins.num_rows.get((config, s)))}" for s in ins.splits[config]]
        lines.append(f"- {config}: " + ", ".join(parts))
    if len(ins.splits) > _MAX_CONFIGS_SHOWN:
        lines.append(f"- … and {len(ins.splits) - _MAX_CONFIGS_SHOWN} more configs")
    return lines


def _inspected_line(ins: Inspection) -> str:
    line = f"Inspected: config '{ins.config}', split '{ins.split}' ({_count(ins.num_rows.get((ins.config, ins.split)))} rows"
    if ins.parquet:
        line += f"; parquet: {len(ins.parquet)} file(s), {_bytes(sum(int(f.get('size') or 0) for f in ins.parquet))}"
        if ins.partial:
            line += " (partial export: only the first part of the data)"
    return line + ")"


def render(ins: Inspection, sample_rows: int) -> str:
    caps = ", ".join(k for k, v in ins.capabilities.items() if v) or "none"
    lines = [f"Dataset: {ins.dataset} (viewer capabilities: {caps})", *_splits_lines(ins), _inspected_line(ins),
             f"Schema ({len(ins.columns_text)} columns):", *(f"- {c}" for c in ins.columns_text),
             ins.report.fits_line()]
    trainers = ins.report.trainers_line()
    lines += [trainers] if trainers else []
    lines += ins.report.conversions
    lines += [f"Note: {n}" for n in ins.report.notes + ins.warnings]
    lines += [m.summary() for m in ins.report.messages]
    if sample_rows and ins.rows:
        lines.append(f"Sample rows ({min(sample_rows, len(ins.rows))} of {len(ins.rows)} read):")
        lines += [f"[{i}] {clip_row(r)}" for i, r in enumerate(ins.rows[:sample_rows])]
    return "\n".join(lines)


async def _inspect(ctx: ToolContext, args: InspectDatasetArgs) -> ToolResult:
    ins = await inspect_dataset(ctx, args.dataset, args.config, args.split)
    return ToolResult(render(ins, args.sample_rows),
                      artifacts={"dataset": ins.dataset, "config": ins.config, "split": ins.split,
                                 "fits": list(ins.report.fits)})


inspect_dataset_tool = Tool(
    name="hf_inspect_dataset",
    description=(
        "Inspect a Hugging Face Hub dataset through the dataset viewer before training on it: configs, splits "
        "and row counts, schema, sample rows, parquet sizes, the conversations' roles/system turns/tool calls, "
        "and one line 'Fits: ...' naming the training formats the data fits as it is (sft_messages, sft_text, "
        "sft_prompt_completion, sft_sharegpt, sft_alpaca, dpo_explicit, dpo_implicit, kto, grpo, reward, "
        "stepwise, or none), with 'Convert: ...' lines for what other formats need."
    ),
    args=InspectDatasetArgs,
    handler=_inspect,
    read_only=True,
)
