"""Bot and abuse guards for public forms: honeypot, fill time, rate limits (Redis)."""

from __future__ import annotations

import time

from django.core import signing

from config import ratelimit
from funnels.public_forms import HONEYPOT_FIELD, FormToken, form_token_read

MIN_FILL_SECONDS = 2.0


class SpamError(Exception):
    """The post looks automated or abusive; the message is safe to show."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def check_form_token(
    token: str, *, step_id: int, now: float | None = None
) -> FormToken:
    try:
        parsed = form_token_read(token)
    except signing.SignatureExpired:
        raise SpamError(
            "This form has expired. Reload the page and try again."
        ) from None
    except signing.BadSignature:
        raise SpamError(
            "This form is not valid. Reload the page and try again."
        ) from None
    if parsed.step_id != step_id:
        raise SpamError("This form belongs to another page.")
    elapsed = (now if now is not None else time.time()) - parsed.issued_at
    if elapsed < MIN_FILL_SECONDS:
        raise SpamError("That was quick! Please wait a moment and send the form again.")
    return parsed


def check_honeypot(data: dict) -> None:
    if (data.get(HONEYPOT_FIELD) or "").strip():
        raise SpamError("Your submission could not be accepted.")


def rate_limit(key: str, *, limit: int, window_seconds: int) -> None:
    """Allow `limit` hits per window; with Redis down, no limit rather than an error."""
    if not ratelimit.allow(key, limit=limit, window_seconds=window_seconds):
        raise SpamError(
            "Too many submissions. Please wait a few minutes and try again.", status=429
        )
