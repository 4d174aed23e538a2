"""Gateway webhooks: apply each verified event once, in any order."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum

from .. import services
from ..gateways import ChargeResult
from ..gateways import WebhookEvent as GatewayWebhook
from ..models import (
    GatewayEvent,
    GatewayEventOutcome,
    Order,
    Payment,
    PaymentKind,
    PaymentStatus,
    WebhookEvent,
)
from .refunds import refund_book
from .settlement import order_payload, payment_settle


def _event_payment(*, gateway: str, event: GatewayWebhook) -> Payment:
    """The charge an event is about: by the gateway's id, else by our key."""
    charges = Payment.objects.filter(kind=PaymentKind.CHARGE, order__gateway=gateway)
    by_ref = (
        list(charges.filter(reference=event.reference)[:2]) if event.reference else []
    )
    by_key = (
        list(charges.filter(idempotency_key=event.payment_key))
        if event.payment_key
        else []
    )
    if len(by_ref) > 1:
        raise ValidationError("Two payments share this reference; not applied.")
    found = {p.pk: p for p in by_ref + by_key}
    if len(found) > 1:
        raise ValidationError("The reference and the key name different payments.")
    if not found:
        raise ValidationError(f"No payment matches {event.reference or 'this event'}.")
    payment = next(iter(found.values()))
    if payment.reference and event.reference and payment.reference != event.reference:
        raise ValidationError("This payment is known under another reference.")
    return payment


def _check_amount(payment: Payment, event: GatewayWebhook) -> None:
    if event.amount_minor is not None and event.amount_minor != payment.amount_minor:
        raise ValidationError(
            f"The event's amount ({event.amount_minor}) is not this payment's "
            f"({payment.amount_minor}); not applied."
        )
    if event.currency and event.currency != payment.currency:
        raise ValidationError("The event's currency is not this payment's.")


def _settle_succeeded(payment: Payment, event: GatewayWebhook) -> bool:
    """Mark a charge paid from an event; False when it already was."""
    if payment.status == PaymentStatus.SUCCEEDED:
        return False
    _check_amount(payment, event)
    payment_settle(
        payment=payment,
        result=ChargeResult(
            "succeeded",
            reference=event.reference,
            customer=event.customer,
            payment_method=event.payment_method,
        ),
    )
    return True


def _refund_from_gateway(payment: Payment, event: GatewayWebhook) -> bool:
    """Record refunds made outside the app (the gateway's dashboard).

    The event carries the total refunded on the charge so far; what our own refunds
    (succeeded, or still waiting for the gateway's answer) do not explain is new.
    Comparing totals makes replays and out-of-order deliveries harmless.
    """
    if event.refunded_minor is None or event.refunded_minor < 0:
        raise ValidationError("The refund event has no refunded amount.")
    order = Order.objects.select_for_update().get(pk=payment.order_id)
    known = (
        order.payments.filter(
            kind=PaymentKind.REFUND,
            reference=payment.reference,
            status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.PENDING],
        ).aggregate(total=Sum("amount_minor"))["total"]
        or 0
    )
    extra = min(event.refunded_minor, payment.amount_minor) - known
    if extra <= 0:
        return False
    refund = Payment.objects.create(
        workspace_id=order.workspace_id,
        order=order,
        kind=PaymentKind.REFUND,
        idempotency_key=f"{order.public_id}:gateway-refund:{event.id}",
        amount_minor=extra,
        currency=order.currency,
        reference=payment.reference,
        status=PaymentStatus.SUCCEEDED,
        message="Refunded in the payment provider's dashboard",
    )
    refund_book(order, refund)
    services.webhooks_dispatch(
        workspace_id=order.workspace_id,
        event=WebhookEvent.ORDER_REFUNDED,
        payload={**order_payload(order), "refund_minor": extra},
    )
    return True


@transaction.atomic
def gateway_event_apply(*, gateway: str, event: GatewayWebhook) -> GatewayEvent:
    """Apply a verified gateway webhook once; raise ValidationError to refuse it.

    A refused event leaves nothing behind (not even its id), so the gateway's retry
    is processed afresh. Payments only move forward: a success is never undone by a
    late failure, and a refund needs the charge to have succeeded (a refund proves
    the charge went through, so an early refund event settles the charge first).
    """
    try:
        with transaction.atomic():
            record = GatewayEvent.objects.create(
                gateway=gateway,
                event_id=event.id,
                type=event.type[:80],
                reference=event.reference[:100],
                outcome=GatewayEventOutcome.IGNORED,
            )
    except IntegrityError:
        return GatewayEvent.objects.get(gateway=gateway, event_id=event.id)
    if not event.kind:
        return record
    payment = _event_payment(gateway=gateway, event=event)
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    if event.kind == "payment.succeeded":
        changed = _settle_succeeded(payment, event)
    elif event.kind == "payment.failed":
        changed = payment.status in {
            PaymentStatus.PENDING,
            PaymentStatus.REQUIRES_ACTION,
        }
        if changed:
            payment_settle(
                payment=payment,
                result=ChargeResult(
                    "declined",
                    reference=event.reference,
                    message=event.message or "The payment failed.",
                ),
            )
    else:  # payment.refunded
        settled = _settle_succeeded(
            payment,
            GatewayWebhook(
                id=event.id,
                type=event.type,
                reference=event.reference,
                amount_minor=event.amount_minor,
                currency=event.currency,
            ),
        )
        payment.refresh_from_db()
        changed = _refund_from_gateway(payment, event) or settled
    record.workspace_id = payment.workspace_id
    record.payment = payment
    record.outcome = (
        GatewayEventOutcome.APPLIED if changed else GatewayEventOutcome.UNCHANGED
    )
    record.save(update_fields=["workspace", "payment", "outcome"])
    return record
