"""Signed gateway webhooks settle, fail and refund payments once, in any order."""

from __future__ import annotations

import json
import time

import pytest

from leads import checkout, gateways
from leads.gateways import get_gateway
from leads.gateways.testgateway import TIMEOUT_CARD
from leads.models import (
    GatewayEvent,
    Order,
    OrderItem,
    Payment,
    Webhook,
    WebhookDelivery,
)
from tests.factories import ProductFactory
from tests.leads.stripe_replay import stripe_replay, stripe_signature

pytestmark = pytest.mark.django_db

SECRET = "whsec_test_5up3r53cr3t"
URL = "/webhooks/stripe/"


@pytest.fixture(autouse=True)
def _stripe_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET


def _order(workspace, *, status="pending", reference="", amount=1600, n=1):
    """A Stripe checkout as order_checkout leaves it before the gateway answers."""
    from leads.models import Lead

    lead, _ = Lead.objects.get_or_create(workspace=workspace, email="buyer@x.io")
    order = Order.objects.create(
        workspace=workspace, lead=lead, currency="USD", gateway="stripe"
    )
    item = OrderItem.objects.create(
        workspace=workspace,
        order=order,
        product=ProductFactory(workspace=workspace, price_minor=amount),
        kind="main",
        name="Guide",
        amount_minor=amount,
    )
    payment = Payment.objects.create(
        workspace=workspace,
        order=order,
        kind="charge",
        idempotency_key=f"{order.public_id}:checkout",
        amount_minor=amount,
        currency="USD",
        reference=reference,
        status=status,
    )
    payment.items.set([item])
    return order, payment


def _intent(payment, *, status="succeeded", amount=None, pi=None):
    return {
        "id": pi or payment.reference or "pi_unknown",
        "object": "payment_intent",
        "amount": amount or payment.amount_minor,
        "amount_received": (amount or payment.amount_minor)
        if status == "succeeded"
        else 0,
        "currency": "usd",
        "customer": "cus_Rk2d9XyZ1",
        "payment_method": "pm_1Rk2dA2eZvKYlo2Cabc",
        "status": status,
        "metadata": {"payment_key": payment.idempotency_key},
        "last_payment_error": None
        if status == "succeeded"
        else {"message": "Your card has insufficient funds."},
    }


def _charge_obj(pi: str, *, amount=1600, refunded=0):
    return {
        "id": "ch_" + pi[3:],
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": refunded,
        "currency": "usd",
        "payment_intent": pi,
        "refunded": refunded == amount,
        "metadata": {},
    }


def _event(event_id: str, event_type: str, obj: dict) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2024-06-20",
            "created": int(time.time()),
            "type": event_type,
            "data": {"object": obj},
        }
    ).encode()


def _post(client, payload: bytes, *, secret=SECRET, signature=None, url=URL):
    sig = signature if signature is not None else stripe_signature(payload, secret)
    return client.post(
        url, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=sig
    )


def test_succeeded_settles_a_payment_left_pending_by_a_timeout(client, workspace):
    """No reference was stored (the call timed out): the metadata key finds it."""
    Webhook.objects.create(
        workspace=workspace, url="http://127.0.0.1:9/", events=["order.created"]
    )
    order, payment = _order(workspace)
    payload = _event(
        "evt_ok_1",
        "payment_intent.succeeded",
        _intent(payment, pi="pi_3Rk2dA2eZvKYlo2C0"),
    )
    response = _post(client, payload)
    assert (response.status_code, response.json()) == (
        200,
        {"event": "evt_ok_1", "outcome": "applied"},
    )
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, order.paid_minor) == ("paid", 1600)
    assert (order.gateway_customer, order.gateway_payment_method) == (
        "cus_Rk2d9XyZ1",
        "pm_1Rk2dA2eZvKYlo2Cabc",
    )
    assert (payment.status, payment.reference) == ("succeeded", "pi_3Rk2dA2eZvKYlo2C0")
    assert list(order.items.values_list("status", flat=True)) == ["paid"]
    assert WebhookDelivery.objects.filter(event="order.created").count() == 1
    record = GatewayEvent.objects.get()
    assert (record.workspace_id, record.payment_id, record.type) == (
        workspace.pk,
        payment.pk,
        "payment_intent.succeeded",
    )


