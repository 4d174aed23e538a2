"""Journey map benchmark: 10 M events over 90 days, rollups, the journey map.

Run from the repository root with DATABASE_URL and REDIS_URL set:

    python bench/journey.py                     # the issue's scale: 10 M events
    BENCH_EVENTS=1000000 python bench/journey.py   # a quicker run

1. Creates its own database ``<name>_bench_journey`` next to DATABASE_URL's, migrates
   it (dropped again at the end, also on failure).
2. Generates the same traffic as ``bench/dashboard.py`` (its generator: five funnels,
   one with an upsell whose decline branch is a downsell, sources, repeat visits,
   visitors coming back days later, orders, refunds), sized to BENCH_EVENTS.
3. Times the full rollup, which also builds every visitor's path and the journey
   rollup, then an incremental rollup after 10,000 new events.
4. Measures the journey map's server time with a logged-in owner through Django's
   test client: 50 requests (last 30 days, each funnel in turn, every fifth with a
   source filter), each after a few more events arrived, so every request also folds
   in the not-yet-rolled-up tail.

Last line: ``bench journey: events=… full_rollup_s=… incremental_rollup_s=…
journey_p50_ms=… journey_p95_ms=…``.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

_URL = os.environ.get("DATABASE_URL")
if not _URL:
    sys.exit("bench/journey.py needs DATABASE_URL (make bench sets it)")

import dashboard as gen  # noqa: E402  (the dashboard bench's traffic generator)

_parts = urlsplit(_URL)
BENCH_DB = f"{_parts.path.lstrip('/') or 'openfunnels'}_bench_journey"
ADMIN_URL = urlunsplit(_parts._replace(path="/postgres"))
os.environ["DATABASE_URL"] = urlunsplit(_parts._replace(path=f"/{BENCH_DB}"))
os.environ.setdefault("PUBLIC_DOMAIN", "localhost")  # required with DEBUG off

REQUESTS = 50
TAIL_EVENTS_PER_REQUEST = 6
TARGET_P95_MS = 100.0


def main() -> None:
    import django

    gen._admin_exec(ADMIN_URL, f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    gen._admin_exec(ADMIN_URL, f'CREATE DATABASE "{BENCH_DB}"')
    try:
        django.setup()
        from django.conf import settings

        settings.STORAGES = {
            **settings.STORAGES,
            "staticfiles": {
                "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
            },
        }
        run()
    finally:
        from django.db import connections

        connections.close_all()
        if os.environ.get("BENCH_KEEP"):
            print(f"kept database {BENCH_DB} (BENCH_KEEP)", flush=True)
        else:
            gen._admin_exec(
                ADMIN_URL, f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)'
            )


def _funnels(workspace) -> list[dict]:
    from funnels.models import Funnel, Step

    funnels = []
    for n, spec in enumerate(gen.FUNNELS):
        funnel = Funnel.objects.create(
            workspace=workspace, name=spec["name"], slug=f"bench-{n}"
        )
        steps = [
            Step.objects.create(
                workspace=workspace,
                funnel=funnel,
                name=name,
                slug=f"s{i}",
                kind=kind,
                position=i,
            )
            for i, (name, kind) in enumerate(spec["steps"])
        ]
        kinds = [k for _, k in spec["steps"]]
        if "downsell" in kinds:  # the upsell's decline branch
            upsell = steps[kinds.index("upsell")]
            upsell.decline_target = steps[kinds.index("downsell")]
            upsell.accept_target = steps[-1]
            upsell.save()
        funnels.append({**spec, "id": funnel.pk, "step_ids": [s.pk for s in steps]})
    return funnels


def run() -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from accounts.models import Membership, User, Workspace
    from analytics import ingest, rollups

    call_command("migrate", verbosity=0)
    workspace = Workspace.objects.create(name="Bench marketing")
    user = User.objects.create_user(email="owner@bench.invalid", password=None)
    Membership.objects.create(user=user, workspace=workspace, role="owner")
    funnels = _funnels(workspace)

    visitors = gen._visitors_needed(gen.EVENTS)
    gen._say(f"generating ~{gen.EVENTS:,} events from {visitors:,} visitors")
    started = time.perf_counter()
    now = timezone.now()
    gen._partitions(None, now - timedelta(days=gen.DAYS + 2), now + timedelta(days=1))
    with connection.cursor() as cursor:
        gen.generate(cursor, workspace.pk, funnels, visitors)
        cursor.execute("SELECT count(*) FROM analytics_event")
        events = cursor.fetchone()[0]
        cursor.execute(
            "DROP TABLE bench_visitor, bench_lead, bench_source, bench_funnel"
        )
    gen._say(f"generated {events:,} events in {time.perf_counter() - started:.1f}s")

    started = time.perf_counter()
    rollups.rollups_update()
    full_s = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute(
            "SELECT count(*), count(DISTINCT path) FROM analytics_funnelvisitorpath"
        )
        paths, distinct = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM analytics_journeyrollup")
        buckets = cursor.fetchone()[0]
    gen._say(
        f"full rollup: {full_s:.2f}s ({paths:,} visitor paths, {distinct:,} distinct, "
        f"{buckets:,} journey buckets)"
    )

    rng = random.Random(7)
    ingest.partitions_forget()
    returning = gen.returning_visitors(workspace.pk)
    lines, visitor_lines = gen.new_events(
        workspace.pk, funnels, gen.NEW_EVENTS, rng, returning
    )
    stored = ingest.lines_write(lines, visitor_lines)
    started = time.perf_counter()
    rollups.rollups_update()
    incremental_s = time.perf_counter() - started
    gen._say(f"incremental rollup: {stored:,} new events, {incremental_s:.3f}s")

    client = Client()
    client.force_login(user)
    urls = [reverse("analytics:journey", args=[f["id"]]) for f in funnels]
    for url in urls:  # warm-up (connections, templates)
        response = client.get(url)
        assert response.status_code == 200, response.status_code
    timings = []
    for i in range(REQUESTS):
        lines, visitor_lines = gen.new_events(
            workspace.pk, funnels, TAIL_EVENTS_PER_REQUEST, rng, returning
        )
        ingest.lines_write(lines, visitor_lines)
        url = urls[i % len(urls)] + ("?source=google" if i % 5 == 4 else "")
        started = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    assert rollups.rollup_tail_size() == 0, "the journey map left a tail unfolded"
    p50, p95 = statistics.median(timings), gen.pct(timings, 95)
    gen._say(
        f"journey map (30 days, {TAIL_EVENTS_PER_REQUEST} new events before each "
        f"request): p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(timings):.1f} ms, "
        f"target p95 <= {TARGET_P95_MS:.0f} ms"
    )
    print(
        f"bench journey: events={events} full_rollup_s={full_s:.2f} "
        f"incremental_rollup_s={incremental_s:.3f} journey_p50_ms={p50:.1f} "
        f"journey_p95_ms={p95:.1f}"
    )


if __name__ == "__main__":
    main()
