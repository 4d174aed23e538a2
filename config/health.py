"""GET /healthz: 200 when Postgres and Redis answer, 503 naming what is down."""

from __future__ import annotations

import time

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from .celery import HEARTBEAT_KEY


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "down"; say which
        return f"down: {type(exc).__name__}"
    return "ok"


def _check_redis() -> tuple[str, float | None]:
    try:
        client = cache._cache.get_client(write=False)
        client.ping()
        beat = cache.get(HEARTBEAT_KEY)
    except Exception as exc:
        return f"down: {type(exc).__name__}", None
    return "ok", beat


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    database = _check_database()
    redis, heartbeat = _check_redis()
    if heartbeat is None:
        worker = "unknown"
    else:
        age = time.time() - float(heartbeat)
        worker = "ok" if age < 120 else f"stale ({int(age)} s since last heartbeat)"
    down = [
        name
        for name, state in (("database", database), ("redis", redis))
        if state != "ok"
    ]
    body = {
        "status": "ok" if not down else "down: " + ", ".join(down),
        "database": database,
        "redis": redis,
        "worker": worker,
    }
    return JsonResponse(body, status=503 if down else 200)
