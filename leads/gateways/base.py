from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

ChargeStatus = Literal["succeeded", "declined", "requires_action"]


class GatewayError(Exception):
    """A transient failure (timeout, network, gateway outage): the outcome is unknown.

    The order stays pending and a reconciliation task asks the gateway again later.
    """


@dataclass(frozen=True)
class ChargeResult:
    status: ChargeStatus
    reference: str = ""  # the gateway's payment id
    customer: str = ""  # saved customer, for one-click upsells
    payment_method: str = ""  # saved payment method, for one-click upsells
    message: str = ""  # shown to the visitor when not succeeded
    # requires_action: what the browser needs to finish it (Stripe's client secret).
    action_secret: str = field(default="", repr=False)
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


@dataclass(frozen=True)
class RefundResult:
    reference: str
    amount_minor: int
    status: Literal["succeeded", "pending", "failed"]


# What a verified gateway webhook means for us, whatever the gateway calls it.
WebhookKind = Literal["payment.succeeded", "payment.failed", "payment.refunded", ""]


@dataclass(frozen=True)
class WebhookEvent:
    """A verified gateway event, normalised; `kind` is "" for events we do not use."""

    id: str
    type: str  # the gateway's own name, kept for the log
    reference: str  # the payment the event is about
    data: dict = field(default_factory=dict, compare=False, repr=False)
    kind: WebhookKind = ""
    payment_key: str = ""  # our idempotency key, when the gateway echoes it back
    amount_minor: int | None = None  # what was charged
    currency: str = ""
    refunded_minor: int | None = None  # payment.refunded: refunded so far, in total
    customer: str = ""
    payment_method: str = ""
    message: str = ""


class PaymentGateway(Protocol):
    name: str
    signature_header: str  # the HTTP header carrying a webhook's signature

    def charge(
        self,
        *,
        amount_minor: int,
        currency: str,
        payment_token: str,
        email: str,
        description: str,
        idempotency_key: str,
        save_for_later: bool,
    ) -> ChargeResult:
        """Charge a payment method the visitor just entered."""

    def charge_saved(
        self,
        *,
        amount_minor: int,
        currency: str,
        customer: str,
        payment_method: str,
        description: str,
        idempotency_key: str,
    ) -> ChargeResult:
        """Charge the method saved by `charge`, without the visitor (one-click)."""

    def refund(
        self, *, reference: str, amount_minor: int, idempotency_key: str
    ) -> RefundResult: ...

    def retrieve(self, *, reference: str) -> ChargeResult:
        """Ask the gateway for the state of a payment (reconciliation)."""

    def lookup(self, *, idempotency_key: str) -> ChargeResult:
        """Find the payment made with this key (after a timeout left no reference)."""

    def cancel(self, *, reference: str) -> ChargeResult:
        """Cancel a payment still waiting for the visitor's bank (3-D Secure), so
        it can never be confirmed later; answer its state afterwards: "declined"
        once cancelled (or when it had failed), "succeeded" when the bank's check
        went through first. Raises GatewayError when it does not answer."""

    def verify_webhook(self, *, payload: bytes, signature: str) -> WebhookEvent:
        """Verify and parse a webhook; raise ValueError for a bad signature or body."""
