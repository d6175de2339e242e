"""Searching the Hub's OpenAPI description (`<HF_ENDPOINT>/.well-known/openapi.json`).

The spec is fetched once and kept (in the bot's cache when there is one, else in memory) for
SPEC_TTL_SECONDS; its operations are indexed in memory with the same analyzer as the docs.
Examples are written with `$HF_TOKEN`, never with a real token.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from whoosh.fields import ID, STORED, TEXT, Schema
from whoosh.filedb.filestore import RamStorage
from whoosh.qparser import MultifieldParser, OrGroup

from intern.agent.docs.analysis import docs_analyzer, terms
from intern.agent.docs.web import HostPolicy, safe_get
from intern.agent.ports import Cache

SPEC_PATH = "/.well-known/openapi.json"
SPEC_TTL_SECONDS = 6 * 3600
METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
MAX_REF_DEPTH = 8


@dataclass(frozen=True)
class Param:
    name: str
    location: str  # path, query, header, cookie
    required: bool
    type: str
    description: str
    example: Any = None


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    description: str
    tags: tuple[str, ...]
    params: tuple[Param, ...]
    body_schema: dict[str, Any] | None
    body_example: Any
    responses: tuple[tuple[str, str], ...] = field(default=())

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


# --- reading the spec ------------------------------------------------------------------------------


class _Resolver:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def resolve(self, node: Any, refs: tuple[str, ...] = ()) -> Any:
        """Local `$ref`s replaced by what they point to; a cycle ends in an empty schema."""
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                if ref in refs or len(refs) >= MAX_REF_DEPTH:
                    return {}
                merged = {**self._lookup(ref), **{k: v for k, v in node.items() if k != "$ref"}}
                return self.resolve(merged, (*refs, ref))
            return {k: self.resolve(v, refs) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve(v, refs) for v in node]
        return node

    def _lookup(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#/"):
            return {}
        node: Any = self.spec
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            node = node.get(part) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else {}


def operations(spec: dict[str, Any]) -> list[Operation]:
    resolver = _Resolver(spec)
    ops = []
    for path, item in (spec.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        item = resolver.resolve(item)
        shared = item.get("parameters") or []
        for method in METHODS:
            op = item.get(method)
            if isinstance(op, dict):
                ops.append(_operation(method, path, op, shared))
    return ops


def _operation(method: str, path: str, op: dict[str, Any], shared: list[Any]) -> Operation:
    params: dict[tuple[str, str], Param] = {}
    for raw in [*shared, *(op.get("parameters") or [])]:
        if isinstance(raw, dict) and raw.get("name"):
            param = _param(raw)
            params[(param.location, param.name)] = param  # operation-level overrides path-level
    schema, example = _json_body(op.get("requestBody"))
    responses = tuple((str(code), str((r or {}).get("description", "")))
                      for code, r in (op.get("responses") or {}).items() if isinstance(r, dict))
    return Operation(
        method.upper(), path, str(op.get("operationId", "")), str(op.get("summary", "")),
        str(op.get("description", "")), tuple(str(t) for t in op.get("tags") or []),
        tuple(params.values()), schema, example, responses,
    )


def _param(raw: dict[str, Any]) -> Param:
    schema = raw.get("schema") or {}
    example = raw.get("example", schema.get("example"))
    if example is None and isinstance(raw.get("examples"), dict) and raw["examples"]:
        first = next(iter(raw["examples"].values()))
        example = first.get("value") if isinstance(first, dict) else None
    if example is None and schema.get("enum"):
        example = schema["enum"][0]
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = "|".join(str(k) for k in kind)
    return Param(str(raw["name"]), str(raw.get("in", "query")), bool(raw.get("required")) or raw.get("in") == "path",
                 str(kind), str(raw.get("description", "")).strip(), example)


def _json_body(body: Any) -> tuple[dict[str, Any] | None, Any]:
    if not isinstance(body, dict):
        return None, None
    content = body.get("content") or {}
    media = content.get("application/json") or next(iter(content.values()), None)
    if not isinstance(media, dict):
        return None, None
    schema: dict[str, Any] = media["schema"] if isinstance(media.get("schema"), dict) else {}
    if "example" in media:
        return schema, media["example"]
    if isinstance(media.get("examples"), dict) and media["examples"]:
        first = next(iter(media["examples"].values()))
        if isinstance(first, dict) and "value" in first:
            return schema, first["value"]
    return schema, example_from_schema(schema)


def example_from_schema(schema: dict[str, Any], depth: int = 0) -> Any:
    """A small example value: the schema's own example, else required fields with typed placeholders."""
    if depth > 4 or not isinstance(schema, dict):
        return None
    if "example" in schema:
        return schema["example"]
    if "default" in schema:
        return schema["default"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("oneOf", "anyOf", "allOf"):
        if schema.get(key):
            return example_from_schema(schema[key][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        required = [p for p in schema.get("required") or [] if p in props]
        chosen = required or list(props)[:3]
        return {name: example_from_schema(props[name], depth + 1) for name in chosen}
    if kind == "array":
        item = example_from_schema(schema.get("items") or {}, depth + 1)
        return [] if item is None else [item]
    if kind is None:
        return None  # an open schema: any value
    return {"integer": 0, "number": 0, "boolean": False}.get(str(kind), "string")


def all_tags(spec: dict[str, Any], ops: list[Operation]) -> list[str]:
    declared = [str(t["name"]) for t in spec.get("tags") or [] if isinstance(t, dict) and "name" in t]
    used = {t for op in ops for t in op.tags}
    return sorted(set(declared) | used, key=str.lower)


# --- searching -------------------------------------------------------------------------------------


class ApiSearch:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.ops = operations(spec)
        self.tags = all_tags(spec, self.ops)
        self._by_key = {op.key: op for op in self.ops}
        analyzer = docs_analyzer()
        schema = Schema(key=ID(stored=True, unique=True), summary=TEXT(analyzer=analyzer, field_boost=3.0),
                        operation=TEXT(analyzer=analyzer, field_boost=2.0),
                        path=TEXT(analyzer=analyzer, field_boost=1.5), tags=TEXT(analyzer=analyzer, field_boost=1.5),
                        description=TEXT(analyzer=analyzer), params=TEXT(analyzer=analyzer, field_boost=0.5),
                        order=STORED)
        self._ix = RamStorage().create_index(schema)
        with self._ix.writer() as writer:
            for order, op in enumerate(self.ops):
                writer.add_document(
                    key=op.key, summary=op.summary, operation=op.operation_id, path=op.path.replace("/", " "),
                    tags=" ".join(op.tags), description=op.description,
                    params=" ".join([*(p.name for p in op.params), *_body_property_names(op.body_schema)]),
                    order=order,
                )
        self._parser = MultifieldParser(["summary", "operation", "path", "tags", "description", "params"],
                                        schema=schema, group=OrGroup.factory(0.9))

    def canonical_tag(self, tag: str) -> str | None:
        wanted = tag.strip().lower()
        return next((t for t in self.tags if t.lower() == wanted), None)

    def in_tag(self, tag: str) -> list[Operation]:
        return [op for op in self.ops if tag in op.tags]

    def search(self, query: str, *, tag: str | None = None, limit: int = 8) -> list[Operation]:
        if not terms(query):
            return []
        with self._ix.searcher() as searcher:
            hits = searcher.search(self._parser.parse(query), limit=None)
            found = [self._by_key[hit["key"]] for hit in hits]
        if tag is not None:
            found = [op for op in found if tag in op.tags]
        return found[:limit]


def _body_property_names(schema: dict[str, Any] | None) -> list[str]:
    return [str(name) for name in ((schema or {}).get("properties") or {})]


# --- fetching and caching --------------------------------------------------------------------------

_memory: dict[str, tuple[float, str]] = {}
_searches: dict[str, ApiSearch] = {}


async def load_search(http: httpx.AsyncClient, hf_endpoint: str, cache: Cache | None) -> ApiSearch:
    text = await _spec_text(http, hf_endpoint, cache)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    search = _searches.get(digest)
    if search is None:
        spec = json.loads(text)
        if not isinstance(spec, dict) or "paths" not in spec:
            raise ValueError("the document at .well-known/openapi.json is not an OpenAPI description")
        search = ApiSearch(spec)
        _searches.clear()  # one spec per endpoint in practice; do not grow without bound
        _searches[digest] = search
    return search


async def _spec_text(http: httpx.AsyncClient, hf_endpoint: str, cache: Cache | None) -> str:
    key = f"openapi:{hf_endpoint.rstrip('/')}"
    if cache is not None:
        cached = await cache.get(key)
        if cached is not None:
            return cached
    else:
        hit = _memory.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
    fetched = await safe_get(http, hf_endpoint.rstrip("/") + SPEC_PATH, policy=HostPolicy(hf_endpoint),
                             accept="application/json")
    json.loads(fetched.text)  # do not cache something that is not JSON
    if cache is not None:
        await cache.set(key, fetched.text, SPEC_TTL_SECONDS)
    else:
        _memory[key] = (time.monotonic() + SPEC_TTL_SECONDS, fetched.text)
    return fetched.text


# --- presenting ------------------------------------------------------------------------------------


def curl_example(op: Operation, base_url: str) -> str:
    path = op.path
    for p in op.params:
        if p.location == "path":
            value = p.example if p.example is not None else f"<{p.name}>"
            path = path.replace("{" + p.name + "}", str(value))
    query = [(p.name, p.example) for p in op.params if p.location == "query" and (p.required or p.example is not None)]
    url = base_url.rstrip("/") + path
    if query:
        url += "?" + "&".join(f"{name}={'<' + name + '>' if value is None else _scalar(value)}" for name, value in query)
    lines = [f"curl -X {op.method} {shlex.quote(url)}", '  -H "Authorization: Bearer $HF_TOKEN"']
    if op.body_schema is not None or op.body_example is not None:
        lines.append("  -H 'Content-Type: application/json'")
        lines.append(f"  -d {shlex.quote(json.dumps(op.body_example if op.body_example is not None else {}))}")
    return " \\\n".join(lines)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(op: Operation, base_url: str) -> str:
    lines = [f"### {op.method} {op.path}"]
    if op.summary:
        lines.append(op.summary)
    if op.tags:
        lines.append(f"Tags: {', '.join(op.tags)}" + (f" · operationId: {op.operation_id}" if op.operation_id else ""))
    if op.description and op.description.strip() != op.summary.strip():
        desc = op.description.strip()
        lines.append(desc if len(desc) <= 600 else desc[:600].rsplit(" ", 1)[0] + " …")
    if op.params:
        lines.append("Parameters:")
        for p in op.params:
            need = "required" if p.required else "optional"
            about = f": {p.description}" if p.description else ""
            lines.append(f"- `{p.name}` ({p.location}, {p.type}, {need}){about}")
    body = _body_fields(op.body_schema)
    if body:
        lines.append("Body (JSON): " + body)
    if op.responses:
        lines.append("Responses: " + "; ".join(f"{code} {desc}".strip() for code, desc in op.responses[:4]))
    lines.append("Example:\n```bash\n" + curl_example(op, base_url) + "\n```")
    return "\n".join(lines)


def _body_fields(schema: dict[str, Any] | None) -> str:
    if not schema:
        return ""
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    parts = []
    for name, prop in list(props.items())[:12]:
        kind = prop.get("type", "object") if isinstance(prop, dict) else "any"
        if isinstance(prop, dict) and prop.get("enum"):
            kind = " | ".join(json.dumps(v) for v in prop["enum"][:6])
        parts.append(f"`{name}` ({kind}{', required' if name in required else ''})")
    more = f" … and {len(props) - 12} more" if len(props) > 12 else ""
    return ", ".join(parts) + more
