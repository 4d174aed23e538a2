"""Fixed-window counters in Redis (the Django cache): the project's one rate limiter.

Used by public forms (leads.spam), log-in, password reset and sign-up (accounts).
A counter lives ``window_seconds`` from its first hit. With Redis unreachable every
call allows (and logs once per call site): a limiter must not take the page down.
"""

from __future__ import annotations

import logging

from django.core.cache import cache

logger = logging.getLogger(__name__)

_PREFIX = "rl:"


def hit(key: str, *, window_seconds: int) -> int | None:
    """Count one hit; return the count in the current window (None: Redis down)."""
    cache_key = _PREFIX + key
    try:
        if cache.add(cache_key, 1, timeout=window_seconds):
            return 1
        try:
            return cache.incr(cache_key)
        except ValueError:  # expired between add and incr: a new window
            cache.add(cache_key, 1, timeout=window_seconds)
            return 1
    except Exception:
        logger.warning("rate limiter unavailable (Redis down?); allowing %s", key)
        return None


def count(key: str) -> int:
    """Hits in the current window, without counting one."""
    try:
        return int(cache.get(_PREFIX + key) or 0)
    except Exception:
        logger.warning("rate limiter unavailable (Redis down?); allowing %s", key)
        return 0


def allow(key: str, *, limit: int, window_seconds: int) -> bool:
    """Count one hit and say whether it is within ``limit`` per window."""
    seen = hit(key, window_seconds=window_seconds)
    return seen is None or seen <= limit


def clear(key: str) -> None:
    try:
        cache.delete(_PREFIX + key)
    except Exception:
        logger.warning("rate limiter unavailable (Redis down?); not clearing %s", key)
