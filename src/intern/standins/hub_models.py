"""`GET /api/models/{repo_id}` (and `/revision/{rev}`) as huggingface_hub's `model_info` parses it.

Models live in `hub.state["models"]` (repo id -> the dict `register_model` builds). The answers follow
the Hub: `expand=` returns only the asked properties plus `_id`/`id`; `blobs=true` adds file sizes and
LFS details to `siblings`; `safetensors` carries parameters per dtype and their total. Errors use the
Hub's format (`{"error": ...}` plus `X-Error-Code` / `X-Error-Message`): an unknown or private model is
`RepoNotFound` (401 without a token, 404 with one), a gated one is `GatedRepo` (401 without a token, 403
for a user who was not granted access).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web

if TYPE_CHECKING:
    from intern.standins.hub import HubStandIn

EXPANDABLE = frozenset({
    "author", "baseModels", "cardData", "childrenModelCount", "config", "createdAt", "disabled", "downloads",
    "downloadsAllTime", "evalResults", "gated", "gguf", "inference", "inferenceProviderMapping", "lastModified",
    "library_name", "likes", "mask_token", "model-index", "pipeline_tag", "private", "safetensors", "sha",
    "siblings", "spaces", "tags", "transformersInfo", "trendingScore", "widgetData", "usedStorage",
    "resourceGroup",
})
_DEFAULT_KEYS = ("_id", "id", "modelId", "author", "sha", "lastModified", "createdAt", "private", "disabled",
                 "gated", "downloads", "likes", "library_name", "tags", "pipeline_tag", "config", "siblings",
                 "spaces", "safetensors", "usedStorage")


def register_model(hub: HubStandIn, repo_id: str, *, parameters: dict[str, int] | None = None,
                   files: dict[str, int] | None = None, gated: Literal[False, "auto", "manual"] = False,
                   private: bool = False, granted_users: Iterable[str] = (), pipeline_tag: str = "text-generation",
                   library_name: str = "transformers", architectures: Iterable[str] = ()) -> dict[str, Any]:
    """Add a model. `parameters` is safetensors' count per dtype (e.g. {"BF16": 7_241_732_096});
    `files` maps file names to sizes in bytes."""
    author = repo_id.split("/")[0] if "/" in repo_id else None
    digest = hashlib.sha1(repo_id.encode()).hexdigest()
    model: dict[str, Any] = {
        "_id": digest[:24], "id": repo_id, "modelId": repo_id, "author": author, "sha": digest,
        "lastModified": "2024-09-25T14:33:27.000Z", "createdAt": "2024-09-16T09:41:27.000Z",
        "private": private, "disabled": False, "gated": gated, "downloads": 0, "likes": 0,
        "library_name": library_name, "pipeline_tag": pipeline_tag,
        "tags": [library_name, "safetensors" if parameters else "pytorch", pipeline_tag],
        "config": {"architectures": list(architectures)} if architectures else {},
        "files": dict(files or {"config.json": 700}), "spaces": [],
        "granted_users": set(granted_users),
    }
    if parameters:
        model["safetensors"] = {"parameters": dict(parameters), "total": sum(parameters.values())}
    hub.state.setdefault("models", {})[repo_id] = model
    return model


def add_routes(app: web.Application, hub: HubStandIn) -> None:
    hub.state.setdefault("models", {})

    async def model_info(request: web.Request) -> web.Response:
        repo_id = request.match_info["repo_id"]
        model = hub.state["models"].get(repo_id)
        denied = _access_error(hub, request, repo_id, model)
        if denied is not None:
            return denied
        assert model is not None
        expand = request.query.getall("expand", []) + request.query.getall("expand[]", [])
        unknown = sorted(set(expand) - EXPANDABLE)
        if unknown:
            return _error(400, None, f'"expand" must be one of {sorted(EXPANDABLE)}, got {unknown}')
        body = _model_json(model, blobs=request.query.get("blobs", "").lower() == "true")
        if expand:
            body = {k: v for k, v in body.items() if k in ("_id", "id") or k in expand}
        return web.json_response(body)

    for base in (r"/api/models/{repo_id:[^/]+/[^/]+}", r"/api/models/{repo_id:[^/]+}"):
        app.router.add_get(base, model_info)
        app.router.add_get(base + "/revision/{revision}", model_info)


def _access_error(hub: HubStandIn, request: web.Request, repo_id: str,
                  model: dict[str, Any] | None) -> web.Response | None:
    authed = hub.authorized(request)
    granted = model is not None and (hub.user in model.get("granted_users", ()) or model.get("author") == hub.user)
    if model is None or (model.get("private") and not (authed and granted)):
        return _error(404 if authed else 401, "RepoNotFound", "Repository not found")
    if model.get("gated") and not authed:
        return _error(401, "GatedRepo", f"Access to model {repo_id} is restricted. You must have access to it "
                                        "and be authenticated to access it. Please log in.")
    if model.get("gated") and not granted:
        return _error(403, "GatedRepo", f"Access to model {repo_id} is restricted and you are not in the "
                                        f"authorized list. Visit https://huggingface.co/{repo_id} to ask for access.")
    return None


def _siblings(files: dict[str, int], blobs: bool) -> list[dict[str, Any]]:
    out = []
    for name, size in files.items():
        entry: dict[str, Any] = {"rfilename": name}
        if blobs:
            blob = hashlib.sha1(f"{name}:{size}".encode()).hexdigest()
            entry.update(size=size, blobId=blob)
            if name.endswith((".safetensors", ".bin", ".gguf", ".pt")):
                entry["lfs"] = {"size": size, "sha256": hashlib.sha256(blob.encode()).hexdigest(),
                                "pointerSize": 135}
        out.append(entry)
    return out


def _model_json(model: dict[str, Any], *, blobs: bool) -> dict[str, Any]:
    files = model.get("files") or {}
    body = {k: model[k] for k in _DEFAULT_KEYS if k in model and k != "siblings"}
    body["siblings"] = _siblings(files, blobs)
    body["usedStorage"] = sum(files.values())
    st = body.get("safetensors")
    if st and "total" not in st:
        body["safetensors"] = {**st, "total": sum(st["parameters"].values())}
    return body


def _error(status: int, code: str | None, message: str) -> web.Response:
    headers = {"X-Error-Message": message}
    if code:
        headers["X-Error-Code"] = code
    return web.json_response({"error": message}, status=status, headers=headers)
