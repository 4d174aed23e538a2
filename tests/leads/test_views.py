from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from leads import services
from leads.models import Lead, Webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def leads(optin_step):
    now = timezone.now()
    made = []
    for i, email in enumerate(["amy@x.io", "ben@x.io", "cat@y.io"]):
        lead = services.lead_capture(
            step=optin_step,
            data={"email": email, "first_name": email[:3].title()},
            touch={"source": "google" if i else "facebook"},
            first_touch={"source": "google" if i else "facebook"},
        ).lead
        Lead.objects.filter(pk=lead.pk).update(created_at=now - timedelta(days=i))
        made.append(lead)
    return made


def _emails(response) -> list[str]:
    return [lead.email for lead in response.context["page"].leads]


def test_list_search_filter_sort(owner_client, leads):
    """Search by e-mail or name prefix, filter by source, sort by e-mail."""
    url = reverse("leads:list")
    assert _emails(owner_client.get(url)) == ["amy@x.io", "ben@x.io", "cat@y.io"]
    assert _emails(owner_client.get(url, {"q": "BE"})) == ["ben@x.io"]
    assert _emails(owner_client.get(url, {"q": "cat"})) == ["cat@y.io"]
    assert _emails(owner_client.get(url, {"source": "facebook"})) == ["amy@x.io"]
    assert _emails(owner_client.get(url, {"sort": "oldest"})) == [
        "cat@y.io",
        "ben@x.io",
        "amy@x.io",
    ]


def test_list_htmx_fragment(owner_client, leads):
    """An htmx request targeting the results gets only the results fragment."""
    response = owner_client.get(
        reverse("leads:list"),
        {"q": "amy"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="lead-results",
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="lead-results">')
    assert "amy@x.io" in body and "<html" not in body


def test_keyset_pagination_walks_every_lead_once(owner_client, optin_step, monkeypatch):
    """Following 'next' visits every lead exactly once, in order."""
    from leads import selectors

    monkeypatch.setattr(selectors, "PAGE_SIZE", 2)
    for i in range(5):
        services.lead_capture(step=optin_step, data={"email": f"p{i}@x.io"})
    seen, cursor = [], ""
    for _ in range(5):
        params = {"sort": "email"} | ({"cursor": cursor} if cursor else {})
        response = owner_client.get(reverse("leads:list"), params)
        seen += _emails(response)
        cursor = response.context["page"].next_cursor
        if not cursor:
            break
    assert seen == [f"p{i}@x.io" for i in range(5)]


def test_bad_cursor_and_reversed_dates_are_harmless(owner_client, leads):
    """A garbage cursor shows page one; reversed dates show a message, not a 500."""
    response = owner_client.get(reverse("leads:list"), {"cursor": "%%%garbage"})
    assert response.status_code == 200
    response = owner_client.get(
        reverse("leads:list"), {"date_from": "2026-05-02", "date_to": "2026-05-01"}
    )
    assert response.status_code == 200
    assert "The end date is before the start date." in response.content.decode()


def test_csv_export_streams_filtered_rows(owner_client, leads):
    """The CSV export streams the filtered leads with a header row."""
    response = owner_client.get(reverse("leads:export_csv"), {"source": "google"})
    assert response.streaming
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["E-mail", "First name", "Last name"]
    assert [r[0] for r in rows[1:]] == ["ben@x.io", "cat@y.io"]


def test_bulk_tag(owner_client, leads):
    """Selected leads get the tag."""
    response = owner_client.post(
        reverse("leads:bulk_tag"),
        {"tag": "webinar", "leads": [leads[0].pk, leads[2].pk]},
    )
    assert response.status_code == 302
    tagged = Lead.objects.filter(tags__name="webinar").order_by("email")
    assert [lead.email for lead in tagged] == ["amy@x.io", "cat@y.io"]


def test_detail_json_export_and_erase(owner_client, leads):
    """Lead page shows the lead; JSON export holds submissions; erase wipes data."""
    lead = leads[0]
    page = owner_client.get(reverse("leads:detail", args=[lead.pk]))
    assert "amy@x.io" in page.content.decode()
    data = owner_client.get(reverse("leads:export_json", args=[lead.pk])).json()
    assert data["email"] == "amy@x.io"
    assert len(data["submissions"]) == 1
    owner_client.post(reverse("leads:erase", args=[lead.pk]))
    lead.refresh_from_db()
    assert lead.erased_at is not None
    assert "amy@x.io" not in owner_client.get(reverse("leads:list")).content.decode()


def test_stranger_gets_404_for_every_lead_url(client, stranger, leads, workspace):
    """A member of another workspace sees none of these leads."""
    client.force_login(stranger)
    lead = leads[0]
    for name in ("leads:detail", "leads:export_json", "leads:erase"):
        assert client.get(reverse(name, args=[lead.pk])).status_code == 404
    assert _emails(client.get(reverse("leads:list"))) == []
    rows = b"".join(client.get(reverse("leads:export_csv")).streaming_content)
    assert rows.count(b"\n") == 1
    hook = Webhook.objects.create(workspace=workspace, url="http://x.test", events=[])
    response = client.post(reverse("leads:webhook_delete", args=[hook.pk]))
    assert response.status_code == 404


def test_viewer_cannot_write(client, viewer, leads):
    """A viewer reads leads but gets 403 on tagging, erasing and webhooks."""
    client.force_login(viewer)
    assert client.get(reverse("leads:list")).status_code == 200
    assert (
        client.post(
            reverse("leads:bulk_tag"), {"tag": "x", "leads": [leads[0].pk]}
        ).status_code
        == 403
    )
    assert client.post(reverse("leads:erase", args=[leads[0].pk])).status_code == 403
    assert (
        client.post(
            reverse("leads:webhooks"),
            {"url": "https://a.test", "events": ["lead.created"]},
        ).status_code
        == 403
    )


def test_webhook_create_needs_events(owner_client):
    """Adding a webhook without events shows an error and stores nothing."""
    response = owner_client.post(reverse("leads:webhooks"), {"url": "https://a.test"})
    assert response.status_code == 422
    assert Webhook.objects.count() == 0
    response = owner_client.post(
        reverse("leads:webhooks"),
        {"url": "https://a.test/hook", "events": ["lead.created"]},
    )
    assert response.status_code == 302
    assert Webhook.objects.get().events == ["lead.created"]
