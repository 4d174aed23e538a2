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
        try:
            event = self.client.construct_event(payload, signature, self.webhook_secret)
        except (stripe.SignatureVerificationError, ValueError):
            raise ValueError("bad signature") from None
        obj = event.data.object.to_dict()
        return WebhookEvent(
            id=event.id,
            type=event.type,
            reference=_id(obj.get("payment_intent")) or obj.get("id") or "",
            data=obj,
        )
