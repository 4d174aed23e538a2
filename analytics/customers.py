"""Retention and advocacy numbers: repeat purchases and customer lifetime value.

A *customer* is a visitor with an order event in the workspace; their first order
starts their lifetime. For the customers whose first order falls in the period:

* repeat-purchase rate: customers with two or more orders ÷ customers;
* lifetime value over N days (30 / 90 / 365): their revenue (orders, bumps, upsells,
  minus refunds, in any funnel) from the first order to N days after it, per
  customer, counting only customers whose N days are over (so a young cohort does not
  read low); ``None`` while nobody's window has closed;

by first-touch source (next to the ad spend, so CAC and lifetime value sit side by
side) and by cohort (the month of the first order). Reads the money events only,
through a partial index (orders, bumps, upsells and refunds are a few per cent of
all events).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from accounts.models import Workspace

from .reports import ReportFilters

WINDOWS = (30, 90, 365)

_SQL = """
WITH m AS (
  SELECT visitor_id, kind, occurred_at,
         CASE WHEN kind = 'refund' THEN -amount_minor ELSE amount_minor END AS amount
  FROM analytics_event
  WHERE workspace_id = %(ws)s AND visitor_id IS NOT NULL
    AND kind IN ('order', 'bump', 'upsell_accept', 'refund')
), c AS (
  SELECT visitor_id, min(occurred_at) FILTER (WHERE kind = 'order') AS first_at,
         count(*) FILTER (WHERE kind = 'order') AS orders
  FROM m GROUP BY visitor_id
  HAVING min(occurred_at) FILTER (WHERE kind = 'order') >= %(start)s
     AND min(occurred_at) FILTER (WHERE kind = 'order') < %(end)s
), v AS (
  SELECT c.visitor_id, c.first_at, c.orders,
         coalesce(vi.utm_source, '') AS source,
         to_char(c.first_at AT TIME ZONE %(tz)s, 'YYYY-MM') AS cohort,
         {windows}
  FROM c
  JOIN m ON m.visitor_id = c.visitor_id AND m.occurred_at >= c.first_at
  LEFT JOIN analytics_visitor vi
    ON vi.workspace_id = %(ws)s AND vi.public_id = c.visitor_id
  WHERE %(source)s::text IS NULL OR coalesce(vi.utm_source, '') = %(source)s
  GROUP BY c.visitor_id, c.first_at, c.orders, vi.utm_source
)
SELECT {group}, count(*), count(*) FILTER (WHERE orders >= 2), {sums}
FROM v GROUP BY 1 ORDER BY 1
"""


def _sql(group: str) -> str:
    windows = ", ".join(
        f"coalesce(sum(m.amount) FILTER (WHERE m.occurred_at < c.first_at "
        f"+ interval '{n} days'), 0) AS rev{n}"
        for n in WINDOWS
    )
    sums = ", ".join(
        f"count(*) FILTER (WHERE first_at + interval '{n} days' <= %(now)s), "
        f"coalesce(sum(rev{n}) FILTER (WHERE first_at + interval '{n} days' "
        f"<= %(now)s), 0)"
        for n in WINDOWS
    )
    return _SQL.format(windows=windows, group=group, sums=sums)


@dataclass
class ValueRow:
    key: str  # a source ("" is direct) or a cohort month (YYYY-MM)
    customers: int = 0
    repeat: int = 0
    # window → (customers whose window is over, their revenue in it)
    windows: dict[int, tuple[int, int]] = field(default_factory=dict)

    @property
    def repeat_rate(self) -> float | None:
        return self.repeat / self.customers if self.customers else None

    def ltv(self, days: int) -> float | None:
        n, revenue = self.windows.get(days, (0, 0))
        return revenue / n if n else None

    @property
    def ltv30(self) -> float | None:
        return self.ltv(30)

    @property
    def ltv90(self) -> float | None:
        return self.ltv(90)

    @property
    def ltv365(self) -> float | None:
        return self.ltv(365)


@dataclass
class CustomerValue:
    by_source: list[ValueRow]
    by_cohort: list[ValueRow]
    total: ValueRow


def _rows(cursor) -> list[ValueRow]:
    out = []
    for row in cursor.fetchall():
        key, customers, repeat, *rest = row
        windows = {
            n: (int(rest[2 * i]), int(rest[2 * i + 1])) for i, n in enumerate(WINDOWS)
        }
        out.append(ValueRow(key or "", customers, repeat, windows))
    return out


def customer_value(
    *, workspace: Workspace, filters: ReportFilters, now: datetime | None = None
) -> CustomerValue:
    """Customers whose first order falls in the period (workspace time zone)."""
    tz = ZoneInfo(workspace.time_zone)
    source = None
    if filters.source:
        source = "" if filters.source == "(direct)" else filters.source
    params = {
        "source": source,
        "ws": workspace.pk,
        "start": datetime.combine(filters.date_from, time.min, tzinfo=tz),
        "end": datetime.combine(
            filters.date_to + timedelta(days=1), time.min, tzinfo=tz
        ),
        "now": now or timezone.now(),
        "tz": str(tz),
    }
    with connection.cursor() as cursor:
        cursor.execute(_sql("source"), params)
        by_source = _rows(cursor)
        cursor.execute(_sql("cohort"), params)
        by_cohort = _rows(cursor)
    total = ValueRow("all")
    for r in by_source:
        total.customers += r.customers
        total.repeat += r.repeat
        for n, (k, rev) in r.windows.items():
            k0, rev0 = total.windows.get(n, (0, 0))
            total.windows[n] = (k0 + k, rev0 + rev)
    return CustomerValue(by_source, by_cohort, total)
