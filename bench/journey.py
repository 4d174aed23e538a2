"""Journey map benchmark: 10 M events over 90 days, folded by the rollup task, then
the journey map's server time while the worker keeps folding new traffic.

Run from the repository root with DATABASE_URL set:

    python bench/journey.py                        # the issue's scale: 10 M events
    BENCH_EVENTS=1000000 python bench/journey.py   # a quicker run

1. Creates its own database ``<name>_bench_journey`` next to DATABASE_URL's, migrates
   it (dropped again at the end, also on failure; BENCH_KEEP=1 keeps it).
2. Generates inside PostgreSQL, set-based (``bench/dashboard.py``'s generator: five
   funnels, one with an upsell whose decline branch is a downsell, sources, repeat
   visits, visitors coming back days later, orders, refunds), sized to BENCH_EVENTS.
   No leads (the map does not read them); each funnel's entry step is split-tested
   (two page variants, every visitor's events there carry one).
3. Folds every event with the rollup task, as a Celery worker runs it (the first
   run: no watermark yet), then times an incremental run after 10,000 new events.
4. Times the journey map's server time with a logged-in owner through Django's test
   client: REQUESTS requests over the five funnels and a mix of filters (last 7 / 30
   / 90 days, a custom month, source, medium, campaign, variant), while a second
   thread plays Celery beat and the shippers: every 2 s it stores ~200 new events
   and runs the rollup task. The map reads the rollups only; the last check folds
   what is left and finds no tail.

Last line: ``bench journey: events=… generate_s=… full_rollup_s=…
incremental_rollup_s=… requests=… journey_p50_ms=… journey_p95_ms=…``
(target: p95 <= 100 ms at 10 M events).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import threading
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

REQUESTS = int(os.environ.get("BENCH_REQUESTS") or 200)
BEAT_SECONDS = 2.0
BEAT_EVENTS = 200
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


def _funnels(workspace) -> tuple[list[dict], dict[int, tuple[int, int]]]:
    """The generator's five funnels, each entry step split-tested (two variants)."""
    from funnels.models import Funnel, Step
    from pages.services import page_create_blank, variant_add

    funnels = []
    variants = {}
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
        a = page_create_blank(step=steps[0])
        b = variant_add(page=a)
        variants[steps[0].pk] = (a.pk, b.pk)
        funnels.append({**spec, "id": funnel.pk, "step_ids": [s.pk for s in steps]})
    return funnels, variants


def _queries(funnels: list[dict], variants: dict[int, tuple[int, int]]) -> list[str]:
    """Journey map URLs: each funnel with each filter (period, first touch,
    variant), in an order that mixes them."""
    from django.urls import reverse

    today = time.strftime("%Y-%m")
    filters = [
        "",
        "?range=7d",
        "?range=90d",
        "?source=google",
        "?range=90d&source=facebook&medium=paid_social",
        "?campaign=spring_sale",
        f"?range=custom&date_from={today}-01&date_to={today}-28",
        "?variant={a}",
        "?range=90d&variant={b}&source=google",
    ]
    urls = []
    for i in range(len(filters)):
        for f in funnels:
            a, b = variants[f["step_ids"][0]]
            query = filters[(i + len(urls)) % len(filters)].format(a=a, b=b)
            urls.append(reverse("analytics:journey", args=[f["id"]]) + query)
    return urls


class Beat(threading.Thread):
    """Celery beat and the shippers, in a thread with its own connection: new
    events every BEAT_SECONDS, then the rollup task."""

    def __init__(self, workspace_id: int, funnels: list[dict], returning) -> None:
        super().__init__(daemon=True)
        self.args = workspace_id, funnels, returning
        self.stop = threading.Event()
        self.runs: list[float] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        from django.db import connection

        from analytics import ingest
        from analytics.tasks import rollups_update_task

        workspace_id, funnels, returning = self.args
        rng = random.Random(11)
        try:
            while not self.stop.wait(BEAT_SECONDS):
                lines, visitor_lines = gen.new_events(
                    workspace_id, funnels, BEAT_EVENTS, rng, returning
                )
                ingest.lines_write(lines, visitor_lines)
                started = time.perf_counter()
                rollups_update_task()
                self.runs.append(time.perf_counter() - started)
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            connection.close()


