from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from funnels.models import StepOffer
from leads import checkout
from leads.gateways.testgateway import DECLINED_CARD, SUCCESS_CARD, TIMEOUT_CARD
from leads.models import Order, OrderItem, Payment, Webhook, WebhookDelivery
from tests.factories import ProductFactory, StepFactory, offers_freeze

pytestmark = pytest.mark.django_db


@pytest.fixture
def offer_steps(funnel, workspace):
    order_step = StepFactory(
        funnel=funnel, name="Order", slug="order", kind="order", position=1
    )
    upsell = StepFactory(
        funnel=funnel, name="Upsell", slug="upsell", kind="upsell", position=2
    )
    downsell = StepFactory(
        funnel=funnel, name="Downsell", slug="downsell", kind="downsell", position=3
    )
    main = ProductFactory(workspace=workspace, name="Guide", price_minor=700)
    bump = ProductFactory(workspace=workspace, name="Checklist", price_minor=900)
    StepOffer.objects.create(
        workspace=workspace,
        step=order_step,
        product=main,
        bump_product=bump,
        bump_headline="Add the checklist",
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
    offers_freeze(funnel)
    return order_step, upsell, downsell


def _pay(step, card=SUCCESS_CARD, bump=True, nonce="n1"):
    return checkout.order_checkout(
        step=step,
        data={"email": "buyer@x.io", "first_name": "Bea"},
        payment_token=card,
        with_bump=bump,
        nonce=nonce,
    )


def test_checkout_with_bump_charges_server_price(offer_steps):
    """Main + bump are charged at the products' prices; the order is paid."""
    result = _pay(offer_steps[0])
    assert result.ok
    order = result.order
    assert (order.status, order.paid_minor, order.currency) == ("paid", 1600, "USD")
    assert [(i.kind, i.amount_minor, i.status) for i in order.items.all()] == [
        ("main", 700, "paid"),
        ("bump", 900, "paid"),
    ]
    assert order.gateway_customer.startswith("tcus_")
    assert checkout.order_totals(step=offer_steps[0], with_bump=False) == (700, "USD")


def test_replayed_checkout_charges_once(offer_steps):
    """The same form posted twice makes one order and one charge."""
    first = _pay(offer_steps[0])
    again = _pay(offer_steps[0])
    assert again.replayed and again.order.pk == first.order.pk
    assert Payment.objects.count() == 1


def test_declined_card_then_retry(offer_steps):
    """A declined card leaves a failed order with the message; a retry can pay it."""
    result = _pay(offer_steps[0], card=DECLINED_CARD)
    assert not result.ok
    assert result.message == "Your card was declined. Please use another card."
    assert result.order.status == "failed" and result.order.paid_minor == 0
    retry = _pay(offer_steps[0], card=SUCCESS_CARD)
    assert retry.ok and retry.order.pk == result.order.pk
    assert retry.order.paid_minor == 1600
    assert Payment.objects.filter(status="succeeded").count() == 1


def test_timeout_leaves_pending_then_reconciled(offer_steps):
    """A gateway timeout keeps the order pending; the reconciler settles it."""
    result = _pay(offer_steps[0], card=TIMEOUT_CARD)
    assert not result.ok and result.order.status == "pending"
    Payment.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    assert checkout.orders_reconcile() == 1
    payment = Payment.objects.get()
    assert payment.status == "declined"


def test_upsell_accept_once(offer_steps):
    """Accepting the upsell twice (double click) charges once."""
    order = _pay(offer_steps[0]).order
    first = checkout.upsell_accept(order=order, step=offer_steps[1])
    second = checkout.upsell_accept(order=order, step=offer_steps[1])
    assert first.ok and second.ok and first.item.pk == second.item.pk
    order.refresh_from_db()
    assert order.paid_minor == 1600 + 9700
    assert OrderItem.objects.filter(kind="upsell").count() == 1


def test_downsell_accept(offer_steps):
    order = _pay(offer_steps[0], bump=False).order
    result = checkout.upsell_accept(order=order, step=offer_steps[2])
    assert result.ok and result.item.kind == "downsell"
    order.refresh_from_db()
    assert order.paid_minor == 700 + 4700


def test_upsell_needs_a_paid_order(offer_steps):
    order = _pay(offer_steps[0], card=DECLINED_CARD).order
    result = checkout.upsell_accept(order=order, step=offer_steps[1])
    assert not result.ok
    assert OrderItem.objects.filter(kind="upsell").count() == 0


def test_currency_mismatch_refused(offer_steps, workspace):
    """A bump priced in another currency is refused before anything is charged."""
    offer = StepOffer.objects.get(step=offer_steps[0])
    offer.bump_product.currency = "EUR"
    offer.bump_product.save()
    with pytest.raises(ValidationError):
        _pay(offer_steps[0])
    assert Order.objects.count() == 0 and Payment.objects.count() == 0


def test_partial_then_full_refund(offer_steps, workspace):
    """Refunds go through the gateway and can't exceed what was paid."""
    order = _pay(offer_steps[0]).order
    checkout.upsell_accept(order=order, step=offer_steps[1])
    order.refresh_from_db()
    checkout.order_refund(workspace=workspace, order=order, amount_minor=10000)
    order.refresh_from_db()
    assert (order.refunded_minor, order.status) == (10000, "partially_refunded")
    with pytest.raises(ValidationError):
        checkout.order_refund(workspace=workspace, order=order, amount_minor=1301)
    checkout.order_refund(workspace=workspace, order=order, amount_minor=1300)
    order.refresh_from_db()
    assert (order.refunded_minor, order.status) == (11300, "refunded")


def test_abandoned_checkout_fires_once(offer_steps, workspace):
    Webhook.objects.create(
        workspace=workspace, url="http://127.0.0.1:9/", events=["checkout.abandoned"]
    )
    _pay(offer_steps[0], card=DECLINED_CARD)
    Order.objects.update(created_at=timezone.now() - timedelta(hours=1))
    assert checkout.checkouts_mark_abandoned() == 1
    assert checkout.checkouts_mark_abandoned() == 0
    assert WebhookDelivery.objects.filter(event="checkout.abandoned").count() == 1
