from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from analytics import ingest, selectors, services
from analytics.models import Event
from tests.factories import WorkspaceFactory


def stored(workspace) -> int:
    return Event.objects.filter(workspace_id=workspace.pk).count()


def record_views(workspace, n: int, **extra) -> list[uuid.UUID]:
    visitor = uuid.uuid4()
    return [
        services.event_record(
            workspace_id=workspace.pk,
            funnel_id=1,
            step_id=2,
            visitor_id=visitor,
            kind="view",
            **extra,
        )
        for _ in range(n)
    ]


@pytest.mark.django_db
def test_stream_flush_round_trip_exact_counts(workspace):
    """Events go to the stream, not Postgres, until the flush stores them all once."""
    record_views(workspace, 5)
    services.event_record(
        workspace_id=workspace.pk,
        funnel_id=1,
        step_id=3,
        visitor_id=uuid.uuid4(),
        kind="order",
        amount_minor=4900,
        currency="eur",
        properties={"note": "tab\there\nnew line \\ back\x00slash"},
    )
    client = ingest.redis_client()
    assert client.xlen(ingest.STREAM_KEY) == 6
    assert stored(workspace) == 0

    assert services.events_flush() == 6

    assert stored(workspace) == 6
    assert client.xlen(ingest.STREAM_KEY) == 0
    assert client.xpending(ingest.STREAM_KEY, ingest.GROUP)["pending"] == 0
    order = Event.objects.get(workspace_id=workspace.pk, kind="order")
    assert order.amount_minor == 4900
    assert order.currency == "EUR"
    assert order.properties == {"note": "tab\there\nnew line \\ backslash"}
    assert services.events_flush() == 0
    assert stored(workspace) == 6


@pytest.mark.django_db
def test_batch_api_round_trip(workspace):
    """events_record_many pipelines many events into few stream entries."""
    visitor = uuid.uuid4()
    events = [
        {
            "workspace_id": workspace.pk,
            "funnel_id": 1,
            "step_id": 1 + i % 2,
            "visitor_id": visitor,
            "kind": "view",
        }
        for i in range(1203)
    ]
    assert services.events_record_many(events, chunk_size=500) == 1203
    assert ingest.redis_client().xlen(ingest.STREAM_KEY) == 3
    assert services.events_flush() == 1203
    assert stored(workspace) == 1203


@pytest.mark.django_db
def test_duplicate_event_id_counted_once(workspace):
    """The same event delivered twice, and flushed twice, is stored once."""
    event_id = uuid.uuid4()
    at = timezone.now()
    for _ in range(2):
        services.event_record(
            workspace_id=workspace.pk,
            funnel_id=1,
            step_id=2,
            visitor_id=uuid.uuid4(),
            kind="view",
            event_id=event_id,
            occurred_at=at,
        )
    assert services.events_flush() == 1
    services.event_record(
        workspace_id=workspace.pk,
        funnel_id=1,
        step_id=2,
        visitor_id=None,
        kind="view",
        event_id=event_id,
        occurred_at=at,
    )
    assert services.events_flush() == 0
    assert list(
        Event.objects.filter(workspace_id=workspace.pk).values_list("id", flat=True)
    ) == [event_id]


