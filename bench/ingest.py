"""Event ingestion benchmark: the real path (stream + flush) vs raw COPY.

Run from the repository root with DATABASE_URL and REDIS_URL set:

    python bench/ingest.py [N]

1. ingest: N events go through ``analytics.services.events_record_many`` (encoded,
   pipelined XADD to the Redis stream) while a flusher process runs
   ``events_flush`` (XREADGROUP → COPY → commit → XACK/XDEL); the clock stops when
   every event is in Postgres (or nothing moved for 30 s).
2. copy: the same N rows (fresh ids, another scratch workspace) are written into the
   same table with one psycopg ``cursor.copy``, once with ``write_row`` and once as
   pre-encoded COPY text; ``copy_per_s`` is the faster of the two.

Uses its own scratch workspaces and removes them and their events at the end. The
last line is ``bench ingest: events_per_s=… copy_per_s=… ratio=… lost=…``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnop")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts import services as accounts_services  # noqa: E402
from accounts.models import Workspace  # noqa: E402
from analytics import ingest, services  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
VISITORS = max(1, N // 10)
KINDS = ["view"] * 8 + ["optin", "click"]


def make_events(workspace_id: int, seed: int = 0) -> list[dict]:
    base = timezone.now() - timedelta(minutes=5)
    visitors = [uuid.uuid4() for _ in range(VISITORS)]
    events = []
    for i in range(N):
        events.append(
            {
                "workspace_id": workspace_id,
                "funnel_id": 1 + i % 3,
                "step_id": 10 + i % 5,
                "visitor_id": visitors[i % VISITORS],
                "kind": KINDS[i % len(KINDS)],
                "variant_id": i % 2 or None,
                "occurred_at": base + timedelta(microseconds=i),
                "properties": {"utm": "spring"} if i % 4 == 0 else None,
            }
        )
    return events


def stored_count(workspace_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM analytics_event WHERE workspace_id = %s",
            [workspace_id],
        )
        return cursor.fetchone()[0]


def flusher(workspace_id: int, expected: int, done: mp.Event) -> None:
    """Flush until the workspace has ``expected`` events (or stalls)."""
    ingest.redis_reset()
    last_progress = time.monotonic()
    last = -1
    while not done.is_set():
        moved = services.events_flush(max_seconds=5)
        if moved:
            last_progress = time.monotonic()
            continue
        count = stored_count(workspace_id)
        if count >= expected:
            break
        if count != last:
            last, last_progress = count, time.monotonic()
        if time.monotonic() - last_progress > 30:
            break
        time.sleep(0.005)


def bench_ingest(workspace_id: int) -> tuple[float, int, float]:
    events = make_events(workspace_id)
    ingest.redis_client().ping()
    services.events_flush(max_seconds=30)  # drain leftovers from earlier runs
    # The forked flusher must not share this process's sockets.
    connection.close()
    ingest.redis_reset()
    done = mp.Event()
    proc = mp.get_context("fork").Process(
        target=flusher, args=(workspace_id, N, done), daemon=True
    )
    started = time.perf_counter()
    proc.start()
    sent = services.events_record_many(events)
    produced = time.perf_counter() - started
    proc.join(timeout=600)
    elapsed = time.perf_counter() - started
    done.set()
    return elapsed, sent, produced


def bench_copy(workspace_id: int) -> tuple[float, float]:
    """Seconds for raw COPY of N rows: (psycopg write_row, pre-encoded text)."""
    events = make_events(workspace_id)
    now = timezone.now()
    rows = [
        (
            uuid.uuid4(),
            e["workspace_id"],
            e["funnel_id"],
            e["step_id"],
            e["visitor_id"],
            e["kind"],
            None,
            e["variant_id"],
            None,
            "",
            ingest.properties_json(e["properties"]),
            e["occurred_at"],
            now,
        )
        for e in events
    ]
    blob = b"".join(
        ingest.event_line(
            event_id=uuid.uuid4(),
            page_version_id=None,
            amount_minor=None,
            currency="",
            received_at=now,
            **e,
        )
        for e in events
    )
    sql = f"COPY analytics_event ({', '.join(ingest.EVENT_COLUMNS)}) FROM STDIN"
    started = time.perf_counter()
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
    rows_s = time.perf_counter() - started
    started = time.perf_counter()
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for start in range(0, len(blob), 1 << 20):
            copy.write(blob[start : start + (1 << 20)])
    text_s = time.perf_counter() - started
    return rows_s, text_s


def cleanup(workspaces: list[Workspace]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM analytics_event WHERE workspace_id = ANY(%s)",
            [[w.pk for w in workspaces]],
        )
    for workspace in workspaces:
        accounts_services.workspace_delete(workspace=workspace)


def main() -> None:
    services.event_partitions_ensure()
    ws_ingest = Workspace.objects.create(name="bench-ingest (scratch)")
    ws_copy = Workspace.objects.create(name="bench-copy (scratch)")
    try:
        elapsed, sent, produced = bench_ingest(ws_ingest.pk)
        stored = stored_count(ws_ingest.pk)
        rows_s, text_s = bench_copy(ws_copy.pk)
        copied = stored_count(ws_copy.pk) // 2
    finally:
        cleanup([ws_ingest, ws_copy])
    events_per_s = stored / elapsed
    # Compare against the faster of the two raw COPY variants.
    copy_per_s = copied / min(rows_s, text_s)
    print(
        f"ingest: sent={sent} stored={stored} in {elapsed:.2f}s "
        f"(producer done after {produced:.2f}s, {sent / produced:.0f} events/s)"
    )
    print(
        f"copy: {copied} rows, write_row {rows_s:.2f}s ({copied / rows_s:.0f}/s), "
        f"pre-encoded text {text_s:.2f}s ({copied / text_s:.0f}/s)"
    )
    print(
        f"bench ingest: events_per_s={events_per_s:.0f} copy_per_s={copy_per_s:.0f} "
        f"ratio={events_per_s / copy_per_s:.2f} lost={sent - stored}"
    )


if __name__ == "__main__":
    main()
