"""Payment gateways behind one small interface; see base.py."""

from __future__ import annotations

from django.conf import settings
from django.utils.crypto import salted_hmac

from .base import (
    ChargeResult,
    GatewayError,
    PaymentGateway,
    RefundResult,
    WebhookEvent,
)

__all__ = [
    "ChargeResult",
    "GatewayError",
    "PaymentGateway",
    "RefundResult",
    "WebhookEvent",
    "get_gateway",
]


def get_gateway(name: str | None = None) -> PaymentGateway:
    """The configured gateway: `test` (built in) or `stripe`."""
    name = name or settings.PAYMENT_GATEWAY
    if name == "test":
        from .testgateway import TestGateway

        return TestGateway(
            webhook_secret=salted_hmac("leads.test-gateway", "webhooks").hexdigest()
        )
    if name == "stripe":
        from .stripe import StripeGateway

        return StripeGateway(
            api_key=settings.STRIPE_SECRET_KEY,
            webhook_secret=settings.STRIPE_WEBHOOK_SECRET,
        )
    raise ValueError(f"Unknown payment gateway {name!r}")
