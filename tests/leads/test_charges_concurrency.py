"""Charges under real concurrency (threads, real PostgreSQL): one payment per
(order, step, item set), retries after a decline, double submits, upsell accepts
only on the order's own path, and pending payments that never advance as paid."""

from __future__ import annotations

import json
import time

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from funnels.models import StepOffer
from funnels.public_forms import form_token_issue
from leads.gateways import get_gateway
from leads.gateways.testgateway import (
    AUTH_CARD,
    DECLINED_CARD,
    SUCCESS_CARD,
    TIMEOUT_CARD,
)
from leads.models import Order, OrderItem, Payment
from tests.factories import FunnelFactory, ProductFactory, StepFactory, offers_freeze
from tests.leads.concurrency import (
    GatewayLedger,
    ThreeDSBank,
    concurrently,
    public_client,
)

pytestmark = pytest.mark.django_db(transaction=True)

ORDER_COOKIE = "of_order"


@pytest.fixture
def ledger(monkeypatch):
    return GatewayLedger().install(monkeypatch)


@pytest.fixture
def bank(ledger, monkeypatch):
    return ThreeDSBank(ledger).install(monkeypatch)


@pytest.fixture
def shop(workspace):
    funnel = FunnelFactory(
        workspace=workspace, name="Guide", slug="guide", published_at=timezone.now()
    )
    StepFactory(funnel=funnel, slug="optin", kind="optin", position=0)
    order = StepFactory(funnel=funnel, slug="order", kind="order", position=1)
    upsell = StepFactory(funnel=funnel, slug="upsell", kind="upsell", position=2)
    downsell = StepFactory(funnel=funnel, slug="downsell", kind="downsell", position=3)
    thanks = StepFactory(funnel=funnel, slug="thanks", kind="thankyou", position=4)
    upsell.decline_target = downsell
    upsell.save()
    main = ProductFactory(workspace=workspace, name="Kit", price_minor=2700)
    bump = ProductFactory(workspace=workspace, name="Extra", price_minor=900)
    StepOffer.objects.create(
        workspace=workspace, step=order, product=main, bump_product=bump
    )
    for step, price in ((upsell, 9700), (downsell, 4700)):
        StepOffer.objects.create(
            workspace=workspace,
            step=step,
            product=ProductFactory(workspace=workspace, price_minor=price),
        )
    # Another funnel of the same workspace, with its own upsell.
    other = FunnelFactory(
        workspace=workspace, name="Other", slug="other", published_at=timezone.now()
    )
    other_order = StepFactory(funnel=other, slug="order", kind="order", position=0)
    other_upsell = StepFactory(funnel=other, slug="upsell", kind="upsell", position=1)
    StepOffer.objects.create(workspace=workspace, step=other_order, product=main)
    StepOffer.objects.create(
        workspace=workspace,
        step=other_upsell,
        product=ProductFactory(workspace=workspace, price_minor=19900),
    )
    offers_freeze(funnel)
    offers_freeze(other)
    return {
        "order": order,
        "upsell": upsell,
        "downsell": downsell,
        "thanks": thanks,
        "other_upsell": other_upsell,
    }


def _token(step) -> str:
    return form_token_issue(step_id=step.pk, now=time.time() - 10)


def _form(
    step,
    token: str,
    card: str = SUCCESS_CARD,
    bump: bool = False,
    email: str = "buyer@x.io",
) -> dict:
    data = {"email": email, "name": "Bea Buyer", "card": card, "_of": token}
    if bump:
        data["bump"] = "on"
    return data


def _order_cookie(order: Order) -> str:
    return signing.dumps(str(order.public_id), salt="leads.order-cookie")


def _succeeded_charges(order: Order) -> int:
    return Payment.objects.filter(
        order=order, kind="charge", status="succeeded"
    ).count()


def test_concurrent_identical_submits_charge_once_and_answer_alike(shop, ledger):
    """Five clicks of the same order form at once: one order, one charge at the
    gateway, and every click gets the same redirect (never a 500)."""
    token = _token(shop["order"])
    responses = concurrently(
        5,
        lambda i: public_client().post(
            "/guide/order/order/", _form(shop["order"], token, bump=True)
        ),
    )
    assert [r.status_code for r in responses] == [302] * 5
    assert {r["Location"] for r in responses} == {"/guide/upsell/"}
    order = Order.objects.get()
    assert (order.status, order.paid_minor) == ("paid", 3600)
    assert _succeeded_charges(order) == 1
    assert ledger.charged == 3600 and len(ledger.charges) == 1


def test_concurrent_retries_after_a_decline_charge_once(shop, ledger):
    """Declined, then three concurrent retries with a good card and the same form:
    the order is paid once (the issue saw two charges and a 500)."""
    token = _token(shop["order"])
    declined = public_client().post(
        "/guide/order/order/", _form(shop["order"], token, card=DECLINED_CARD)
    )
    assert declined.status_code == 402
    responses = concurrently(
        3,
        lambda i: public_client().post(
            "/guide/order/order/", _form(shop["order"], token)
        ),
    )
    assert [r.status_code for r in responses] == [302] * 3
    assert {r["Location"] for r in responses} == {"/guide/upsell/"}
    order = Order.objects.get()
    assert (order.status, order.paid_minor) == ("paid", 2700)
    assert _succeeded_charges(order) == 1
    assert ledger.charged == 2700


