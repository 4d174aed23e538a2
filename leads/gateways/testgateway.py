"""The built-in test gateway: deterministic cards, no outside host.

| card number          | outcome                                  |
|----------------------|------------------------------------------|
| 4242 4242 4242 4242  | succeeds; the card is saved for one-click |
| 4000 0000 0000 0002  | declined                                  |
| 4000 0025 0000 3155  | needs authentication (3-D Secure)         |
| 4000 0000 0000 0119  | the gateway times out (outcome unknown)   |

Everything is derived from the idempotency key, so the same key always gives the same
reference: retries and double clicks cannot create a second payment.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from .base import ChargeResult, GatewayError, RefundResult, WebhookEvent

SUCCESS_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
AUTH_CARD = "4000002500003155"
TIMEOUT_CARD = "4000000000000119"


def _digits(value: str) -> str:
    return "".join(ch for ch in value or "" if ch.isdigit())


def _ref(prefix: str, key: str) -> str:
    return f"{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def payment_reference(idempotency_key: str) -> str:
    """The id this gateway gives the payment made with that key (webhooks say it)."""
    return _ref("tpay", idempotency_key)


class TestGateway:
    name = "test"
    signature_header = "X-Test-Signature"
    __test__ = False  # not a pytest test class

    def __init__(self, *, webhook_secret: str) -> None:
        self.webhook_secret = webhook_secret

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
        card = _digits(payment_token)
        if amount_minor <= 0:
            return ChargeResult("declined", message="The amount must be positive.")
        if card == TIMEOUT_CARD:
            raise GatewayError("The payment gateway did not answer in time.")
        if card == DECLINED_CARD:
            return ChargeResult(
                "declined",
                reference=_ref("tpay", idempotency_key),
                message="Your card was declined. Please use another card.",
            )
        if card == AUTH_CARD:
            return ChargeResult(
                "requires_action",
                reference=_ref("tpay", idempotency_key),
                message="Your bank needs to confirm this payment (3-D Secure). "
                "Please use another card.",
            )
        if card != SUCCESS_CARD:
            return ChargeResult(
                "declined", message="This card number is not valid in test mode."
            )
        return ChargeResult(
            "succeeded",
            reference=_ref("tpay", idempotency_key),
            customer=_ref("tcus", email.lower()) if save_for_later else "",
            payment_method=f"tpm_{card[-4:]}" if save_for_later else "",
        )

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
        if not (customer.startswith("tcus_") and payment_method.startswith("tpm_")):
            return ChargeResult("declined", message="No saved card to charge.")
        return ChargeResult(
            "succeeded",
            reference=_ref("tpay", idempotency_key),
            customer=customer,
            payment_method=payment_method,
        )

    def refund(
        self, *, reference: str, amount_minor: int, idempotency_key: str
    ) -> RefundResult:
        return RefundResult(_ref("tre", idempotency_key), amount_minor, "succeeded")

    def retrieve(self, *, reference: str) -> ChargeResult:
        # A timed-out test charge never reached the "bank": nothing was taken.
        return ChargeResult("declined", reference=reference, message="Not charged.")

    def lookup(self, *, idempotency_key: str) -> ChargeResult:
        return ChargeResult("declined", message="Not charged (the gateway timed out).")

    def cancel(self, *, reference: str) -> ChargeResult:
        # Test-mode authentication is never completed: cancelling always wins.
        return ChargeResult("declined", reference=reference, message="Canceled.")

    def sign(self, payload: bytes) -> str:
        return hmac.new(self.webhook_secret.encode(), payload, "sha256").hexdigest()

    def verify_webhook(self, *, payload: bytes, signature: str) -> WebhookEvent:
        """Events signed with `sign` (hex HMAC-SHA256 of the body), shaped like
        {"id", "type": "payment.succeeded" | "payment.failed" | "payment.refunded",
        "reference", "payment_key", "data": {"amount_minor", "currency",
        "refunded_minor", "message"}}."""
        if not hmac.compare_digest(self.sign(payload), signature or ""):
            raise ValueError("bad signature")
        try:
            body = json.loads(payload)
            data = body.get("data") or {}
            kind = str(body["type"])

            def minor(key: str) -> int | None:
                value = data.get(key)
                if value is None:
                    return None
                if isinstance(value, bool) or not isinstance(value, int):
                    raise TypeError(key)
                return value

            return WebhookEvent(
                id=str(body["id"]),
                type=kind,
                reference=str(body.get("reference") or ""),
                data=data,
                kind=kind if kind in _KINDS else "",
                payment_key=str(body.get("payment_key") or ""),
                amount_minor=minor("amount_minor"),
                currency=str(data.get("currency") or "").upper(),
                refunded_minor=minor("refunded_minor"),
                customer=str(data.get("customer") or ""),
                payment_method=str(data.get("payment_method") or ""),
                message=str(data.get("message") or "")[:300],
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ValueError("malformed event") from None


_KINDS = {"payment.succeeded", "payment.failed", "payment.refunded"}
