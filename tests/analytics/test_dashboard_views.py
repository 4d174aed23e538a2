from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from analytics import ingest
from analytics.models import AdSpend, Visitor
from tests.factories import FunnelFactory, StepFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tracked_funnel(workspace):
    """Three visitors today: all view opt-in, two opt in, one buys for $27."""
    ingest.partitions_forget()
    funnel = FunnelFactory(workspace=workspace, name="Guide funnel")
    optin = StepFactory(funnel=funnel, name="Get the guide", kind="optin", position=0)
    order = StepFactory(funnel=funnel, name="Order", kind="order", position=1)
    now = timezone.now() - timedelta(minutes=5)
    lines = []
    for i in range(3):
        v = uuid.uuid4()
        Visitor.objects.create(
            workspace=workspace, public_id=v, utm_source="facebook" if i else ""
        )
        kinds = [(optin, "view")]
        if i:
            kinds += [(optin, "optin"), (order, "view")]
        if i == 2:
            kinds += [(order, "order")]
        for step, kind in kinds:
            lines.append(
                ingest.event_line(
                    event_id=uuid.uuid4(),
                    workspace_id=workspace.pk,
                    funnel_id=funnel.pk,
                    step_id=step.pk,
                    visitor_id=v,
                    kind=kind,
                    page_version_id=None,
                    variant_id=None,
                    amount_minor=2700 if kind == "order" else None,
                    currency="USD",
                    properties=None,
                    occurred_at=now,
                    received_at=now,
                )
            )
    ingest.lines_write(lines, [])
    return funnel


def test_dashboard_shows_exact_numbers(owner_client, tracked_funnel):
    """The dashboard folds the fresh tail in and shows the exact per-step numbers."""
    response = owner_client.get(reverse("analytics:funnel", args=[tracked_funnel.pk]))
    assert response.status_code == 200
    steps = response.context["report"].steps
    assert [(s.unique_views, s.optins, s.orders) for s in steps] == [
        (3, 2, 0),
        (2, 0, 1),
    ]
    totals = response.context["report"].totals
    assert (totals.entered, totals.revenue_minor) == (3, 2700)
    assert totals.overall_conversion == pytest.approx(1 / 3)
    body = response.content.decode()
    assert "33.3 %" in body and "$27.00" in body and "<svg" in body


