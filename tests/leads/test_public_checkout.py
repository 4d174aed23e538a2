from __future__ import annotations

import time

import pytest

from funnels.models import StepOffer
from funnels.public_forms import form_token_issue
from leads.gateways.testgateway import DECLINED_CARD, SUCCESS_CARD
from leads.models import Order, OrderItem, Payment
from tests.factories import ProductFactory, StepFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def steps(funnel, workspace, optin_step):
    order = StepFactory(funnel=funnel, slug="order", kind="order", position=1)
    upsell = StepFactory(funnel=funnel, slug="upsell", kind="upsell", position=2)
    downsell = StepFactory(funnel=funnel, slug="downsell", kind="downsell", position=3)
    thanks = StepFactory(funnel=funnel, slug="thanks", kind="thankyou", position=4)
    StepOffer.objects.create(
        workspace=workspace,
        step=order,
        product=ProductFactory(workspace=workspace, name="Guide", price_minor=700),
        bump_product=ProductFactory(workspace=workspace, name="Kit", price_minor=900),
    )
    StepOffer.objects.create(
        workspace=workspace,
        step=upsell,
        product=ProductFactory(workspace=workspace, name="Course", price_minor=9700),
    )
    StepOffer.objects.create(
        workspace=workspace,
        step=downsell,
        product=ProductFactory(workspace=workspace, name="Lite", price_minor=4700),
    )
    return {"order": order, "upsell": upsell, "downsell": downsell, "thanks": thanks}


def _token(step):
    return form_token_issue(step_id=step.pk, now=time.time() - 10)


def _buy(visitor, step, card=SUCCESS_CARD, **extra):
    data = {"email": "buyer@x.io", "card": card, "bump": "on", "_of": _token(step)}
    data.update(extra)
    return visitor.post(f"/guide/{step.slug}/order/", data)


def test_checkout_then_upsell_then_receipt(visitor, steps):
    """Pay with the bump, accept the upsell: one order, both charged, receipt shows."""
    response = _buy(visitor, steps["order"], price="1")  # a posted price is ignored
    assert response.status_code == 302
    assert response["Location"] == "/guide/upsell/"
    accept = visitor.post("/guide/upsell/accept/", {"_of": _token(steps["upsell"])})
    assert accept.status_code == 302
    again = visitor.post("/guide/upsell/accept/", {"_of": _token(steps["upsell"])})
    assert again.status_code == 302
    order = Order.objects.get()
    assert order.paid_minor == 700 + 900 + 9700
    assert OrderItem.objects.filter(kind="upsell").count() == 1
    receipt = visitor.get("/guide/thanks/receipt/").content.decode()
    assert "Course" in receipt and "$113.00" in receipt


def test_decline_goes_to_next_and_downsell_can_be_accepted(visitor, steps):
    _buy(visitor, steps["order"])
    decline = visitor.post("/guide/upsell/decline/", {})
    assert decline["Location"] == "/guide/downsell/"
    visitor.post("/guide/downsell/accept/", {})
    assert Order.objects.get().paid_minor == 1600 + 4700


def test_declined_card_shows_message_and_charges_nothing(visitor, steps):
    response = _buy(visitor, steps["order"], card=DECLINED_CARD)
    assert response.status_code == 402
    body = response.content.decode()
    assert "Your card was declined. Please use another card." in body
    assert DECLINED_CARD not in body  # the card number is never echoed back
    assert Order.objects.get().status == "failed"
    assert Payment.objects.filter(status="succeeded").count() == 0


def test_upsell_without_order_cookie_charges_nothing(visitor, steps):
    """A forged or missing order cookie cannot buy anything."""
    visitor.cookies["of_order"] = "forged"
    response = visitor.post("/guide/upsell/accept/", {})
    assert response.status_code == 409
    assert OrderItem.objects.count() == 0


def test_order_form_contact_prefill_is_this_browsers_lead_only(
    visitor, steps, workspace, other_workspace
):
    """The order form pre-fills from the lead this browser's visitor cookie left."""
    import uuid

    from analytics.services import visitor_cookie_name, visitor_cookie_value
    from leads import services

    url = "/guide/order/contact/"
    assert visitor.get(url).status_code == 204  # no cookie: nothing to say
    visitor_id = uuid.uuid4()
    services.lead_capture(
        step=steps["order"],
        data={"email": "vera@example.com", "name": "Vera Visitor"},
        nonce="prefill-1",
        visitor_id=visitor_id,
    )
    visitor.cookies[visitor_cookie_name(workspace)] = visitor_cookie_value(visitor_id)
    response = visitor.get(url)
    assert response.status_code == 200
    assert response.json() == {
        "email": "vera@example.com",
        "name": "Vera Visitor",
        "phone": "",
    }
    assert "no-store" in response["Cache-Control"]
    # Another visitor, or the same id under another workspace's cookie: nothing.
    visitor.cookies[visitor_cookie_name(workspace)] = visitor_cookie_value(uuid.uuid4())
    assert visitor.get(url).status_code == 204
    del visitor.cookies[visitor_cookie_name(workspace)]
    visitor.cookies[visitor_cookie_name(other_workspace)] = visitor_cookie_value(
        visitor_id
    )
    assert visitor.get(url).status_code == 204
    visitor.cookies[visitor_cookie_name(workspace)] = "forged"
    assert visitor.get(url).status_code == 204


def test_bump_in_another_currency_is_refused_with_a_clear_message(visitor, steps):
    """A bump repriced in another currency after the offer was set: nothing charged."""
    from funnels.models import Product

    Product.objects.filter(name="Kit").update(currency="EUR")
    response = _buy(visitor, steps["order"])
    assert response.status_code == 422
    page = response.content.decode()
    assert "priced in another currency" in page
    assert "You have not been charged." in page
    assert not Order.objects.exists() and not Payment.objects.exists()
