"""Leaks: "dropped here" opens the leads who went no further, exportable, taggable."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from analytics import ingest, rollups
from analytics.models import Visitor
from leads.models import Lead, Tag
from tests.analytics.test_rollups import AMOUNTS, _clean
from tests.funnels.test_paths import BRANCHED, _build

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PERIOD = "range=custom&date_from=2026-03-01&date_to=2026-03-31"


def _visit(workspace, funnel, script, *, email=None, first_name="", source=""):
    """One visitor doing ``script`` ([(step, kind), ...]) a minute apart; a lead
    with that e-mail when given."""
    visitor = uuid.uuid4()
    lead = None
    if email:
        lead = Lead.objects.create(
            workspace=workspace, email=email, first_name=first_name, visitor_id=visitor
        )
    Visitor.objects.create(
        workspace=workspace,
        public_id=visitor,
        utm_source=source,
        lead_id=lead.pk if lead else None,
    )
    lines = [
        ingest.event_line(
            event_id=uuid.uuid4(),
            workspace_id=workspace.pk,
            funnel_id=funnel.pk,
            step_id=step.pk,
            visitor_id=visitor,
            kind=kind,
            page_version_id=None,
            variant_id=None,
            amount_minor=AMOUNTS.get(kind),
            currency="USD",
            properties=None,
            occurred_at=T0 + timedelta(minutes=i),
            received_at=T0 + timedelta(minutes=i),
        )
        for i, (step, kind) in enumerate(script)
    ]
    ingest.partitions_forget()
    ingest.lines_write(lines, [])
    return lead


@pytest.fixture
def leak(workspace):
    _clean()
    funnel, s = _build(workspace, BRANCHED)
    optin, order = s["optin"], s["order"]
    reached_order = [(optin, "view"), (optin, "optin"), (order, "view")]
    _visit(workspace, funnel, reached_order, email="ann@example.test", source="fb")
    _visit(
        workspace,
        funnel,
        reached_order,
        email="bob@example.test",
        first_name='=HYPERLINK("http://evil")',
    )
    _visit(workspace, funnel, reached_order)  # no lead: an anonymous visitor
    _visit(  # bought: went further
        workspace,
        funnel,
        [*reached_order, (order, "order"), (s["up"], "view")],
        email="cat@example.test",
    )
    _visit(workspace, funnel, [(optin, "view"), (optin, "optin")], email="dan@x.test")
    rollups.rollups_update()
    return funnel, s


def _url(funnel, step, name="leads:dropped"):
    return f"{reverse(name)}?funnel={funnel.pk}&step={step.pk}&{PERIOD}"


def test_dropped_at_the_order_form_lists_exactly_its_leads(owner_client, leak):
    funnel, s = leak
    response = owner_client.get(_url(funnel, s["order"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Dropped at order" in html and "2 leads" in html
    assert "ann@example.test" in html and "bob@example.test" in html
    assert "cat@example.test" not in html and "dan@x.test" not in html
    assert ">fb<" in html  # first touch source
    # The journey map's "left here" for the order form is the same cohort (3
    # visitors: two leads and one anonymous visitor) and links to it.
    journey = owner_client.get(
        reverse("analytics:journey", args=[funnel.pk]) + "?" + PERIOD
    ).content.decode()
    assert f"step={s['order'].pk}" in journey
    assert 'aria-label="3 dropped at order: see the leads"' in journey


def test_path_cohort(owner_client, leak):
    funnel, s = leak
    key = f"{s['optin'].pk}i>{s['order'].pk}o>{s['up'].pk}"
    url = f"{reverse('leads:dropped')}?funnel={funnel.pk}&path={key}&{PERIOD}"
    html = owner_client.get(url).content.decode()
    assert "cat@example.test" in html and "1 lead" in html
    assert "ann@example.test" not in html


def test_csv_export_is_formula_safe(owner_client, leak):
    funnel, s = leak
    response = owner_client.get(_url(funnel, s["order"], "leads:dropped_csv"))
    body = b"".join(response.streaming_content).decode().lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][:2] == ["E-mail", "First name"]
    by_email = {r[0]: r for r in rows[1:]}
    assert set(by_email) == {"ann@example.test", "bob@example.test"}
    assert by_email["bob@example.test"][1] == '\'=HYPERLINK("http://evil")'
    assert by_email["ann@example.test"][3] == "fb"


def test_tag_the_cohort(owner_client, leak, workspace):
    funnel, s = leak
    response = owner_client.post(
        reverse("leads:dropped_tag"),
        {
            "funnel": funnel.pk,
            "step": s["order"].pk,
            "range": "custom",
            "date_from": "2026-03-01",
            "date_to": "2026-03-31",
            "tag": "dropped-order",
        },
    )
    assert response.status_code == 302
    tag = Tag.objects.get(workspace=workspace, name="dropped-order")
    assert sorted(tag.leads.values_list("email", flat=True)) == [
        "ann@example.test",
        "bob@example.test",
    ]


def test_viewer_cannot_tag_and_strangers_get_404(client, viewer, stranger, leak):
    funnel, s = leak
    client.force_login(viewer)
    response = client.post(
        reverse("leads:dropped_tag"),
        {"funnel": funnel.pk, "step": s["order"].pk, "tag": "x"},
    )
    assert response.status_code == 403
    assert not Tag.objects.filter(name="x").exists()
    client.force_login(stranger)
    assert client.get(_url(funnel, s["order"])).status_code == 404
    assert client.get(_url(funnel, s["order"], "leads:dropped_csv")).status_code == 404


@pytest.mark.parametrize(
    "query",
    ["funnel=abc", "step=1", "path=drop%20table", "variant=x", "variant=999999"],
)
def test_bad_input_is_404_not_500(owner_client, leak, query):
    funnel, s = leak
    params = {"funnel": str(funnel.pk), "step": str(s["order"].pk)}
    key, value = query.split("=")
    params[key] = value
    if key == "path":
        params.pop("step")
    qs = "&".join(f"{k}={v}" for k, v in params.items())
    assert owner_client.get(f"{reverse('leads:dropped')}?{qs}").status_code == 404
