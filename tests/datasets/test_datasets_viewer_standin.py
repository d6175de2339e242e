"""The dataset-viewer stand-in answers in the viewer's own formats (the reference samples in
fixtures/viewer_reference, copied from the dataset-viewer's OpenAPI examples and docs, are the
yardstick), and fails the way the viewer fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from intern.standins.datasets_server import (
    NOT_FOUND_AUTHENTICATED,
    NOT_FOUND_UNAUTHENTICATED,
    DatasetsServerStandIn,
)

REFERENCE = Path(__file__).parent / "fixtures" / "viewer_reference"


def reference(name: str, example: str) -> Any:
    data = json.loads((REFERENCE / f"dataset_viewer_{name}.json").read_text())
    return data["examples_openapi"][example]["value"]


def shape(value: Any) -> Any:
    """Keys and nesting, without the values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__ if value is not None else "null"


def features_dict(listed: list[dict[str, Any]]) -> dict[str, Any]:
    return {f["name"]: f["type"] for f in listed}


async def get(viewer: DatasetsServerStandIn, path: str, **params: Any) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(viewer.url + path, params=params)


async def test_first_rows_and_rows_match_the_reference_exactly(viewer: DatasetsServerStandIn) -> None:
    first = reference("first_rows", "A simple dataset (stanfordnlp/stanfordnlp/imdb) with text and label")
    sliced = reference("rows", "A slice of a simple dataset (stanfordnlp/imdb)")
    rows = [r["row"] for r in first["rows"]]
    rows += [{"text": f"filler {i}", "label": 1} for i in range(len(rows), 234)]
    rows += [r["row"] for r in sliced["rows"]]
    viewer.add_dataset("stanfordnlp/imdb", features=features_dict(first["features"]), rows={"train": rows},
                       config="plain_text", num_rows={"train": 25000})

    got = (await get(viewer, "/first-rows", dataset="stanfordnlp/imdb", config="plain_text", split="train")).json()
    assert {**got, "rows": got["rows"][:3]} == first

    page = (await get(viewer, "/rows", dataset="stanfordnlp/imdb", config="plain_text", split="train",
                      offset=234, length=3)).json()
    assert page == sliced


async def test_splits_match_the_reference(viewer: DatasetsServerStandIn) -> None:
    whole = reference("splits", "all splits in a dataset")
    string = {"dtype": "string", "_type": "Value"}
    for config in ("ParaphraseRC", "SelfRC"):
        viewer.add_dataset("ibm/duorc", config=config, features={"plot": string},
                           rows={"train": [{"plot": "a"}], "validation": [{"plot": "b"}], "test": [{"plot": "c"}]})
    assert (await get(viewer, "/splits", dataset="ibm/duorc")).json() == whole
    one = (await get(viewer, "/splits", dataset="ibm/duorc", config="SelfRC")).json()
    assert one == {"splits": [s for s in whole["splits"] if s["config"] == "SelfRC"]}
    assert shape(one) == shape(reference("splits", "splits for a single subset"))


async def test_is_valid_info_parquet_and_size_shapes(viewer: DatasetsServerStandIn) -> None:
    info_ref = reference("info", "config metadata")
    viewer.add_dataset("nyu-mll/glue", config="ax", features=info_ref["dataset_info"]["features"],
                       rows={"test": [{"premise": "p", "hypothesis": "h", "label": 0, "idx": 0}]},
                       num_rows={"test": 1104})
    assert (await get(viewer, "/is-valid", dataset="nyu-mll/glue")).json() == reference("is_valid", "all the capabilities")

    info = (await get(viewer, "/info", dataset="nyu-mll/glue", config="ax")).json()
    assert shape(info) == shape(info_ref)
    assert info["dataset_info"]["splits"]["test"]["num_examples"] == 1104
    whole = (await get(viewer, "/info", dataset="nyu-mll/glue")).json()
    assert set(whole) == set(reference("info", "dataset metadata")) and set(whole["dataset_info"]) == {"ax"}

    parquet = (await get(viewer, "/parquet", dataset="nyu-mll/glue", config="ax")).json()
    assert set(parquet) == set(reference("parquet", "duorc with ParaphraseRC config"))
    assert shape(parquet["parquet_files"]) == shape(reference("parquet", "ibm/duorc")["parquet_files"])
    assert parquet["parquet_files"][0]["url"].endswith("/datasets/nyu-mll/glue/resolve/refs%2Fconvert%2Fparquet/ax/test/0000.parquet")
    assert set((await get(viewer, "/parquet", dataset="nyu-mll/glue")).json()) == {"parquet_files", "pending", "failed", "partial"}

    size = (await get(viewer, "/size", dataset="nyu-mll/glue")).json()
    # The documented /size answer (docs/source/quick_start.md, rotten_tomatoes example).
    assert set(size) == {"size", "pending", "failed", "partial"}
    assert set(size["size"]) == {"dataset", "configs", "splits"}
    assert set(size["size"]["dataset"]) == {"dataset", "num_bytes_original_files", "num_bytes_parquet_files",
                                            "num_bytes_memory", "num_rows"}
    assert set(size["size"]["splits"][0]) == {"dataset", "config", "split", "num_bytes_parquet_files",
                                              "num_bytes_memory", "num_rows", "num_columns"}
    assert size["size"]["dataset"]["num_rows"] == 1104
    per_config = (await get(viewer, "/size", dataset="nyu-mll/glue", config="ax")).json()
    assert set(per_config["size"]) == {"config", "splits"}


