from __future__ import annotations

import uuid

import pytest

from accounts.models import Workspace
from analytics import ingest, services
from analytics.models import Event
from analytics.tasks import events_flush_task

from .conftest import wait_for


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_real_worker_flushes_stream_into_postgres(celery_worker):
    """events_flush_task sent through Redis to a real worker stores every event once."""
    workspace = Workspace.objects.create(name="Worker test")
    visitor = uuid.uuid4()
    sent = services.events_record_many(
        {
            "workspace_id": workspace.pk,
            "funnel_id": 1,
            "step_id": 2,
            "visitor_id": visitor,
            "kind": "view",
        }
        for _ in range(250)
    )
    assert sent == 250
    assert Event.objects.filter(workspace_id=workspace.pk).count() == 0

    events_flush_task.apply_async(queue=celery_worker)

    assert wait_for(
        lambda: Event.objects.filter(workspace_id=workspace.pk).count() == 250,
        timeout=60,
    )
    assert wait_for(lambda: ingest.redis_client().xlen(ingest.STREAM_KEY) == 0)
    # A second delivery of the task finds nothing new.
    events_flush_task.apply_async(queue=celery_worker)
    services.event_record(
        workspace_id=workspace.pk,
        funnel_id=1,
        step_id=2,
        visitor_id=visitor,
        kind="optin",
    )
    events_flush_task.apply_async(queue=celery_worker)
    assert wait_for(
        lambda: Event.objects.filter(workspace_id=workspace.pk).count() == 251,
        timeout=60,
    )