def test_dashboard_fragment_and_filters(owner_client, tracked_funnel):
    url = reverse("analytics:funnel", args=[tracked_funnel.pk])
    fragment = owner_client.get(
        url,
        {"source": "facebook"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="dashboard-live",
    )
    body = fragment.content.decode()
    assert body.lstrip().startswith('<div id="dashboard-live"') and "<html" not in body
    assert "<dt>Visitors</dt><dd><strong>2</strong>" in body
    reversed_range = owner_client.get(
        url, {"range": "custom", "date_from": "2026-05-10", "date_to": "2026-05-01"}
    )
    assert "they were swapped" in reversed_range.content.decode()


def test_overview_and_csv(owner_client, tracked_funnel, workspace):
    page = owner_client.get(reverse("analytics:overview")).content.decode()
    assert "Guide funnel" in page and "$27.00" in page
    csv = owner_client.get(
        reverse("analytics:funnel_export", args=[tracked_funnel.pk, "steps"])
    ).content.decode()
    assert csv.splitlines()[1].startswith("Get the guide,optin,3,3,")
    AdSpend.objects.create(
        workspace=workspace,
        source="facebook",
        date_from=timezone.localdate() - timedelta(days=3),
        date_to=timezone.localdate(),
        amount_minor=1000,
    )
    response = owner_client.get(reverse("analytics:funnel", args=[tracked_funnel.pk]))
    spend = response.context["spend"]
    assert spend == [
        {
            "source": "facebook",
            "spend": {"USD": 1000},
            "buyers": 1,
            "revenue": {"USD": 2700},
            "cac": {"USD": 1000.0},
            "roas": {"USD": 2.7},
        }
    ]
    # One currency looks as before: plain amounts and ratio.
    table = response.content.decode().split("Ad spend", 1)[1].split("</table>")[0]
    assert '<td>facebook</td><td class="right">$10.00</td>' in table
    assert "$27.00" in table and "2.7×" in table and "USD" not in table


def test_stranger_cannot_see_funnel_dashboard(client, stranger, tracked_funnel):
    client.force_login(stranger)
    url = reverse("analytics:funnel", args=[tracked_funnel.pk])
    assert client.get(url).status_code == 404


def test_ad_spend_csv_upload(owner_client, workspace):
    from django.core.files.uploadedfile import SimpleUploadedFile

    good = SimpleUploadedFile(
        "s.csv",
        b"source,date_from,date_to,amount,currency\nfb,2026-01-01,2026-01-31,250,USD\n",
    )
    owner_client.post(reverse("analytics:ad_spend"), {"csv_file": good})
    assert AdSpend.objects.get().amount_minor == 25000
    bad = SimpleUploadedFile("s.csv", b"source,date_from,date_to,amount\nfb,x,y,1\n")
    response = owner_client.post(
        reverse("analytics:ad_spend"), {"csv_file": bad}, follow=True
    )
    assert "Line 2:" in response.content.decode()
    assert AdSpend.objects.count() == 1


def test_ad_spend_delete_is_audited(owner_client, owner, workspace, other_workspace):
    """Removing ad spend (CAC and ROAS change with it) is in the audit log; a
    stranger's row is a 404 and stays."""
    from datetime import date

    from accounts.models import AuditEntry

    mine = AdSpend.objects.create(
        workspace=workspace,
        source="fb",
        date_from=date(2026, 1, 1),
        date_to=date(2026, 1, 31),
        amount_minor=25000,
    )
    theirs = AdSpend.objects.create(
        workspace=other_workspace,
        source="fb",
        date_from=date(2026, 1, 1),
        date_to=date(2026, 1, 31),
        amount_minor=100,
    )
    url = "analytics:ad_spend_delete"
    assert owner_client.post(reverse(url, args=[theirs.pk])).status_code == 404
    assert owner_client.post(reverse(url, args=[mine.pk])).status_code == 302
    assert list(AdSpend.objects.values_list("pk", flat=True)) == [theirs.pk]
    entry = AuditEntry.objects.get(workspace=workspace)
    assert (entry.action, entry.actor_label) == ("ad_spend.delete", owner.email)
    assert entry.changes["before"]["amount_minor"] == 25000
    assert entry.changes["before"]["source"] == "fb"


def test_delta_badge():
    from analytics.templatetags.report import delta

    assert delta(120, 100) == '<span class="delta up">▲ 20.0 %</span>'
    assert delta(0.5, 1.0) == '<span class="delta down">▼ 50.0 %</span>'
    assert delta(None, 1) == ""


def test_absurd_and_invalid_ranges_get_clear_notes(owner_client, tracked_funnel):
    """Years 1 to 9999 are pulled into the data range; a bad date is named."""
    url = reverse("analytics:funnel", args=[tracked_funnel.pk])
    response = owner_client.get(
        url, {"range": "custom", "date_from": "0001-01-01", "date_to": "9999-12-31"}
    )
    assert response.status_code == 200
    filters = response.context["filters"]
    assert filters.date_from.year >= 2000
    assert filters.date_to <= timezone.localdate() + timedelta(days=366)
    assert "the range was moved into them" in response.content.decode()
    response = owner_client.get(
        url, {"range": "custom", "date_from": "2026-13-45", "source": "x" * 300}
    )
    assert response.status_code == 200
    notes = response.context["notes"]
    assert (
        "“2026-13-45” is not a valid start date (use YYYY-MM-DD); it was ignored."
        in notes
    )
    assert any("is not a valid source (at most 200 characters)" in n for n in notes)


def test_numbers_drill_down_to_their_leads_and_orders(owner_client, tracked_funnel):
    """Opt-ins link to the step's leads (same period and source), orders to the
    funnel's orders (same period); filters a list cannot apply give no link."""
    url = reverse("analytics:funnel", args=[tracked_funnel.pk])
    today = timezone.localdate()
    optin = tracked_funnel.steps.order_by("position").first()
    period = (
        f"date_from={today - timedelta(days=29):%Y-%m-%d}&amp;date_to={today:%Y-%m-%d}"
    )
    body = owner_client.get(url).content.decode()
    assert f'href="/leads/?step={optin.pk}&amp;{period}"' in body
    assert f'href="/orders/?funnel={tracked_funnel.pk}&amp;{period}"' in body
    body = owner_client.get(url, {"source": "facebook"}).content.decode()
    assert f'href="/leads/?step={optin.pk}&amp;{period}&amp;source=facebook"' in body
    assert "/orders/?funnel=" not in body  # the order list has no source filter
    body = owner_client.get(url, {"campaign": "spring"}).content.decode()
    assert "/leads/?step=" not in body


def test_steps_after_a_downsell_compare_with_the_upsell(workspace):
    """A downsell and the step after it are measured against the upsell whose
    decline branch the downsell is, so no conversion exceeds 100 %."""
    from funnels import paths

    funnel = FunnelFactory(workspace=workspace)
    kinds = ["order", "upsell", "downsell", "thankyou"]
    order, upsell, downsell, thanks = (
        StepFactory(funnel=funnel, kind=k, position=i) for i, k in enumerate(kinds)
    )
    upsell.decline_target, upsell.accept_target = downsell, thanks
    downsell.decline_target = downsell.accept_target = thanks
    upsell.save()
    downsell.save()
    steps = [order, upsell, downsell, thanks]
    answers = paths.funnel_paths(funnel_id=funnel.pk)
    parents = [answers.parent(s) for s in steps]
    assert parents == [None, order, upsell, upsell]
