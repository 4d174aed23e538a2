"""The order form: lead, order and items, then one charge per attempt."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from funnels.models import Product, PublishedOffer, Step

from .. import gateways, services
from ..gateways import ChargeResult, GatewayError
from ..models import (
    ItemKind,
    ItemStatus,
    Lead,
    Order,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
    Submission,
)
from .settlement import (
    charge_once,
    payment_ask_gateway,
    payment_settle,
    settle_locked,
)

CONFIRMING = (
    "We are confirming your payment with the payment provider. You have not been "
    "charged twice; this page tells you once it is confirmed."
)


@dataclass(frozen=True)
class CheckoutResult:
    order: Order
    ok: bool
    message: str = ""
    replayed: bool = False
    # The bank wants the visitor to confirm (3-D Secure): the browser finishes it
    # with this secret, then order_confirm checks the outcome with the gateway.
    action_secret: str = ""
    # The gateway has not said yet (a timeout): never shown or treated as paid.
    pending: bool = False


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


class OfferChanged(ValidationError):
    """The page the visitor submitted showed an offer that is no longer live."""

    def __init__(self) -> None:
        super().__init__(
            "The offer on this page changed while you were on it. Check the price "
            "and submit again; nothing was charged."
        )


def frozen_offer(step: Step, offer_id: str = "") -> PublishedOffer:
    """The offer the step's live page shows, frozen when it was published: the
    only thing the checkout charges. ``offer_id`` is the one the submitted page
    showed; if that is no longer live, nothing is charged."""
    # Read the step's live offer afresh: a publish may have moved it since the
    # step was loaded.
    live_id = (
        Step.objects.filter(pk=step.pk).values_list("live_offer_id", flat=True).first()
    )
    offer = (
        PublishedOffer.objects.select_related("product", "bump_product")
        .filter(pk=live_id, step_id=step.pk)
        .first()
        if live_id
        else None
    )
    if offer is None:
        raise ValidationError("This offer is not on sale.")
    if offer_id and offer_id != str(offer.pk):
        raise OfferChanged()
    if offer.product.archived_at is not None:
        raise ValidationError("This product is not available any more.")
    return offer


def _offer_items(
    offer: PublishedOffer, with_bump: bool
) -> list[tuple[ItemKind, Product, str, int]]:
    """(kind, product, name, price) of what the buyer chose, at frozen prices."""
    items = [(ItemKind.MAIN, offer.product, offer.name, offer.price_minor)]
    if not (with_bump and offer.has_bump):
        return items
    # ``has_bump`` means both are set; the locals let the type checker see it.
    bump, bump_price = offer.bump_product, offer.bump_price_minor
    if bump is not None and bump_price is not None and bump.archived_at is None:
        if bump.currency != offer.currency:
            raise ValidationError(
                "This offer is misconfigured (the bump is priced in another currency). "
                "You have not been charged."
            )
        items.append((ItemKind.BUMP, bump, offer.bump_name, bump_price))
    return items


def order_totals(*, step: Step, with_bump: bool) -> tuple[int, str]:
    """The server's price for the order form: never trust a posted amount."""
    offer = frozen_offer(step)
    return sum(i[3] for i in _offer_items(offer, with_bump)), offer.currency


def _checkout_key(order: Order, attempt: int) -> str:
    # The first attempt keeps the key orders always had.
    suffix = "" if attempt == 1 else f":{attempt}"
    return f"{order.public_id}:checkout{suffix}"


def _order_open(
    *,
    step: Step,
    data: Mapping[str, str],
    nonce: str,
    with_bump: bool,
    offer_id: str,
    variant_id: int | None,
    visitor_id: uuid.UUID | None,
    touch: Mapping[str, str] | None,
    ip_address: str | None,
    user_agent: str,
) -> tuple[Order, bool]:
    """The form's order: found by its one-time token, else created with its items
    and first payment. Two posts of one form racing here make one order."""
    if nonce:
        existing = Order.objects.filter(
            workspace_id=step.workspace_id, form_token=nonce
        ).first()
        if existing is not None:
            return existing, False
    offer = frozen_offer(step, offer_id)
    items = _offer_items(offer, with_bump)
    try:
        with transaction.atomic():
            capture = services.lead_capture(
                step=step,
                data=data,
                nonce=f"order:{nonce}" if nonce else None,
                visitor_id=visitor_id,
                variant_id=variant_id,
                touch=touch,
                ip_address=ip_address,
                user_agent=user_agent,
                counts_as_optin=False,
            )
            lead = capture.lead
            order = Order.objects.create(
                workspace_id=step.workspace_id,
                lead=lead,
                funnel_id=step.funnel_id,
                step=step,
                visitor_id=visitor_id,
                currency=offer.currency,
                gateway=gateways.get_gateway().name,
                form_token=nonce or None,
                variants=_variants_seen(lead, step, visitor_id),
                **{
                    f"{when}_{key}": getattr(lead, f"{when}_{key}")
                    for when in ("first", "last")
                    for key in ("source", "medium", "campaign", "referrer")
                },
            )
            rows = [
                OrderItem.objects.create(
                    workspace_id=step.workspace_id,
                    order=order,
                    product=product,
                    step=step,
                    kind=kind,
                    name=name,
                    amount_minor=price,
                )
                for kind, product, name, price in items
            ]
            payment = Payment.objects.create(
                workspace_id=step.workspace_id,
                order=order,
                kind=PaymentKind.CHARGE,
                step=step,
                attempt=1,
                idempotency_key=_checkout_key(order, 1),
                amount_minor=sum(r.amount_minor for r in rows),
                currency=order.currency,
            )
            payment.items.set(rows)
    except IntegrityError:
        # The same form is being submitted by another request that got here
        # first (its insert held ours until it committed): that is our order.
        if not nonce:
            raise
        return Order.objects.get(
            workspace_id=step.workspace_id, form_token=nonce
        ), False
    return order, True


