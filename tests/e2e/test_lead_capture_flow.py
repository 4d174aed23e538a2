"""Issue 4 end to end: a visitor opts in from an ad; the admin follows the lead
from source and journey to a CSV export and a GDPR erase."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from accounts.models import Membership
from analytics import ingest
from analytics import services as analytics
from leads.models import Lead
from pages.services import funnel_create_from_template, funnel_publish
from tests.e2e.conftest import htmx_idle, log_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def guide(owner, settings, tmp_path):
    settings.EXPORTS_ROOT = tmp_path / "exports"
    ingest.redis_reset()
    ingest.partitions_forget()
    workspace = Membership.objects.get(user=owner).workspace
    funnel = funnel_create_from_template(
        workspace=workspace, user=owner, template_key="lead-magnet", name="Guide"
    )
    funnel_publish(funnel=funnel, user=owner)
    return funnel


def _opt_in(visitor, email: str) -> None:
    visitor.get_by_label("Email").first.fill(email)
    consent = visitor.locator("input[name=consent]")
    if consent.count():
        consent.first.check()
    visitor.wait_for_timeout(2100)  # the form refuses posts faster than a human
    visitor.locator("form.of-form button[type=submit]").first.click()


def test_visitor_opts_in_admin_exports_and_erases(
    live_server, public_url, new_page, screenshot, guide, owner
):
    visitor = new_page()
    visitor.goto(
        public_url(
            guide.workspace,
            f"/{guide.slug}/?utm_source=newsletter&utm_medium=email&utm_campaign=launch",
        )
    )
    headline = visitor.locator("h1").first.inner_text()
    _opt_in(visitor, "vera@example")  # a typo the browser lets through
    alert = visitor.locator(".of-field-error")
    alert.wait_for()
    assert "valid e-mail address" in alert.inner_text()
    assert visitor.locator("h1").first.inner_text() == headline  # same page
    assert visitor.get_by_label("Email").first.input_value() == "vera@example"
    screenshot(visitor, "optin-inline-error")
    _opt_in(visitor, "vera@example.com")
    visitor.wait_for_url(re.compile(r"/thank-you/$"))
    assert "on its way" in visitor.content()
    lead = Lead.objects.get()  # committed before the visitor moved on
    assert (lead.email, lead.first_source) == ("vera@example.com", "newsletter")

    analytics.events_flush()
    admin = new_page()
    log_in(admin, live_server, owner.email)
    admin.goto(live_server.url + "/leads/")
    row = admin.locator("tr", has_text="vera@example.com")
    assert "newsletter" in row.inner_text()

    # CSV export in the background: progress, then the file.
    admin.get_by_role("button", name="Export CSV").click()
    ready = admin.get_by_role("link", name="Download CSV")
    ready.wait_for()
    assert "1 lead" in admin.locator("#export-panel").inner_text()
    screenshot(admin, "lead-export-ready")
    with admin.expect_download() as download_info:
        ready.click()
    csv_text = Path(download_info.value.path()).read_text(encoding="utf-8-sig")
    assert csv_text.splitlines()[0].startswith("E-mail")
    assert "vera@example.com" in csv_text and "newsletter" in csv_text

    # Source and journey on the lead's page.
    htmx_idle(admin)
    admin.get_by_role("link", name="vera@example.com").click()
    journey = admin.locator(".journey")
    journey.get_by_text("Opt-in", exact=True).first.wait_for()
    text = journey.inner_text()
    assert text.count("Step view") == 2  # the opt-in page and the thank-you page
    assert "Guide › Opt-in" in text and "Guide › Thank you" in text
    assert "launch" in admin.content()
    screenshot(admin, "lead-journey")

    # GDPR erase.
    admin.get_by_role("link", name="Erase…").click()
    admin.get_by_role("button", name="Erase personal data").click()
    admin.get_by_text("Personal data erased").wait_for()
    lead.refresh_from_db()
    assert lead.erased_at is not None and "vera" not in lead.email
    assert "vera@example.com" not in admin.content()
    assert lead.submissions.get().data == {}
