"""Order services: checkout with bump, one-click upsells, refunds, reconciliation.

Every gateway call is first recorded as a Payment with a unique idempotency key
(committed before the call), then settled from the gateway's answer. A reload, a double
click or a replayed post finds the existing Payment or OrderItem and charges nothing
twice. When the gateway does not answer, the order stays pending and
`orders_reconcile` settles it later.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Workspace
from accounts.services import audit_record
from analytics import selectors as analytics_selectors
from config.celery import enqueue_on_commit
from funnels.models import Product, Step, StepKind, StepOffer

from . import services
from .gateways import ChargeResult, GatewayError, get_gateway
from .gateways import WebhookEvent as GatewayWebhook
from .models import (
    CheckoutAbandonment,
    FollowUpEmail,
    GatewayEvent,
    GatewayEventOutcome,
    ItemKind,
    ItemStatus,
    Lead,
    Order,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
    WebhookEvent,
)

ABANDON_AFTER = timedelta(minutes=30)
ABANDON_LOOKBACK = timedelta(days=2)  # order-form views older than this are history


@dataclass(frozen=True)
class CheckoutResult:
    order: Order
    ok: bool
    message: str = ""
    replayed: bool = False
    # The bank wants the visitor to confirm (3-D Secure): the browser finishes it
    # with this secret, then order_confirm checks the outcome with the gateway.
    action_secret: str = ""


# Stripe.js turns the card into a PaymentMethod in the browser: only its id reaches us.
STRIPE_PAYMENT_METHOD = re.compile(r"pm_[A-Za-z0-9_]{6,120}")


def _payment_token_check(token: str, gateway: str) -> None:
    if gateway == "stripe" and not STRIPE_PAYMENT_METHOD.fullmatch(token):
        # A raw card number must never be sent on to Stripe (or kept): refuse it.
        raise ValidationError(
            {
                "card": "Enter your card in the secure card field. If you do not "
                "see it, allow this page to load Stripe's script and reload."
            }
        )


def _offer(step: Step) -> StepOffer:
    offer = (
        StepOffer.objects.select_related("product", "bump_product")
        .filter(step=step)
        .first()
    )
    if offer is None or offer.product.archived_at is not None:
        raise ValidationError("This product is not available any more.")
    return offer


def _offer_items(offer: StepOffer, with_bump: bool) -> list[tuple[str, Product]]:
    items = [(ItemKind.MAIN, offer.product)]
    if with_bump and offer.bump_product and offer.bump_product.archived_at is None:
        if offer.bump_product.currency != offer.product.currency:
            raise ValidationError(
                "This offer is misconfigured (the bump is priced in another currency). "
                "You have not been charged."
            )
        items.append((ItemKind.BUMP, offer.bump_product))
    return items


def order_totals(*, step: Step, with_bump: bool) -> tuple[int, str]:
    """The server's price for the order form: never trust a posted amount."""
    offer = _offer(step)
    items = _offer_items(offer, with_bump)
    return sum(p.price_minor for _, p in items), offer.product.currency


@transaction.atomic
def _order_open(
    *,
    step: Step,
    data: Mapping[str, str],
    nonce: str,
    with_bump: bool,
    visitor_id: uuid.UUID | None,
    touch: Mapping[str, str] | None,
    ip_address: str | None,
    user_agent: str,
) -> tuple[Order, Payment, bool]:
    if nonce:
        existing = Order.objects.filter(
            workspace_id=step.workspace_id, form_token=nonce
        ).first()
        if existing is not None:
            payment = existing.payments.filter(kind=PaymentKind.CHARGE).last()
            return existing, payment, True
    offer = _offer(step)
    items = _offer_items(offer, with_bump)
    capture = services.lead_capture(
        step=step,
        data=data,
        nonce=f"order:{nonce}" if nonce else None,
        visitor_id=visitor_id,
        touch=touch,
        ip_address=ip_address,
        user_agent=user_agent,
    )
    gateway = get_gateway()
    order = Order.objects.create(
        workspace_id=step.workspace_id,
        lead=capture.lead,
        funnel_id=step.funnel_id,
        step=step,
        visitor_id=visitor_id,
        currency=offer.product.currency,
        gateway=gateway.name,
        form_token=nonce or None,
    )
    rows = [
        OrderItem.objects.create(
            workspace_id=step.workspace_id,
            order=order,
            product=product,
            step=step,
            kind=kind,
            name=product.name,
            amount_minor=product.price_minor,
        )
        for kind, product in items
    ]
    payment = Payment.objects.create(
        workspace_id=step.workspace_id,
        order=order,
        kind=PaymentKind.CHARGE,
        idempotency_key=f"{order.public_id}:checkout",
        amount_minor=sum(r.amount_minor for r in rows),
        currency=order.currency,
    )
    payment.items.set(rows)
    return order, payment, False


