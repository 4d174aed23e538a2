from __future__ import annotations

import logging
import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("openfunnels")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)
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


def enqueue_on_commit(task, *args: object, **options: object) -> None:
    """Queue `task` once the transaction commits; never fail the caller for it.

    A request that has already committed a lead or an order must not answer 500
    because the broker is unreachable: the failure is logged, and the work is
    picked up again by the sweeper that owns it (e.g. pending webhook deliveries).
    """
    from django.db import transaction

    def send() -> None:
        try:
            task.apply_async(args, retry=False, **options)
        except Exception:
            logger.warning("could not queue %s%r: broker unreachable", task.name, args)

    transaction.on_commit(send)
