"""Stripe via the official library: PaymentIntents, saved methods, signed webhooks."""

from __future__ import annotations

import stripe

from .base import ChargeResult, GatewayError, RefundResult, WebhookEvent

_STATUS = {
    "succeeded": "succeeded",
    "requires_action": "requires_action",
    "requires_payment_method": "declined",
    "canceled": "declined",
}


def _id(value: object) -> str:
    """Stripe gives either an id or an expanded object with an id."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


class StripeGateway:
    name = "stripe"
    signature_header = "Stripe-Signature"

    def __init__(
        self,
        *,
        api_key: str,
        webhook_secret: str,
        http_client: stripe.HTTPClient | None = None,
    ) -> None:
        self.client = stripe.StripeClient(
            api_key, http_client=http_client, max_network_retries=2
        )
        self.webhook_secret = webhook_secret

    def _intent_result(self, intent: stripe.PaymentIntent) -> ChargeResult:
        data = intent.to_dict()
        status = _STATUS.get(data.get("status", ""))
        if status is None:  # "processing" and friends: outcome not known yet
            raise GatewayError(f"Payment {data.get('id')} is {data.get('status')}")
        message = ""
        if status == "requires_action":
            message = (
                "Your bank needs to confirm this payment. Please try another card."
            )
        elif status == "declined":
            error = data.get("last_payment_error") or {}
            message = error.get("message") or "Your card was declined."
        return ChargeResult(
            status,
            reference=data["id"],
            customer=_id(data.get("customer")),
            payment_method=_id(data.get("payment_method")),
            message=message,
            action_secret=str(data.get("client_secret") or "")
            if status == "requires_action"
            else "",
            raw=data,
        )

    def _call(self, func, params: dict, key: str):
        try:
            return func(params=params, options={"idempotency_key": key})
        except stripe.CardError as exc:
            error = (exc.json_body or {}).get("error") or {}
            return ChargeResult(
                "declined",
                reference=_id(error.get("payment_intent")),
                message=exc.user_message or "Your card was declined.",
            )
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise GatewayError(str(exc)) from exc
        except stripe.APIError as exc:
            raise GatewayError(str(exc)) from exc

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
        params: dict = {
            "amount": amount_minor,
            "currency": currency.lower(),
            "payment_method": payment_token,
            "confirm": True,
            "description": description,
            "receipt_email": email,
            "metadata": {"payment_key": idempotency_key},
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        }
        if save_for_later:
            customer = self._call(
                self.client.v1.customers.create,
                {"email": email},
                f"{idempotency_key}-customer",
            )
            if isinstance(customer, ChargeResult):
                return customer
            params["customer"] = customer.id
            params["setup_future_usage"] = "off_session"
        result = self._call(
            self.client.v1.payment_intents.create, params, idempotency_key
        )
        return (
            result if isinstance(result, ChargeResult) else self._intent_result(result)
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
        params = {
            "amount": amount_minor,
            "currency": currency.lower(),
            "customer": customer,
            "payment_method": payment_method,
            "off_session": True,
            "confirm": True,
            "description": description,
            "metadata": {"payment_key": idempotency_key},
        }
        result = self._call(
            self.client.v1.payment_intents.create, params, idempotency_key
        )
        return (
            result if isinstance(result, ChargeResult) else self._intent_result(result)
        )

    def refund(
        self, *, reference: str, amount_minor: int, idempotency_key: str
    ) -> RefundResult:
        try:
            refund = self.client.v1.refunds.create(
                params={"payment_intent": reference, "amount": amount_minor},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise GatewayError(str(exc)) from exc
        status = (
            refund.status if refund.status in {"succeeded", "failed"} else "pending"
        )
        return RefundResult(refund.id, refund.amount, status)

    def retrieve(self, *, reference: str) -> ChargeResult:
        try:
            intent = self.client.v1.payment_intents.retrieve(reference)
        except stripe.StripeError as exc:
            raise GatewayError(str(exc)) from exc
        return self._intent_result(intent)

    def cancel(self, *, reference: str) -> ChargeResult:
        try:
            intent = self.client.v1.payment_intents.cancel(
                reference, params={"cancellation_reason": "abandoned"}
            )
        except stripe.InvalidRequestError:
            # Not cancelable any more (it succeeded, failed or was cancelled
            # already): its state says which.
            return self.retrieve(reference=reference)
        except stripe.StripeError as exc:
            raise GatewayError(str(exc)) from exc
        return self._intent_result(intent)

    def lookup(self, *, idempotency_key: str) -> ChargeResult:
        try:
            found = self.client.v1.payment_intents.search(
                params={"query": f"metadata['payment_key']:'{idempotency_key}'"}
            )
        except stripe.StripeError as exc:
            raise GatewayError(str(exc)) from exc
        if not found.data:
            return ChargeResult("declined", message="Not charged.")
        return self._intent_result(found.data[0])

    def verify_webhook(self, *, payload: bytes, signature: str) -> WebhookEvent:
        """Check `Stripe-Signature` with the official library, then normalise."""
        if not self.webhook_secret:
            raise ValueError("STRIPE_WEBHOOK_SECRET is not set")
        try:
            event = self.client.construct_event(payload, signature, self.webhook_secret)
        except stripe.SignatureVerificationError:
            raise ValueError("bad signature") from None
        except ValueError:
            raise ValueError("malformed event") from None
        try:
            obj = event.data.object.to_dict()
            return _normalise(str(event.id), str(event.type), obj)
        except (AttributeError, KeyError, TypeError, ValueError):
            raise ValueError("malformed event") from None


def _normalise(event_id: str, event_type: str, obj: dict) -> WebhookEvent:
    if not event_id or not isinstance(obj, dict):
        raise ValueError("malformed event")
    metadata = obj.get("metadata") or {}
    common = {
        "id": event_id,
        "type": event_type,
        "data": obj,
        "currency": str(obj.get("currency") or "").upper(),
        "customer": _id(obj.get("customer")),
        "payment_method": _id(obj.get("payment_method")),
        "payment_key": str(metadata.get("payment_key") or ""),
    }
    if event_type in {"payment_intent.succeeded", "payment_intent.payment_failed"}:
        if obj.get("object") != "payment_intent" or not obj.get("id"):
            raise ValueError("malformed event")
        succeeded = event_type == "payment_intent.succeeded"
        error = obj.get("last_payment_error") or {}
        return WebhookEvent(
            **common,
            kind="payment.succeeded" if succeeded else "payment.failed",
            reference=str(obj["id"]),
            amount_minor=int(
                (obj.get("amount_received") if succeeded else None)
                or obj.get("amount")
                or 0
            ),
            message="" if succeeded else str(error.get("message") or "Declined."),
        )
    if event_type == "charge.refunded":
        if obj.get("object") != "charge" or not _id(obj.get("payment_intent")):
            raise ValueError("malformed event")
        return WebhookEvent(
            **common,
            kind="payment.refunded",
            reference=_id(obj.get("payment_intent")),
            amount_minor=int(obj.get("amount_captured") or obj.get("amount") or 0),
            refunded_minor=int(obj.get("amount_refunded") or 0),
        )
    # Anything else (disputes, payouts, ...) is acknowledged and not used.
    return WebhookEvent(
        **common,
        reference=_id(obj.get("payment_intent")) or str(obj.get("id") or ""),
    )