def test_sequential_retries_number_their_attempts(shop, ledger):
    """Decline, decline, pay: three attempts with three keys, one charge."""
    token = _token(shop["order"])
    client = public_client()
    for card, status in (
        (DECLINED_CARD, 402),
        (DECLINED_CARD, 402),
        (SUCCESS_CARD, 302),
    ):
        response = client.post("/guide/order/order/", _form(shop["order"], token, card))
        assert response.status_code == status
    order = Order.objects.get()
    keys = list(order.payments.order_by("pk").values_list("idempotency_key", "status"))
    assert [status for _, status in keys] == ["declined", "declined", "succeeded"]
    assert len({key for key, _ in keys}) == 3
    assert order.paid_minor == 2700 and ledger.charged == 2700
    # Posting the paid form again changes nothing and goes on as before.
    again = client.post("/guide/order/order/", _form(shop["order"], token))
    assert (again.status_code, again["Location"]) == (302, "/guide/upsell/")
    assert ledger.charged == 2700 and Payment.objects.count() == 3


def _paid_order(shop) -> tuple[Order, dict[str, str]]:
    client = public_client()
    response = client.post(
        "/guide/order/order/", _form(shop["order"], _token(shop["order"]))
    )
    assert response.status_code == 302
    order = Order.objects.get()
    return order, {ORDER_COOKIE: _order_cookie(order)}


def test_concurrent_accepts_charge_the_upsell_once(shop, ledger):
    order, cookies = _paid_order(shop)
    responses = concurrently(
        4,
        lambda i: public_client(cookies).post(
            "/guide/upsell/accept/", {"_of": _token(shop["upsell"])}
        ),
    )
    assert [r.status_code for r in responses] == [302] * 4
    assert {r["Location"] for r in responses} == {"/guide/thanks/"}
    order.refresh_from_db()
    assert order.paid_minor == 2700 + 9700
    assert OrderItem.objects.filter(order=order, kind="upsell").count() == 1
    assert ledger.charged == 2700 + 9700


def test_accept_on_the_order_step_charges_nothing(shop, ledger):
    """/accept/ posted to the order step must not charge the main product again."""
    order, cookies = _paid_order(shop)
    response = public_client(cookies).post("/guide/order/accept/", {})
    assert response.status_code == 404
    order.refresh_from_db()
    assert order.paid_minor == 2700 and ledger.charged == 2700


def test_accept_on_another_funnels_upsell_charges_nothing(shop, ledger):
    """The order cookie of one funnel cannot buy another funnel's upsell."""
    order, cookies = _paid_order(shop)
    response = public_client(cookies).post("/other/upsell/accept/", {})
    assert response.status_code == 409
    assert "not part of your order" in response.content.decode()
    order.refresh_from_db()
    assert order.paid_minor == 2700 and ledger.charged == 2700
    assert not OrderItem.objects.filter(step=shop["other_upsell"]).exists()


def test_decline_on_another_funnels_upsell_records_nothing(shop, ledger):
    """Declining another funnel's offer with this order's cookie is refused."""
    _order, cookies = _paid_order(shop)
    response = public_client(cookies).post("/other/upsell/decline/", {})
    assert response.status_code == 409
    assert "not part of your order" in response.content.decode()


def test_gateway_timeout_shows_confirming_page_and_never_advances(shop, ledger):
    """A timed-out payment is pending: the visitor is told we are confirming it,
    a re-post shows the same, and the upsell cannot be bought on it."""
    token = _token(shop["order"])
    client = public_client()
    for _ in range(2):
        response = client.post(
            "/guide/order/order/", _form(shop["order"], token, card=TIMEOUT_CARD)
        )
        assert response.status_code == 202
        body = response.content.decode()
        assert "We are confirming your payment" in body
        assert 'role="status"' in body
    order = Order.objects.get()
    assert (order.status, order.paid_minor) == ("pending", 0)
    accept = public_client({ORDER_COOKIE: _order_cookie(order)}).post(
        "/guide/upsell/accept/", {}
    )
    assert accept.status_code == 402
    assert ledger.charged == 0


def _gateway_says_succeeded(payment_key: str, reference: str) -> None:
    """The gateway's webhook after the visitor passed the bank's check."""
    body = json.dumps(
        {
            "id": f"tevt_{reference}",
            "type": "payment.succeeded",
            "reference": reference,
            "payment_key": payment_key,
            "data": {"amount_minor": 2700, "currency": "USD"},
        }
    ).encode()
    response = Client(raise_request_exception=False).post(
        "/webhooks/test/",
        body,
        content_type="application/json",
        HTTP_X_TEST_SIGNATURE=get_gateway("test").sign(body),
    )
    assert response.status_code == 200, response.content


