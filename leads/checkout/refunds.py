"""Refunds: the refundable amount is checked and reserved under the order's row lock,
so concurrent refunds never exceed what was paid; each is then sent to the gateway
and booked (or released) under the same lock."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Sum

from accounts.models import Workspace
from accounts.services import audit_record

from .. import gateways, services
from ..gateways import GatewayError
from ..models import (
    Order,
    OrderStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
    WebhookEvent,
)
from .settlement import order_payload


def _refunded_by_charge(order: Order) -> dict[str, int]:
    """What is refunded or being refunded, per charge reference."""
    return dict(
        order.payments.filter(
            kind=PaymentKind.REFUND,
            status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.PENDING],
        )
        .values("reference")
        .annotate(total=Sum("amount_minor"))
        .values_list("reference", "total")
    )


@transaction.atomic
def _refund_reserve(
    *, workspace: Workspace, order: Order, amount_minor: int
) -> list[Payment]:
    """Under the order's lock: check the amount against what is paid and not yet
    refunded (nor being refunded), and record the refunds to make, pending."""
    locked = (
        Order.objects.select_for_update()
        .filter(pk=order.pk, workspace_id=workspace.pk)
        .first()
    )
    if locked is None:
        raise ValidationError("No such order.")
    order = locked
    if amount_minor <= 0:
        raise ValidationError("Enter an amount above zero.")
    in_flight = (
        order.payments.filter(
            kind=PaymentKind.REFUND, status=PaymentStatus.PENDING
        ).aggregate(total=Sum("amount_minor"))["total"]
        or 0
    )
    refundable = order.paid_minor - order.refunded_minor - in_flight
    if amount_minor > refundable:
        raise ValidationError("You cannot refund more than was paid and not refunded.")
    refunded = _refunded_by_charge(order)
    charges = order.payments.filter(
        kind=PaymentKind.CHARGE, status=PaymentStatus.SUCCEEDED
    ).order_by("-created_at", "-id")
    number = (
        order.payments.filter(kind=PaymentKind.REFUND).aggregate(n=Max("attempt"))["n"]
        or 0
    )
    # Legacy refunds were numbered by count: never reuse one of their keys.
    number = max(number, order.payments.filter(kind=PaymentKind.REFUND).count())
    remaining = amount_minor
    reserved = []
    # Newest charges first (upsells before the main purchase), each only up to what
    # is still unrefunded on it.
    for charge in charges:
        if remaining == 0:
            break
        part = min(charge.amount_minor - refunded.get(charge.reference, 0), remaining)
        if part <= 0:
            continue
        number += 1
        reserved.append(
            Payment.objects.create(
                workspace_id=order.workspace_id,
                order=order,
                kind=PaymentKind.REFUND,
                attempt=number,
                idempotency_key=f"{order.public_id}:refund:{number}",
                amount_minor=part,
                currency=order.currency,
                reference=charge.reference,
            )
        )
        remaining -= part
    if remaining:
        raise ValidationError("You cannot refund more than was paid and not refunded.")
    return reserved


def order_refund(*, workspace: Workspace, order: Order, amount_minor: int) -> Payment:
    """Refund part or all of what was paid, through the gateway, once per request."""
    reserved = _refund_reserve(
        workspace=workspace, order=order, amount_minor=amount_minor
    )
    gateway = gateways.get_gateway(order.gateway)
    for payment in reserved:
        try:
            result = gateway.refund(
                reference=payment.reference,
                amount_minor=payment.amount_minor,
                idempotency_key=payment.idempotency_key,
            )
        except GatewayError as exc:
            for unsent in reserved[reserved.index(payment) :]:
                Payment.objects.filter(pk=unsent.pk).update(
                    status=PaymentStatus.FAILED, message=str(exc)[:300]
                )
            raise ValidationError(
                "The payment provider did not confirm the refund; try again later."
            ) from exc
        with transaction.atomic():
            locked = Order.objects.select_for_update().get(pk=order.pk)
            payment.status = (
                PaymentStatus.SUCCEEDED
                if result.status != "failed"
                else PaymentStatus.FAILED
            )
            payment.message = f"Refund {result.reference}"
            payment.save(update_fields=["status", "message"])
            if payment.status == PaymentStatus.SUCCEEDED:
                refund_book(locked, payment)
    order = Order.objects.select_related("lead").get(pk=order.pk)
    services.webhooks_dispatch(
        workspace_id=order.workspace_id,
        event=WebhookEvent.ORDER_REFUNDED,
        payload={**order_payload(order), "refund_minor": amount_minor},
    )
    # The last refund sent (``_refund_reserve`` never returns an empty list).
    return reserved[-1]


def refund_book(order: Order, refund: Payment) -> None:
    """A succeeded refund: its tracking event, and the order's refunded total and
    status (the order row is locked by the caller)."""
    services.record_event(
        workspace_id=order.workspace_id,
        funnel_id=order.funnel_id,
        step_id=order.step_id,
        visitor_id=order.visitor_id,
        kind="refund",
        amount_minor=refund.amount_minor,
        currency=order.currency,
        event_id=services.event_id_for(f"refund:{refund.pk}"),
    )
    before = {"status": order.status, "refunded_minor": order.refunded_minor}
    order.refunded_minor += refund.amount_minor
    order.status = (
        OrderStatus.REFUNDED
        if order.refunded_minor >= order.paid_minor
        else OrderStatus.PARTIALLY_REFUNDED
    )
    order.save(update_fields=["refunded_minor", "status"])
    audit_record(
        workspace=order.workspace_id,
        action="order.refund",
        target=order,
        target_label=f"order {order.public_id}",
        before=before,
        after={
            "status": order.status,
            "refunded_minor": order.refunded_minor,
            "refund_minor": refund.amount_minor,
            "currency": order.currency,
        },
    )
