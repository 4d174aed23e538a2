"""Checkout with PAYMENT_GATEWAY=stripe: Stripe.js sends a PaymentMethod id, never a
card; 3-D Secure is finished in the browser and verified with Stripe by the server.

Stripe's API answers come from recorded responses (tests/leads/recordings).
"""

from __future__ import annotations

import time

import pytest
from django.core.exceptions import ValidationError

from funnels.models import StepOffer
from funnels.public_forms import form_token_issue
from leads import checkout, gateways
from leads.models import Order
from pages.services import funnel_create_from_template, funnel_publish
from tests.factories import ProductFactory, StepFactory, offers_fill, offers_freeze
from tests.leads.stripe_replay import stripe_replay

pytestmark = pytest.mark.django_db

PM = "pm_1Rk2dA2eZvKYlo2Cabc"


@pytest.fixture
def stripe_mode(settings, monkeypatch):
    settings.PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_51Replay"

    def use(responses):
        gateway, client = stripe_replay(responses)
        monkeypatch.setattr(gateways, "get_gateway", lambda name=None: gateway)
        return client

    return use


@pytest.fixture
def steps(funnel, workspace, optin_step):
    order = StepFactory(funnel=funnel, slug="order", kind="order", position=1)
    upsell = StepFactory(funnel=funnel, slug="upsell", kind="upsell", position=2)
    thanks = StepFactory(funnel=funnel, slug="thanks", kind="thankyou", position=3)
    StepOffer.objects.create(
        workspace=workspace,
        step=order,
        product=ProductFactory(workspace=workspace, name="Guide", price_minor=700),
        bump_product=ProductFactory(workspace=workspace, name="Kit", price_minor=900),
    )
    StepOffer.objects.create(
        workspace=workspace,
        step=upsell,
        product=ProductFactory(workspace=workspace, name="Course", price_minor=4700),
    )
    offers_freeze(funnel)
    return {"order": order, "upsell": upsell, "thanks": thanks}


def test_payment_method_is_charged_and_saved_for_one_click(stripe_mode, steps):
    """The PaymentIntent is confirmed server-side with setup_future_usage, and the
    upsell charges the saved method off-session."""
    http = stripe_mode([(200, "customer"), (200, "intent_succeeded")])
    result = checkout.order_checkout(
        step=steps["order"],
        data={"email": "ann@example.com"},
        payment_token=PM,
        with_bump=True,
        nonce="s1",
    )
    assert result.ok
    order = result.order
    assert (order.status, order.paid_minor, order.gateway) == ("paid", 1600, "stripe")
    assert (order.gateway_customer, order.gateway_payment_method) == (
        "cus_Rk2d9XyZ1",
        PM,
    )
    _, url, headers, body = http.calls[1]
    assert url.endswith("/v1/payment_intents")
    assert body["payment_method"] == [PM]
    assert body["amount"] == ["1600"] and body["confirm"] == ["true"]
    assert body["setup_future_usage"] == ["off_session"]
    assert headers["Idempotency-Key"] == f"{order.public_id}:checkout"

    http.responses.append((200, "intent_upsell"))
    upsell = checkout.upsell_accept(order=order, step=steps["upsell"])
    assert upsell.ok
    _, _, _, body = http.calls[2]
    assert (body["payment_method"], body["customer"], body["off_session"]) == (
        [PM],
        ["cus_Rk2d9XyZ1"],
        ["true"],
    )
    order.refresh_from_db()
    assert order.paid_minor == 1600 + 4700


def test_raw_card_number_is_refused_and_never_sent(stripe_mode, steps):
    http = stripe_mode([])
    with pytest.raises(ValidationError) as err:
        checkout.order_checkout(
            step=steps["order"],
            data={"email": "ann@example.com"},
            payment_token="4242 4242 4242 4242",
            with_bump=False,
            nonce="s2",
        )
    assert "secure card field" in err.value.message_dict["card"][0]
    assert http.calls == [] and not Order.objects.exists()


