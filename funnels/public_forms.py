"""Signed tokens in public forms (opt-in, order): when and where a form was shown.

The published page's HTML is rendered once; the serving view swaps
FORM_TOKEN_PLACEHOLDER for a fresh token per response, so each served form carries its
own one-time nonce (for replay detection) and the time it was shown (for the minimum
fill time).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from django.core import signing

from config import fastsign

FORM_TOKEN_FIELD = "_of"
FORM_TOKEN_PLACEHOLDER = "__OF_FORM_TOKEN__"
HONEYPOT_FIELD = "website"
# Pages served as files by nginx (pages.edge) carry this instead of a token; the
# visitor's ``oft_<step>`` cookie holds the view's request id (leads.spam).
EDGE_FORM_TOKEN = "edge"
EDGE_TOKEN_COOKIE_PREFIX = "oft_"
_SALT = "openfunnels.public-form"
MAX_AGE_SECONDS = 60 * 60 * 24


@dataclass(frozen=True)
class FormToken:
    step_id: int
    issued_at: float
    nonce: str
    # The page variant (pages.Page pk) the form was shown on, for split tests.
    variant_id: int | None = None


def form_token_issue(
    *, step_id: int, variant_id: int | None = None, now: float | None = None
) -> str:
    payload = {
        "s": step_id,
        "t": round(now if now is not None else time.time(), 2),
        "n": secrets.token_urlsafe(12),
    }
    if variant_id is not None:
        payload["v"] = variant_id
    # signing.dumps(payload, salt=_SALT) without re-deriving the key per page view.
    return fastsign.dumps(payload, salt=_SALT)


def form_token_read(token: str) -> FormToken:
    """Raise signing.BadSignature (or SignatureExpired) for a forged or old token."""
    payload = signing.loads(token or "", salt=_SALT, max_age=MAX_AGE_SECONDS)
    try:
        variant = payload.get("v")
        return FormToken(
            step_id=int(payload["s"]),
            issued_at=float(payload["t"]),
            nonce=payload["n"],
            variant_id=int(variant) if variant is not None else None,
        )
    except (KeyError, TypeError, ValueError):
        raise signing.BadSignature("malformed form token") from None