def _variants_seen(
    lead: Lead, step: Step, visitor_id: uuid.UUID | None
) -> dict[str, int]:
    """The split-test variants this buyer's forms were shown in this funnel (the
    form token carries the variant of each post), by step."""
    subs = Submission.objects.filter(
        lead=lead, funnel_id=step.funnel_id, variant_id__isnull=False
    )
    if visitor_id:
        subs = subs.filter(visitor_id=visitor_id)
    seen: dict[str, int] = {}
    for step_id, variant_id in subs.order_by("created_at", "id").values_list(
        "step_id", "variant_id"
    ):
        if variant_id is not None:  # always, by the filter above
            seen[str(step_id)] = variant_id
    return seen


def _checkout_payments(order: Order) -> QuerySet[Payment]:
    return Payment.objects.filter(
        order=order,
        kind=PaymentKind.CHARGE,
        # An order whose step was deleted (SET_NULL) matches its payments without
        # a step: Django reads exact=None as IS NULL, which the stubs do not allow.
        step_id=order.step_id,  # type: ignore[misc]
    ).order_by("-attempt", "-id")


SUPERSEDED = "Replaced by a later attempt with another card (cancelled unpaid)."
NOT_CANCELLED = (
    "Your earlier payment is still waiting for your bank's confirmation and we "
    "could not cancel it just now. Nothing more was charged; try again in a minute."
)


def _supersede(payment: Payment) -> Payment | None:
    """Before a retry: cancel at the gateway the attempt that waits for the bank's
    check (3-D Secure), so that it can never be confirmed later and charge a second
    time. Returns it settled: declined once cancelled, or succeeded when the bank's
    check went through first (the order is paid: no retry). None when the gateway
    does not answer (then no new attempt is made)."""
    try:
        if payment.reference:
            answer = gateways.get_gateway(payment.order.gateway).cancel(
                reference=payment.reference
            )
        else:  # the gateway never named it: nothing there to confirm
            answer = ChargeResult("declined")
    except GatewayError:
        return None
    if answer.status == "requires_action":
        return None  # not cancelled: never leave two attempts open
    if not answer.succeeded:
        answer = ChargeResult(
            "declined", reference=answer.reference, message=SUPERSEDED
        )
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status != PaymentStatus.REQUIRES_ACTION:
            # Settled meanwhile (a concurrent retry cancelled it, or the bank's
            # confirmation was applied): its items may be another attempt's now.
            return locked
        return settle_locked(locked, answer)


@transaction.atomic
def _attempt_locked(order: Order) -> Payment | None:
    """The order form's payment to act on, decided under the order's row lock:
    the attempt in progress, a settled one, or, after a decline, the next attempt
    (numbered here, so concurrent retries cannot both make one). None when the
    latest attempt waits for the bank's check: it must be cancelled first."""
    order = Order.objects.select_for_update().get(pk=order.pk)
    latest = _checkout_payments(order).first()
    if latest is not None and latest.status == PaymentStatus.REQUIRES_ACTION:
        return None
    retry = latest is not None and latest.status in {
        PaymentStatus.DECLINED,
        PaymentStatus.FAILED,
    }
    if latest is not None and not retry:
        return latest
    items = list(order.items.filter(kind__in=[ItemKind.MAIN, ItemKind.BUMP]))
    OrderItem.objects.filter(pk__in=[i.pk for i in items]).update(
        status=ItemStatus.PENDING
    )
    attempt = latest.attempt + 1 if latest is not None else 1
    payment = Payment.objects.create(
        workspace_id=order.workspace_id,
        order=order,
        kind=PaymentKind.CHARGE,
        step_id=order.step_id,
        attempt=attempt,
        idempotency_key=_checkout_key(order, attempt),
        amount_minor=sum(i.amount_minor for i in items),
        currency=order.currency,
    )
    payment.items.set(items)
    if order.status == OrderStatus.FAILED:
        order.status = OrderStatus.PENDING
        order.save(update_fields=["status"])
    return payment


