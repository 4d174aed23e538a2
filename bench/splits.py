"""Split-test results speed: server time of one results read over N assigned
visitors (per-visitor rollup facts of a 5-step funnel, 2 variants on the sales
step). Creates its own scratch workspace and rows, and removes them.

    python bench/splits.py [visitors]      (needs DATABASE_URL; default 200000)
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts import services as accounts_services  # noqa: E402
from accounts.models import Workspace  # noqa: E402
from analytics import experiments  # noqa: E402
from funnels.models import Funnel, Step  # noqa: E402

FILL_SQL = """
INSERT INTO analytics_funnelvisitorstep
  (workspace_id, funnel_id, visitor_id, step_id, variant_id, first_view_at,
   opted_in, ordered, upsell_accepted, revenue_minor)
SELECT %(ws)s, %(funnel)s, md5(%(salt)s || g::text)::uuid, s.id,
       CASE WHEN s.id = %(sales)s THEN (CASE WHEN g %% 2 = 0 THEN 1 ELSE 2 END)
            ELSE 0 END,
       %(start)s + (g || ' seconds')::interval,
       s.kind = 'optin', s.kind = 'order' AND g %% 7 = 0,
       s.kind = 'upsell' AND g %% 19 = 0,
       CASE WHEN s.kind = 'order' AND g %% 7 = 0 THEN 2700
            WHEN s.kind = 'upsell' AND g %% 19 = 0 THEN 9700 ELSE 0 END
FROM generate_series(1, %(n)s) g
JOIN funnels_step s ON s.funnel_id = %(funnel)s
WHERE s.position <= (g %% 5)
"""


def main(n: int) -> None:
    ws = Workspace.objects.create(name="bench splits")
    try:
        funnel = Funnel.objects.create(
            workspace=ws, name="bench", slug=f"bench-{uuid.uuid4().hex[:8]}"
        )
        steps = [
            Step.objects.create(
                workspace=ws, funnel=funnel, name=k, slug=k, kind=k, position=i
            )
            for i, k in enumerate(["optin", "sales", "order", "upsell", "thankyou"])
        ]
        start = timezone.now() - timedelta(days=30)
        t0 = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                FILL_SQL,
                {
                    "ws": ws.pk,
                    "funnel": funnel.pk,
                    "salt": uuid.uuid4().hex,
                    "sales": steps[1].pk,
                    "start": start,
                    "n": n,
                },
            )
            rows = cursor.rowcount
            cursor.execute("ANALYZE analytics_funnelvisitorstep")
        print(f"fill: {rows} fact rows in {time.perf_counter() - t0:.1f} s")
        specs = [
            experiments.VariantSpec(1, "A", 50),
            experiments.VariantSpec(2, "B", 50),
        ]
        times = []
        for _ in range(20):
            t = time.perf_counter()
            report = experiments.experiment_report(
                step=steps[1],
                variants=specs,
                start=start,
                end=timezone.now() + timedelta(seconds=1),
            )
            times.append((time.perf_counter() - t) * 1000)
        visitors = sum(r.visitors for r in report.rows)
        times.sort()
        print(
            f"bench splits: visitors={visitors} fact_rows={rows} "
            f"report_p50_ms={statistics.median(times):.1f} "
            f"report_p95_ms={times[int(len(times) * 0.95) - 1]:.1f}"
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM analytics_funnelvisitorstep WHERE workspace_id = %s",
                [ws.pk],
            )
        accounts_services.workspace_delete(workspace=ws)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
