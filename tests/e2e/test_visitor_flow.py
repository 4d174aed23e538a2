"""A visitor goes through a published Tripwire funnel; the admin sees it all."""

from __future__ import annotations

import re

import pytest

from analytics import services as analytics
from leads.models import Lead, Order
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)


def _buy(page, card, email="vera@example.com", name="Vera Visitor"):
    page.get_by_label("Full name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Card number").fill(card)
    page.wait_for_timeout(2100)  # the form refuses posts faster than a human


def _optin(visitor, public_url, funnel, email, query=""):
    visitor.goto(public_url(funnel.workspace, f"/{funnel.slug}/{query}"))
    visitor.get_by_label("Email").first.fill(email)
    consent = visitor.locator("input[name=consent]")
    if consent.count():
        consent.check()
    visitor.wait_for_timeout(2100)
    visitor.locator("form.of-form button[type=submit]").first.click()
    visitor.wait_for_url(re.compile(r"/special-offer/$"))


def _admin(new_page, live_server, owner):
    admin = new_page()
    log_in(admin, live_server, owner.email)
    return admin


def _check_order_in_admin(admin, live_server, email, total, items, status):
    """The orders list, the order page and the lead page agree on this order."""
    admin.goto(live_server.url + "/orders/")
    row = admin.locator("tbody tr", has_text=email)
    assert row.count() == 1
    text = row.inner_text()
    assert total in text and status in text, text
    for name in items:
        assert name in text, (name, text)
    row.locator("a").first.click()
    admin.wait_for_url(re.compile(r"/orders/\d+/$"))
    net = admin.locator("tfoot tr", has_text="Net").inner_text()
    assert total in net, net
    body = admin.locator("table tbody").first.inner_text()
    for name, amount in items.items():
        assert re.search(rf"{re.escape(name)}.*{re.escape(amount)}", body), body
    detail_url = admin.url
    admin.get_by_role("link", name=email).click()
    admin.wait_for_url(re.compile(r"/leads/\d+/$"))
    orders = admin.locator("section.card", has_text="Orders").last.inner_text()
    assert total in orders and status in orders, orders
    return detail_url


