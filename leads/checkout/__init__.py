"""Money: checkout, one-click upsells, refunds, settlement, abandonment, gateway events.

Every gateway call is first recorded as a Payment with a unique idempotency key
(committed before the call) for one (order, step, attempt), then made by whichever
request holds that payment's row lock; a concurrent request waits for the lock and
reads the outcome, so a double click, a reload or a replayed post is charged once and
answered alike. Decisions that create payments (a retry after a decline, an upsell,
a refund) are taken under the order's row lock. When the gateway does not answer, the
payment stays pending ("we are confirming your payment") and `orders_reconcile` or a
gateway webhook settles it later.
"""

from __future__ import annotations

from ..gateways import ChargeResult
from .abandonment import ABANDON_AFTER, ABANDON_LOOKBACK, checkouts_mark_abandoned
from .checkout import CheckoutResult, order_checkout, order_confirm, order_totals
from .gateway_events import gateway_event_apply
from .refunds import order_refund
from .settlement import order_payload, orders_reconcile, payment_settle
from .upsells import UpsellResult, upsell_accept, upsell_decline

__all__ = [
    "ABANDON_AFTER",
    "ABANDON_LOOKBACK",
    "ChargeResult",
    "CheckoutResult",
    "UpsellResult",
    "checkouts_mark_abandoned",
    "gateway_event_apply",
    "order_checkout",
    "order_confirm",
    "order_payload",
    "order_refund",
    "order_totals",
    "orders_reconcile",
    "payment_settle",
    "upsell_accept",
    "upsell_decline",
]
