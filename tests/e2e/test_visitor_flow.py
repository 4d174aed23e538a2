"""A visitor goes through a published Tripwire funnel; the admin sees it all."""

from __future__ import annotations

import re

import pytest

from accounts.models import Membership
from analytics import ingest
from analytics import services as analytics
from funnels.models import Product, StepOffer
from leads.models import Lead, Order
from pages.services import funnel_create_from_template, funnel_publish

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tripwire(owner):
    ingest.redis_reset()
    ingest.partitions_forget()
    workspace = Membership.objects.get(user=owner).workspace
    funnel = funnel_create_from_template(
        workspace=workspace, user=owner, template_key="tripwire", name="Fix Funnel"
    )
    prices = {
        "order": ("Checklist", 700),
        "upsell": ("Course", 9700),
        "downsell": ("Lite", 4700),
    }
    for step in funnel.steps.all():
        if step.kind in prices:
            name, price = prices[step.kind]
            StepOffer.objects.create(
                workspace=workspace,
                step=step,
                product=Product.objects.create(
                    workspace=workspace, name=name, price_minor=price
                ),
                bump_product=Product.objects.create(
                    workspace=workspace, name="Swipe file", price_minor=900
                )
                if step.kind == "order"
                else None,
                bump_headline="Add the swipe file" if step.kind == "order" else "",
            )
    funnel_publish(funnel=funnel, user=owner)
    return funnel


def _buy(page, card):
    page.get_by_label("Full name").fill("Vera Visitor")
    page.get_by_label("Email").fill("vera@example.com")
    page.get_by_label("Card number").fill(card)
    page.wait_for_timeout(2100)  # the form refuses posts faster than a human


def test_visitor_buys_with_bump_and_upsell_admin_sees_it(
    live_server, new_page, screenshot, tripwire, owner
):
    visitor = new_page()
    visitor.goto(
        f"{live_server.url}/{tripwire.slug}/?utm_source=facebook&utm_campaign=spring"
    )
    screenshot(visitor, "visitor-optin")
    visitor.get_by_label("Email").first.fill("vera@example.com")
    consent = visitor.locator("input[name=consent]")
    if consent.count():
        consent.check()
    visitor.wait_for_timeout(2100)
    visitor.locator("form.of-form button[type=submit]").first.click()
    visitor.wait_for_url(re.compile(r"/special-offer/$"))
    assert "$7.00" in visitor.content()
    visitor.get_by_label(re.compile("Add the swipe file")).check()
    assert visitor.locator(".of-total-amount").inner_text() == "$16.00"
    _buy(visitor, "4242 4242 4242 4242")
    screenshot(visitor, "visitor-order")
    visitor.locator("form.of-order button[type=submit]").click()
    visitor.wait_for_url(re.compile(r"/upgrade/$"))
    visitor.locator(".of-upsell form").first.locator("button").click()
    visitor.wait_for_url(re.compile(r"/thank-you/$"))
    summary = visitor.frame_locator("iframe.of-receipt").locator("#order-summary")
    summary.get_by_text("Total paid").wait_for()
    assert "$113.00" in summary.inner_text()
    screenshot(visitor, "visitor-thank-you")

    order = Order.objects.get()
    assert (order.status, order.paid_minor) == ("paid", 700 + 900 + 9700)
    lead = Lead.objects.get()
    assert (lead.email, lead.first_source) == ("vera@example.com", "facebook")

    analytics.events_flush()
    admin = new_page()
    admin.goto(live_server.url + "/login/")
    admin.get_by_label("E-mail").fill(owner.email)
    admin.get_by_label("Password").fill("correct-horse-battery-staple")
    admin.get_by_role("button", name="Log in").click()
    admin.goto(live_server.url + "/leads/")
    admin.get_by_role("link", name="vera@example.com").click()
    admin.get_by_text("Opt-in</strong>", exact=False)
    page_text = admin.content()
    assert "facebook" in page_text and "$113.00" in page_text
    assert "Fix Funnel › Opt-in" in page_text
    screenshot(admin, "admin-lead")
    admin.goto(live_server.url + f"/analytics/funnels/{tripwire.pk}/")
    screenshot(admin, "admin-dashboard")
    assert "$113.00" in admin.content()


def test_declined_card_shows_the_message(live_server, new_page, tripwire):
    visitor = new_page()
    visitor.goto(f"{live_server.url}/{tripwire.slug}/special-offer/")
    _buy(visitor, "4000 0000 0000 0002")
    visitor.locator("form.of-order button[type=submit]").click()
    visitor.get_by_text("Your card was declined. Please use another card.").wait_for()
    assert Order.objects.get().status == "failed"
