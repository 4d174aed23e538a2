"""Idempotency keys on POSTs that create or charge."""

from __future__ import annotations

import pytest

from leads.models import Lead, Webhook
from tests.api.conftest import ApiClient, error_of, make_token

pytestmark = pytest.mark.django_db


def test_same_key_same_body_creates_once(api, workspace):
    headers = {"Idempotency-Key": "lead-42"}
    first = api.post("/leads", {"email": "once@example.test"}, headers=headers)
    again = api.post("/leads", {"email": "once@example.test"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Lead.objects.filter(workspace=workspace).count() == 1


def test_key_is_scoped_to_the_token(workspace):
    headers = {"Idempotency-Key": "hook"}
    body = {"url": "https://hooks.example.test/x", "events": ["lead.created"]}
    a = ApiClient(make_token(workspace, "write", name="a"))
    b = ApiClient(make_token(workspace, "write", name="b"))
    assert a.post("/webhooks", body, headers=headers).status_code == 201
    response = b.post("/webhooks", body, headers=headers)
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert Webhook.objects.filter(workspace=workspace).count() == 2


def test_refused_request_does_not_burn_the_key(api, workspace):
    headers = {"Idempotency-Key": "fix-and-retry"}
    bad = api.post("/leads", {"email": "nope"}, headers=headers)
    assert bad.status_code == 400
    good = api.post("/leads", {"email": "fixed@example.test"}, headers=headers)
    assert good.status_code == 201
    assert Lead.objects.filter(workspace=workspace).count() == 1


def test_key_too_long_is_400(api):
    response = api.post(
        "/leads", {"email": "a@b.co"}, headers={"Idempotency-Key": "k" * 201}
    )
    assert response.status_code == 400
    assert "Idempotency-Key" in error_of(response)["fields"]
    assert not Lead.objects.exists()
