"""API: leads (list, detail, upsert by e-mail, tags, GDPR export and erase)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from leads.models import Lead, Tag, WebhookDelivery
from leads.services import webhook_create
from tests.api.conftest import error_of

pytestmark = pytest.mark.django_db


def make_lead(workspace, email: str, **kw) -> Lead:
    return Lead.objects.create(workspace=workspace, email=email, **kw)


@pytest.fixture
def foreign_lead(other_workspace):
    return make_lead(other_workspace, "theirs@globex.test", first_name="Their")


def test_upsert_creates_then_updates_by_email(api, workspace):
    """The first POST creates (201), the second with another case updates (200)
    only the fields it sends; a subscribed webhook hears both."""
    webhook_create(
        workspace=workspace,
        url="https://hooks.example.test/in",
        events=["lead.created", "lead.updated"],
    )
    response = api.post(
        "/leads",
        {
            "email": "Ada@Example.com",
            "first_name": "Ada",
            "phone": "+44 20 7946 0000",
            "fields": {"company": "Engines Ltd"},
            "tags": ["vip", "newsletter"],
        },
    )
    assert response.status_code == 201
    body = response.json()
    lead = Lead.objects.get(workspace=workspace)
    assert body["id"] == str(lead.public_id)
    assert (lead.email, lead.first_name, lead.phone) == (
        "ada@example.com",
        "Ada",
        "+44 20 7946 0000",
    )
    assert body["tags"] == ["newsletter", "vip"]
    assert body["fields"] == {"company": "Engines Ltd"}
    response = api.post("/leads", {"email": "ADA@example.com", "last_name": "Lovelace"})
    assert response.status_code == 200
    body = response.json()
    assert (body["first_name"], body["last_name"]) == ("Ada", "Lovelace")
    assert body["phone"] == "+44 20 7946 0000"
    assert Lead.objects.filter(workspace=workspace).count() == 1
    events = list(
        WebhookDelivery.objects.filter(workspace=workspace)
        .order_by("id")
        .values_list("event", flat=True)
    )
    assert events == ["lead.created", "lead.updated"]
    actions = list(
        AuditEntry.objects.filter(workspace=workspace, action__startswith="lead.")
        .order_by("id")
        .values_list("action", "changes")
    )
    assert actions[0][0] == "lead.create"
    assert actions[1] == (
        "lead.update",
        {"before": {"last_name": ""}, "after": {"last_name": "Lovelace"}},
    )


def test_upsert_bad_input_changes_nothing(api, workspace):
    for body, field in (
        ({"email": "not-an-address"}, "email"),
        ({}, "email"),
        ({"email": "a@b.co", "phone": "call me"}, "phone"),
        ({"email": "a@b.co", "first_name": "x" * 101}, "first_name"),
        ({"email": "a@b.co", "fields": {"k": 5}}, "fields.k"),
        ({"email": "a@b.co", "fields": {f"f{i}": "v" for i in range(21)}}, "fields"),
        ({"email": "a@b.co", "tags": ["   "]}, "tags"),
    ):
        response = api.post("/leads", body)
        assert response.status_code == 400, body
        error = error_of(response)
        assert field in error["fields"], (body, error)
        assert error["message"], body
    assert not Lead.objects.exists()
    assert not Tag.objects.exists()


def test_lead_list_filters_and_keyset_pages(api, workspace, other_workspace):
    now = timezone.now()
    for i in range(55):
        make_lead(
            workspace,
            f"p{i:02d}@example.test",
            created_at=now - timedelta(minutes=i),
            updated_at=now - timedelta(minutes=i),
        )
    make_lead(workspace, "bob@example.test", first_source="facebook")
    make_lead(other_workspace, "p99@example.test")
    first = api.get("/leads").json()
    assert len(first["results"]) == 50
    second = api.get("/leads", cursor=first["next_cursor"]).json()
    assert second["next_cursor"] is None
    emails = [r["email"] for r in first["results"] + second["results"]]
    assert len(emails) == len(set(emails)) == 56
    assert "p99@example.test" not in emails
    assert [r["email"] for r in api.get("/leads", q="bo").json()["results"]] == [
        "bob@example.test"
    ]
    assert [
        r["email"] for r in api.get("/leads", source="facebook").json()["results"]
    ] == ["bob@example.test"]
    since = (now - timedelta(minutes=2, seconds=30)).isoformat()
    recent = api.get("/leads", updated_since=since, sort="email").json()["results"]
    assert [r["email"] for r in recent] == [
        "bob@example.test",
        "p00@example.test",
        "p01@example.test",
        "p02@example.test",
    ]


def test_lead_list_pages_in_every_sort(api, workspace):
    """`limit` a page, in any sort, by keyset: every lead once, in order (the e-mail
    sort pages on the lower-cased address)."""
    now = timezone.now()
    for i, email in enumerate(["bob@x.test", "Ann@x.test", "cat@x.test", "abe@x.test"]):
        make_lead(workspace, email, created_at=now - timedelta(minutes=i))
    for sort, expected in (
        ("email", ["abe@x.test", "Ann@x.test", "bob@x.test", "cat@x.test"]),
        ("newest", ["bob@x.test", "Ann@x.test", "cat@x.test", "abe@x.test"]),
        ("oldest", ["abe@x.test", "cat@x.test", "Ann@x.test", "bob@x.test"]),
    ):
        seen, cursor = [], None
        while True:
            query = {"sort": sort, "limit": 3, **({"cursor": cursor} if cursor else {})}
            body = api.get("/leads", **query).json()
            assert len(body["results"]) <= 3
            seen += [r["email"] for r in body["results"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == expected, sort


def test_lead_list_bad_input(api):
    for query, field in (
        ({"cursor": "@@@"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"sort": "random"}, "sort"),
        ({"date_from": "2026-13-01"}, "date_from"),
        ({"date_from": "2026-05-02", "date_to": "2026-05-01"}, "date_to"),
        ({"funnel": "x"}, "funnel"),
    ):
        response = api.get("/leads", **query)
        assert response.status_code == 400, query
        assert field in error_of(response)["fields"], query


def test_lead_detail_export_and_erase(api, workspace):
    lead = make_lead(workspace, "gdpr@example.test", first_name="Grace")
    body = api.get(f"/leads/{lead.public_id}").json()
    assert body["email"] == "gdpr@example.test"
    assert body["submissions"] == [] and body["orders"] == []
    export = api.get(f"/leads/{lead.public_id}/export").json()
    assert export["email"] == "gdpr@example.test"
    assert export["first_touch"] == {
        "source": "",
        "medium": "",
        "campaign": "",
        "referrer": "",
    }
    response = api.post(f"/leads/{lead.public_id}/erase")
    assert response.status_code == 200
    body = response.json()
    assert body["erased"] is True and body["first_name"] == ""
    assert body["email"] == f"erased-{lead.public_id}@erased.invalid"
    assert list(
        AuditEntry.objects.filter(workspace=workspace, action__startswith="lead.")
        .order_by("id")
        .values_list("action", "target_label")
    ) == [
        ("lead.export", "gdpr@example.test"),
        ("lead.erase", f"lead {lead.public_id}"),
    ]


def test_tags(api, workspace):
    lead = make_lead(workspace, "t@example.test")
    response = api.post(f"/leads/{lead.public_id}/tags", {"tags": ["VIP", "beta"]})
    assert response.status_code == 200
    assert response.json()["tags"] == ["VIP", "beta"]
    response = api.post(f"/leads/{lead.public_id}/tags", {"tags": ["vip"]})
    assert response.json()["tags"] == ["VIP", "beta"]
    for body in ({"tags": []}, {"tags": [""]}, {"tags": "vip"}, {}):
        response = api.post(f"/leads/{lead.public_id}/tags", body)
        assert response.status_code == 400, body
        error_of(response)
    assert Tag.objects.filter(workspace=workspace).count() == 2


def test_foreign_or_unknown_lead_is_404(api, foreign_lead):
    for lead_id in (foreign_lead.public_id, uuid.uuid4()):
        for method, path, body in (
            ("GET", f"/leads/{lead_id}", None),
            ("GET", f"/leads/{lead_id}/export", None),
            ("POST", f"/leads/{lead_id}/erase", None),
            ("POST", f"/leads/{lead_id}/tags", {"tags": ["x"]}),
        ):
            response = api.request(method, path, body)
            assert response.status_code == 404, path
            assert error_of(response)["message"] == "Not found."
    foreign_lead.refresh_from_db()
    assert foreign_lead.erased_at is None and foreign_lead.first_name == "Their"
    assert not AuditEntry.objects.filter(action__startswith="lead.").exists()
    response = api.get("/leads/not-a-uuid")
    assert response.status_code in (400, 404)