def _authenticated(order: Order, payment: Payment, bank: ThreeDSBank) -> bool:
    """The visitor passes the bank's check for ``payment`` in a tab left open:
    the gateway says so by webhook and the browser comes back to confirm."""
    if not bank.confirm(payment.reference):
        return False
    _gateway_says_succeeded(payment.idempotency_key, payment.reference)
    public_client({ORDER_COOKIE: _order_cookie(order)}).post(
        "/guide/order/order/confirm/"
    )
    return True


def _3ds_round(shop, ledger, bank, first: str, round_: int) -> None:
    token = _token(shop["order"])
    # One buyer and address per round (the forms' rate limits).
    email, ip = f"buyer{round_}@x.io", f"192.0.2.{round_ + 1}"
    waiting = public_client().post(
        "/guide/order/order/",
        _form(shop["order"], token, card=AUTH_CARD, email=email),
        REMOTE_ADDR=ip,
    )
    assert waiting.status_code == 200
    order = Order.objects.latest("pk")
    first_attempt = order.payments.get()
    assert first_attempt.status == "requires_action"

    def retry():
        return public_client().post(
            "/guide/order/order/",
            _form(shop["order"], token, email=email),
            REMOTE_ADDR=ip,
        )

    def bank_side():
        time.sleep(0.02 * round_)  # round 0 races head on; later ones stagger
        return _authenticated(order, first_attempt, bank)

    if first == "bank":
        assert _authenticated(order, first_attempt, bank)
        response = retry()
    elif first == "retry":
        response = retry()
        assert not _authenticated(order, first_attempt, bank)
    else:
        response, _ = concurrently(2, lambda i: retry() if i == 0 else bank_side())
    assert not isinstance(response, Exception), response
    assert (response.status_code, response["Location"]) == (302, "/guide/upsell/")
    # A late confirmation of any attempt still waiting changes nothing either.
    for payment in order.payments.all():
        _authenticated(order, payment, bank)
    assert bank.waiting() == []
    order.refresh_from_db()
    assert (order.status, order.paid_minor) == ("paid", 2700)
    assert _succeeded_charges(order) == 1
    assert ledger.charged_for(str(order.public_id)) == 2700


@pytest.mark.parametrize("first", ["bank", "retry", "race"])
def test_3ds_attempt_left_pending_never_charges_twice_with_a_retry(
    shop, ledger, bank, first
):
    """A card that needs the bank's check (3-D Secure) is left waiting; the visitor
    retries the same order form with another card. Whatever comes first (the
    bank's confirmation of the first attempt, its webhook and the browser's
    return, or the retry), the order ends with exactly one succeeded charge,
    at the gateway too, and no earlier attempt is left that could still charge
    (the issue: a later success left the first attempt confirmable)."""
    for round_ in range(6 if first == "race" else 1):
        _3ds_round(shop, ledger, bank, first, round_)


def test_mixed_submits_accepts_and_refunds_balance(shop, ledger):
    """Submits, accepts and refunds racing on one order: the gateway's ledger and
    the order agree, and the order never exceeds what was bought."""
    from leads import checkout  # noqa: F401 - the package or the module

    token = _token(shop["order"])
    first = public_client().post("/guide/order/order/", _form(shop["order"], token))
    assert first.status_code == 302
    order = Order.objects.get()
    cookies = {ORDER_COOKIE: _order_cookie(order)}

    def act(i: int):
        if i % 3 == 0:
            return public_client().post(
                "/guide/order/order/", _form(shop["order"], token)
            )
        if i % 3 == 1:
            return public_client(cookies).post("/guide/upsell/accept/", {})
        return _refund(order, 1000)

    results = concurrently(9, act)
    for r in results:
        assert not isinstance(r, Exception) or _is_refusal(r), r
        if hasattr(r, "status_code"):
            assert r.status_code == 302
    order.refresh_from_db()
    assert order.paid_minor == 2700 + 9700
    assert order.refunded_minor <= order.paid_minor
    assert ledger.charged - ledger.refunded == order.paid_minor - order.refunded_minor


def _refund(order: Order, amount: int):
    from leads import checkout

    return checkout.order_refund(
        workspace=order.workspace,
        order=Order.objects.get(pk=order.pk),
        amount_minor=amount,
    )


def _is_refusal(exc: Exception) -> bool:
    from django.core.exceptions import ValidationError

    return isinstance(exc, ValidationError)


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_refunds_never_exceed_what_was_paid(shop, ledger, round_):
    """Three concurrent $10 refunds of a $10 order: one succeeds, the others are
    refused cleanly; the gateway refunded $10 once."""
    order, _ = _paid_order(shop)
    results = concurrently(3, lambda i: _refund(order, 2700))
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 2 and all(_is_refusal(r) for r in refused), results
    order.refresh_from_db()
    assert (order.paid_minor, order.refunded_minor, order.status) == (
        2700,
        2700,
        "refunded",
    )
    assert ledger.refunded == 2700