def _attempt(order: Order) -> tuple[Payment, str]:
    """The payment this submit acts on, and a message when it cannot go on.

    An attempt waiting for the bank's check is cancelled at the gateway before
    the next one is made (outside any lock: the gateway call may take a while;
    concurrent retries cancel it alike and the numbering under the lock makes one
    next attempt). One success per (order, step) whatever the order of the bank's
    confirmation and the retry: the gateway lets only one of cancel and confirm
    happen, and a confirmation that came first is settled as the order's payment.
    """
    latest = None
    for _ in range(10):
        latest = _checkout_payments(order).select_related("order").first()
        if latest is not None and latest.status == PaymentStatus.REQUIRES_ACTION:
            settled = _supersede(latest)
            if settled is None:
                return latest, NOT_CANCELLED
            if settled.status == PaymentStatus.SUCCEEDED:
                return settled, ""
        payment = _attempt_locked(order)
        if payment is not None:
            return payment, ""
    assert latest is not None  # the loop ran and left an attempt waiting
    return latest, NOT_CANCELLED


def _result(
    order: Order,
    payment: Payment,
    *,
    replayed: bool,
    message: str = "",
    action_secret: str = "",
) -> CheckoutResult:
    order.refresh_from_db()
    if payment.status == PaymentStatus.SUCCEEDED:
        return CheckoutResult(order, True, "", replayed)
    if payment.status == PaymentStatus.PENDING:
        return CheckoutResult(order, False, CONFIRMING, replayed, pending=True)
    return CheckoutResult(
        order,
        False,
        message or payment.message or "Payment failed.",
        replayed,
        action_secret=action_secret
        if payment.status == PaymentStatus.REQUIRES_ACTION
        else "",
    )


def order_checkout(
    *,
    step: Step,
    data: Mapping[str, str],
    payment_token: str,
    with_bump: bool,
    nonce: str = "",
    offer_id: str = "",
    variant_id: int | None = None,
    visitor_id: uuid.UUID | None = None,
    touch: Mapping[str, str] | None = None,
    ip_address: str | None = None,
    user_agent: str = "",
) -> CheckoutResult:
    """Create the lead, order and items, then charge; safe to call many times at
    once: every call for one form returns the outcome of its one charge."""
    payment_token = (payment_token or "").strip()
    if not payment_token:
        raise ValidationError({"card": "Enter your card number."})
    _payment_token_check(payment_token, gateways.get_gateway().name)
    order, created = _order_open(
        step=step,
        data=data,
        nonce=nonce,
        with_bump=with_bump,
        offer_id=offer_id,
        variant_id=variant_id,
        visitor_id=visitor_id,
        touch=touch,
        ip_address=ip_address,
        user_agent=user_agent,
    )
    payment, refused = _attempt(order)
    if refused:
        return _result(order, payment, replayed=not created, message=refused)
    gateway = gateways.get_gateway(order.gateway)
    email = order.lead.email

    def call(p: Payment) -> ChargeResult:
        return gateway.charge(
            amount_minor=p.amount_minor,
            currency=p.currency,
            payment_token=payment_token,
            email=email,
            description=f"Order {order.public_id}",
            idempotency_key=p.idempotency_key,
            save_for_later=True,
        )

    payment, result = charge_once(payment=payment, call=call)
    return _result(
        order,
        payment,
        replayed=not created or result is None,
        message=result.message if result else "",
        action_secret=result.action_secret if result else "",
    )


def order_confirm(*, order: Order) -> CheckoutResult:
    """Ask the gateway, never the browser, how the order form's payment ended:
    after the bank's check (3-D Secure), or when the gateway did not answer.

    Only the gateway's own answer can mark the order paid; a reload finds it
    settled and changes nothing.
    """
    payment = _checkout_payments(order).select_related("order").first()
    if payment is None:
        return CheckoutResult(order, False, "There is no payment to confirm.")
    if payment.status == PaymentStatus.SUCCEEDED:
        return _result(order, payment, replayed=True)
    if payment.status == PaymentStatus.PENDING:
        if payment.sent_at is None:
            return _result(order, payment, replayed=True)  # being charged right now
        try:
            result = payment_ask_gateway(payment)
        except GatewayError:
            return _result(order, payment, replayed=True)
        if result.status == "requires_action":
            return _result(order, payment, replayed=True)
        return _result(
            order, payment_settle(payment=payment, result=result), replayed=True
        )
    if payment.status != PaymentStatus.REQUIRES_ACTION or not payment.reference:
        return CheckoutResult(
            order, False, payment.message or "This payment cannot be confirmed."
        )
    try:
        result = gateways.get_gateway(order.gateway).retrieve(
            reference=payment.reference
        )
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
    payment = payment_settle(payment=payment, result=result)
    order.refresh_from_db()
    return CheckoutResult(
        order,
        payment.status == PaymentStatus.SUCCEEDED,
        result.message or ("" if result.succeeded else "The payment failed."),
    )
