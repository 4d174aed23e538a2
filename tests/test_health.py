from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_healthz_reports_ok(client):
    """/healthz answers 200 with the state of the database and Redis."""
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["redis"] == "ok"


@pytest.mark.django_db
def test_healthz_names_redis_when_down(client, settings):
    """With Redis unreachable, /healthz answers 503 and names Redis."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2},
        }
    }
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down: redis"
    assert body["redis"].startswith("down:")
    assert body["database"] == "ok"
