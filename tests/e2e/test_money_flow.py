"""Browser: what the visitor sees is what is charged, and a changed offer asks to
be published."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core.management import call_command

from funnels.models import Funnel, Product
from leads.models import Order
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)

PRICE = re.compile(r"\$(\d+(?:\.\d\d)?)")


def _cents(text: str) -> list[int]:
    return [int(Decimal(m) * 100) for m in PRICE.findall(text)]


def test_changing_an_offer_after_publishing_asks_to_republish(
    live_server, public_url, new_page, screenshot, tripwire, owner
):
    """The marketer swaps the order form's product: the live page keeps the old
    one, the app says the change is not published, one click publishes it."""
    Product.objects.create(
        workspace=tripwire.workspace, name="Planner", price_minor=1900
    )
    order_step = tripwire.steps.get(kind="order")
    admin = new_page()
    log_in(admin, live_server, owner.email)
    admin.goto(f"{live_server.url}/steps/{order_step.pk}/offer/")
    admin.get_by_label("Product").select_option(label="Planner")
    admin.get_by_role("button", name="Save offer").click()
    prompt = admin.get_by_role("status").filter(has_text="Changes not published.")
    prompt.wait_for()
    screenshot(admin, "money-offer-changed")
    visitor = new_page()
    visitor.goto(public_url(tripwire.workspace, f"/{tripwire.slug}/{order_step.slug}/"))
    assert "Checklist" in visitor.locator("form.of-order").inner_text()
    prompt.get_by_role("button", name="Publish changes now").click()
    admin.get_by_text("Published!").wait_for()
    assert admin.get_by_text("Changes not published.").count() == 0
    visitor.reload()
    order_form = visitor.locator("form.of-order").inner_text()
    assert "Planner" in order_form and "$19.00" in order_form


def test_buying_through_the_demo_funnel_charges_what_the_buttons_say(
    live_server, public_url, new_page, screenshot
):
    """The demo funnel: the prices its order form, bump and upsell buttons name
    are exactly what the visitor is charged."""
    call_command("seed_demo")
    funnel = Funnel.objects.get(name="Funnel Fix Tripwire")
    visitor = new_page()
    visitor.goto(public_url(funnel.workspace, f"/{funnel.slug}/special-offer/"))
    form = visitor.locator("form.of-order")
    heading = form.get_by_role("heading").inner_text()
    main_price = _cents(heading)[0]
    bump = form.locator("label.of-bump")
    bump_price = _cents(bump.inner_text())[0]
    bump.locator("input").check()
    assert _cents(form.locator(".of-total-amount").inner_text()) == [
        main_price + bump_price
    ]
    form.get_by_label("Full name").fill("Dee Demo")
    form.get_by_label("Email").fill("dee@example.com")
    form.get_by_label("Card number").fill("4242 4242 4242 4242")
    visitor.wait_for_timeout(2100)  # the form refuses posts faster than a human
    screenshot(visitor, "money-demo-order")
    form.get_by_role("button", name=re.compile("Complete my order")).click()
    visitor.wait_for_url(re.compile(r"/upgrade/$"))
    accept = visitor.locator(".of-upsell form").first.get_by_role("button")
    upsell_price = _cents(accept.inner_text())[0]
    screenshot(visitor, "money-demo-upsell")
    accept.click()
    visitor.wait_for_url(re.compile(r"/thank-you/$"))
    order = Order.objects.get(lead__email="dee@example.com")
    assert order.paid_minor == main_price + bump_price + upsell_price
    assert sorted(order.items.values_list("amount_minor", flat=True)) == sorted(
        [main_price, bump_price, upsell_price]
    )
