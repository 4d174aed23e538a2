"""Django-compatible signatures without Django's per-call key derivation.

``django.core.signing`` derives the HMAC key (a SHA-256 of salt + SECRET_KEY) on
every call. The public page server signs two values per view (the form token and,
for new visitors, the visitor cookie), so it keeps the derived key per (salt,
SECRET_KEY). The output is byte-for-byte what ``signing.Signer`` /
``signing.TimestampSigner`` produce, and is read back with them.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
from typing import Any

from django.conf import settings
from django.core.signing import b62_encode


@functools.lru_cache(maxsize=32)
def _key(salt: str, secret: str) -> bytes:
    return hashlib.sha256(f"{salt}signer{secret}".encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).strip(b"=").decode()


def sign(value: str, *, salt: str) -> str:
    """Same as ``signing.Signer(salt=salt).sign(value)`` (sha256, ":")."""
    digest = hmac.new(
        _key(salt, settings.SECRET_KEY), value.encode(), hashlib.sha256
    ).digest()
    return f"{value}:{_b64(digest)}"


def sign_timestamped(value: str, *, salt: str, now: float | None = None) -> str:
    """Same as ``signing.TimestampSigner(salt=salt).sign(value)``."""
    stamp = b62_encode(int(now if now is not None else time.time()))
    return sign(f"{value}:{stamp}", salt=salt)


def dumps(obj: Any, *, salt: str, now: float | None = None) -> str:
    """Same as ``signing.dumps(obj, salt=salt)`` (uncompressed JSON)."""
    data = json.dumps(obj, separators=(",", ":")).encode("latin-1")
    return sign_timestamped(_b64(data), salt=salt, now=now)
