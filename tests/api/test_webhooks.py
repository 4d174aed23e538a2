"""API: webhooks (CRUD, deliveries, re-send)."""

from __future__ import annotations

import pytest

from accounts.models import AuditEntry
from leads.models import Webhook, WebhookDelivery
from leads.services import webhook_create, webhooks_dispatch
from tests.api.conftest import error_of

pytestmark = pytest.mark.django_db

URL = "https://hooks.example.test/openfunnels"


@pytest.fixture
def hook(workspace):
    return webhook_create(workspace=workspace, url=URL, events=["lead.created"])


@pytest.fixture
def foreign_hook(other_workspace):
    return webhook_create(workspace=other_workspace, url=URL, events=["lead.created"])


def test_webhook_crud_is_audited(api, workspace):
    response = api.post("/webhooks", {"url": URL, "events": ["order.created"]})
    assert response.status_code == 201
    body = response.json()
    hook = Webhook.objects.get(pk=body["id"], workspace=workspace)
    assert body["secret"] == hook.secret and len(hook.secret) > 20
    assert api.get("/webhooks").json()["results"][0]["url"] == URL
    assert "secret" not in api.get(f"/webhooks/{hook.pk}").json()
    response = api.patch(
        f"/webhooks/{hook.pk}",
        {"events": ["order.created", "order.refunded"], "is_active": False},
    )
    assert response.status_code == 200
    assert response.json()["events"] == ["order.created", "order.refunded"]
    assert response.json()["is_active"] is False
    assert api.delete(f"/webhooks/{hook.pk}").status_code == 204
    assert not Webhook.objects.filter(pk=hook.pk).exists()
    assert list(
        AuditEntry.objects.filter(workspace=workspace)
        .exclude(action="api_token.create")
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["webhook.create", "webhook.update", "webhook.delete"]
    update = AuditEntry.objects.get(action="webhook.update")
    assert update.changes == {
        "before": {"events": ["order.created"], "is_active": True},
        "after": {"events": ["order.created", "order.refunded"], "is_active": False},
    }


def test_webhook_bad_input(api, workspace, hook):
    for body, field in (
        ({"url": "not a url", "events": ["lead.created"]}, "url"),
        ({"url": URL, "events": []}, "events"),
        ({"url": URL, "events": ["lead.deleted"]}, "events.0"),
        ({"events": ["lead.created"]}, "url"),
    ):
        response = api.post("/webhooks", body)
        assert response.status_code == 400, body
        assert field in error_of(response)["fields"], (body, response.json())
    for body, field in (
        ({"url": "ftp://x"}, "url"),
        ({"events": []}, "events"),
        ({"url": None}, "url"),
    ):
        response = api.patch(f"/webhooks/{hook.pk}", body)
        assert response.status_code == 400, body
        assert field in error_of(response)["fields"], (body, response.json())
    assert api.get("/webhooks", limit=-1).status_code == 400
    assert Webhook.objects.filter(workspace=workspace).count() == 1
    hook.refresh_from_db()
    assert hook.url == URL and hook.events == ["lead.created"]


def test_deliveries_and_resend(api, workspace, hook):
    webhooks_dispatch(workspace_id=workspace.pk, event="lead.created", payload={"a": 1})
    deliveries = api.get(f"/webhooks/{hook.pk}/deliveries").json()["results"]
    assert [(d["event"], d["webhook"]) for d in deliveries] == [
        ("lead.created", hook.pk)
    ]
    original = deliveries[0]
    response = api.post(f"/webhooks/{hook.pk}/deliveries/{original['id']}/resend")
    assert response.status_code == 201
    copy = response.json()
    assert copy["id"] != original["id"] and copy["event_id"] == original["event_id"]
    assert WebhookDelivery.objects.filter(webhook=hook).count() == 2
    page = api.get(f"/webhooks/{hook.pk}/deliveries", limit=1).json()
    assert page["results"][0]["id"] == copy["id"] and page["next_cursor"]
    assert api.get(f"/webhooks/{hook.pk}/deliveries", cursor="%%").status_code == 400
    assert AuditEntry.objects.filter(action="webhook.resend").count() == 1


def test_foreign_webhook_is_404(api, foreign_hook, other_workspace):
    webhooks_dispatch(
        workspace_id=other_workspace.pk, event="lead.created", payload={"a": 1}
    )
    delivery = WebhookDelivery.objects.get(webhook=foreign_hook)
    for method, path, body in (
        ("GET", f"/webhooks/{foreign_hook.pk}", None),
        ("PATCH", f"/webhooks/{foreign_hook.pk}", {"is_active": False}),
        ("DELETE", f"/webhooks/{foreign_hook.pk}", None),
        ("GET", f"/webhooks/{foreign_hook.pk}/deliveries", None),
        (
            "POST",
            f"/webhooks/{foreign_hook.pk}/deliveries/{delivery.pk}/resend",
            None,
        ),
    ):
        response = api.request(method, path, body)
        assert response.status_code == 404, path
        error_of(response)
    foreign_hook.refresh_from_db()
    assert foreign_hook.is_active
    assert WebhookDelivery.objects.filter(webhook=foreign_hook).count() == 1


def test_delivery_of_another_webhook_is_404(api, workspace, hook):
    other = webhook_create(workspace=workspace, url=URL + "2", events=["lead.created"])
    webhooks_dispatch(workspace_id=workspace.pk, event="lead.created", payload={})
    delivery = WebhookDelivery.objects.get(webhook=other)
    response = api.post(f"/webhooks/{hook.pk}/deliveries/{delivery.pk}/resend")
    assert response.status_code == 404
