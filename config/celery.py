from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("openfunnels")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

HEARTBEAT_KEY = "openfunnels:worker:heartbeat"


@app.task(ignore_result=True)
def heartbeat_task() -> None:
    """Let /healthz tell whether a worker is alive: beat sends this every 30 s."""
    import time

    from django.core.cache import cache

    cache.set(HEARTBEAT_KEY, time.time(), timeout=300)


@worker_ready.connect
def _announce_worker(**kwargs: object) -> None:
    heartbeat_task.delay()
