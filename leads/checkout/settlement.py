"""Settling charges: the one place a gateway answer changes a payment and its order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from .. import gateways, services
from ..gateways import ChargeResult, GatewayError
from ..models import (
    ItemKind,
    ItemStatus,
    Order,
    OrderStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
    WebhookEvent,
)

# How long a request waits for another request's gateway call on the same payment
# before it tells its visitor that the payment is being confirmed.
WAIT_FOR_OTHER_SECONDS = 30

NO_ANSWER = "The payment gateway did not answer; we will check again."


def payment_settle(*, payment: Payment, result: ChargeResult | None) -> Payment:
    """Apply a gateway answer (None: no answer) to the payment, items and order."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        return settle_locked(payment, result)


def settle_locked(payment: Payment, result: ChargeResult | None) -> Payment:
    """payment_settle for a payment whose row lock the caller holds."""
    if payment.status == PaymentStatus.SUCCEEDED:
        return payment  # already settled by a concurrent request or the reconciler
    order = Order.objects.select_for_update().get(pk=payment.order_id)
    now = timezone.now()
    payment.updated_at = now
    if result is None:
        payment.status = PaymentStatus.PENDING
        payment.sent_at = payment.sent_at or now
        payment.message = NO_ANSWER
        payment.save()
        return payment
    payment.reference = result.reference or payment.reference
    payment.message = result.message[:300]
    if result.succeeded:
        payment.status = PaymentStatus.SUCCEEDED
        payment.items.update(status=ItemStatus.PAID)
        _record_sale_events(order, payment)
        first_payment = order.paid_minor == 0
        order.paid_minor += payment.amount_minor
        order.status = (
            OrderStatus.PAID
            if order.refunded_minor == 0
            else OrderStatus.PARTIALLY_REFUNDED
        )
        order.paid_at = order.paid_at or now
        order.failure_message = ""
        if result.customer:
            order.gateway_customer = result.customer
            order.gateway_payment_method = result.payment_method
        order.save()
        if first_payment:
            services.webhooks_dispatch(
                workspace_id=order.workspace_id,
                event=WebhookEvent.ORDER_CREATED,
                payload=order_payload(order),
            )
    else:
        payment.status = (
            PaymentStatus.REQUIRES_ACTION
            if result.status == "requires_action"
            else PaymentStatus.DECLINED
        )
        payment.items.update(status=ItemStatus.FAILED)
        if order.paid_minor == 0:
            order.status = OrderStatus.FAILED
            order.failure_message = payment.message
            order.save(update_fields=["status", "failure_message"])
    payment.save()
    return payment


def _lock_not_available(exc: OperationalError) -> bool:
    return getattr(exc.__cause__, "sqlstate", "") == "55P03"


def charge_once(
    *, payment: Payment, call: Callable[[Payment], ChargeResult]
) -> tuple[Payment, ChargeResult | None]:
    """Make the gateway call for ``payment`` unless another request already did.

    Whoever holds the payment's row lock calls the gateway and settles; a
    concurrent request waits for that lock and returns the settled payment (and no
    gateway result of its own). A payment the gateway was asked about without an
    answer is left for the reconciler: never asked twice from here.
    """
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SET LOCAL lock_timeout = %s", [f"{WAIT_FOR_OTHER_SECONDS}s"]
                )
            locked = Payment.objects.select_for_update().get(pk=payment.pk)
            if locked.status != PaymentStatus.PENDING or locked.sent_at is not None:
                return locked, None
            try:
                result: ChargeResult | None = call(locked)
            except GatewayError:
                result = None
            return settle_locked(locked, result), result
    except OperationalError as exc:
        if not _lock_not_available(exc):
            raise
        # Another request's gateway call is taking long: tell the visitor we are
        # confirming (the payment is still pending).
        payment.refresh_from_db()
        return payment, None


# Keyed by the stored ``OrderItem.kind`` (a plain str equal to its ItemKind).
_ITEM_EVENT: dict[str, str] = {
    ItemKind.MAIN: "order",
    ItemKind.BUMP: "bump",
    ItemKind.UPSELL: "upsell_accept",
    ItemKind.DOWNSELL: "downsell_accept",
}


def _record_sale_events(order: Order, payment: Payment) -> None:
    """One analytics event per item sold, with its amount, after the commit."""
    for item in payment.items.all():
        services.record_event(
            workspace_id=order.workspace_id,
            funnel_id=order.funnel_id,
            step_id=item.step_id,
            visitor_id=order.visitor_id,
            kind=_ITEM_EVENT[item.kind],
            amount_minor=item.amount_minor,
            currency=order.currency,
            event_id=services.event_id_for(f"item:{item.pk}"),
            properties={"order": str(order.public_id), "product": item.product_id},
        )


def order_payload(order: Order) -> dict:
    return {
        "id": str(order.public_id),
        "status": order.status,
        "currency": order.currency,
        "paid_minor": order.paid_minor,
        "refunded_minor": order.refunded_minor,
        "lead": {"id": str(order.lead.public_id), "email": order.lead.email},
        "items": [
            {
                "name": i.name,
                "kind": i.kind,
                "amount_minor": i.amount_minor,
                "status": i.status,
            }
            for i in order.items.all()
        ],
        "created_at": order.created_at.isoformat(),
    }


def payment_ask_gateway(payment: Payment) -> ChargeResult:
    """The gateway's word on a payment: by its reference, else by our key.
    Raises GatewayError when it does not answer."""
    gateway = gateways.get_gateway(payment.order.gateway)
    if payment.reference:
        return gateway.retrieve(reference=payment.reference)
    return gateway.lookup(idempotency_key=payment.idempotency_key)


def orders_reconcile(*, older_than: timedelta = timedelta(minutes=2)) -> int:
    """Settle payments left pending by a gateway timeout; returns how many settled.

    A payment whose gateway call is in progress (its row is locked) is skipped.
    """
    cutoff = timezone.now() - older_than
    settled = 0
    ids = Payment.objects.filter(
        kind=PaymentKind.CHARGE, status=PaymentStatus.PENDING, created_at__lt=cutoff
    ).values_list("pk", flat=True)
    for pk in list(ids):
        with transaction.atomic():
            payment = (
                Payment.objects.select_for_update(skip_locked=True)
                .select_related("order")
                .filter(pk=pk, status=PaymentStatus.PENDING)
                .first()
            )
            if payment is None:
                continue
            try:
                result = payment_ask_gateway(payment)
            except GatewayError:
                continue
            settle_locked(payment, result)
            settled += 1
    return settled
