"""The API's routes as its OpenAPI document lists them, with sample path values."""

from __future__ import annotations

import json
import re
import uuid
from functools import cache

METHODS = ("get", "post", "put", "patch", "delete")


@cache
def openapi() -> dict:
    """The document /api/v1/openapi.json serves (built without a request, so that
    tests can be parametrized with it at collection time)."""
    from config.api import api

    return json.loads(json.dumps(api.get_openapi_schema(path_prefix="/api/v1/")))


def operations() -> list[tuple[str, str, dict]]:
    """(METHOD, path as in the document, operation) for every operation."""
    out = []
    for path, item in openapi()["paths"].items():
        for method in METHODS:
            if method in item:
                out.append((method.upper(), path, item[method]))
    return sorted(out, key=lambda o: (o[1], o[0]))


def sample_path(path: str, operation: dict) -> str:
    """The path with each parameter filled with a value of its type."""
    params = {
        p["name"]: p for p in operation.get("parameters", []) if p["in"] == "path"
    }

    def fill(match: re.Match) -> str:
        schema = params[match.group(1)].get("schema", {})
        if schema.get("format") == "uuid":
            return str(uuid.uuid4())
        if schema.get("type") == "integer":
            return "987654"
        return "blank"

    return re.sub(r"\{(\w+)\}", fill, path)


def ids(ops: list[tuple[str, str, dict]]) -> list[str]:
    return [f"{m} {p}" for m, p, _ in ops]
