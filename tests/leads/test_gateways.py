"""Gateways: the built-in test gateway, and Stripe against recorded API responses."""

from __future__ import annotations

import json

import pytest

from leads.gateways import GatewayError
from leads.gateways.stripe import StripeGateway
from leads.gateways.testgateway import TestGateway
from tests.leads.stripe_replay import ReplayClient, stripe_replay, stripe_signature


def _stripe(responses) -> tuple[StripeGateway, ReplayClient]:
    return stripe_replay(responses)


def _charge(gateway, card="4242424242424242", save=True, key="order-1"):
    return gateway.charge(
        amount_minor=2700,
        currency="USD",
        payment_token=card,
        email="ann@example.com",
        description="Order 1",
        idempotency_key=key,
        save_for_later=save,
    )


def test_test_gateway_cards():
    """The test cards succeed, decline, need authentication or time out."""
    gw = TestGateway(webhook_secret="s")
    ok = _charge(gw)
    assert ok.status == "succeeded" and ok.customer and ok.payment_method == "tpm_4242"
    assert _charge(gw, key="order-1").reference == ok.reference
    assert _charge(gw, key="order-2").reference != ok.reference
    declined = _charge(gw, card="4000 0000 0000 0002")
    assert (declined.status, declined.message) == (
        "declined",
        "Your card was declined. Please use another card.",
    )
    assert _charge(gw, card="4000002500003155").status == "requires_action"
    with pytest.raises(GatewayError):
        _charge(gw, card="4000000000000119")
    upsell = gw.charge_saved(
        amount_minor=4700,
        currency="USD",
        customer=ok.customer,
        payment_method=ok.payment_method,
        description="Upsell",
        idempotency_key="u1",
    )
    assert upsell.succeeded


def test_test_gateway_webhook_signature():
    """Test-gateway webhooks verify their HMAC; a forged one is refused."""
    gw = TestGateway(webhook_secret="s")
    payload = json.dumps(
        {"id": "evt_1", "type": "payment.refunded", "reference": "tpay_x"}
    ).encode()
    event = gw.verify_webhook(payload=payload, signature=gw.sign(payload))
    assert (event.type, event.reference) == ("payment.refunded", "tpay_x")
    with pytest.raises(ValueError):
        gw.verify_webhook(payload=payload, signature="0" * 64)


def test_stripe_charge_saves_card_for_one_click():
    """A successful charge creates a customer, saves the method off-session."""
    gw, client = _stripe([(200, "customer"), (200, "intent_succeeded")])
    result = _charge(gw)
    assert result.status == "succeeded"
    assert (result.reference, result.customer, result.payment_method) == (
        "pi_3Rk2dA2eZvKYlo2C0",
        "cus_Rk2d9XyZ1",
        "pm_1Rk2dA2eZvKYlo2Cabc",
    )
    method, url, headers, body = client.calls[1]
    assert (method, url.endswith("/v1/payment_intents")) == ("post", True)
    assert body["amount"] == ["2700"] and body["currency"] == ["usd"]
    assert body["setup_future_usage"] == ["off_session"]
    assert body["customer"] == ["cus_Rk2d9XyZ1"]
    assert headers["Idempotency-Key"] == "order-1"


def test_stripe_declined_card_gives_message():
    """A card_error becomes a declined result with Stripe's message."""
    gw, _ = _stripe([(402, "card_declined")])
    result = _charge(gw, save=False)
    assert (result.status, result.message) == ("declined", "Your card was declined.")


def test_stripe_requires_action():
    gw, _ = _stripe([(200, "intent_requires_action")])
    assert _charge(gw, save=False).status == "requires_action"


def test_stripe_server_error_is_transient():
    """A Stripe 500 (after retries) is a GatewayError: the order stays pending."""
    gw, client = _stripe([(500, "api_error")] * 3)
    with pytest.raises(GatewayError):
        _charge(gw, save=False)
    assert len(client.calls) == 3  # two retries, same idempotency key
    assert {c[2]["Idempotency-Key"] for c in client.calls} == {"order-1"}


def test_stripe_one_click_and_refund():
    """Upsells charge the saved method off-session; refunds pass the amount."""
    gw, client = _stripe([(200, "intent_upsell"), (200, "refund")])
    upsell = gw.charge_saved(
        amount_minor=4700,
        currency="USD",
        customer="cus_Rk2d9XyZ1",
        payment_method="pm_1Rk2dA2eZvKYlo2Cabc",
        description="Upsell",
        idempotency_key="order-1-upsell",
    )
    assert upsell.succeeded and client.calls[0][3]["off_session"] == ["true"]
    refund = gw.refund(
        reference="pi_3Rk2dA2eZvKYlo2C0", amount_minor=1000, idempotency_key="refund-1"
    )
    assert (refund.amount_minor, refund.status) == (1000, "succeeded")


def test_stripe_webhook_signature():
    """A webhook signed with the endpoint secret parses; a wrong secret is refused."""
    gw, _ = _stripe([])
    payload = json.dumps(
        {
            "id": "evt_1",
            "object": "event",
            "type": "charge.refunded",
            "data": {
                "object": {
                    "id": "ch_1",
                    "object": "charge",
                    "payment_intent": "pi_3Rk2dA2eZvKYlo2C0",
                }
            },
        }
    ).encode()
    event = gw.verify_webhook(
        payload=payload, signature=stripe_signature(payload, "whsec_replay")
    )
    assert (event.type, event.reference) == ("charge.refunded", "pi_3Rk2dA2eZvKYlo2C0")
    assert event.kind == "payment.refunded"
    with pytest.raises(ValueError):
        gw.verify_webhook(
            payload=payload, signature=stripe_signature(payload, "whsec_other")
        )