def _token(step):
    return form_token_issue(step_id=step.pk, now=time.time() - 10)


def test_3d_secure_is_confirmed_with_stripe_before_the_order_is_paid(
    visitor, stripe_mode, steps
):
    http = stripe_mode([(200, "customer"), (200, "intent_requires_action_1600")])
    response = visitor.post(
        "/guide/order/order/",
        {
            "email": "ann@example.com",
            "payment_method": PM,
            "bump": "on",
            "_of": _token(steps["order"]),
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Confirm your payment" in page
    assert 'data-client-secret="pi_3Rk2dB2eZvKYlo2C1_secret_Zq8wLbT1x"' in page
    assert "https://js.stripe.com/v3/" in page
    assert Order.objects.get().paid_minor == 0

    # The browser tells us it is done; only Stripe's answer counts.
    http.responses.append((200, "intent_authenticated"))
    confirm = visitor.post("/guide/order/order/confirm/")
    assert (confirm.status_code, confirm["Location"]) == (302, "/guide/upsell/")
    method, url, _, _ = http.calls[-1]
    assert method == "get" and url.endswith("/v1/payment_intents/pi_3Rk2dB2eZvKYlo2C1")
    order = Order.objects.get()
    assert (order.status, order.paid_minor) == ("paid", 1600)
    # A reload of the confirmation asks Stripe nothing more and charges nothing.
    calls = len(http.calls)
    again = visitor.post("/guide/order/order/confirm/")
    assert again.status_code == 302 and len(http.calls) == calls
    assert Order.objects.get().paid_minor == 1600


def test_3d_secure_still_pending_is_not_paid(visitor, stripe_mode, steps):
    http = stripe_mode([(200, "customer"), (200, "intent_requires_action_1600")])
    visitor.post(
        "/guide/order/order/",
        {
            "email": "ann@example.com",
            "payment_method": PM,
            "bump": "on",
            "_of": _token(steps["order"]),
        },
    )
    http.responses.append((200, "intent_requires_action_1600"))
    confirm = visitor.post("/guide/order/order/confirm/")
    assert confirm.status_code == 402
    assert "Your bank has not confirmed this payment yet." in confirm.content.decode()
    assert Order.objects.get().paid_minor == 0


def _order_post(visitor, steps, token: str, pm: str = PM):
    return visitor.post(
        "/guide/order/order/",
        {"email": "ann@example.com", "payment_method": pm, "bump": "on", "_of": token},
    )


def test_retry_after_3d_secure_cancels_the_waiting_payment_first(
    visitor, stripe_mode, steps
):
    """The bank's check is left open and the visitor retries with another card:
    the waiting PaymentIntent is cancelled at Stripe before the new one is made,
    so finishing the old check later cannot charge a second time."""
    http = stripe_mode([(200, "customer"), (200, "intent_requires_action_1600")])
    token = _token(steps["order"])
    assert _order_post(visitor, steps, token).status_code == 200
    http.responses += [
        (200, "intent_canceled_1600"),
        (200, "customer"),
        (200, "intent_succeeded"),
    ]
    retry = _order_post(visitor, steps, token, pm="pm_1Rk2dA2eZvKYlo2Cnew")
    assert (retry.status_code, retry["Location"]) == (302, "/guide/upsell/")
    method, url, _, body = http.calls[2]
    assert (method, url.rsplit("/v1/", 1)[1]) == (
        "post",
        "payment_intents/pi_3Rk2dB2eZvKYlo2C1/cancel",
    )
    assert body["cancellation_reason"] == ["abandoned"]
    order = Order.objects.get()
    assert http.calls[4][2]["Idempotency-Key"] == f"{order.public_id}:checkout:2"
    assert list(
        order.payments.order_by("attempt").values_list("status", "message")
    ) == [
        ("declined", checkout.checkout.SUPERSEDED),
        ("succeeded", ""),
    ]
    assert (order.status, order.paid_minor) == ("paid", 1600)


def test_retry_after_3d_secure_passed_at_the_bank_is_not_charged_again(
    visitor, stripe_mode, steps
):
    """The bank's check went through just before the retry: Stripe refuses to
    cancel, the first payment is the order's, and no second charge is made."""
    http = stripe_mode([(200, "customer"), (200, "intent_requires_action_1600")])
    token = _token(steps["order"])
    _order_post(visitor, steps, token)
    http.responses += [(400, "cancel_unexpected_state"), (200, "intent_authenticated")]
    retry = _order_post(visitor, steps, token, pm="pm_1Rk2dA2eZvKYlo2Cnew")
    assert (retry.status_code, retry["Location"]) == (302, "/guide/upsell/")
    assert len(http.calls) == 4 and http.calls[3][0] == "get"
    order = Order.objects.get()
    assert list(order.payments.values_list("attempt", "status")) == [(1, "succeeded")]
    assert (order.status, order.paid_minor) == ("paid", 1600)


def test_retry_when_stripe_cannot_cancel_makes_no_new_charge(
    visitor, stripe_mode, steps
):
    """Stripe does not answer the cancel: no second payment is made while the
    first could still be confirmed; the visitor is told to try again."""
    http = stripe_mode([(200, "customer"), (200, "intent_requires_action_1600")])
    token = _token(steps["order"])
    _order_post(visitor, steps, token)
    http.responses += [(500, "api_error")] * 3
    retry = _order_post(visitor, steps, token, pm="pm_1Rk2dA2eZvKYlo2Cnew")
    assert retry.status_code == 402
    assert "could not cancel it just now" in retry.content.decode()
    order = Order.objects.get()
    assert list(order.payments.values_list("status", flat=True)) == ["requires_action"]
    made = [url for _, url, _, _ in http.calls[2:] if url.endswith("/payment_intents")]
    assert made == []


def test_confirm_without_an_order_cookie_is_refused(visitor, stripe_mode, steps):
    stripe_mode([])
    response = visitor.post("/guide/order/order/confirm/")
    assert response.status_code == 409
    assert "could not find your order" in response.content.decode()


def test_public_post_of_a_raw_card_in_stripe_mode_is_refused(
    visitor, stripe_mode, steps
):
    stripe_mode([])
    response = visitor.post(
        "/guide/order/order/",
        {
            "email": "ann@example.com",
            "card": "4242424242424242",
            "_of": _token(steps["order"]),
        },
    )
    assert response.status_code == 422
    assert "4242424242424242" not in response.content.decode()
    assert not Order.objects.exists()


@pytest.mark.parametrize("gateway", ["test", "stripe"])
def test_published_order_form_collects_the_card_the_right_way(
    visitor, settings, owner, workspace, gateway
):
    """Stripe: Stripe's card iframe and no card input of ours. Test: fully offline."""
    settings.PAYMENT_GATEWAY = gateway
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_51Replay"
    funnel = funnel_create_from_template(
        workspace=workspace, user=owner, template_key="tripwire", name="Trip"
    )
    order_step = funnel.steps.get(kind="order")
    StepOffer.objects.create(
        workspace=workspace,
        step=order_step,
        product=ProductFactory(workspace=workspace, price_minor=700),
    )
    offers_fill(funnel)
    funnel_publish(funnel=funnel, user=owner)
    html = visitor.get(f"/{funnel.slug}/{order_step.slug}/").content.decode()
    if gateway == "stripe":
        assert 'data-stripe-key="pk_test_51Replay"' in html
        assert "https://js.stripe.com/v3/" in html and "stripe-checkout.js" in html
        assert 'name="card"' not in html and 'name="cvc"' not in html
        assert 'name="payment_method"' in html
    else:
        assert "stripe" not in html.lower()
        assert 'name="card"' in html
