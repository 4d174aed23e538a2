from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(acks_late=True, ignore_result=True)
def events_flush_task() -> int:
    """Move queued events from the Redis stream into Postgres (idempotent)."""
    return services.events_flush()


@shared_task(acks_late=True, ignore_result=True)
def event_partitions_ensure_task() -> list[str]:
    """Create the monthly event partitions ahead of time (idempotent)."""
    return services.event_partitions_ensure()


@shared_task(acks_late=True, ignore_result=True)
def events_retention_task() -> dict[str, int]:
    """Delete raw events past each workspace's retention (idempotent)."""
    return services.events_retention_apply()


@shared_task(acks_late=True, ignore_result=True)
def rollups_update_task() -> int:
    """Fold new events into the dashboard rollups (idempotent; serialised by a lock)."""
    from .rollups import rollups_update

    run = rollups_update()
    return run.visitors if run else 0
