"""A loopback dataset viewer (datasets-server) for the datasets a test registers.

It answers `/is-valid`, `/splits`, `/info`, `/first-rows`, `/parquet`, `/rows` and `/size` in the
viewer's JSON shapes, and fails the way the viewer fails: for missing, gated and private datasets the
viewer does not say which — 401 `ExternalUnauthenticatedError` without an Authorization header, 404
`ExternalAuthenticatedError` with a token that cannot read the dataset (the Hub's auth check answered
401/403/404); a private dataset the token can read, of an owner without PRO or Enterprise, is 501
`NotSupportedPrivateRepositoryError` (the viewer processes private data only for those owners);
500 `ResponseNotReady` while a dataset is processed,
404 `ResponseNotFound` for a wrong config or split, 422 for missing or bad parameters, and the
dataset's own error (500 with `cause_exception`) for a broken one. Errors carry `X-Error-Code`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from intern.standins.base import StandIn

Access = Literal["public", "gated", "private"]
State = Literal["ready", "not_ready", "broken"]

NOT_FOUND_UNAUTHENTICATED = (
    "The dataset does not exist, or is not accessible without authentication (private or gated). Please check "
    "the spelling of the dataset name or retry with authentication."
)
NOT_FOUND_AUTHENTICATED = (
    "The dataset does not exist, or is not accessible with the current credentials (private or gated). Please "
    "check the spelling of the dataset name or retry with other authentication credentials."
)
NOT_READY = "The server is busier than usual and the response is not ready yet. Please retry later."
MAX_ROWS_LENGTH = 100
FIRST_ROWS = 100


@dataclass
class ViewerDataset:
    name: str
    access: Access = "public"
    state: State = "ready"
    authorized_tokens: set[str] = field(default_factory=set)
    owner_pro: bool = False  # the owner is a PRO user or an Enterprise organization
    # config -> {"features": {...}, "splits": {split: rows}, "num_rows": {split: n}, "parquet_bytes": {split: n}}
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    capabilities: dict[str, bool] | None = None
    error: dict[str, Any] | None = None  # the body a broken dataset answers with
    error_code: str = "DatasetGenerationError"


class ViewerError(Exception):
    def __init__(self, status: int, code: str, body: dict[str, Any]) -> None:
        super().__init__(body.get("error"))
        self.status, self.code, self.body = status, code, body


@dataclass
class DatasetsServerStandIn(StandIn):
    hub_url: str = "https://huggingface.co"  # where the parquet URLs point (never fetched in tests)
    datasets: dict[str, ViewerDataset] = field(default_factory=dict)
    truncate_cell_chars: int | None = None  # cells longer than this come back truncated, as the viewer does

    def add_dataset(self, name: str, *, features: dict[str, Any], rows: dict[str, list[dict[str, Any]]],
                    config: str = "default", num_rows: dict[str, int] | None = None,
                    parquet_bytes: dict[str, int] | None = None, access: Access = "public",
                    state: State = "ready", authorized_tokens: set[str] | None = None,
                    capabilities: dict[str, bool] | None = None, owner_pro: bool = False) -> ViewerDataset:
        """Register one config of a dataset; `rows` maps each split to the rows the viewer can show.

        `features` is in the viewer's format (`{"col": {"dtype": "string", "_type": "Value"}}`).
        `num_rows` overrides a split's total when the registered rows are only its head.
        """
        ds = self.datasets.setdefault(name, ViewerDataset(name))
        ds.access, ds.state, ds.capabilities, ds.owner_pro = access, state, capabilities, owner_pro
        ds.authorized_tokens |= set(authorized_tokens or ())
        ds.configs[config] = {
            "features": features,
            "splits": rows,
            "num_rows": {s: (num_rows or {}).get(s, len(r)) for s, r in rows.items()},
            "parquet_bytes": {s: (parquet_bytes or {}).get(s) or _parquet_estimate(r, (num_rows or {}).get(s))
                              for s, r in rows.items()},
        }
        return ds

    def add_broken(self, name: str, *, error: str, cause_exception: str, cause_message: str,
                   error_code: str = "DatasetGenerationError") -> ViewerDataset:
        """A dataset the viewer could not process: every endpoint but /is-valid answers its error."""
        ds = self.datasets.setdefault(name, ViewerDataset(name))
        ds.state = "broken"
        ds.error = {"error": error, "cause_exception": cause_exception, "cause_message": cause_message,
                    "cause_traceback": ["Traceback (most recent call last):\n",
                                        f"{cause_exception}: {cause_message}\n"]}
        ds.error_code = error_code
        return ds

    def setup(self, app: web.Application) -> None:
        routes = {"/is-valid": self._is_valid, "/splits": self._splits, "/info": self._info,
                  "/first-rows": self._first_rows, "/parquet": self._parquet, "/rows": self._rows,
                  "/size": self._size}
        for path, handler in routes.items():
            app.router.add_get(path, self._wrap(handler))

    def _wrap(self, handler: Any) -> Any:
        async def endpoint(request: web.Request) -> web.Response:
            try:
                body = handler(request)
            except ViewerError as exc:
                return _json(exc.body, exc.status, {"X-Error-Code": exc.code, "Cache-Control": "no-store"})
            return _json(body, 200, {"Cache-Control": "max-age=120"})
        return endpoint

    # --- lookups ---------------------------------------------------------------------------------

    def _dataset(self, request: web.Request, *, allow_unready: bool = False) -> ViewerDataset:
        name = _param(request, "dataset") or ""
        ds = self.datasets.get(name)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        visible = ds is not None and (ds.access == "public" or token in ds.authorized_tokens)
        if not visible:
            if token:
                raise ViewerError(404, "ExternalAuthenticatedError", {"error": NOT_FOUND_AUTHENTICATED})
            raise ViewerError(401, "ExternalUnauthenticatedError", {"error": NOT_FOUND_UNAUTHENTICATED})
        assert ds is not None
        if ds.access == "private" and not ds.owner_pro:
            raise ViewerError(501, "NotSupportedPrivateRepositoryError",
                              {"error": f"Not supported: dataset repository {name} is private."})
        if ds.state == "not_ready" and not allow_unready:
            raise ViewerError(500, "ResponseNotReady", {"error": NOT_READY})
        if ds.state == "broken" and not allow_unready:
            raise ViewerError(500, ds.error_code, dict(ds.error or {}))
        return ds

    @staticmethod
    def _config(ds: ViewerDataset, request: web.Request, required: bool = True) -> str | None:
        config = _param(request, "config", required=required)
        if config is not None and config not in ds.configs:
            raise ViewerError(404, "ResponseNotFound", {"error": "Not found."})
        return config

    @staticmethod
    def _split(ds: ViewerDataset, config: str, request: web.Request) -> str:
        split = _param(request, "split")
        assert split is not None
        if split not in ds.configs[config]["splits"]:
            raise ViewerError(404, "ResponseNotFound", {"error": "Not found."})
        return split

    # --- endpoints ------------------------------------------------------------------------------

    def _is_valid(self, request: web.Request) -> dict[str, Any]:
        ds = self._dataset(request, allow_unready=True)
        if ds.state != "ready":
            return dict.fromkeys(("preview", "viewer", "search", "filter", "statistics"), False)
        caps = {"preview": True, "viewer": True, "search": True, "filter": True, "statistics": True}
        return {**caps, **(ds.capabilities or {})}

    def _splits(self, request: web.Request) -> dict[str, Any]:
        ds = self._dataset(request)
        config = self._config(ds, request, required=False)
        configs = [config] if config else list(ds.configs)
        splits = [{"dataset": ds.name, "config": c, "split": s} for c in configs for s in ds.configs[c]["splits"]]
        return {"splits": splits} if config else {"splits": splits, "pending": [], "failed": []}

    def _config_info(self, ds: ViewerDataset, config: str) -> dict[str, Any]:
        cfg = ds.configs[config]
        splits = {s: {"name": s, "num_bytes": _memory_bytes(rows, cfg["num_rows"][s]),
                      "num_examples": cfg["num_rows"][s], "dataset_name": None}
                  for s, rows in cfg["splits"].items()}
        size = sum(v["num_bytes"] for v in splits.values())
        return {"description": "", "citation": "", "homepage": "", "license": "", "features": cfg["features"],
                "builder_name": "parquet", "dataset_name": ds.name.split("/")[-1], "config_name": config,
                "version": {"version_str": "0.0.0", "major": 0, "minor": 0, "patch": 0}, "splits": splits,
                "download_size": sum(cfg["parquet_bytes"].values()), "dataset_size": size}

    def _info(self, request: web.Request) -> dict[str, Any]:
        ds = self._dataset(request)
        config = self._config(ds, request, required=False)
        if config:
            return {"dataset_info": self._config_info(ds, config), "partial": False}
        return {"dataset_info": {c: self._config_info(ds, c) for c in ds.configs},
                "pending": [], "failed": [], "partial": False}

    def _rows_page(self, ds: ViewerDataset, config: str, split: str, offset: int,
                   length: int) -> tuple[list[dict[str, Any]], bool]:
        rows = ds.configs[config]["splits"][split][offset:offset + length]
        page, truncated_any = [], False
        for i, row in enumerate(rows):
            cells, truncated = self._truncate(row)
            truncated_any = truncated_any or bool(truncated)
            page.append({"row_idx": offset + i, "row": cells, "truncated_cells": truncated})
        return page, truncated_any

    def _truncate(self, row: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        limit = self.truncate_cell_chars
        if limit is None:
            return dict(row), []
        out, truncated = {}, []
        for key, value in row.items():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            if len(text) > limit:
                out[key] = text[:limit]
                truncated.append(key)
            else:
                out[key] = value
        return out, truncated

    def _first_rows(self, request: web.Request) -> dict[str, Any]:
        ds = self._dataset(request)
        config = self._config(ds, request)
        assert config is not None
        split = self._split(ds, config, request)
        page, truncated = self._rows_page(ds, config, split, 0, FIRST_ROWS)
        return {"dataset": ds.name, "config": config, "split": split,
                "features": _feature_list(ds.configs[config]["features"]), "rows": page, "truncated": truncated}

    def _rows(self, request: web.Request) -> dict[str, Any]:
        ds = self._dataset(request)
        config = self._config(ds, request)
        assert config is not None
        split = self._split(ds, config, request)
        offset = _int_param(request, "offset", 0)
        length = _int_param(request, "length", MAX_ROWS_LENGTH)
        if length > MAX_ROWS_LENGTH:
            raise ViewerError(422, "InvalidParameter",
                              {"error": f"Parameter 'length' must not be greater than {MAX_ROWS_LENGTH}"})
        page, _ = self._rows_page(ds, config, split, offset, length)
        return {"features": _feature_list(ds.configs[config]["features"]), "rows": page,
                "num_rows_total": ds.configs[config]["num_rows"][split], "num_rows_per_page": MAX_ROWS_LENGTH,
                "partial": False}

    def _parquet_files(self, ds: ViewerDataset, config: str) -> list[dict[str, Any]]:
        cfg = ds.configs[config]
        return [{"dataset": ds.name, "config": config, "split": s,
                 "url": f"{self.hub_url}/datasets/{ds.name}/resolve/refs%2Fconvert%2Fparquet/{config}/{s}/0000.parquet",
                 "filename": "0000.parquet", "size": cfg["parquet_bytes"][s]}
                for s in cfg["splits"]]

    def _parquet(self, request: web.Request) -> dict[str, Any]:
        ds = self._dataset(request)
        config = self._config(ds, request, required=False)
        if config:
            return {"parquet_files": self._parquet_files(ds, config), "features": ds.configs[config]["features"],
                    "partial": False}
        files = [f for c in ds.configs for f in self._parquet_files(ds, c)]
        return {"parquet_files": files, "pending": [], "failed": [], "partial": False}

    def _split_sizes(self, ds: ViewerDataset, config: str) -> list[dict[str, Any]]:
        cfg = ds.configs[config]
        return [{"dataset": ds.name, "config": config, "split": s, "num_bytes_parquet_files": cfg["parquet_bytes"][s],
                 "num_bytes_memory": _memory_bytes(rows, cfg["num_rows"][s]), "num_rows": cfg["num_rows"][s],
                 "num_columns": len(cfg["features"])}
                for s, rows in cfg["splits"].items()]

    def _config_size(self, ds: ViewerDataset, config: str) -> dict[str, Any]:
        splits = self._split_sizes(ds, config)
        parquet = sum(s["num_bytes_parquet_files"] for s in splits)
        return {"dataset": ds.name, "config": config, "num_bytes_original_files": parquet,
                "num_bytes_parquet_files": parquet, "num_bytes_memory": sum(s["num_bytes_memory"] for s in splits),
                "num_rows": sum(s["num_rows"] for s in splits), "num_columns": len(ds.configs[config]["features"])}

    def _size(self, request: web.Request) -> dict[str, Any]:
        ds = self._dataset(request)
        config = self._config(ds, request, required=False)
        if config:
            return {"size": {"config": self._config_size(ds, config), "splits": self._split_sizes(ds, config)},
                    "partial": False}
        configs = [self._config_size(ds, c) for c in ds.configs]
        total = {"dataset": ds.name}
        for key in ("num_bytes_original_files", "num_bytes_parquet_files", "num_bytes_memory", "num_rows"):
            total[key] = sum(c[key] for c in configs)
        splits = [s for c in ds.configs for s in self._split_sizes(ds, c)]
        return {"size": {"dataset": total, "configs": configs, "splits": splits},
                "pending": [], "failed": [], "partial": False}


def _param(request: web.Request, name: str, *, required: bool = True) -> str | None:
    value = request.query.get(name)
    if not value:
        if required:
            raise ViewerError(422, "MissingRequiredParameter", {"error": f"Parameter '{name}' is required"})
        return None
    return value


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ViewerError(422, "InvalidParameter", {"error": f"Parameter '{name}' must be integer"}) from None
    if value < 0:
        raise ViewerError(422, "InvalidParameter", {"error": f"Parameter '{name}' must be positive"})
    return value


def _feature_list(features: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"feature_idx": i, "name": name, "type": t} for i, (name, t) in enumerate(features.items())]


def _memory_bytes(rows: list[dict[str, Any]], total: int) -> int:
    if not rows:
        return 0
    sample = len(json.dumps(rows, ensure_ascii=False).encode())
    return sample * total // len(rows)


def _parquet_estimate(rows: list[dict[str, Any]], total: int | None) -> int:
    # Parquet compresses text roughly threefold; the figure only has to be plausible and stable.
    return max(1, _memory_bytes(rows, total if total is not None else len(rows)) // 3)


def _json(body: Any, status: int, headers: dict[str, str]) -> web.Response:
    headers = {"Access-Control-Allow-Origin": "*", **headers}
    return web.json_response(body, status=status, headers=headers)
