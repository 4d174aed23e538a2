"""Repeat purchases and customer lifetime value, recounted by hand."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from analytics import customers, reports
from analytics.models import AdSpend, Visitor
from tests.analytics.test_rollups import _clean, _write
from tests.factories import FunnelFactory, StepFactory

pytestmark = pytest.mark.django_db
D = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MARCH = reports.ReportFilters(date(2026, 3, 1), date(2026, 3, 31))


@pytest.fixture
def buyers(workspace):
    _clean()
    funnel = FunnelFactory(workspace=workspace)
    order = StepFactory(funnel=funnel, kind="order", position=0)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    Visitor.objects.create(workspace=workspace, public_id=a, utm_source="google")
    Visitor.objects.create(workspace=workspace, public_id=b)
    Visitor.objects.create(workspace=workspace, public_id=c, utm_source="google")

    def ev(v, kind, days):
        return {
            "visitor": v,
            "step": order.pk,
            "kind": kind,
            "funnel": funnel.pk,
            "at": D + timedelta(days=days),
        }

    _write(
        [
            ev(a, "order", 0),  # 2700
            ev(a, "bump", 0),  # 900
            ev(a, "refund", 5),  # -500
            ev(a, "order", 10),  # 2700: a repeat purchase
            ev(a, "order", 100),  # 2700: after 90 days, within 365
            ev(b, "order", 1),  # 2700
            ev(c, "order", -40),  # first order before the period: not a new one
            ev(c, "order", 2),
        ],
        workspace.pk,
    )
    return funnel


def test_repeat_rate_and_lifetime_value(workspace, buyers):
    value = customers.customer_value(
        workspace=workspace, filters=MARCH, now=D + timedelta(days=400)
    )
    t = value.total
    assert (t.customers, t.repeat, t.repeat_rate) == (2, 1, 0.5)
    assert t.ltv30 == (2700 + 900 - 500 + 2700 + 2700) / 2
    assert t.ltv90 == t.ltv30
    assert t.ltv365 == (5800 + 2700 + 2700) / 2
    by_source = {r.key: (r.customers, r.ltv365) for r in value.by_source}
    assert by_source == {"": (1, 2700.0), "google": (1, 8500.0)}
    assert [(r.key, r.customers) for r in value.by_cohort] == [("2026-03", 2)]


def test_open_windows_are_not_counted(workspace, buyers):
    """Forty days after the first orders, only the 30-day window is over."""
    value = customers.customer_value(
        workspace=workspace, filters=MARCH, now=D + timedelta(days=40)
    )
    assert value.total.ltv30 == (5800 + 2700) / 2
    assert value.total.ltv90 is None and value.total.ltv365 is None


def test_page_shows_ltv_next_to_cac(owner_client, workspace, buyers):
    AdSpend.objects.create(
        workspace=workspace,
        source="google",
        date_from=date(2026, 3, 1),
        date_to=date(2026, 3, 31),
        amount_minor=5000,
    )
    url = reverse("analytics:customers")
    q = "?range=custom&date_from=2026-03-01&date_to=2026-03-31&source=google"
    response = owner_client.get(url + q)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Customer value by first-touch source" in html
    # Google's customer: $58 in 30 and in 90 days; a year has not passed yet.
    row = html[html.index('<th scope="row">google</th>') :]
    row = row[: row.index("</tr>")]
    assert row.count("$58.00") == 2 and "—" in row
    assert "$50.00" in html  # its CAC: $50 of spend for one new customer
    fragment = owner_client.get(url + q, headers={"HX-Request": "true"})
    assert b"<html" not in fragment.content


def test_page_queries_stay_flat_as_customers_grow(owner_client, workspace, buyers):
    """No query per customer, source, cohort or ad spend."""
    url = reverse("analytics:customers") + "?range=custom&date_from=2026-01-01"
    url += "&date_to=2026-06-30"

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = owner_client.get(url)
        assert response.status_code == 200
        return len(ctx.captured_queries)

    owner_client.get(url)  # the first request also saves the session
    before = queries()
    events = []
    for i in range(30):
        visitor = uuid.uuid4()
        Visitor.objects.create(
            workspace=workspace, public_id=visitor, utm_source=f"source{i}"
        )
        AdSpend.objects.create(
            workspace=workspace,
            source=f"source{i}",
            date_from=date(2026, 3, 1),
            date_to=date(2026, 3, 31),
            amount_minor=1000 + i,
        )
        for days in (i * 3, i * 3 + 2):  # cohorts over four months, repeat buyers
            events.append(
                {
                    "visitor": visitor,
                    "step": buyers.steps.get().pk,
                    "kind": "order",
                    "funnel": buyers.pk,
                    "at": D + timedelta(days=days),
                }
            )
    _write(events, workspace.pk)
    html = owner_client.get(url).content.decode()
    assert '<th scope="row">source29</th>' in html and "2026-05" in html
    assert queries() == before
