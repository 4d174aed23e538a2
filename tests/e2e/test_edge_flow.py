"""Done-when for the edge: people go through a published, split-tested Tripwire
funnel served as files by nginx (the configuration the app generated), opt in and
buy; the shipper stores their views from nginx's log; the dashboard and the split
test show them."""

from __future__ import annotations

import re

import pytest

from analytics import rollups, shipper
from analytics.models import Event
from pages.models import Page
from pages.services import funnel_publish, page_for_step, variant_add
from tests.e2e.conftest import log_in
from tests.pages.test_edge import NGINX, nginx_edge  # noqa: F401  (the fixture)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed"),
]


def test_a_split_tested_funnel_served_by_nginx_shows_on_the_dashboard(
    nginx_edge,  # noqa: F811
    live_server,
    new_page,
    screenshot,
    tripwire,
    owner,
):
    optin = tripwire.steps.order_by("position").first()
    control = page_for_step(step=optin)
    challenger = variant_add(page=control)
    funnel_publish(funnel=tripwire, user=owner)
    base = f"http://{tripwire.workspace.slug}.localhost:{nginx_edge.port}"
    entry = f"{base}/{tripwire.slug}/?utm_source=newsletter"

    # Wait until nginx runs the configuration with this funnel (not the app). HEAD
    # requests are not views, so the probes count nowhere.
    def served_by_edge() -> bool:
        status, headers, _ = nginx_edge.get(
            f"/{tripwire.slug}/", f"{tripwire.workspace.slug}.localhost", method="HEAD"
        )
        return status == 200 and any(
            c.startswith("oft_") for c in headers.get_all("Set-Cookie") or []
        )

    nginx_edge.wait_reloaded(served_by_edge)

    # Two people land; both opt in; one buys (with the bump) and declines the
    # upsell and the downsell.
    ann, bob = new_page(), new_page()
    for person in (ann, bob):
        person.goto(entry)
        person.get_by_label("Email").first.wait_for()
    for person, email in ((ann, "ann@example.com"), (bob, "bob@example.com")):
        person.get_by_label("Email").first.fill(email)
        consent = person.locator("input[name=consent]")
        if consent.count():
            consent.check()
    ann.wait_for_timeout(2100)  # the forms refuse posts faster than a person
    for person in (ann, bob):
        person.locator("form.of-form button[type=submit]").first.click()
        person.wait_for_url(re.compile(r"/special-offer/$"))
    screenshot(ann, "edge-order-form")
    ann.get_by_label(re.compile("Add the swipe file")).check()
    ann.get_by_label("Full name").fill("Ann Edge")
    ann.get_by_label("Email").fill("ann@example.com")
    ann.get_by_label("Card number").fill("4242 4242 4242 4242")
    ann.wait_for_timeout(2100)
    ann.locator("form.of-order button[type=submit]").click()
    ann.wait_for_url(re.compile(r"/upgrade/$"))
    ann.locator("button.of-decline").click()
    ann.wait_for_url(re.compile(r"/special/$"))
    ann.locator("button.of-decline").click()
    ann.wait_for_url(re.compile(r"/thank-you/$"))

    # The views are lines in nginx's log (flushed each second): ship them.
    views = Event.objects.filter(kind="view").count
    for _ in range(40):
        shipper.ship_once()
        if views() >= 7:
            break
        ann.wait_for_timeout(250)
    # ann: opt-in, order form, upsell, downsell, thank-you; bob: opt-in, order form.
    assert views() == 7
    served = set(
        Event.objects.filter(kind="view", step_id=optin.pk)
        .exclude(visitor_id=None)
        .values_list("variant_id", flat=True)
    )
    assert served <= {control.pk, challenger.pk}
    # Two on the opt-in page, and the buyer became a lead on the order form too.
    assert Event.objects.filter(kind="optin").count() == 3
    assert Event.objects.filter(kind="order").count() == 1
    rollups.rollups_update()

    admin = new_page()
    log_in(admin, live_server, owner.email)
    admin.goto(f"{live_server.url}/analytics/funnels/{tripwire.pk}/")
    admin.locator("svg.chart-funnel").wait_for()
    kpis = {}
    for kpi in admin.locator("#dashboard-live .kpi").all():
        label = kpi.get_by_role("term").inner_text().strip().lower()
        kpis[label] = kpi.locator("strong").inner_text().strip()
    assert kpis["visitors"] == "2"
    assert kpis["revenue"] == "$16.00"  # $7 checklist + $9 swipe file
    row = admin.locator("table.steps tbody tr").nth(0)
    cells = [" ".join(t.split()) for t in row.locator("td").all_inner_texts()]
    assert cells[5] == "2"  # opt-ins
    screenshot(admin, "edge-dashboard")

    admin.get_by_role("link", name="Split test →").click()
    table = admin.locator("#split-results")
    table.wait_for()
    counted = 0
    for variant in Page.objects.filter(pk__in=[control.pk, challenger.pk]):
        row = table.locator(f"tr[data-variant='{variant.name}']")
        counted += int(row.locator("td").nth(1).inner_text().splitlines()[0])
    assert counted == 2
