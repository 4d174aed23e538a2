"""Variants and split-test pages: forms, messages, roles."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from pages import selectors, services
from pages.models import Page, SplitTest
from tests.pages.factories import page_with_blocks
from tests.pages.splits import event, record

pytestmark = pytest.mark.django_db


@pytest.fixture
def page(workspace):
    return page_with_blocks("headline", workspace=workspace, name="Get the guide")


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_add_variant_from_the_editor_opens_it(owner_client, page):
    """The editor shows which variant it edits; Add variant opens the copy."""
    r = owner_client.get(reverse("pages:editor", args=[page.pk]))
    html = r.content.decode()
    assert 'id="variant-bar"' in html and 'aria-current="page">Variant A' in html
    r = owner_client.post(
        reverse("pages:variant_add", args=[page.step_id]),
        {"source": page.pk, "next": "editor"},
    )
    b = Page.objects.get(step=page.step, name="Variant B")
    assert r.status_code == 302 and r["Location"] == reverse(
        "pages:editor", args=[b.pk]
    )
    html = owner_client.get(r["Location"]).content.decode()
    assert "Get the guide · <span" in html and "Variant B</span>" in html
    assert 'aria-current="page">Variant B <small>50 %</small>' in html
    # Switch back to A from the bar.
    assert f'href="{reverse("pages:editor", args=[page.pk])}"' in html


def test_fifth_variant_is_refused_with_a_message(owner_client, page):
    url = reverse("pages:variant_add", args=[page.step_id])
    for _ in range(3):
        owner_client.post(url, {"source": page.pk})
    r = owner_client.post(url, {"source": page.pk}, follow=True)
    assert "A step can have at most 4 variants." in " ".join(_messages(r))
    assert Page.objects.filter(step=page.step).count() == 4


def test_add_variant_from_the_funnel_page(owner_client, page):
    """The step row has + Variant; with two variants it also links the test."""
    detail = reverse("funnels:detail", args=[page.step.funnel_id])
    html = owner_client.get(detail).content.decode()
    assert "Add a variant of Get the guide" in html
    assert "Split test of Get the guide" not in html
    owner_client.post(
        reverse("pages:variant_add", args=[page.step_id]), {"next": "funnel"}
    )
    assert Page.objects.filter(step=page.step).count() == 2
    html = owner_client.get(detail).content.decode()
    assert reverse("pages:split_results", args=[page.step_id]) in html


def test_weights_form_normalises_and_validates(owner_client, page):
    b = services.variant_add(page=page)
    url = reverse("pages:variants", args=[page.step_id])
    r = owner_client.post(url, {f"weight-{page.pk}": "1", f"weight-{b.pk}": "3"})
    assert r.status_code == 302
    page.refresh_from_db()
    b.refresh_from_db()
    assert (page.weight, b.weight) == (1, 3)
    html = owner_client.get(url).content.decode()
    assert "25.0 %" in html and "75.0 %" in html
    r = owner_client.post(url, {f"weight-{page.pk}": "0", f"weight-{b.pk}": "0"})
    assert r.status_code == 422
    assert "At least one variant needs a weight above 0" in r.content.decode()
    r = owner_client.post(url, {f"weight-{page.pk}": "abc", f"weight-{b.pk}": "1"})
    assert r.status_code == 422
    assert "The weight of Variant A must be a whole number." in r.content.decode()
    assert 'value="abc"' in r.content.decode()  # what was typed stays in the form
    page.refresh_from_db()
    assert page.weight == 1


def test_rename_pause_resume_remove(owner_client, page):
    b = services.variant_add(page=page)
    owner_client.post(
        reverse("pages:variant_rename", args=[b.pk]), {"name": "Bold headline"}
    )
    b.refresh_from_db()
    assert b.name == "Bold headline"
    r = owner_client.post(
        reverse("pages:variant_rename", args=[b.pk]), {"name": ""}, follow=True
    )
    assert "Give the variant a name." in _messages(r)
    owner_client.post(reverse("pages:variant_state", args=[b.pk, "pause"]))
    b.refresh_from_db()
    assert b.weight == 0
    r = owner_client.post(
        reverse("pages:variant_state", args=[page.pk, "pause"]), follow=True
    )
    assert "Variant A is the only variant being served" in " ".join(_messages(r))
    r = owner_client.post(
        reverse("pages:variant_state", args=[b.pk, "explode"]), follow=True
    )
    assert "Unknown action." in _messages(r)
    owner_client.post(reverse("pages:variant_state", args=[b.pk, "resume"]))
    b.refresh_from_db()
    assert b.weight == 100
    confirm = owner_client.get(reverse("pages:variant_remove", args=[b.pk]))
    assert "Remove Bold headline?" in confirm.content.decode()
    owner_client.post(reverse("pages:variant_remove", args=[b.pk]))
    b.refresh_from_db()
    assert b.archived_at is not None
    # The removed page still opens in the editor, saying it is not served.
    html = owner_client.get(reverse("pages:editor", args=[b.pk])).content.decode()
    assert "is never served" in html
    # The step opens its live variant.
    r = owner_client.get(reverse("pages:step_edit", args=[page.step_id]))
    assert r["Location"] == reverse("pages:editor", args=[page.pk])


def _running_test(page):
    b = services.variant_add(page=page)
    services.funnel_publish(funnel=page.step.funnel, user=None)
    b.refresh_from_db()
    funnel = page.step.funnel
    at = timezone.now() + timedelta(milliseconds=10)
    events = []
    for i in range(8):
        v = uuid.uuid4()
        variant = b if i % 2 else page
        events.append(event(funnel, page.step, v, "view", at, variant_id=variant.pk))
        if i in (0, 1, 3, 5):
            events.append(event(funnel, page.step, v, "optin", at))
    record(events)
    return b


def test_results_page_shows_each_variant(owner_client, page):
    b = _running_test(page)
    r = owner_client.get(reverse("pages:split_results", args=[page.step_id]))
    assert r.status_code == 200
    rows = {row.spec.label: row for row in r.context["rows"]}
    assert (rows["Variant A"].visitors, rows["Variant A"].conversions) == (4, 1)
    assert (rows["Variant B"].visitors, rows["Variant B"].conversions) == (4, 3)
    html = r.content.decode()
    assert "Goal of this step: <strong>Opt-in</strong>" in html
    assert "25.0 %" in html and "75.0 %" in html
    assert "Keep running" in html
    assert "25.0 % · target 50.0 %" not in html and "50.0 % · target 50.0 %" in html
    assert "chart-interval" in html
    assert reverse("pages:split_declare", args=[b.pk]) in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-05-10&to=2026-05-01", "is after the end date"),
        ("from=yesterday", "“yesterday” is not a date (use YYYY-MM-DD)"),
        ("from=0001-01-01", "Dates must be between Jan 1, 2000 and"),
        ("to=9999-12-31", "Dates must be between Jan 1, 2000 and"),
    ],
)
def test_bad_date_ranges_say_so(owner_client, page, query, message):
    _running_test(page)
    url = reverse("pages:split_results", args=[page.step_id])
    r = owner_client.get(f"{url}?{query}")
    assert r.status_code == 200
    assert message in r.content.decode()
    assert sum(row.visitors for row in r.context["rows"]) == 8  # the whole test


def test_date_range_narrows_the_results(owner_client, page):
    _running_test(page)
    url = reverse("pages:split_results", args=[page.step_id])
    tomorrow = timezone.localdate() + timedelta(days=1)
    r = owner_client.get(f"{url}?from={tomorrow}")
    assert sum(row.visitors for row in r.context["rows"]) == 0
    r = owner_client.get(f"{url}?from={timezone.localdate() - timedelta(days=1)}")
    assert sum(row.visitors for row in r.context["rows"]) == 8


def test_declare_winner_flow(owner_client, page, owner):
    b = _running_test(page)
    url = reverse("pages:split_declare", args=[b.pk])
    confirm = owner_client.get(url).content.decode()
    assert "Declare Variant B the winner?" in confirm
    assert "Variant A</strong> stops being served" in confirm
    r = owner_client.post(url, follow=True)
    assert "Variant B won." in " ".join(_messages(r))
    test = SplitTest.objects.get(step=page.step)
    assert test.winner_id == b.pk and test.ended_by == owner
    html = r.content.decode()
    assert "Past tests" in html and 'class="sp-winner">Variant B<' in html
    assert selectors.step_variants(step=page.step) == [b]
    # Declaring again explains why it cannot.
    r = owner_client.post(url, follow=True)
    assert "No split test is running on this step" in " ".join(_messages(r))


def test_viewer_reads_but_cannot_change(client, viewer, page):
    b = _running_test(page)
    client.force_login(viewer)
    r = client.get(reverse("pages:split_results", args=[page.step_id]))
    assert r.status_code == 200
    assert reverse("pages:split_declare", args=[b.pk]) not in r.content.decode()
    html = client.get(reverse("pages:variants", args=[page.step_id])).content.decode()
    assert "Save weights" not in html and "Variant B" in html
    assert client.post(reverse("pages:split_declare", args=[b.pk])).status_code == 403
    assert SplitTest.objects.get(step=page.step).ended_at is None


def test_funnel_dashboard_links_the_split_test(owner_client, page):
    services.variant_add(page=page)
    r = owner_client.get(reverse("analytics:funnel", args=[page.step.funnel_id]))
    assert reverse("pages:split_results", args=[page.step_id]) in r.content.decode()


def test_revenue_per_visitor_is_shown_per_currency(owner_client, page):
    """Variant A's visitors paid €10; B's paid $20 and €4: revenue per visitor is
    €2.50 for A and €1.00 · $5.00 for B, never euros and dollars added up ("$6.00",
    the issue), in the running test and in the numbers kept when it ends."""
    b = services.variant_add(page=page)
    services.funnel_publish(funnel=page.step.funnel, user=None)
    b.refresh_from_db()
    funnel = page.step.funnel
    at = timezone.now() + timedelta(milliseconds=10)
    paid = {0: (1000, "EUR"), 1: (2000, "USD"), 3: (400, "EUR")}
    events = []
    for i in range(8):
        v = uuid.uuid4()
        variant = b if i % 2 else page
        events.append(event(funnel, page.step, v, "view", at, variant_id=variant.pk))
        if i in paid:
            amount, currency = paid[i]
            sale = event(funnel, page.step, v, "order", at)
            events.append({**sale, "amount_minor": amount, "currency": currency})
    record(events)
    url = reverse("pages:split_results", args=[page.step_id])
    r = owner_client.get(url)
    rows = {row.spec.label: row for row in r.context["rows"]}
    assert rows["Variant A"].revenue_by_currency == {"EUR": 1000}
    assert rows["Variant B"].revenue_by_currency == {"EUR": 400, "USD": 2000}
    html = r.content.decode()
    assert "€2.50" in html and "€1.00 · $5.00" in html
    assert "$6.00" not in html and "$2.50" not in html
    owner_client.post(reverse("pages:split_declare", args=[b.pk]))
    html = owner_client.get(url).content.decode()
    past = html.split("Past tests", 1)[1]
    assert "€2.50" in past and "€1.00 · $5.00" in past and "$6.00" not in past


def test_revenue_per_visitor_in_one_currency_looks_as_before(owner_client, page):
    b = services.variant_add(page=page)
    services.funnel_publish(funnel=page.step.funnel, user=None)
    b.refresh_from_db()
    funnel = page.step.funnel
    at = timezone.now() + timedelta(milliseconds=10)
    events = []
    for i in range(4):
        v = uuid.uuid4()
        variant = b if i % 2 else page
        events.append(event(funnel, page.step, v, "view", at, variant_id=variant.pk))
        if i == 1:
            events.append(event(funnel, page.step, v, "order", at))  # $27.00
    record(events)
    html = owner_client.get(
        reverse("pages:split_results", args=[page.step_id])
    ).content.decode()
    assert "$13.50" in html and "$0.00" in html and "€" not in html