def test_visitor_buys_with_bump_and_upsell_admin_sees_it(
    live_server, public_url, new_page, screenshot, tripwire, owner
):
    visitor = new_page()
    visitor.goto(
        public_url(
            tripwire.workspace,
            f"/{tripwire.slug}/?utm_source=facebook&utm_campaign=spring",
        )
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
    admin = _admin(new_page, live_server, owner)
    _check_order_in_admin(
        admin,
        live_server,
        "vera@example.com",
        "$113.00",
        {"Checklist": "$7.00", "Swipe file": "$9.00", "Course": "$97.00"},
        "Paid",
    )
    screenshot(admin, "admin-lead")
    page_text = admin.content()
    assert "facebook" in page_text and "$113.00" in page_text
    assert "Fix Funnel › Opt-in" in page_text
    # The journey shows the purchases with their amounts.
    journey = admin.locator("section.card", has_text="Journey").inner_text()
    assert "$7.00" in journey and "$9.00" in journey and "$97.00" in journey
    admin.goto(live_server.url + f"/analytics/funnels/{tripwire.pk}/")
    screenshot(admin, "admin-dashboard")
    assert "$113.00" in admin.content()


def test_second_run_declines_upsell_accepts_downsell_then_partial_refund(
    live_server, public_url, new_page, screenshot, tripwire, owner
):
    """Opt in, the order form knows the e-mail, pay without the bump, decline the
    upsell, accept the downsell (twice: charged once); admin refunds part of it."""
    visitor = new_page()
    _optin(visitor, public_url, tripwire, "wes@example.com")
    email = visitor.get_by_label("Email")
    visitor.wait_for_function(
        "() => document.querySelector('form.of-order input[name=email]').value"
    )
    assert email.input_value() == "wes@example.com"  # pre-filled: already a lead
    bump = visitor.get_by_label(re.compile("Add the swipe file"))
    bump.check()
    assert visitor.locator(".of-total-amount").inner_text() == "$16.00"
    bump.uncheck()
    assert visitor.locator(".of-total-amount").inner_text() == "$7.00"
    visitor.get_by_label("Full name").fill("Wes Visitor")
    visitor.get_by_label("Card number").fill("4242 4242 4242 4242")
    visitor.wait_for_timeout(2100)
    visitor.locator("form.of-order button[type=submit]").click()
    visitor.wait_for_url(re.compile(r"/upgrade/$"))
    visitor.locator(".of-decline").click()
    visitor.wait_for_url(re.compile(r"/special/$"))
    assert "$47.00" in visitor.locator(".of-upsell-price").inner_text()
    screenshot(visitor, "visitor-downsell")
    visitor.locator(".of-upsell form").first.locator("button").click()
    visitor.wait_for_url(re.compile(r"/thank-you/$"))
    # Back to the downsell and accept again: still charged once.
    visitor.go_back()
    visitor.wait_for_url(re.compile(r"/special/$"))
    visitor.locator(".of-upsell form").first.locator("button").click()
    visitor.wait_for_url(re.compile(r"/thank-you/$"))
    summary = visitor.frame_locator("iframe.of-receipt").locator("#order-summary")
    summary.get_by_text("Total paid").wait_for()
    text = summary.inner_text()
    assert "Checklist" in text and "Lite" in text and "$54.00" in text
    assert "Course" not in text and "Swipe file" not in text
    screenshot(visitor, "visitor-thank-you-downsell")
    order = Order.objects.get()
    assert (order.status, order.paid_minor) == ("paid", 700 + 4700)
    assert order.payments.filter(kind="charge", status="succeeded").count() == 2

    admin = _admin(new_page, live_server, owner)
    detail = _check_order_in_admin(
        admin,
        live_server,
        "wes@example.com",
        "$54.00",
        {"Checklist": "$7.00", "Lite": "$47.00"},
        "Paid",
    )
    admin.goto(detail)
    admin.on("dialog", lambda dialog: dialog.accept())
    admin.get_by_label(re.compile("Amount")).fill("99")
    admin.get_by_role("button", name="Refund").click()
    admin.get_by_text("You cannot refund more than was paid").wait_for()
    admin.get_by_label(re.compile("Amount")).fill("7.00")
    admin.get_by_role("button", name="Refund").click()
    admin.get_by_text("Refunded $7.00.").wait_for()
    assert "−$7.00" in admin.locator("tfoot").inner_text()
    assert "$47.00" in admin.locator("tfoot tr", has_text="Net").inner_text()
    screenshot(admin, "admin-order-refunded")
    admin.get_by_label(re.compile("Amount")).fill("47")
    admin.get_by_role("button", name="Refund").click()
    admin.get_by_text("Refunded $47.00.").wait_for()
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == ("refunded", 5400)
    admin.goto(live_server.url + "/orders/")
    row = admin.locator("tbody tr", has_text="wes@example.com").inner_text()
    assert "Refunded" in row and "$0.00" in row and "of $54.00" in row


def test_declined_card_shows_the_message(
    live_server, public_url, new_page, screenshot, tripwire, owner
):
    offer = public_url(tripwire.workspace, f"/{tripwire.slug}/special-offer/")
    visitor = new_page()
    visitor.goto(offer)
    _buy(visitor, "4000 0000 0000 0002", email="dora@example.com")
    visitor.locator("form.of-order button[type=submit]").click()
    visitor.get_by_text("Your card was declined. Please use another card.").wait_for()
    screenshot(visitor, "visitor-declined")
    assert Order.objects.get().status == "failed"
    # The order form is shown again with what was typed, except the card.
    assert visitor.get_by_label("Email").input_value() == "dora@example.com"
    assert visitor.get_by_label("Card number").input_value() == ""
    # Opened afresh, the form knows the visitor from the failed attempt.
    visitor.goto(offer)
    visitor.wait_for_function(
        "() => document.querySelector('form.of-order input[name=email]').value"
    )
    assert visitor.get_by_label("Email").input_value() == "dora@example.com"

    admin = _admin(new_page, live_server, owner)
    _check_order_in_admin(
        admin, live_server, "dora@example.com", "$0.00", {}, "Payment failed"
    )