def test_replayed_event_changes_nothing(client, workspace):
    """The same event id delivered twice is applied once."""
    order, payment = _order(workspace, reference="pi_3DS", status="requires_action")
    payload = _event("evt_dup", "payment_intent.succeeded", _intent(payment))
    assert _post(client, payload).json()["outcome"] == "applied"
    again = _post(client, payload)
    assert (again.status_code, again.json()["outcome"]) == (200, "applied")
    # A different event id for the same success: acknowledged, nothing to do.
    other = _event("evt_dup_2", "payment_intent.succeeded", _intent(payment))
    assert _post(client, other).json()["outcome"] == "unchanged"
    order.refresh_from_db()
    assert (order.status, order.paid_minor) == ("paid", 1600)
    assert GatewayEvent.objects.count() == 2


def test_payment_failed_fails_a_pending_payment(client, workspace):
    order, payment = _order(workspace, reference="pi_3DS_fail", status="pending")
    payload = _event(
        "evt_fail", "payment_intent.payment_failed", _intent(payment, status="failed")
    )
    assert _post(client, payload).json()["outcome"] == "applied"
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (payment.status, payment.message) == (
        "declined",
        "Your card has insufficient funds.",
    )
    assert (order.status, order.paid_minor) == ("failed", 0)
    assert order.failure_message == "Your card has insufficient funds."


def test_late_failure_does_not_undo_a_success(client, workspace):
    """Out of order: the failure of a first attempt arrives after the success."""
    order, payment = _order(workspace, reference="pi_retry")
    ok = _event("evt_b", "payment_intent.succeeded", _intent(payment))
    failed = _event(
        "evt_a", "payment_intent.payment_failed", _intent(payment, status="failed")
    )
    assert _post(client, ok).json()["outcome"] == "applied"
    assert _post(client, failed).json()["outcome"] == "unchanged"
    order.refresh_from_db()
    assert (order.status, order.paid_minor) == ("paid", 1600)
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"


def test_dashboard_refund_is_recorded_once(client, workspace):
    """A refund made in Stripe's dashboard shows on the order, once."""
    Webhook.objects.create(
        workspace=workspace, url="http://127.0.0.1:9/", events=["order.refunded"]
    )
    order, payment = _order(workspace, reference="pi_paid")
    checkout.payment_settle(
        payment=payment,
        result=checkout.ChargeResult("succeeded", reference="pi_paid"),
    )
    payload = _event("evt_r1", "charge.refunded", _charge_obj("pi_paid", refunded=600))
    assert _post(client, payload).json()["outcome"] == "applied"
    assert _post(client, payload).json()["outcome"] == "applied"  # replay
    order.refresh_from_db()
    assert (order.refunded_minor, order.status) == (600, "partially_refunded")
    refund = Payment.objects.get(kind="refund")
    assert (refund.amount_minor, refund.reference, refund.status) == (
        600,
        "pi_paid",
        "succeeded",
    )
    assert WebhookDelivery.objects.filter(event="order.refunded").count() == 1


def test_our_own_refund_is_not_counted_twice(client, workspace, monkeypatch):
    """Stripe also sends charge.refunded for refunds made from our admin."""
    order, payment = _order(workspace)
    gateway, _ = stripe_replay([(200, "refund")])
    monkeypatch.setattr(gateways, "get_gateway", lambda name=None: gateway)
    checkout.payment_settle(
        payment=payment,
        result=checkout.ChargeResult("succeeded", reference="pi_3Rk2dA2eZvKYlo2C0"),
    )
    order.refresh_from_db()
    checkout.order_refund(workspace=workspace, order=order, amount_minor=1000)
    ours = _event(
        "evt_ours",
        "charge.refunded",
        _charge_obj("pi_3Rk2dA2eZvKYlo2C0", refunded=1000),
    )
    assert _post(client, ours).json()["outcome"] == "unchanged"
    order.refresh_from_db()
    assert (order.refunded_minor, order.status) == (1000, "partially_refunded")
    # Then the rest is refunded in the dashboard: only the 600 are new.
    rest = _event(
        "evt_rest",
        "charge.refunded",
        _charge_obj("pi_3Rk2dA2eZvKYlo2C0", refunded=1600),
    )
    assert _post(client, rest).json()["outcome"] == "applied"
    order.refresh_from_db()
    assert (order.refunded_minor, order.status) == (1600, "refunded")
    assert sorted(
        Payment.objects.filter(kind="refund").values_list("amount_minor", flat=True)
    ) == [600, 1000]


