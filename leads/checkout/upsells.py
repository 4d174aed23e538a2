"""One-click upsells and downsells: charge the saved card once per order and step,
only for offers on the order's own path (funnels.paths decides)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction

from funnels import paths
from funnels.models import Step, StepKind

from .. import gateways, services
from ..gateways import ChargeResult
from ..models import (
    ItemKind,
    Order,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
)
from .checkout import frozen_offer
from .settlement import charge_once

NOT_ON_PATH = "This offer is not part of your order."


@dataclass(frozen=True)
class UpsellResult:
    item: OrderItem | None
    ok: bool
    message: str = ""
    pending: bool = False
    # The step is not an offer that follows this order: nothing was done.
    off_path: bool = False


def _follows(order: Order, step: Step) -> bool:
    order_step = (
        Step.objects.filter(pk=order.step_id).first() if order.step_id else None
    )
    return order.funnel_id == step.funnel_id and paths.offer_follows(
        order_step=order_step, step=step
    )


def _offer_payment(
    order: Order, step: Step, offer_id: str, variant_id: int | None
) -> Payment | UpsellResult:
    """The payment for this step's offer on this order, made once under the
    order's row lock (a second click finds the first one's)."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        payment = (
            Payment.objects.filter(order=order, kind=PaymentKind.CHARGE, step=step)
            .order_by("-attempt", "-id")
            .first()
        )
        if payment is not None:
            return payment
        if order.status not in {OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED}:
            return UpsellResult(None, False, "This offer needs a paid order first.")
        offer = frozen_offer(step, offer_id)
        if offer.currency != order.currency:
            return UpsellResult(
                None,
                False,
                "This offer is priced in another currency; nothing was charged.",
            )
        item = OrderItem.objects.create(
            workspace_id=order.workspace_id,
            order=order,
            product=offer.product,
            step=step,
            kind=ItemKind.DOWNSELL
            if step.kind == StepKind.DOWNSELL
            else ItemKind.UPSELL,
            name=offer.name,
            amount_minor=offer.price_minor,
        )
        payment = Payment.objects.create(
            workspace_id=order.workspace_id,
            order=order,
            kind=PaymentKind.CHARGE,
            step=step,
            attempt=1,
            idempotency_key=f"{order.public_id}:step:{step.pk}",
            amount_minor=item.amount_minor,
            currency=order.currency,
        )
        payment.items.set([item])
        if variant_id is not None:
            order.variants = {**order.variants, str(step.pk): variant_id}
            order.save(update_fields=["variants"])
        return payment


def upsell_accept(
    *, order: Order, step: Step, offer_id: str = "", variant_id: int | None = None
) -> UpsellResult:
    """Charge the saved card for the step's offer, at most once per order and step.

    Concurrent accepts of one offer wait for the first one's charge and report it.
    """
    if not _follows(order, step):
        return UpsellResult(None, False, NOT_ON_PATH, off_path=True)
    try:
        payment = _offer_payment(order, step, offer_id, variant_id)
    except ValidationError as exc:  # not on sale, or changed since the page loaded
        return UpsellResult(None, False, " ".join(exc.messages))
    if isinstance(payment, UpsellResult):
        return payment
    gateway = gateways.get_gateway(order.gateway)

    def call(p: Payment) -> ChargeResult:
        o = Order.objects.get(pk=p.order_id)
        return gateway.charge_saved(
            amount_minor=p.amount_minor,
            currency=p.currency,
            customer=o.gateway_customer,
            payment_method=o.gateway_payment_method,
            description=f"{step.name} (order {o.public_id})",
            idempotency_key=p.idempotency_key,
        )

    payment, result = charge_once(payment=payment, call=call)
    item = payment.items.first()
    if payment.status == PaymentStatus.PENDING:
        return UpsellResult(
            item, False, "We could not reach the payment provider.", pending=True
        )
    return UpsellResult(
        item,
        payment.status == PaymentStatus.SUCCEEDED,
        (result.message if result else "") or payment.message,
    )


def upsell_decline(
    *, order: Order | None, step: Step, visitor_id: uuid.UUID | None = None
) -> bool:
    """Record that the visitor said no to this offer (once per order and step).

    False (and nothing recorded) when the step is not an offer on the order's
    path; without an order the visitor's own decline is recorded.
    """
    if order is not None and not _follows(order, step):
        return False
    if order is None and step.kind not in {StepKind.UPSELL, StepKind.DOWNSELL}:
        return False
    key = f"decline:{order.public_id if order else visitor_id}:{step.pk}"
    services.record_event(
        workspace_id=step.workspace_id,
        funnel_id=step.funnel_id,
        step_id=step.pk,
        visitor_id=order.visitor_id if order else visitor_id,
        kind="downsell_decline" if step.kind == StepKind.DOWNSELL else "upsell_decline",
        event_id=services.event_id_for(key),
    )
    return True
