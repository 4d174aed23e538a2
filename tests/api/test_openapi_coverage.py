"""Every route of the OpenAPI document is exercised by this suite: a success; 401
and 429 for all; 403 (read-only token) for every write; 404 for every route that
names an object (another workspace's or a missing one); 400 for every route that
takes a body or query parameters. The API tests record what each route answered
(tests/api/conftest.py); this test runs after them and reads the record."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.api.conftest import SEEN
from tests.api.routes import openapi, operations

pytestmark = [pytest.mark.django_db, pytest.mark.api_coverage]

API_TESTS = sorted(
    p.name
    for p in Path(__file__).parent.glob("test_*.py")
    if p.name != Path(__file__).name
)


def test_openapi_document_describes_the_api(api_anonymous):
    """/api/v1/openapi.json needs no token and is the document the tests read."""
    response = api_anonymous.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc == openapi()
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["title"] == "OpenFunnels API"
    assert len(operations()) >= 30
    posts = [op for m, _p, op in operations() if m == "POST"]
    assert all(
        any(p["name"] == "Idempotency-Key" for p in op.get("parameters", []))
        for op in posts
    )


def test_every_route_is_documented():
    """Every endpoint the URLconf serves under /api/v1/ is in the document, with a
    summary, its success schema and the error shape for 401 and 429."""
    from config.api import api
    from tests.api.routes import METHODS

    documented = {
        (method.upper(), path)
        for path, item in openapi()["paths"].items()
        for method in METHODS
        if method in item
    }
    served = set()
    for prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            route = re.sub(r"\{\w+:(\w+)\}", r"{\1}", f"/api/v1{prefix}{path}")
            for operation in path_view.operations:
                if operation.include_in_schema:
                    served |= {(method, route) for method in operation.methods}
    assert served == documented, sorted(served ^ documented)
    for method, path, operation in operations():
        responses = operation["responses"]
        assert operation.get("summary"), f"{method} {path}"
        assert any(code.startswith("2") for code in responses), f"{method} {path}"
        for code in ("401", "429"):
            schema = responses[code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path)


def test_every_route_is_covered(request):
    collected = {Path(str(item.fspath)).name for item in request.session.items}
    missing_files = [name for name in API_TESTS if name not in collected]
    if missing_files:
        pytest.skip(f"run the whole tests/api folder (not collected: {missing_files})")
    gaps = []
    for method, path, operation in operations():
        seen = SEEN.get((method, path), set())
        params = operation.get("parameters", [])
        need = {"2xx", 401, 429}
        if method != "GET":
            need.add(403)
        if any(p["in"] == "path" for p in params):
            need.add(404)
        if "requestBody" in operation or any(p["in"] == "query" for p in params):
            need.add(400)
        have = {("2xx" if 200 <= s < 300 else s) for s in seen}
        if need - have:
            gaps.append(f"{method} {path}: no test saw {sorted(map(str, need - have))}")
    assert not gaps, "\n".join(gaps)