def test_refund_events_out_of_order(client, workspace):
    """The later total arriving first wins; the earlier one then adds nothing."""
    order, payment = _order(workspace, reference="pi_ooo")
    checkout.payment_settle(
        payment=payment, result=checkout.ChargeResult("succeeded", reference="pi_ooo")
    )
    second = _event("evt_2", "charge.refunded", _charge_obj("pi_ooo", refunded=1600))
    first = _event("evt_1", "charge.refunded", _charge_obj("pi_ooo", refunded=500))
    assert _post(client, second).json()["outcome"] == "applied"
    assert _post(client, first).json()["outcome"] == "unchanged"
    order.refresh_from_db()
    assert (order.refunded_minor, order.status) == (1600, "refunded")


def test_refund_before_success_settles_then_refunds(client, workspace):
    """A refund proves the charge went through, even if its success is late."""
    order, payment = _order(workspace, reference="pi_early")
    refund = _event("evt_r", "charge.refunded", _charge_obj("pi_early", refunded=400))
    assert _post(client, refund).json()["outcome"] == "applied"
    order.refresh_from_db()
    assert (order.paid_minor, order.refunded_minor, order.status) == (
        1600,
        400,
        "partially_refunded",
    )
    ok = _event("evt_s", "payment_intent.succeeded", _intent(payment))
    assert _post(client, ok).json()["outcome"] == "unchanged"
    order.refresh_from_db()
    assert order.paid_minor == 1600


def test_event_updates_only_the_workspace_that_owns_the_payment(
    client, workspace, other_workspace
):
    mine, _ = _order(workspace, reference="pi_mine")
    theirs, their_payment = _order(other_workspace, reference="pi_theirs")
    payload = _event("evt_theirs", "payment_intent.succeeded", _intent(their_payment))
    assert _post(client, payload).status_code == 200
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == ("pending", "paid")
    assert GatewayEvent.objects.get().workspace_id == other_workspace.pk


@pytest.mark.parametrize(
    "case",
    ["wrong secret", "no header", "stale", "garbage header", "not json", "no object"],
)
def test_bad_requests_are_refused_with_400_and_no_change(client, workspace, case):
    order, payment = _order(workspace, reference="pi_bad")
    payload = _event("evt_bad", "payment_intent.succeeded", _intent(payment))
    kwargs: dict = {}
    if case == "wrong secret":
        kwargs["secret"] = "whsec_someone_else"
    elif case == "no header":
        kwargs["signature"] = ""
    elif case == "stale":  # Stripe's tolerance is five minutes
        kwargs["signature"] = stripe_signature(payload, SECRET, int(time.time()) - 900)
    elif case == "garbage header":
        kwargs["signature"] = "t=abc,v1=%%%"
    elif case == "not json":
        payload = b"{not json"
    elif case == "no object":
        payload = json.dumps(
            {"id": "evt_x", "type": "payment_intent.succeeded", "data": {}}
        ).encode()
    response = _post(client, payload, **kwargs)
    assert response.status_code == 400
    assert response.json()["error"]
    order.refresh_from_db()
    assert (order.status, order.paid_minor) == ("pending", 0)
    assert not GatewayEvent.objects.exists()


