"""Revenue is summed per currency, never across currencies: rollups keep money in
its currency and dashboards show each (a one-currency workspace looks as before)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from analytics import ingest, reports, rollups
from analytics.models import AdSpend, Visitor
from tests.factories import FunnelFactory, StepFactory

pytestmark = pytest.mark.django_db


def _sales(
    workspace,
    funnel,
    step,
    sales: list[tuple[str, int, str]],
    source: str = "",
    at=None,
) -> None:
    now = at or timezone.now() - timedelta(minutes=5)
    lines = []
    for kind, amount, currency in sales:
        visitor = uuid.uuid4()
        if source:
            Visitor.objects.create(
                workspace=workspace, public_id=visitor, utm_source=source
            )
        lines.append(
            ingest.event_line(
                event_id=uuid.uuid4(),
                workspace_id=workspace.pk,
                funnel_id=funnel.pk,
                step_id=step.pk,
                visitor_id=visitor,
                kind=kind,
                page_version_id=None,
                variant_id=None,
                amount_minor=amount,
                currency=currency,
                properties=None,
                occurred_at=now,
                received_at=now,
            )
        )
    ingest.lines_write(lines, [])


@pytest.fixture
def funnel(workspace):
    ingest.partitions_forget()
    funnel = FunnelFactory(workspace=workspace, name="World funnel")
    StepFactory(funnel=funnel, name="Order", kind="order", position=0)
    return funnel


def test_revenue_in_two_currencies_is_kept_apart(owner_client, workspace, funnel):
    """€10 + $5 sold, €2 refunded: the dashboard says €8.00 and $5.00, never
    "$13.00" (the issue saw every currency summed and shown as USD)."""
    step = funnel.steps.get()
    _sales(
        workspace,
        funnel,
        step,
        [
            ("view", None, ""),
            ("order", 1000, "EUR"),
            ("order", 500, "USD"),
            ("refund", 200, "EUR"),
        ],
    )
    rollups.rollups_update()
    today = timezone.localdate()
    report = reports.funnel_report(
        workspace=workspace,
        funnel=funnel,
        filters=reports.ReportFilters(today - timedelta(days=1), today),
        detail=False,
    )
    assert report.totals.revenue_by_currency == {"EUR": 800, "USD": 500}
    assert report.steps[0].all_views == 1 and report.steps[0].orders == 2
    page = owner_client.get(reverse("analytics:funnel", args=[funnel.pk]))
    body = page.content.decode()
    assert "€8.00" in body and "$5.00" in body
    assert "$13.00" not in body and "$8.00" not in body
    overview = owner_client.get(reverse("analytics:overview")).content.decode()
    assert "€8.00 · $5.00" in overview


def test_one_currency_looks_as_before(owner_client, workspace, funnel):
    step = funnel.steps.get()
    _sales(workspace, funnel, step, [("order", 2700, "EUR"), ("bump", 900, "EUR")])
    rollups.rollups_update()
    body = owner_client.get(
        reverse("analytics:funnel", args=[funnel.pk])
    ).content.decode()
    assert "€36.00" in body and "$" not in body.split("Revenue", 1)[1][:200]


def _csv(client, funnel, table: str) -> list[list[str]]:
    url = reverse("analytics:funnel_export", args=[funnel.pk, table])
    return list(csv.reader(io.StringIO(client.get(url).content.decode())))


@pytest.fixture
def world(workspace, funnel):
    """Facebook brought €10 + $5 of sales (and a €2 refund); €30 and $20 were
    spent on it."""
    step = funnel.steps.get()
    _sales(
        workspace,
        funnel,
        step,
        [("order", 1000, "EUR"), ("order", 500, "USD"), ("refund", 200, "EUR")],
        source="facebook",
    )
    rollups.rollups_update()
    for amount, currency in ((3000, "EUR"), (2000, "USD")):
        AdSpend.objects.create(
            workspace=workspace,
            source="facebook",
            date_from=timezone.localdate() - timedelta(days=3),
            date_to=timezone.localdate(),
            amount_minor=amount,
            currency=currency,
        )
    return funnel


def test_source_table_keeps_currencies_apart(owner_client, world):
    """Spend, revenue, CAC and ROAS of a source per currency: never "$50.00" spent
    or "$13.00" earned (euros and dollars added up), nor a ROAS across them."""
    response = owner_client.get(reverse("analytics:funnel", args=[world.pk]))
    (row,) = response.context["spend"]
    assert row["spend"] == {"EUR": 3000, "USD": 2000}
    assert row["revenue"] == {"EUR": 800, "USD": 500}
    assert row["roas"] == {"EUR": 800 / 3000, "USD": 500 / 2000}
    table = response.content.decode().split("Ad spend", 1)[1].split("</table>")[0]
    assert "€30.00 · $20.00" in table and "€8.00 · $5.00" in table
    assert "$50.00" not in table and "$13.00" not in table


def test_csv_exports_give_each_amount_its_currency(owner_client, world):
    steps = _csv(owner_client, world, "steps")
    assert "Revenue EUR (minor units)" in steps[0]
    assert "Revenue USD (minor units)" in steps[0]
    row = dict(zip(steps[0], steps[1], strict=True))
    assert (row["Revenue EUR (minor units)"], row["Revenue USD (minor units)"]) == (
        "800",
        "500",
    )
    assert "1300" not in steps[1]
    trend = _csv(owner_client, world, "trend")
    assert trend[0] == [
        "Day",
        "Views",
        "Opt-ins",
        "Orders",
        "Revenue EUR (minor units)",
        "Revenue USD (minor units)",
    ]
    assert trend[-1][-2:] == ["800", "500"]
    spend = _csv(owner_client, world, "spend")
    assert spend[0] == [
        "Source",
        "Currency",
        "Spend (minor units)",
        "New customers",
        "Revenue (minor units)",
        "CAC (minor units)",
        "ROAS",
    ]
    assert spend[1:] == [
        ["facebook", "EUR", "3000", "2", "800", "1500", "0.27"],
        ["facebook", "USD", "2000", "2", "500", "1000", "0.25"],
    ]


def test_csv_of_one_currency_names_it(owner_client, workspace, funnel):
    step = funnel.steps.get()
    _sales(workspace, funnel, step, [("order", 2700, "EUR")])
    rollups.rollups_update()
    steps = _csv(owner_client, funnel, "steps")
    row = dict(zip(steps[0], steps[1], strict=True))
    assert row["Revenue EUR (minor units)"] == "2700"
    assert not any("USD" in h for h in steps[0])


def test_journey_map_keeps_currencies_apart(owner_client, workspace, funnel):
    step = funnel.steps.get()
    _sales(
        workspace,
        funnel,
        step,
        [("order", 1000, "EUR"), ("order", 500, "USD"), ("refund", 200, "EUR")],
    )
    rollups.rollups_update()
    response = owner_client.get(reverse("analytics:journey", args=[funnel.pk]))
    jmap = response.context["jmap"]
    assert jmap.revenue_by_currency == {"EUR": 800, "USD": 500}
    body = response.content.decode()
    assert "€8.00 · $5.00" in body
    assert "$13.00" not in body and "$8.00" not in body
    by_path = {p.key: p.revenue_by_currency for p in jmap.paths}
    assert by_path == {
        f"{step.pk}o": {"EUR": 1000, "USD": 500},
        f"{step.pk}": {"EUR": -200},
    }


def test_journey_map_in_one_currency_names_it(owner_client, workspace, funnel):
    step = funnel.steps.get()
    _sales(workspace, funnel, step, [("order", 2700, "EUR")])
    rollups.rollups_update()
    body = owner_client.get(
        reverse("analytics:journey", args=[funnel.pk])
    ).content.decode()
    assert "€27.00" in body and "$27.00" not in body


def test_customer_value_keeps_currencies_apart(owner_client, workspace, funnel):
    """Two new customers 40 days ago, one paying €10 (and a €3 downsell), one $5:
    lifetime value per currency (and the downsell counts), never "$9.00"."""
    step = funnel.steps.get()
    at = timezone.now() - timedelta(days=40)
    buyer = uuid.uuid4()
    Visitor.objects.create(workspace=workspace, public_id=buyer, utm_source="ads")
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
            amount_minor=amount,
            currency=currency,
            properties=None,
            occurred_at=at,
            received_at=at,
        )
        for visitor, kind, amount, currency in (
            (buyer, "order", 1000, "EUR"),
            (buyer, "downsell_accept", 300, "EUR"),
            (uuid.uuid4(), "order", 500, "USD"),
        )
    ]
    ingest.lines_write(lines, [])
    AdSpend.objects.create(
        workspace=workspace,
        source="ads",
        date_from=at.date(),
        date_to=at.date(),
        amount_minor=2000,
        currency="EUR",
    )
    AdSpend.objects.create(
        workspace=workspace,
        source="ads",
        date_from=at.date(),
        date_to=at.date(),
        amount_minor=1000,
        currency="USD",
    )
    day = timezone.localdate() - timedelta(days=40)
    q = f"?range=custom&date_from={day - timedelta(days=1)}&date_to={day}"
    response = owner_client.get(reverse("analytics:customers") + q)
    value = response.context["value"]
    assert value.total.ltv_by_currency(30) == {"EUR": 1300 / 2, "USD": 500 / 2}
    html = response.content.decode()
    assert "€6.50 · $2.50" in html  # 30-day value per new customer, per currency
    row = html[html.index('<th scope="row">ads</th>') :]
    row = row[: row.index("</tr>")]
    assert "€13.00" in row  # the ads customer's own value, with the downsell
    assert "€20.00 · $10.00" in row  # its spend, per currency
    assert "$9.00" not in html and "$30.00" not in html


def test_no_change_badge_across_currencies(owner_client, workspace, funnel):
    """$10 sold in the previous period and €20 now: no "▲ 100 %" comparing euros
    with dollars."""
    step = funnel.steps.get()
    _sales(workspace, funnel, step, [("order", 2000, "EUR")])
    _sales(
        workspace,
        funnel,
        step,
        [("order", 1000, "USD")],
        at=timezone.now() - timedelta(days=10),
    )
    rollups.rollups_update()
    body = owner_client.get(
        reverse("analytics:funnel", args=[funnel.pk]), {"range": "7d"}
    ).content.decode()
    kpi = body.split("<dt>Revenue</dt>", 1)[1].split("</div>", 1)[0]
    assert "€20.00" in kpi and "delta" not in kpi
