"""API: orders (list, detail, refunds through the checkout service)."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import AuditEntry
from funnels.models import StepOffer
from leads import checkout
from leads.gateways.testgateway import DECLINED_CARD, SUCCESS_CARD
from leads.models import Order, Payment
from tests.api.conftest import ApiClient, error_of, make_token
from tests.factories import FunnelFactory, ProductFactory, StepFactory, offers_freeze

pytestmark = pytest.mark.django_db


def buy(workspace, email: str, *, card: str = SUCCESS_CARD) -> Order:
    funnel = FunnelFactory(workspace=workspace, published_at=timezone.now())
    step = StepFactory(funnel=funnel, kind="order", position=0)
    main = ProductFactory(workspace=workspace, name="Guide", price_minor=700)
    bump = ProductFactory(workspace=workspace, name="Checklist", price_minor=900)
    StepOffer.objects.create(
        workspace=workspace, step=step, product=main, bump_product=bump
    )
    offers_freeze(step.funnel)
    return checkout.order_checkout(
        step=step,
        data={"email": email},
        payment_token=card,
        with_bump=True,
        nonce=uuid.uuid4().hex,
    ).order


@pytest.fixture
def order(workspace):
    return buy(workspace, "buyer@example.test")


def test_order_list_and_detail(api, workspace, other_workspace, order):
    buy(other_workspace, "theirs@example.test")
    failed = buy(workspace, "declined@example.test", card=DECLINED_CARD)
    # A declined attempt is not an order: listed only when asked for.
    body = api.get("/orders").json()
    assert [o["id"] for o in body["results"]] == [str(order.public_id)]
    assert body["next_cursor"] is None
    attempts = api.get("/orders", show="attempts").json()["results"]
    assert [o["id"] for o in attempts] == [str(failed.public_id)]
    paid = api.get("/orders", status="paid").json()["results"]
    assert [(o["lead"]["email"], o["paid_minor"]) for o in paid] == [
        ("buyer@example.test", 1600)
    ]
    first = api.get("/orders", limit=1, show="all").json()
    second = api.get("/orders", limit=1, show="all", cursor=first["next_cursor"]).json()
    assert [first["results"][0]["id"], second["results"][0]["id"]] == [
        str(failed.public_id),
        str(order.public_id),
    ]
    detail = api.get(f"/orders/{order.public_id}").json()
    assert [(i["name"], i["kind"], i["amount_minor"]) for i in detail["items"]] == [
        ("Guide", "main", 700),
        ("Checklist", "bump", 900),
    ]
    assert [(p["kind"], p["status"]) for p in detail["payments"]] == [
        ("charge", "succeeded")
    ]


def test_order_list_updated_since_sees_refunds(api, workspace, order):
    Order.objects.filter(pk=order.pk).update(
        created_at=timezone.now() - timedelta(days=2),
        paid_at=timezone.now() - timedelta(days=2),
    )
    Payment.objects.filter(order=order).update(
        updated_at=timezone.now() - timedelta(days=2)
    )
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert api.get("/orders", updated_since=since).json()["results"] == []
    api.post(f"/orders/{order.public_id}/refunds", {"amount_minor": 100})
    ids = [o["id"] for o in api.get("/orders", updated_since=since).json()["results"]]
    assert ids == [str(order.public_id)]


def test_order_list_bad_input(api):
    for query, field in (
        ({"status": "lost"}, "status"),
        ({"limit": 0}, "limit"),
        ({"cursor": "zzz"}, "cursor"),
        ({"date_from": "2026-05-02", "date_to": "2026-05-01"}, "date_to"),
    ):
        response = api.get("/orders", **query)
        assert response.status_code == 400, query
        assert field in error_of(response)["fields"], query


def test_refund_calls_the_checkout_service_and_is_audited(api, workspace, order):
    response = api.post(f"/orders/{order.public_id}/refunds", {"amount_minor": 550})
    assert response.status_code == 201
    body = response.json()
    assert (body["refunded_minor"], body["status"], body["refundable_minor"]) == (
        550,
        "partially_refunded",
        1050,
    )
    assert [(p["kind"], p["amount_minor"]) for p in body["payments"]] == [
        ("charge", 1600),
        ("refund", 550),
    ]
    entry = AuditEntry.objects.get(workspace=workspace, action="order.refund")
    assert entry.target_id == str(order.public_id)
    assert entry.changes == {
        "before": {"status": "paid", "refunded_minor": 0},
        "after": {
            "status": "partially_refunded",
            "refunded_minor": 550,
            "refund_minor": 550,
            "currency": "USD",
        },
    }
    assert entry.actor_token is not None


def test_refund_bad_input_changes_nothing(api, workspace, order):
    for body, field in (
        ({"amount_minor": 0}, "amount_minor"),
        ({"amount_minor": "ten"}, "amount_minor"),
        ({}, "amount_minor"),
    ):
        response = api.post(f"/orders/{order.public_id}/refunds", body)
        assert response.status_code == 400, body
        assert field in error_of(response)["fields"]
    response = api.post(f"/orders/{order.public_id}/refunds", {"amount_minor": 1601})
    assert response.status_code == 400
    assert error_of(response)["message"] == (
        "You cannot refund more than was paid and not refunded."
    )
    declined = buy(workspace, "d@example.test", card=DECLINED_CARD)
    response = api.post(f"/orders/{declined.public_id}/refunds", {"amount_minor": 1})
    assert response.status_code == 400
    order.refresh_from_db()
    assert order.refunded_minor == 0
    assert not Payment.objects.filter(kind="refund").exists()


def test_foreign_order_is_404(api, other_workspace):
    theirs = buy(other_workspace, "theirs@example.test")
    for order_id in (theirs.public_id, uuid.uuid4()):
        assert api.get(f"/orders/{order_id}").status_code == 404
        response = api.post(f"/orders/{order_id}/refunds", {"amount_minor": 100})
        assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.refunded_minor == 0


def test_refund_retried_with_one_key_refunds_once(api, order):
    """A client that retries a refund with the same Idempotency-Key gets the first
    answer again; the money moves once."""
    headers = {"Idempotency-Key": "refund-1"}
    first = api.post(
        f"/orders/{order.public_id}/refunds", {"amount_minor": 300}, headers=headers
    )
    again = api.post(
        f"/orders/{order.public_id}/refunds", {"amount_minor": 300}, headers=headers
    )
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    order.refresh_from_db()
    assert order.refunded_minor == 300
    other = api.post(
        f"/orders/{order.public_id}/refunds", {"amount_minor": 200}, headers=headers
    )
    assert other.status_code == 409
    assert error_of(other)["code"] == "idempotency_key_reused"
    order.refresh_from_db()
    assert order.refunded_minor == 300


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_key_refund_once(workspace):
    """Eight threads send the same refund with the same key at once, on their own
    database connections: exactly one refund happens; the others replay it or are
    told the first is still running."""
    order = buy(workspace, "race@example.test")
    secret = make_token(workspace, "write")
    barrier = threading.Barrier(8)
    codes: list[int] = []
    lock = threading.Lock()

    def send() -> None:
        try:
            client = ApiClient(secret)
            barrier.wait()
            response = client.post(
                f"/orders/{order.public_id}/refunds",
                {"amount_minor": 400},
                headers={"Idempotency-Key": "race"},
            )
            with lock:
                codes.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    order.refresh_from_db()
    assert order.refunded_minor == 400
    assert Payment.objects.filter(order=order, kind="refund").count() == 1
    assert codes.count(201) >= 1
    assert set(codes) <= {201, 409}