@transaction.atomic
def _payment_settle(*, payment: Payment, result: ChargeResult | None) -> Payment:
    """Apply a gateway answer (None: no answer) to the payment, items and order."""
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    if payment.status == PaymentStatus.SUCCEEDED:
        return payment  # already settled by a concurrent request or the reconciler
    order = Order.objects.select_for_update().get(pk=payment.order_id)
    now = timezone.now()
    payment.updated_at = now
    if result is None:
        payment.status = PaymentStatus.PENDING
        payment.message = "The payment gateway did not answer; we will check again."
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
        order.status = OrderStatus.PAID
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


_ITEM_EVENT = {
    ItemKind.MAIN: "order",
    ItemKind.BUMP: "bump",
    ItemKind.UPSELL: "upsell_accept",
    ItemKind.DOWNSELL: "upsell_accept",
}


def _record_sale_events(order: Order, payment: Payment) -> None:
    """One analytics event per item sold, with its amount, after the commit."""
    for item in payment.items.all():
        services.record_event_on_commit(
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


def upsell_decline(*, order: Order | None, step: Step, visitor_id=None) -> None:
    """Record that the visitor said no to this upsell (once per order and step)."""
    key = f"decline:{order.public_id if order else visitor_id}:{step.pk}"
    services.record_event_on_commit(
        workspace_id=step.workspace_id,
        funnel_id=step.funnel_id,
        step_id=step.pk,
        visitor_id=order.visitor_id if order else visitor_id,
        kind="upsell_decline",
        event_id=services.event_id_for(key),
    )


def order_checkout(
    *,
    step: Step,
    data: Mapping[str, str],
    payment_token: str,
    with_bump: bool,
    nonce: str = "",
    visitor_id: uuid.UUID | None = None,
    touch: Mapping[str, str] | None = None,
    ip_address: str | None = None,
    user_agent: str = "",
) -> CheckoutResult:
    """Create the lead, order and items, then charge; safe to call twice."""
    payment_token = (payment_token or "").strip()
    if not payment_token:
        raise ValidationError({"card": "Enter your card number."})
    _payment_token_check(payment_token, get_gateway().name)
    order, payment, replayed = _order_open(
        step=step,
        data=data,
        nonce=nonce,
        with_bump=with_bump,
        visitor_id=visitor_id,
        touch=touch,
        ip_address=ip_address,
        user_agent=user_agent,
    )
    if replayed:
        if order.status == OrderStatus.FAILED:
            # The same form posted again after a decline: charge anew, new key.
            payment = _retry_payment(order)
        else:
            return CheckoutResult(order, order.status != OrderStatus.FAILED, "", True)
    gateway = get_gateway(order.gateway)
    try:
        result = gateway.charge(
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            payment_token=payment_token,
            email=order.lead.email,
            description=f"Order {order.public_id}",
            idempotency_key=payment.idempotency_key,
            save_for_later=True,
        )
    except GatewayError:
        _payment_settle(payment=payment, result=None)
        order.refresh_from_db()
        return CheckoutResult(
            order,
            False,
            "We could not reach the payment provider. You have not been charged "
            "twice; please try again in a minute.",
        )
    payment = _payment_settle(payment=payment, result=result)
    order.refresh_from_db()
    return CheckoutResult(
        order,
        payment.status == PaymentStatus.SUCCEEDED,
        result.message,
        action_secret=result.action_secret
        if payment.status == PaymentStatus.REQUIRES_ACTION
        else "",
    )


def order_confirm(*, order: Order) -> CheckoutResult:
    """After the visitor confirmed with the bank: ask the gateway, never the browser.

    Only the gateway's own answer for the waiting payment can mark the order paid; a
    reload finds it settled and changes nothing.
    """
    payment = (
        order.payments.filter(kind=PaymentKind.CHARGE).order_by("-created_at").first()
    )
    if payment is None:
        return CheckoutResult(order, False, "There is no payment to confirm.")
    if payment.status == PaymentStatus.SUCCEEDED:
        return CheckoutResult(order, True, "", replayed=True)
    if payment.status != PaymentStatus.REQUIRES_ACTION or not payment.reference:
        return CheckoutResult(
            order, False, payment.message or "This payment cannot be confirmed."
        )
    try:
        result = get_gateway(order.gateway).retrieve(reference=payment.reference)
    except GatewayError:
        return CheckoutResult(
            order,
            False,
            "We could not reach the payment provider. Your bank's answer is kept; "
            "reload this page in a minute.",
        )
    if result.status == "requires_action":
        return CheckoutResult(
            order,
            False,
            "Your bank has not confirmed this payment yet.",
            action_secret=result.action_secret,
        )
    if result.succeeded and result.raw.get("amount") not in (
        None,
        payment.amount_minor,
    ):
        return CheckoutResult(order, False, "The payment does not match this order.")
    payment = _payment_settle(payment=payment, result=result)
    order.refresh_from_db()
    return CheckoutResult(
        order,
        payment.status == PaymentStatus.SUCCEEDED,
        result.message or ("" if result.succeeded else "The payment failed."),
    )


@transaction.atomic
def _retry_payment(order: Order) -> Payment:
    attempt = order.payments.filter(kind=PaymentKind.CHARGE).count() + 1
    items = list(order.items.filter(kind__in=[ItemKind.MAIN, ItemKind.BUMP]))
    OrderItem.objects.filter(pk__in=[i.pk for i in items]).update(
        status=ItemStatus.PENDING
    )
    payment = Payment.objects.create(
        workspace_id=order.workspace_id,
        order=order,
        kind=PaymentKind.CHARGE,
        idempotency_key=f"{order.public_id}:checkout:{attempt}",
        amount_minor=sum(i.amount_minor for i in items),
        currency=order.currency,
    )
    payment.items.set(items)
    return payment


@dataclass(frozen=True)
class UpsellResult:
    item: OrderItem | None
    ok: bool
    message: str = ""


def upsell_accept(*, order: Order, step: Step) -> UpsellResult:
    """Charge the saved card for the step's offer, once per order and step."""
    kind = ItemKind.DOWNSELL if step.kind == "downsell" else ItemKind.UPSELL
    if order.status not in {OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED}:
        return UpsellResult(None, False, "This offer needs a paid order first.")
    offer = _offer(step)
    if offer.product.currency != order.currency:
        return UpsellResult(
            None,
            False,
            "This offer is priced in another currency; nothing was charged.",
        )
    try:
        with transaction.atomic():
            item = OrderItem.objects.create(
                workspace_id=order.workspace_id,
                order=order,
                product=offer.product,
                step=step,
                kind=kind,
                name=offer.product.name,
                amount_minor=offer.product.price_minor,
            )
            payment = Payment.objects.create(
                workspace_id=order.workspace_id,
                order=order,
                kind=PaymentKind.CHARGE,
                idempotency_key=f"{order.public_id}:step:{step.pk}",
                amount_minor=item.amount_minor,
                currency=order.currency,
            )
            payment.items.set([item])
    except IntegrityError:
        # Accepted before (reload or double click): report the first outcome.
        item = OrderItem.objects.get(order=order, step=step, kind=kind)
        return UpsellResult(item, item.status == ItemStatus.PAID, "")
    gateway = get_gateway(order.gateway)
    try:
        result = gateway.charge_saved(
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            customer=order.gateway_customer,
            payment_method=order.gateway_payment_method,
            description=f"{offer.product.name} (order {order.public_id})",
            idempotency_key=payment.idempotency_key,
        )
    except GatewayError:
        _payment_settle(payment=payment, result=None)
        return UpsellResult(item, False, "We could not reach the payment provider.")
    payment = _payment_settle(payment=payment, result=result)
    item.refresh_from_db()
    return UpsellResult(item, payment.status == PaymentStatus.SUCCEEDED, result.message)


def order_refund(*, workspace: Workspace, order: Order, amount_minor: int) -> Payment:
    """Refund part or all of what was paid, through the gateway, once per request."""
    if order.workspace_id != workspace.pk:
        raise ValidationError("No such order.")
    refundable = order.paid_minor - order.refunded_minor
    if amount_minor <= 0:
        raise ValidationError("Enter an amount above zero.")
    if amount_minor > refundable:
        raise ValidationError("You cannot refund more than was paid and not refunded.")
    charges = order.payments.filter(
        kind=PaymentKind.CHARGE, status=PaymentStatus.SUCCEEDED
    ).order_by("-created_at")
    refunded = dict(
        order.payments.filter(kind=PaymentKind.REFUND, status=PaymentStatus.SUCCEEDED)
        .values("reference")
        .annotate(total=Sum("amount_minor"))
        .values_list("reference", "total")
    )
    gateway = get_gateway(order.gateway)
    remaining = amount_minor
    last = None
    number = order.payments.filter(kind=PaymentKind.REFUND).count()
    # Newest charges first (upsells before the main purchase), each only up to what
    # is still unrefunded on it.
    capacity = [(c, c.amount_minor - refunded.get(c.reference, 0)) for c in charges]
    for charge, cap in capacity:
        if remaining == 0:
            break
        part = min(cap, remaining)
        if part == 0:
            continue
        number += 1
        payment = Payment.objects.create(
            workspace_id=order.workspace_id,
            order=order,
            kind=PaymentKind.REFUND,
            idempotency_key=f"{order.public_id}:refund:{number}",
            amount_minor=part,
            currency=order.currency,
            reference=charge.reference,
        )
        try:
            result = gateway.refund(
                reference=charge.reference,
                amount_minor=part,
                idempotency_key=payment.idempotency_key,
            )
        except GatewayError as exc:
            Payment.objects.filter(pk=payment.pk).update(
                status=PaymentStatus.FAILED, message=str(exc)[:300]
            )
            raise ValidationError(
                "The payment provider did not confirm the refund; try again later."
            ) from exc
        with transaction.atomic():
            order = Order.objects.select_for_update().get(pk=order.pk)
            payment.status = (
                PaymentStatus.SUCCEEDED
                if result.status != "failed"
                else PaymentStatus.FAILED
            )
            payment.message = f"Refund {result.reference}"
            payment.save()
            if payment.status == PaymentStatus.SUCCEEDED:
                _refund_book(order, payment)
        remaining -= part
        last = payment
    services.webhooks_dispatch(
        workspace_id=order.workspace_id,
        event=WebhookEvent.ORDER_REFUNDED,
        payload={**order_payload(order), "refund_minor": amount_minor},
    )
    return last


def _refund_book(order: Order, refund: Payment) -> None:
    """A succeeded refund: its tracking event, and the order's refunded total and
    status (the order row is locked by the caller)."""
    services.record_event_on_commit(
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


def orders_reconcile(*, older_than: timedelta = timedelta(minutes=2)) -> int:
    """Settle payments left pending by a gateway timeout; returns how many settled."""
    cutoff = timezone.now() - older_than
    settled = 0
    for payment in Payment.objects.filter(
        kind=PaymentKind.CHARGE, status=PaymentStatus.PENDING, created_at__lt=cutoff
    ).select_related("order"):
        gateway = get_gateway(payment.order.gateway)
        try:
            if payment.reference:
                result = gateway.retrieve(reference=payment.reference)
            else:
                result = gateway.lookup(idempotency_key=payment.idempotency_key)
        except GatewayError:
            continue
        _payment_settle(payment=payment, result=result)
        settled += 1
    return settled


def checkouts_mark_abandoned(*, now=None) -> int:
    """Mark checkouts left unpaid for ABANDON_AFTER, once per lead and order step.

    Two ways to abandon: an order submitted and never paid (declined, or pending
    past its reconciliation), or a known lead who reached the order form and placed
    no order. Each fires ``checkout.abandoned`` and the step's abandoned-checkout
    e-mail when one is enabled. A lead who already paid in that funnel is left alone.
    """
    now = now or timezone.now()
    cutoff = now - ABANDON_AFTER
    count = 0
    stale = Order.objects.filter(
        status__in=[OrderStatus.PENDING, OrderStatus.FAILED],
        paid_minor=0,
        abandoned_at__isnull=True,
        created_at__lt=cutoff,
    ).select_related("lead")
    for order in stale:
        with transaction.atomic():
            updated = Order.objects.filter(
                pk=order.pk, abandoned_at__isnull=True
            ).update(abandoned_at=now)
            if updated and _abandon(
                order.lead,
                step_id=order.step_id,
                order=order,
                reached_at=order.created_at,
            ):
                count += 1
    order_steps = list(
        Step.objects.filter(
            kind=StepKind.ORDER, funnel__published_at__isnull=False
        ).values_list("pk", flat=True)
    )
    views = analytics_selectors.lead_views_of_steps(
        step_ids=order_steps, since=now - ABANDON_LOOKBACK, until=cutoff
    )
    lead_ids = {view.lead_id for view in views}
    leads = Lead.objects.filter(pk__in=lead_ids, erased_at__isnull=True).in_bulk()
    marked = set(
        CheckoutAbandonment.objects.filter(lead_id__in=lead_ids).values_list(
            "lead_id", "step_id"
        )
    )
    orders: dict[tuple[int, int], list[tuple[int, object]]] = {}
    for lead_id, funnel_id, paid, created in Order.objects.filter(
        lead_id__in=lead_ids
    ).values_list("lead_id", "funnel_id", "paid_minor", "created_at"):
        orders.setdefault((lead_id, funnel_id), []).append((paid, created))
    for view in views:
        lead = leads.get(view.lead_id)
        if lead is None or lead.workspace_id != view.workspace_id:
            continue
        if (view.lead_id, view.step_id) in marked:
            continue
        if any(
            paid > 0 or created >= view.first_view_at
            for paid, created in orders.get((view.lead_id, view.funnel_id), [])
        ):
            continue  # bought, or an order of theirs is handled above
        with transaction.atomic():
            count += _abandon(
                lead, step_id=view.step_id, order=None, reached_at=view.first_view_at
            )
    return count


def _abandon(lead: Lead, *, step_id: int, order: Order | None, reached_at) -> int:
    """Record one abandonment (once per lead and step); 1 if it is new."""
    try:
        with transaction.atomic():
            CheckoutAbandonment.objects.create(
                workspace_id=lead.workspace_id,
                lead=lead,
                step_id=step_id,
                order=order,
                reached_at=reached_at,
            )
    except IntegrityError:
        return 0
    payload = (
        order_payload(order)
        if order is not None
        else {
            "id": None,
            "status": "not_submitted",
            "lead": services.lead_payload(lead),
            "step_id": step_id,
            "reached_at": reached_at.isoformat(),
        }
    )
    services.webhooks_dispatch(
        workspace_id=lead.workspace_id,
        event=WebhookEvent.CHECKOUT_ABANDONED,
        payload=payload,
    )
    follow_up = FollowUpEmail.objects.filter(step_id=step_id, is_enabled=True).first()
    if follow_up is not None and lead.erased_at is None:
        from .tasks import follow_up_send_task

        enqueue_on_commit(follow_up_send_task, follow_up.pk, lead.pk)
    return 1


# ---------------------------------------------------------------- gateway webhooks


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
    _payment_settle(
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
    _refund_book(order, refund)
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
            _payment_settle(
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
