"""API test helpers: tokens for the workspace fixtures and a client that records
which route answered which status (tests/api/test_openapi_coverage.py reads it)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import resolve
from django.utils import timezone

from accounts.services import api_token_create

# (METHOD, "/api/v1/path/{param}") -> statuses seen
SEEN: dict[tuple[str, str], set[int]] = {}


def route_of(path: str) -> str:
    match = resolve(path.split("?", 1)[0])
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", match.route)


class ApiClient:
    """A plain HTTP client for the API: JSON in and out, a bearer token."""

    def __init__(self, token: str | None) -> None:
        self.client = Client()
        self.token = token

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: str | bytes | None = None,
        headers: dict[str, str] | None = None,
        **query: Any,
    ):
        url = path if path.startswith("/api/") else "/api/v1" + path
        extra = dict(headers or {})
        if self.token is not None:
            extra.setdefault("Authorization", f"Bearer {self.token}")
        data: Any = (
            raw if raw is not None else (json.dumps(body) if body is not None else None)
        )
        kwargs: dict[str, Any] = {"headers": extra}
        if method == "GET":
            response = self.client.get(url, query or None, **kwargs)
        else:
            if query:
                from urllib.parse import urlencode

                url += "?" + urlencode(query)
            response = getattr(self.client, method.lower())(
                url, data, content_type="application/json", **kwargs
            )
        try:
            key = (method, route_of(url))
        except Exception:
            key = None
        if key is not None:
            SEEN.setdefault(key, set()).add(response.status_code)
        return response

    def get(self, path: str, **query: Any):
        return self.request("GET", path, **query)

    def post(self, path: str, body: Any = None, **kw: Any):
        return self.request("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any):
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any):
        return self.request("DELETE", path, **kw)


def pytest_collection_modifyitems(items):
    """The OpenAPI coverage check reads what the other API tests recorded: last."""
    last = [item for item in items if item.get_closest_marker("api_coverage")]
    items[:] = [item for item in items if item not in last] + last


def make_token(workspace, role: str = "write", **kw: Any) -> str:
    _token, secret = api_token_create(
        workspace=workspace, name=kw.pop("name", f"{role} token"), role=role, **kw
    )
    return secret


@pytest.fixture
def api(workspace) -> ApiClient:
    """A read-write token of the workspace."""
    return ApiClient(make_token(workspace, "write"))


@pytest.fixture
def api_read(workspace) -> ApiClient:
    return ApiClient(make_token(workspace, "read"))


@pytest.fixture
def api_stranger(other_workspace) -> ApiClient:
    """A read-write token of another workspace."""
    return ApiClient(make_token(other_workspace, "write"))


@pytest.fixture
def api_anonymous() -> ApiClient:
    return ApiClient(None)


def expire(token_secret: str) -> None:
    from accounts.models import ApiToken, token_hash

    ApiToken.objects.filter(hashed=token_hash(token_secret)).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"status", "code", "message", "fields"}, body
    assert body["error"]["status"] == response.status_code
    return body["error"]
