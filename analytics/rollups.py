"""Incremental, idempotent rollups of raw events (run by Celery beat every minute).

One run, in one transaction under an advisory lock:

1. Find the (funnel, visitor) pairs with events stored since the watermark (minus a
   safety margin, so rows of transactions that committed late are seen too).
2. Recompute those visitors' facts from *all* their raw events in the funnel
   (`FunnelVisitor`, `FunnelVisitorStep`) and upsert them: recomputing, never
   incrementing, is what makes a re-run or an overlapping run harmless.
3. Recompute every cohort bucket (funnel, entry day) those visitors belong to, before
   and after (a late event can move a visitor to an earlier day), from the facts.
4. Recompute every (funnel, day) bucket of event counts that received events.
5. Move the watermark.

Dashboards read only the rollup tables: O(days x steps x sources) rows per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from .models import RollupState

STATE = "events"
MARGIN = timedelta(minutes=2)
_DROP_SQL = "DROP TABLE IF EXISTS _touched, _daily, _funnels, _days, _ev"
LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('openfunnels.analytics.rollup'))"
TRY_LOCK_SQL = (
    "SELECT pg_try_advisory_xact_lock(hashtext('openfunnels.analytics.rollup'))"
)

_FACTS_SQL = """
CREATE TEMP TABLE _funnels AS
SELECT f.id AS funnel_id,
       (SELECT s.id FROM funnels_step s WHERE s.funnel_id = f.id
        ORDER BY s.position, s.id LIMIT 1) AS entry_step_id,
       CASE WHEN EXISTS (SELECT 1 FROM funnels_step s
                         WHERE s.funnel_id = f.id AND s.kind = 'order')
            THEN 'order' ELSE 'optin' END AS goal_kind
FROM funnels_funnel f WHERE f.id IN (SELECT DISTINCT funnel_id FROM _touched);

CREATE TEMP TABLE _days AS
SELECT DISTINCT fv.funnel_id, fv.entry_day
FROM analytics_funnelvisitor fv
JOIN _touched t ON t.funnel_id = fv.funnel_id AND t.visitor_id = fv.visitor_id;

CREATE TEMP TABLE _ev AS
SELECT e.workspace_id, e.funnel_id, e.visitor_id, e.step_id, e.kind,
       coalesce(e.variant_id, 0) AS variant_id, e.amount_minor, e.occurred_at
FROM analytics_event e
JOIN _touched t ON t.workspace_id = e.workspace_id AND t.visitor_id = e.visitor_id
               AND t.funnel_id = e.funnel_id;

INSERT INTO analytics_funnelvisitor AS fv
  (workspace_id, funnel_id, visitor_id, entered_at, entry_day, source, medium,
   campaign, events, bounced, reached_goal, bought, opted_in, goal_at)
SELECT ev.workspace_id, ev.funnel_id, ev.visitor_id, min(ev.occurred_at),
       (min(ev.occurred_at) AT TIME ZONE w.time_zone)::date,
       coalesce(min(v.utm_source), ''), coalesce(min(v.utm_medium), ''),
       coalesce(min(v.utm_campaign), ''),
       count(*),
       count(*) = 1 AND bool_and(ev.kind = 'view' AND ev.step_id = f.entry_step_id),
       bool_or(ev.kind = f.goal_kind),
       bool_or(ev.kind = 'order'),
       bool_or(ev.kind = 'optin'),
       min(ev.occurred_at) FILTER (WHERE ev.kind = f.goal_kind)
FROM _ev ev
JOIN _funnels f ON f.funnel_id = ev.funnel_id
JOIN accounts_workspace w ON w.id = ev.workspace_id
LEFT JOIN analytics_visitor v
       ON v.workspace_id = ev.workspace_id AND v.public_id = ev.visitor_id
GROUP BY ev.workspace_id, ev.funnel_id, ev.visitor_id, w.time_zone
ON CONFLICT (funnel_id, visitor_id) DO UPDATE SET
  entered_at = EXCLUDED.entered_at, entry_day = EXCLUDED.entry_day,
  source = EXCLUDED.source, medium = EXCLUDED.medium, campaign = EXCLUDED.campaign,
  events = EXCLUDED.events, bounced = EXCLUDED.bounced,
  reached_goal = EXCLUDED.reached_goal, bought = EXCLUDED.bought,
  opted_in = EXCLUDED.opted_in, goal_at = EXCLUDED.goal_at;

INSERT INTO analytics_funnelvisitorstep AS fs
  (workspace_id, funnel_id, visitor_id, step_id, variant_id, first_view_at,
   opted_in, ordered, upsell_accepted, revenue_minor)
