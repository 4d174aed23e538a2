"""Charges under real concurrency (threads, real PostgreSQL): one payment per
(order, step, item set), retries after a decline, double submits, upsell accepts
only on the order's own path, and pending payments that never advance as paid."""

from __future__ import annotations

import time

import pytest
from django.core import signing
from django.utils import timezone

from funnels.models import StepOffer
from funnels.public_forms import form_token_issue
from leads.gateways.testgateway import DECLINED_CARD, SUCCESS_CARD, TIMEOUT_CARD
from leads.models import Order, OrderItem, Payment
from tests.factories import FunnelFactory, ProductFactory, StepFactory
from tests.leads.concurrency import GatewayLedger, concurrently, public_client

pytestmark = pytest.mark.django_db(transaction=True)

ORDER_COOKIE = "of_order"


@pytest.fixture
def ledger(monkeypatch):
    return GatewayLedger().install(monkeypatch)


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
    return {
        "order": order,
        "upsell": upsell,
        "downsell": downsell,
        "thanks": thanks,
        "other_upsell": other_upsell,
    }


def _token(step) -> str:
    return form_token_issue(step_id=step.pk, now=time.time() - 10)


def _form(step, token: str, card: str = SUCCESS_CARD, bump: bool = False) -> dict:
    data = {"email": "buyer@x.io", "name": "Bea Buyer", "card": card, "_of": token}
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