def _fold_all() -> None:
    """The rollup task's first run. A worker would retry it: on a shared server
    other sessions can fill the lock table ("out of shared memory") while this long
    transaction runs; the run is idempotent, so it is simply run again."""
    from django.db import OperationalError

    from analytics.tasks import rollups_update_task

    for attempt in range(3):
        try:
            rollups_update_task()
            return
        except OperationalError as exc:
            if attempt == 2 or "shared memory" not in str(exc):
                raise
            gen._say(f"rollup run failed ({exc}); running it again")


def run() -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from accounts.models import Membership, User, Workspace
    from analytics import ingest, rollups
    from analytics.tasks import rollups_update_task

    call_command("migrate", verbosity=0)
    workspace = Workspace.objects.create(name="Bench marketing")
    user = User.objects.create_user(email="owner@bench.invalid", password=None)
    Membership.objects.create(user=user, workspace=workspace, role="owner")
    funnels, variants = _funnels(workspace)

    visitors = gen._visitors_needed(gen.EVENTS)
    gen._say(f"generating ~{gen.EVENTS:,} events from {visitors:,} visitors")
    started = time.perf_counter()
    from django.utils import timezone

    now = timezone.now()
    gen._partitions(None, now - timedelta(days=gen.DAYS + 2), now + timedelta(days=1))
    with connection.cursor() as cursor:
        gen.generate(
            cursor, workspace.pk, funnels, visitors, leads=False, variants=variants
        )
        cursor.execute("SELECT count(*) FROM analytics_event")
        events = cursor.fetchone()[0]
        cursor.execute(
            "DROP TABLE bench_visitor, bench_lead, bench_source, bench_funnel"
        )
    generate_s = time.perf_counter() - started
    gen._say(f"generated {events:,} events in {generate_s:.1f}s")

    started = time.perf_counter()
    _fold_all()  # the first run: no watermark, folds every event
    full_s = time.perf_counter() - started
    with connection.cursor() as cursor:
        # What autovacuum would do next: the rollups the map reads, and statistics
        # of the facts the incremental runs probe (the events were analysed after
        # loading).
        cursor.execute(
            "VACUUM ANALYZE analytics_journeyrollup, analytics_cohortfunnelrollup, "
            "analytics_cohortsteprollup, analytics_stepdailyrollup"
        )
        cursor.execute(
            "ANALYZE analytics_funnelvisitor, analytics_funnelvisitorstep, "
            "analytics_funnelvisitorpath"
        )
        cursor.execute(
            "SELECT count(*), count(DISTINCT path) FROM analytics_funnelvisitorpath"
        )
        paths, distinct = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM analytics_journeyrollup")
        buckets = cursor.fetchone()[0]
    gen._say(
        f"full rollup: {full_s:.1f}s ({paths:,} visitor paths, {distinct:,} distinct, "
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
    rollups_update_task()
    incremental_s = time.perf_counter() - started
    gen._say(f"incremental rollup: {stored:,} new events, {incremental_s:.3f}s")

    client = Client()
    client.force_login(user)
    urls = _queries(funnels, variants)
    for url in urls:  # warm-up (connections, templates), and every URL answers
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        assert b"is not a variant" not in response.content, url
    beat = Beat(workspace.pk, funnels, returning)
    beat.start()
    timings = []
    try:
        for i in range(REQUESTS):
            url = urls[i % len(urls)]
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
    finally:
        beat.stop.set()
        beat.join()
    if beat.error:
        raise beat.error
    rollups_update_task()
    assert rollups.rollup_tail_size() == 0, "the worker left a tail unfolded"
    p50, p95 = statistics.median(timings), gen.pct(timings, 95)
    beat_p50 = statistics.median(beat.runs) * 1000 if beat.runs else 0.0
    gen._say(
        f"journey map ({len(urls)} funnel x filter URLs, {len(beat.runs)} rollup runs "
        f"of ~{BEAT_EVENTS} new events meanwhile, p50 {beat_p50:.0f} ms each): "
        f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(timings):.1f} ms, "
        f"target p95 <= {TARGET_P95_MS:.0f} ms"
    )
    print(
        f"bench journey: events={events} generate_s={generate_s:.1f} "
        f"full_rollup_s={full_s:.1f} incremental_rollup_s={incremental_s:.3f} "
        f"requests={len(timings)} journey_p50_ms={p50:.1f} journey_p95_ms={p95:.1f}"
    )


if __name__ == "__main__":
    main()