SELECT workspace_id, funnel_id, visitor_id, step_id,
       coalesce((array_agg(variant_id ORDER BY occurred_at)
                 FILTER (WHERE kind = 'view'))[1], 0),
       min(occurred_at) FILTER (WHERE kind = 'view'),
       bool_or(kind = 'optin'), bool_or(kind = 'order'),
       bool_or(kind = 'upsell_accept'),
       coalesce(sum(CASE WHEN kind IN ('order', 'bump', 'upsell_accept')
                         THEN amount_minor
                         WHEN kind = 'refund' THEN -amount_minor
                         ELSE 0 END), 0)
FROM _ev WHERE step_id IS NOT NULL
GROUP BY workspace_id, funnel_id, visitor_id, step_id
ON CONFLICT (funnel_id, visitor_id, step_id) DO UPDATE SET
  variant_id = EXCLUDED.variant_id, first_view_at = EXCLUDED.first_view_at,
  opted_in = EXCLUDED.opted_in, ordered = EXCLUDED.ordered,
  upsell_accepted = EXCLUDED.upsell_accepted, revenue_minor = EXCLUDED.revenue_minor;

INSERT INTO _days
SELECT DISTINCT fv.funnel_id, fv.entry_day
FROM analytics_funnelvisitor fv
JOIN _touched t ON t.funnel_id = fv.funnel_id AND t.visitor_id = fv.visitor_id;

DELETE FROM analytics_cohortfunnelrollup r USING (SELECT DISTINCT * FROM _days) d
WHERE r.funnel_id = d.funnel_id AND r.day = d.entry_day;

INSERT INTO analytics_cohortfunnelrollup
  (workspace_id, funnel_id, day, source, medium, campaign, entered, bounced,
   reached_goal, buyers, optins, seconds_to_goal)
SELECT fv.workspace_id, fv.funnel_id, fv.entry_day, fv.source, fv.medium,
       fv.campaign, count(*), count(*) FILTER (WHERE fv.bounced),
       count(*) FILTER (WHERE fv.reached_goal), count(*) FILTER (WHERE fv.bought),
       count(*) FILTER (WHERE fv.opted_in),
       coalesce(sum(extract(epoch FROM fv.goal_at - fv.entered_at))
                FILTER (WHERE fv.reached_goal), 0)::bigint
FROM analytics_funnelvisitor fv
JOIN (SELECT DISTINCT * FROM _days) d
  ON d.funnel_id = fv.funnel_id AND d.entry_day = fv.entry_day
GROUP BY fv.workspace_id, fv.funnel_id, fv.entry_day, fv.source, fv.medium,
         fv.campaign;

DELETE FROM analytics_cohortsteprollup r USING (SELECT DISTINCT * FROM _days) d
WHERE r.funnel_id = d.funnel_id AND r.day = d.entry_day;

INSERT INTO analytics_cohortsteprollup
  (workspace_id, funnel_id, step_id, variant_id, day, source, medium, campaign,
   visitors, optins, buyers, upsell_accepts, revenue_minor)
SELECT fv.workspace_id, fv.funnel_id, fs.step_id, fs.variant_id, fv.entry_day,
       fv.source, fv.medium, fv.campaign,
       count(*) FILTER (WHERE fs.first_view_at IS NOT NULL),
       count(*) FILTER (WHERE fs.opted_in), count(*) FILTER (WHERE fs.ordered),
       count(*) FILTER (WHERE fs.upsell_accepted), sum(fs.revenue_minor)
FROM analytics_funnelvisitor fv
JOIN (SELECT DISTINCT * FROM _days) d
  ON d.funnel_id = fv.funnel_id AND d.entry_day = fv.entry_day
JOIN analytics_funnelvisitorstep fs
  ON fs.funnel_id = fv.funnel_id AND fs.visitor_id = fv.visitor_id
GROUP BY fv.workspace_id, fv.funnel_id, fs.step_id, fs.variant_id, fv.entry_day,
         fv.source, fv.medium, fv.campaign;
"""

_DAILY_SQL = """
DELETE FROM analytics_stepdailyrollup r USING _daily d
WHERE r.funnel_id = d.funnel_id AND r.day = d.day;

INSERT INTO analytics_stepdailyrollup
  (workspace_id, funnel_id, step_id, variant_id, day, source, medium, campaign,
   views, optins, orders, bumps, upsell_accepts, upsell_declines, revenue_minor)
