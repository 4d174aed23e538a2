"""Every route of the OpenAPI document: 401 without a usable token, 403 for a
read-only token's writes, 429 over the rate limit; a token sees only its workspace."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import ApiToken, token_hash
from accounts.services import api_token_revoke
from tests.api.conftest import ApiClient, error_of, expire, make_token
from tests.api.routes import ids, operations, sample_path

pytestmark = pytest.mark.django_db

OPS = operations()
WRITES = [op for op in OPS if op[0] != "GET"]


@pytest.mark.parametrize(("method", "path", "operation"), OPS, ids=ids(OPS))
def test_no_token_is_401(api_anonymous, method, path, operation):
    """Without an Authorization header every route answers 401 in the error shape."""
    response = api_anonymous.request(method, sample_path(path, operation), {})
    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == "unauthenticated"
    assert "Authorization: Bearer" in error["message"]
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "operation"), OPS, ids=ids(OPS))
def test_revoked_token_is_401(workspace, method, path, operation):
    """A revoked token is refused on every route, saying why."""
    secret = make_token(workspace, "write")
    token = ApiToken.objects.get(hashed=token_hash(secret))
    api_token_revoke(workspace=workspace, token=token)
    response = ApiClient(secret).request(method, sample_path(path, operation), {})
    assert response.status_code == 401
    assert "revoked" in error_of(response)["message"]


@pytest.mark.parametrize(("method", "path", "operation"), OPS, ids=ids(OPS))
def test_expired_token_is_401(workspace, method, path, operation):
    """An expired token is refused on every route, saying when it expired."""
    secret = make_token(
        workspace, "write", expires_at=timezone.now() + timezone.timedelta(days=1)
    )
    expire(secret)
    response = ApiClient(secret).request(method, sample_path(path, operation), {})
    assert response.status_code == 401
    assert "expired on" in error_of(response)["message"]


def test_unknown_and_malformed_tokens_are_401(workspace):
    for header in (
        "Bearer of_not-a-real-token",
        "Bearer ",
        "Basic abc",
        "Bearer x" * 60,
    ):
        client = ApiClient(None)
        response = client.request(
            "GET", "/workspace", headers={"Authorization": header}
        )
        assert response.status_code == 401, header
        error_of(response)


@pytest.mark.parametrize(("method", "path", "operation"), WRITES, ids=ids(WRITES))
def test_read_only_token_cannot_write(api_read, method, path, operation):
    """A read-only token gets 403 on every write, before anything is looked up."""
    response = api_read.request(method, sample_path(path, operation), {})
    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "forbidden"
    assert "read-only" in error["message"]


@pytest.mark.parametrize(("method", "path", "operation"), OPS, ids=ids(OPS))
def test_rate_limit_is_429_with_retry_after(
    settings, workspace, method, path, operation
):
    """Over the token's limit every route answers 429 with Retry-After; another
    token is not slowed down."""
    settings.API_RATE_LIMIT = "1/minute"
    client = ApiClient(make_token(workspace, "write"))
    assert client.get("/workspace").status_code == 200
    response = client.request(method, sample_path(path, operation), {})
    assert response.status_code == 429
    error = error_of(response)
    assert error["code"] == "rate_limited"
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 60
    assert f"retry in {retry_after} s" in error["message"]
    other = ApiClient(make_token(workspace, "write", name="other"))
    assert other.get("/workspace").status_code == 200


def test_rate_limit_counts_exactly(settings, api):
    """With a limit of 5 a minute, exactly 5 requests pass."""
    settings.API_RATE_LIMIT = "5/minute"
    codes = [api.get("/workspace").status_code for _ in range(8)]
    assert codes == [200] * 5 + [429] * 3


def test_token_sees_its_own_workspace(api, api_stranger, workspace, other_workspace):
    assert api.get("/workspace").json()["name"] == workspace.name
    assert api_stranger.get("/workspace").json()["name"] == other_workspace.name


def test_last_use_is_noted(api, workspace):
    token = ApiToken.objects.get(workspace=workspace)
    assert token.last_used_at is None
    api.get("/workspace")
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert token.last_used_ip == "127.0.0.1"


def test_unknown_route_is_json_404(api):
    response = api.get("/no-such-thing")
    assert response.status_code == 404
    assert error_of(response)["message"] == "No such API endpoint."


def test_api_root_points_to_the_reference(api_anonymous):
    """/api/ leads to /api/v1/, which names the document and the docs page."""
    response = api_anonymous.client.get("/api/")
    assert (response.status_code, response["Location"]) == (302, "/api/v1/")
    body = api_anonymous.client.get("/api/v1/").json()
    assert body["openapi"].endswith("/api/v1/openapi.json")
    assert body["docs"].endswith("/api/v1/docs/")
    assert api_anonymous.client.get("/api/v1/docs/").status_code == 200