@pytest.mark.django_db(transaction=True)
def test_concurrent_flushes_count_each_event_once():
    """Two flushes racing over a stream full of duplicates store each id once."""
    workspace = WorkspaceFactory()
    at = timezone.now()
    ids = [uuid.uuid4() for _ in range(300)]
    for round_ in range(3):
        services.events_record_many(
            (
                {
                    "workspace_id": workspace.pk,
                    "funnel_id": 1,
                    "step_id": 2,
                    "visitor_id": None,
                    "kind": "view",
                    "event_id": event_id,
                    "occurred_at": at,
                }
                for event_id in ids
            ),
            chunk_size=7 + round_,
        )
    errors = []

    def flush(name: str) -> None:
        try:
            ingest.stream_flush(batch_size=5, consumer=name)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=flush, args=(f"c{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert stored(workspace) == 300
    assert ingest.redis_client().xlen(ingest.STREAM_KEY) == 0


@pytest.mark.django_db
def test_crash_between_commit_and_ack_is_not_double_counted(workspace):
    """A batch committed but never acknowledged is redelivered and stored once."""
    record_views(workspace, 4)
    client = ingest.redis_client()
    ingest.group_ensure(client)
    response = client.xreadgroup(
        ingest.GROUP, "crashed", {ingest.STREAM_KEY: ">"}, count=100
    )
    _ids, n = ingest.batch_store(response[0][1])  # committed, then "crash": no XACK
    assert n == 4
    assert client.xpending(ingest.STREAM_KEY, ingest.GROUP)["pending"] == 4

    assert ingest.stream_flush(claim_idle_ms=0, consumer="rescuer") == 0

    assert stored(workspace) == 4
    assert client.xpending(ingest.STREAM_KEY, ingest.GROUP)["pending"] == 0
    assert client.xlen(ingest.STREAM_KEY) == 0


@pytest.mark.django_db
def test_redis_down_events_go_straight_to_postgres(workspace, redis_down):
    """With Redis unreachable, events are stored directly; nothing raises."""
    event_id = services.event_record(
        workspace_id=workspace.pk,
        funnel_id=1,
        step_id=2,
        visitor_id=uuid.uuid4(),
        kind="optin",
    )
    assert stored(workspace) == 1
    assert Event.objects.get(workspace_id=workspace.pk).id == event_id
    assert (
        services.events_record_many(
            [
                {
                    "workspace_id": workspace.pk,
                    "funnel_id": 1,
                    "step_id": 2,
                    "visitor_id": None,
                    "kind": "view",
                }
                for _ in range(3)
            ]
        )
        == 3
    )
    assert stored(workspace) == 4


@pytest.mark.django_db
def test_month_without_partition_is_created_on_demand(workspace):
    """An event in a month with no partition yet makes the flush create it."""
    long_ago = timezone.now() - timedelta(days=800)
    services.event_record(
        workspace_id=workspace.pk,
        funnel_id=1,
        step_id=2,
        visitor_id=None,
        kind="view",
        occurred_at=long_ago,
    )
    assert services.events_flush() == 1
    assert Event.objects.get(workspace_id=workspace.pk).occurred_at == long_ago
    names = [name for name, _, _ in services._partitions()]
    assert ingest.partition_name(ingest.month_start(long_ago)) in names


@pytest.mark.django_db
def test_partitions_created_ahead():
    """The beat task's service creates this month's partition and the next two."""
    now = timezone.now()
    names = services.event_partitions_ensure(months_ahead=2, now=now)
    start = ingest.month_start(now)
    expected = []
    for _ in range(3):
        expected.append(ingest.partition_name(start))
        start = ingest.next_month(start)
    assert names == expected
    catalog = {name for name, _, _ in services._partitions()}
    assert set(expected) <= catalog


@pytest.mark.django_db
def test_unusable_event_is_dropped_without_raising(workspace):
    """A malformed event (bad visitor id) returns None instead of raising."""
    assert (
        services.event_record(
            workspace_id=workspace.pk,
            funnel_id=1,
            step_id=2,
            visitor_id="not-a-uuid",
            kind="view",
        )
        is None
    )
    assert ingest.redis_client().xlen(ingest.STREAM_KEY) == 0


@pytest.mark.django_db
def test_retention_deletes_only_old_events(workspace, other_workspace):
    """Events past a workspace's retention go; younger ones and other workspaces' stay;
    a partition past every workspace's retention is dropped whole."""
    workspace.event_retention_days = 30
    workspace.save()
    other_workspace.event_retention_days = 395
    other_workspace.save()
    now = timezone.now()

    def at(ws, days):
        services.event_record(
            workspace_id=ws.pk,
            funnel_id=1,
            step_id=2,
            visitor_id=None,
            kind="view",
            occurred_at=now - timedelta(days=days),
        )

    at(workspace, 40)
    at(workspace, 10)
    at(other_workspace, 40)
    at(other_workspace, 900)
    assert services.events_flush() == 4
    old_partition = ingest.partition_name(ingest.month_start(now - timedelta(days=900)))

    result = services.events_retention_apply(now=now)

    assert result == {"partitions_dropped": 1, "rows_deleted": 1}
    assert old_partition not in {name for name, _, _ in services._partitions()}
    ages = sorted(
        (now - e.occurred_at).days
        for e in Event.objects.filter(
            workspace_id__in=[workspace.pk, other_workspace.pk]
        )
    )
    assert ages == [10, 40]
    assert Event.objects.get(
        workspace_id=other_workspace.pk
    ).occurred_at == now - timedelta(days=40)


@pytest.mark.django_db
def test_selectors_journey_and_step_counts(workspace, other_workspace):
    """Journey lists a visitor's events oldest first; step counts are exact."""
    alice, bob = uuid.uuid4(), uuid.uuid4()
    now = timezone.now()
    plan = [
        (alice, 10, "view", 3),
        (alice, 10, "view", 2),
        (alice, 10, "optin", 1),
        (bob, 10, "view", 5),
        (bob, 11, "view", 4),
        (alice, 11, "view", 0),
    ]
    for visitor, step, kind, minutes_ago in plan:
        services.event_record(
            workspace_id=workspace.pk,
            funnel_id=7,
            step_id=step,
            visitor_id=visitor,
            kind=kind,
            occurred_at=now - timedelta(minutes=minutes_ago),
        )
    services.event_record(
        workspace_id=other_workspace.pk,
        funnel_id=7,
        step_id=10,
        visitor_id=alice,
        kind="view",
    )
    services.events_flush()

    journey = selectors.visitor_journey(workspace=workspace, public_ids=alice)
    assert [(e.step_id, e.kind) for e in journey] == [
        (10, "view"),
        (10, "view"),
        (10, "optin"),
        (11, "view"),
    ]
    counts = selectors.funnel_step_counts(workspace=workspace, funnel_id=7)
    assert counts == {
        10: selectors.StepCounts(
            step_id=10, views=3, unique_visitors=2, optins=1, orders=0
        ),
        11: selectors.StepCounts(
            step_id=11, views=2, unique_visitors=2, optins=0, orders=0
        ),
    }
    assert selectors.visitor_journey(workspace=workspace, public_ids="junk") == []


@pytest.mark.django_db
def test_malformed_stream_entry_does_not_block_the_stream(workspace):
    """A garbage line is dropped (logged); the good events around it are stored."""
    record_views(workspace, 2)
    ingest.redis_client().xadd(ingest.STREAM_KEY, {ingest.EVENT_FIELD: b"garbage\n"})
    record_views(workspace, 3)

    assert services.events_flush() == 5

    assert stored(workspace) == 5
    assert ingest.redis_client().xlen(ingest.STREAM_KEY) == 0


@pytest.mark.django_db
def test_beat_tasks_run(workspace):
    """The beat tasks flush, create partitions and apply retention."""
    from analytics import tasks

    record_views(workspace, 2)
    assert tasks.events_flush_task.delay().get() == 2
    assert len(tasks.event_partitions_ensure_task.delay().get()) == 3
    assert tasks.events_retention_task.delay().get() == {
        "partitions_dropped": 0,
        "rows_deleted": 0,
    }
    assert stored(workspace) == 2


@pytest.mark.django_db
def test_event_from_nowhere_in_time_is_refused(workspace):
    """occurred_at before 2000 or days in the future is refused, not queued."""
    for when in (
        timezone.now() + timedelta(days=3),
        timezone.now().replace(year=1990),
    ):
        assert (
            services.event_record(
                workspace_id=workspace.pk,
                funnel_id=1,
                step_id=2,
                visitor_id=None,
                kind="view",
                occurred_at=when,
            )
            is None
        )
    assert ingest.redis_client().xlen(ingest.STREAM_KEY) == 0


@pytest.mark.django_db
def test_redis_failure_backs_off(workspace, redis_down, monkeypatch):
    """After Redis fails once, producers skip it for a few seconds (no connect cost)."""
    record_views(workspace, 1)
    calls = []
    monkeypatch.setattr(ingest, "redis_client", lambda: calls.append(1))
    record_views(workspace, 2)
    assert calls == []
    assert stored(workspace) == 3
