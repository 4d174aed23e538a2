"""Webhooks from the payment gateway: POST /webhooks/<gateway>/.

Public and CSRF-exempt; the gateway's signature is the only credential. Stripe
signs with STRIPE_WEBHOOK_SECRET (one Stripe account for the whole installation,
like STRIPE_SECRET_KEY; the payment's own row says which workspace it belongs to).
The built-in test gateway signs with a key derived from SECRET_KEY and is only
listening while PAYMENT_GATEWAY=test.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import checkout
from .gateways import get_gateway

logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 256 * 1024  # Stripe events are a few kB


def _refuse(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@csrf_exempt
@require_POST
def gateway_webhook(request: HttpRequest, gateway: str) -> HttpResponse:
    enabled = {"stripe"} | ({"test"} if settings.PAYMENT_GATEWAY == "test" else set())
    if gateway not in enabled:
        return _refuse(f"No {gateway} webhooks here.", 404)
    if gateway == "stripe" and not settings.STRIPE_WEBHOOK_SECRET:
        return _refuse("Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET).")
    payload = request.body
    if len(payload) > MAX_BODY_BYTES:
        return _refuse("Payload too large.", 413)
    gw = get_gateway(gateway)
    signature = request.headers.get(gw.signature_header, "")
    if not signature:
        return _refuse(f"Missing {gw.signature_header} header.")
    try:
        event = gw.verify_webhook(payload=payload, signature=signature)
    except ValueError as exc:
        return _refuse(f"Refused: {exc}.")
    try:
        record = checkout.gateway_event_apply(gateway=gateway, event=event)
    except ValidationError as exc:
        logger.warning("%s webhook %s refused: %s", gateway, event.id, exc.messages)
        return _refuse(" ".join(exc.messages))
    return JsonResponse({"event": record.event_id, "outcome": record.outcome})
