"""Retention and advocacy numbers: repeat purchases and customer lifetime value.

A *customer* is a visitor with an order event in the workspace; their first order
starts their lifetime. For the customers whose first order falls in the period:

* repeat-purchase rate: customers with two or more orders ÷ customers;
* lifetime value over N days (30 / 90 / 365): their revenue (orders, bumps, upsells,
  downsells, minus refunds, in any funnel) from the first order to N days after it,
  per customer and per currency (amounts in different currencies are never added
  up), counting only customers whose N days are over (so a young cohort does not
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

from .reports import ReportFilters, money_add

WINDOWS = (30, 90, 365)
# The money events (the partial index analytics_event_money covers exactly these).
MONEY = "kind IN ('order', 'bump', 'upsell_accept', 'downsell_accept', 'refund')"

_SQL = """
WITH m AS (
  SELECT visitor_id, kind, occurred_at, coalesce(currency, '') AS currency,
         CASE WHEN kind = 'refund' THEN -amount_minor ELSE amount_minor END AS amount
  FROM analytics_event
  WHERE workspace_id = %(ws)s AND visitor_id IS NOT NULL AND {money}
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
        f"+ interval '{n} days' AND m.currency = %(cur)s), 0) AS rev{n}"
        for n in WINDOWS
    )
    sums = ", ".join(
        f"count(*) FILTER (WHERE first_at + interval '{n} days' <= %(now)s), "
        f"coalesce(sum(rev{n}) FILTER (WHERE first_at + interval '{n} days' "
        f"<= %(now)s), 0)"
        for n in WINDOWS
    )
    return _SQL.format(windows=windows, group=group, sums=sums, money=MONEY)


@dataclass
class ValueRow:
    key: str  # a source ("" is direct) or a cohort month (YYYY-MM)
    customers: int = 0
    repeat: int = 0
    # window → (customers whose window is over, their revenue in it per currency)
    windows: dict[int, tuple[int, dict[str, int]]] = field(default_factory=dict)

    @property
    def repeat_rate(self) -> float | None:
        return self.repeat / self.customers if self.customers else None

    def ltv_by_currency(self, days: int) -> dict[str, float]:
        """Lifetime value per customer over ``days``, per currency ({} while
        nobody's window has closed)."""
        n, revenue = self.windows.get(days, (0, {}))
        return {cur: amount / n for cur, amount in revenue.items()} if n else {}

    def ltv(self, days: int) -> float | None:
        """In the one currency (None while no window has closed, or when the
        revenue is in several currencies: see ltv_by_currency)."""
        n, revenue = self.windows.get(days, (0, {}))
        if not n or len(revenue) > 1:
            return None
        return sum(revenue.values()) / n

    @property
    def ltv30(self) -> float | None:
        return self.ltv(30)

    @property
    def ltv90(self) -> float | None:
        return self.ltv(90)

    @property
    def ltv365(self) -> float | None:
        return self.ltv(365)

    @property
    def ltv30_by_currency(self) -> dict[str, float]:
        return self.ltv_by_currency(30)

    @property
    def ltv90_by_currency(self) -> dict[str, float]:
        return self.ltv_by_currency(90)

    @property
    def ltv365_by_currency(self) -> dict[str, float]:
        return self.ltv_by_currency(365)


@dataclass
class CustomerValue:
    by_source: list[ValueRow]
    by_cohort: list[ValueRow]
    total: ValueRow


def _rows(cursor, currency: str, into: dict[str, ValueRow]) -> None:
    """Fold one currency's query into the rows (customers are the same in each)."""
    for row in cursor.fetchall():
        key, customers, repeat, *rest = row
        value = into.setdefault(key or "", ValueRow(key or "", customers, repeat))
        for i, n in enumerate(WINDOWS):
            closed, revenue = int(rest[2 * i]), int(rest[2 * i + 1])
            _, money = value.windows.setdefault(n, (closed, {}))
            value.windows[n] = (closed, money)
            money_add(money, currency, revenue)


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
    # One pass per currency (a workspace sells in one or a few): revenue is summed
    # within a currency only.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT coalesce(currency, '') FROM analytics_event "
            f"WHERE workspace_id = %(ws)s AND visitor_id IS NOT NULL AND {MONEY}",
            params,
        )
        currencies = sorted(row[0] for row in cursor.fetchall())
        by_source: dict[str, ValueRow] = {}
        by_cohort: dict[str, ValueRow] = {}
        for currency in currencies or [""]:
            cursor.execute(_sql("source"), {**params, "cur": currency})
            _rows(cursor, currency, by_source)
            cursor.execute(_sql("cohort"), {**params, "cur": currency})
            _rows(cursor, currency, by_cohort)
    sources = [by_source[k] for k in sorted(by_source)]
    total = ValueRow("all")
    for r in sources:
        total.customers += r.customers
        total.repeat += r.repeat
        for n, (k, money) in r.windows.items():
            k0, money0 = total.windows.get(n, (0, {}))
            money0 = dict(money0)
            for cur, amount in money.items():
                money_add(money0, cur, amount)
            total.windows[n] = (k0 + k, money0)
    return CustomerValue(sources, [by_cohort[k] for k in sorted(by_cohort)], total)