SELECT e.workspace_id, e.funnel_id, e.step_id, coalesce(e.variant_id, 0), d.day,
       coalesce(v.utm_source, ''), coalesce(v.utm_medium, ''),
       coalesce(v.utm_campaign, ''),
       count(*) FILTER (WHERE e.kind = 'view'),
       count(*) FILTER (WHERE e.kind = 'optin'),
       count(*) FILTER (WHERE e.kind = 'order'),
       count(*) FILTER (WHERE e.kind = 'bump'),
       count(*) FILTER (WHERE e.kind = 'upsell_accept'),
       count(*) FILTER (WHERE e.kind = 'upsell_decline'),
       coalesce(sum(CASE WHEN e.kind IN ('order', 'bump', 'upsell_accept')
                         THEN e.amount_minor
                         WHEN e.kind = 'refund' THEN -e.amount_minor
                         ELSE 0 END), 0)
FROM _daily d
JOIN analytics_event e
  ON e.funnel_id = d.funnel_id
 AND e.occurred_at >= (d.day::timestamp AT TIME ZONE d.tz)
 AND e.occurred_at < ((d.day + 1)::timestamp AT TIME ZONE d.tz)
LEFT JOIN analytics_visitor v
       ON v.workspace_id = e.workspace_id AND v.public_id = e.visitor_id
WHERE e.step_id IS NOT NULL
GROUP BY e.workspace_id, e.funnel_id, e.step_id, coalesce(e.variant_id, 0), d.day,
         v.utm_source, v.utm_medium, v.utm_campaign;
"""


@dataclass(frozen=True)
class RollupRun:
    visitors: int
    days: int
    watermark: datetime


def _run(
    where_sql: str, params: dict, *, new_watermark: datetime | None, wait: bool = True
) -> RollupRun | None:
    with transaction.atomic(), connection.cursor() as cursor:
        if wait:
            cursor.execute(LOCK_SQL)
        else:
            cursor.execute(TRY_LOCK_SQL)
            if not cursor.fetchone()[0]:
                return None  # another run holds the lock and will do the work
        cursor.execute(_DROP_SQL)
        cursor.execute(
            "CREATE TEMP TABLE _touched AS "
            "SELECT DISTINCT workspace_id, funnel_id, visitor_id "
            f"FROM analytics_event e WHERE {where_sql} "
            "AND funnel_id IS NOT NULL AND visitor_id IS NOT NULL",
            params,
        )
        cursor.execute("SELECT count(*) FROM _touched")
        visitors = cursor.fetchone()[0]
        cursor.execute(
            "CREATE TEMP TABLE _daily AS "
            "SELECT DISTINCT e.funnel_id, "
            "(e.occurred_at AT TIME ZONE w.time_zone)::date AS day, "
            "w.time_zone AS tz "
            "FROM analytics_event e JOIN accounts_workspace w ON w.id = e.workspace_id "
            f"WHERE {where_sql} AND e.funnel_id IS NOT NULL",
            params,
        )
        cursor.execute("SELECT count(*) FROM _daily")
        days = cursor.fetchone()[0]
        if visitors:
            cursor.execute(_FACTS_SQL)
        if days:
            cursor.execute(_DAILY_SQL)
        cursor.execute(_DROP_SQL)
        watermark = new_watermark or timezone.now()
        if new_watermark is not None:
            RollupState.objects.update_or_create(
                name=STATE,
                defaults={"watermark": new_watermark, "updated_at": timezone.now()},
            )
    return RollupRun(visitors, days, watermark)


def rollup_watermark() -> datetime | None:
    state = RollupState.objects.filter(name=STATE).first()
    return state.watermark if state else None


def rollups_update(*, wait: bool = True) -> RollupRun | None:
    """Fold events stored since the last run into the rollups.

    With wait=False (a dashboard catching up on the tail) return None at once when
    another run is in progress.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        started = cursor.fetchone()[0]
    previous = rollup_watermark()
    since = (previous - MARGIN) if previous else datetime(1970, 1, 1, tzinfo=UTC)
    return _run(
        "e.inserted_at > %(since)s", {"since": since}, new_watermark=started, wait=wait
    )


def rollups_rebuild(*, date_from: date, date_to: date) -> RollupRun:
    """Recompute every rollup touched by events that occurred in the date range."""
    start = datetime.combine(date_from, datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(date_to + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    # A day bucket in a far-east or far-west time zone straddles UTC days.
    return _run(
        "e.occurred_at >= %(start)s AND e.occurred_at < %(end)s",
        {"start": start - timedelta(hours=14), "end": end + timedelta(hours=14)},
        new_watermark=None,
    )


def rollup_tail_size() -> int:
    """How many stored events the rollups have not folded in yet."""
    watermark = rollup_watermark()
    with connection.cursor() as cursor:
        if watermark is None:
            cursor.execute("SELECT count(*) FROM analytics_event")
        else:
            cursor.execute(
                "SELECT count(*) FROM analytics_event WHERE inserted_at > %s",
                [watermark],
            )
        return cursor.fetchone()[0]
