"""Settings → API and `manage.py apitoken`: tokens shown once, stored hashed,
revocable, last use shown; owners and admins only."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken, AuditEntry, token_hash
from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db


def test_owner_creates_a_token_shown_once(owner_client, workspace):
    expires = (timezone.localdate() + timedelta(days=90)).isoformat()
    response = owner_client.post(
        reverse("accounts:api_tokens"),
        {"name": "Zapier", "role": "write", "expires_on": expires},
    )
    assert response.status_code == 200
    secret = response.context["created"]["secret"]
    token = ApiToken.objects.get(workspace=workspace)
    assert secret.startswith("of_") and len(secret) > 40
    assert token.hashed == token_hash(secret) and secret not in token.hashed
    assert (token.name, token.role, token.prefix) == ("Zapier", "write", secret[:10])
    assert token.expires_at.date().isoformat() == expires
    body = response.content.decode()
    assert body.count(secret) == 2  # the field and the curl example
    again = owner_client.get(reverse("accounts:api_tokens")).content.decode()
    assert secret not in again and "Zapier" in again and "Never" in again
    assert ApiClient(secret).get("/workspace").status_code == 200
    page = owner_client.get(reverse("accounts:api_tokens")).content.decode()
    assert "ago" in page and "127.0.0.1" in page


def test_bad_token_form_changes_nothing(owner_client, workspace):
    for data in (
        {"name": "", "role": "write"},
        {"name": "X", "role": "admin"},
        {"name": "X", "role": "read", "expires_on": "2001-01-01"},
        {"name": "X", "role": "read", "expires_on": "soon"},
        {"name": "X", "role": "read", "expires_on": "2199-01-01"},
    ):
        response = owner_client.post(reverse("accounts:api_tokens"), data)
        assert response.status_code == 422, data
        assert response.context["created"] is None
    assert not ApiToken.objects.exists()


def test_revoke(owner_client, workspace):
    owner_client.post(reverse("accounts:api_tokens"), {"name": "CRM", "role": "read"})
    token = ApiToken.objects.get()
    response = owner_client.post(
        reverse("accounts:api_token_revoke", args=[token.pk]), follow=True
    )
    assert "Token “CRM” revoked" in response.content.decode()
    token.refresh_from_db()
    assert token.status == "revoked"
    assert list(
        AuditEntry.objects.filter(workspace=workspace)
        .order_by("id")
        .values_list("action", "actor_label")
    ) == [
        ("api_token.create", "owner@acme.test"),
        ("api_token.revoke", "owner@acme.test"),
    ]


@pytest.mark.parametrize("role_fixture", ["member", "viewer"])
def test_editors_and_viewers_cannot_manage_tokens(
    client, request, role_fixture, workspace
):
    client.force_login(request.getfixturevalue(role_fixture))
    assert client.get(reverse("accounts:api_tokens")).status_code == 403
    response = client.post(
        reverse("accounts:api_tokens"), {"name": "X", "role": "write"}
    )
    assert response.status_code == 403
    assert not ApiToken.objects.exists()


def test_stranger_cannot_revoke_our_token(client, stranger, owner, workspace):
    from accounts.services import api_token_create

    token, _secret = api_token_create(workspace=workspace, name="Ours")
    client.force_login(stranger)
    response = client.post(reverse("accounts:api_token_revoke", args=[token.pk]))
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_apitoken_command(workspace):
    out = io.StringIO()
    call_command(
        "apitoken",
        "create",
        "--workspace",
        workspace.slug,
        "--name",
        "Backup script",
        "--read-only",
        stdout=out,
    )
    secret = out.getvalue().strip()
    token = ApiToken.objects.get(hashed=token_hash(secret))
    assert (token.workspace, token.name, token.role) == (
        workspace,
        "Backup script",
        "read",
    )
    entry = AuditEntry.objects.get(action="api_token.create")
    assert entry.actor_label == "manage.py apitoken"
    client = ApiClient(secret)
    assert client.get("/workspace").json()["token"]["role"] == "read"
    assert client.post("/leads", {"email": "a@b.co"}).status_code == 403
    out = io.StringIO()
    call_command("apitoken", "list", "--workspace", workspace.slug, stdout=out)
    assert "Backup script\tread\tactive\tlast used" in out.getvalue()
    call_command(
        "apitoken",
        "revoke",
        "--workspace",
        workspace.slug,
        str(token.pk),
        stdout=io.StringIO(),
    )
    assert client.get("/workspace").status_code == 401
    with pytest.raises(CommandError, match="No workspace"):
        call_command("apitoken", "create", "--workspace", "nope", "--name", "X")
    with pytest.raises(CommandError, match="Give the token a name"):
        call_command("apitoken", "create", "--workspace", workspace.slug, "--name", " ")