def test_unknown_payment_intent_is_refused_and_can_be_retried(client, workspace):
    """400 for a PaymentIntent we do not know, without remembering the event id."""
    order, payment = _order(workspace)
    payload = _event(
        "evt_unknown",
        "payment_intent.succeeded",
        {**_intent(payment, pi="pi_nobody"), "metadata": {}},
    )
    response = _post(client, payload)
    assert (response.status_code, response.json()) == (
        400,
        {"error": "No payment matches pi_nobody."},
    )
    assert not GatewayEvent.objects.exists()
    # Once the payment is known (say our own commit was late), the retry applies.
    Payment.objects.filter(pk=payment.pk).update(reference="pi_nobody")
    assert _post(client, payload).json()["outcome"] == "applied"
    order.refresh_from_db()
    assert order.status == "paid"


def test_amount_mismatch_is_refused(client, workspace):
    order, payment = _order(workspace, reference="pi_amt")
    payload = _event(
        "evt_amt", "payment_intent.succeeded", _intent(payment, amount=100)
    )
    response = _post(client, payload)
    assert response.status_code == 400
    assert "amount" in response.json()["error"]
    order.refresh_from_db()
    assert order.status == "pending"


def test_unused_event_types_are_acknowledged(client, workspace):
    payload = _event("evt_payout", "payout.paid", {"id": "po_1", "object": "payout"})
    response = _post(client, payload)
    assert (response.status_code, response.json()["outcome"]) == (200, "ignored")


def test_webhook_refuses_get_and_unconfigured_secret(client, settings):
    assert client.get(URL).status_code == 405
    settings.STRIPE_WEBHOOK_SECRET = ""
    payload = _event("evt_n", "payout.paid", {"id": "po_1", "object": "payout"})
    response = _post(client, payload)
    assert response.status_code == 400
    assert "STRIPE_WEBHOOK_SECRET" in response.json()["error"]


def test_test_gateway_webhook_end_to_end(client, settings, offer_order_step):
    """A test-gateway checkout that timed out is settled by a signed test event."""
    result = checkout.order_checkout(
        step=offer_order_step,
        data={"email": "late@x.io"},
        payment_token=TIMEOUT_CARD,
        with_bump=False,
        nonce="late-1",
    )
    assert result.order.status == "pending"
    payment = result.order.payments.get()
    gw = get_gateway("test")
    body = json.dumps(
        {
            "id": "tevt_1",
            "type": "payment.succeeded",
            "reference": "tpay_late",
            "payment_key": payment.idempotency_key,
            "data": {"amount_minor": 700, "currency": "USD"},
        }
    ).encode()
    forged = client.post(
        "/webhooks/test/",
        body,
        content_type="application/json",
        HTTP_X_TEST_SIGNATURE="0" * 64,
    )
    assert forged.status_code == 400
    response = client.post(
        "/webhooks/test/",
        body,
        content_type="application/json",
        HTTP_X_TEST_SIGNATURE=gw.sign(body),
    )
    assert (response.status_code, response.json()["outcome"]) == (200, "applied")
    order = Order.objects.get()
    assert (order.status, order.paid_minor) == ("paid", 700)
    assert order.payments.get().reference == "tpay_late"
    # The test gateway does not listen when Stripe is the configured gateway.
    settings.PAYMENT_GATEWAY = "stripe"
    assert (
        client.post(
            "/webhooks/test/",
            body,
            content_type="application/json",
            HTTP_X_TEST_SIGNATURE=gw.sign(body),
        ).status_code
        == 404
    )


@pytest.fixture
def offer_order_step(funnel, workspace):
    from funnels.models import StepOffer
    from tests.factories import StepFactory

    step = StepFactory(funnel=funnel, slug="order", kind="order", position=1)
    StepOffer.objects.create(
        workspace=workspace,
        step=step,
        product=ProductFactory(workspace=workspace, name="Guide", price_minor=700),
    )
    return step


def test_oversized_and_undecodable_bodies_are_refused(client, workspace):
    """Neither a huge body nor bytes that are not UTF-8 can cause a 500."""
    big = b"{" + b" " * (300 * 1024) + b"}"
    assert _post(client, big).status_code == 413
    junk = b"\xff\xfe\x00garbage"
    response = _post(client, junk)
    assert response.status_code == 400
    assert not GatewayEvent.objects.exists()
