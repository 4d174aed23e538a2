"""Revenue is summed per currency, never across currencies: rollups keep money in
its currency and dashboards show each (a one-currency workspace looks as before)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from analytics import ingest, reports, rollups
from tests.factories import FunnelFactory, StepFactory

pytestmark = pytest.mark.django_db


def _sales(workspace, funnel, step, sales: list[tuple[str, int, str]]) -> None:
    now = timezone.now() - timedelta(minutes=5)
    lines = []
    for kind, amount, currency in sales:
        lines.append(
            ingest.event_line(
                event_id=uuid.uuid4(),
                workspace_id=workspace.pk,
                funnel_id=funnel.pk,
                step_id=step.pk,
                visitor_id=uuid.uuid4(),
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
