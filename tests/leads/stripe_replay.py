"""Stripe's HTTP API answered from recorded responses; webhooks signed like Stripe."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from urllib.parse import parse_qs

import stripe

from leads.gateways.stripe import StripeGateway

RECORDINGS = json.loads((Path(__file__).parent / "recordings/stripe.json").read_text())


class ReplayClient(stripe.HTTPClient):
    """Answers Stripe API calls with recorded responses, in order; keeps the asks."""

    name = "replay"

    def __init__(self, responses: list[tuple[int, str]]) -> None:
        super().__init__()
        self.responses = list(responses)
        self.calls: list[tuple[str, str, dict, dict]] = []

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        body = parse_qs(
            post_data.decode() if isinstance(post_data, bytes) else post_data or ""
        )
        self.calls.append((method, url, dict(headers or {}), body))
        status, name = self.responses.pop(0)
        return json.dumps(RECORDINGS[name]), status, {"request-id": "req_replay"}

    def close(self) -> None:
        pass


def stripe_replay(
    responses, webhook_secret: str = "whsec_replay"
) -> tuple[StripeGateway, ReplayClient]:
    client = ReplayClient(responses)
    gateway = StripeGateway(
        api_key="sk_test_replay", webhook_secret=webhook_secret, http_client=client
    )
    return gateway, client


def stripe_signature(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header exactly as Stripe computes it."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256)
    return f"t={ts},v1={mac.hexdigest()}"
