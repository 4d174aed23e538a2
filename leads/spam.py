"""Bot and abuse guards for public forms: honeypot, fill time, rate limits (Redis)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from django.core import signing

from analytics import selectors as analytics_selectors
from analytics import shipper
from config import ratelimit
from funnels.public_forms import (
    HONEYPOT_FIELD,
    MAX_AGE_SECONDS,
    FormToken,
    form_token_read,
)

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


EDGE_TOKEN_WAIT_SECONDS = 2.0


def check_edge_token(
    request_id: str | None, *, step_id: int, now: float | None = None
) -> FormToken:
    """The token of a form on a page nginx served (pages.edge): the view's own
    request id, which nginx logged and set in the ``oft_<step>`` cookie.

    Valid when a view of this step with that id is stored, or still in the tail
    of a view log (the shipper lags), at least MIN_FILL_SECONDS ago and at most
    a day. A bot must fetch the page to get one; each id is accepted for
    one submission (it is the submission's nonce, unique per workspace).
    """
    now = now if now is not None else time.time()  # when the post arrived
    try:
        event_id = uuid.UUID(hex=request_id or "")
    except ValueError:
        raise SpamError(
            "This form is not valid. Reload the page and try again."
        ) from None
    seen = analytics_selectors.view_logged(event_id=event_id, step_id=step_id)
    deadline = time.monotonic() + EDGE_TOKEN_WAIT_SECONDS
    while seen is None:
        # Not shipped yet: the line in the log is proof enough (nginx writes its
        # buffer every second, so it may take a moment to appear).
        line = shipper.view_in_logs(event_id.hex, step_id=step_id)
        if line is not None:
            try:
                shown = datetime.fromtimestamp(float(line["t"]), UTC)
                variant = int(str(line.get("p") or "").split("-", 1)[0])
            except (KeyError, TypeError, ValueError):
                break
            seen = (shown, variant)
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
        seen = analytics_selectors.view_logged(event_id=event_id, step_id=step_id)
    if seen is None:
        raise SpamError("This form is not valid. Reload the page and try again.")
    shown_at, variant_id = seen
    elapsed = now - shown_at.timestamp()
    if elapsed > MAX_AGE_SECONDS:
        raise SpamError("This form has expired. Reload the page and try again.")
    if elapsed < MIN_FILL_SECONDS:
        raise SpamError("That was quick! Please wait a moment and send the form again.")
    return FormToken(
        step_id=step_id,
        issued_at=shown_at.timestamp(),
        nonce=event_id.hex,
        variant_id=variant_id,
    )


def check_honeypot(data: dict) -> None:
    if (data.get(HONEYPOT_FIELD) or "").strip():
        raise SpamError("Your submission could not be accepted.")


def rate_limit(key: str, *, limit: int, window_seconds: int) -> None:
    """Allow `limit` hits per window; with Redis down, no limit rather than an error."""
    if not ratelimit.allow(key, limit=limit, window_seconds=window_seconds):
        raise SpamError(
            "Too many submissions. Please wait a few minutes and try again.", status=429
        )