async def test_missing_gated_and_private_look_alike(viewer: DatasetsServerStandIn) -> None:
    string = {"dtype": "string", "_type": "Value"}
    viewer.add_dataset("org/gated", features={"text": string}, rows={"train": [{"text": "x"}]}, access="gated",
                       authorized_tokens={"hf_granted"})
    for name in ("org/missing", "org/gated"):
        anonymous = await get(viewer, "/splits", dataset=name)
        assert anonymous.status_code == 401
        assert anonymous.headers["X-Error-Code"] == "ExternalUnauthenticatedError"
        assert anonymous.json() == {"error": NOT_FOUND_UNAUTHENTICATED}
    async with httpx.AsyncClient(headers={"Authorization": "Bearer hf_other"}) as http:
        denied = await http.get(viewer.url + "/splits", params={"dataset": "org/gated"})
    assert denied.status_code == 404 and denied.json() == {"error": NOT_FOUND_AUTHENTICATED}
    async with httpx.AsyncClient(headers={"Authorization": "Bearer hf_granted"}) as http:
        granted = await http.get(viewer.url + "/splits", params={"dataset": "org/gated"})
    assert granted.status_code == 200


async def test_not_ready_wrong_config_split_and_parameters(viewer: DatasetsServerStandIn) -> None:
    string = {"dtype": "string", "_type": "Value"}
    viewer.add_dataset("org/fresh", features={"text": string}, rows={"train": [{"text": "x"}]}, state="not_ready")
    viewer.add_dataset("org/ready", features={"text": string}, rows={"train": [{"text": "x"}]})

    valid = (await get(viewer, "/is-valid", dataset="org/fresh")).json()
    assert valid == dict.fromkeys(("preview", "viewer", "search", "filter", "statistics"), False)
    busy = await get(viewer, "/first-rows", dataset="org/fresh", config="default", split="train")
    assert busy.status_code == 500 and busy.headers["X-Error-Code"] == "ResponseNotReady"
    assert "not ready yet" in busy.json()["error"]

    for params in ({"config": "nope", "split": "train"}, {"config": "default", "split": "nope"}):
        wrong = await get(viewer, "/first-rows", dataset="org/ready", **params)
        assert (wrong.status_code, wrong.json(), wrong.headers["X-Error-Code"]) == (404, {"error": "Not found."},
                                                                                    "ResponseNotFound")
    missing = await get(viewer, "/first-rows", dataset="org/ready", config="default")
    assert (missing.status_code, missing.json()) == (422, {"error": "Parameter 'split' is required"})
    too_long = await get(viewer, "/rows", dataset="org/ready", config="default", split="train", length=101)
    assert too_long.json() == {"error": "Parameter 'length' must not be greater than 100"}
    negative = await get(viewer, "/rows", dataset="org/ready", config="default", split="train", offset=-1)
    assert negative.json() == {"error": "Parameter 'offset' must be positive"}


async def test_broken_dataset_answers_its_own_error(viewer: DatasetsServerStandIn) -> None:
    viewer.add_broken("severo/empty", error="The dataset is empty.", cause_exception="EmptyDatasetError",
                      cause_message="The directory at hf://datasets/severo/empty doesn't contain any data files",
                      error_code="EmptyDatasetError")
    got = await get(viewer, "/splits", dataset="severo/empty")
    assert got.status_code == 500 and got.headers["X-Error-Code"] == "EmptyDatasetError"
    errors = json.loads((REFERENCE / "dataset_viewer_errors.json").read_text())["errors"]["/splits"]
    documented = next(e["value"] for e in errors if e["name"] == "error in the dataset itself")
    assert set(got.json()) == set(documented)


async def test_large_cells_are_truncated_and_listed(viewer: DatasetsServerStandIn) -> None:
    viewer.truncate_cell_chars = 20
    string = {"dtype": "string", "_type": "Value"}
    viewer.add_dataset("org/long", features={"text": string, "id": string},
                       rows={"train": [{"text": "y" * 100, "id": "short"}]})
    got = (await get(viewer, "/first-rows", dataset="org/long", config="default", split="train")).json()
    assert got["truncated"] is True
    assert got["rows"][0]["truncated_cells"] == ["text"] and got["rows"][0]["row"]["text"] == "y" * 20
