"""Incremental, idempotent rollups of raw events (run by Celery beat every 30 s).

Invariants the rollup tables keep, whatever runs when:

* ``FunnelVisitor`` / ``FunnelVisitorStep`` (per-visitor facts) are a pure function of
  the visitor's raw events in the funnel: they are always *recomputed* from all of
  them, never incremented.
* The cohort rollups are the sums of those facts per bucket (funnel, entry day,
  first-touch source / medium / campaign [, step, variant]).
* ``StepDailyRollup`` holds the counts of exactly the *folded* events per bucket
  (funnel, step, variant, day the event happened, source / medium / campaign).

An incremental run (``rollups_update``), in one transaction under an advisory lock:

1. Reads the tail: events stored since the watermark (minus a safety margin, so rows
   of transactions that committed late are seen too), minus the ids already folded
   (``RollupFoldedEvent`` remembers the ids inside the margin window). So each event
   is folded exactly once, however often or concurrently runs happen.
2. Adds the tail's counts to the day buckets (an upsert that increments).
3. For the tail's visitors: snapshots their old facts, recomputes the facts from all
   their raw events, and adds (new facts - old facts) to the cohort buckets. A re-run
   changes nothing (the difference is zero); a late event that moves a visitor to
   an earlier entry day moves it between buckets.
4. Records the folded ids still inside the next margin window and moves the
   watermark.

The work is proportional to the tail (and its visitors' histories), never to the
size of the buckets, so a run after a minute of traffic takes milliseconds and the
dashboard can fold a small tail inline. The first run (no watermark) starts from
empty rollups and folds everything; ``rollups_rebuild`` recomputes whole buckets of a
date range from raw events. Dashboards read only the rollup tables:
O(days x steps x sources) rows per request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction

from funnels import paths

from .models import FunnelVisitorPath, RollupState

STATE = "events"
BATCH_WORK_MEM = "256MB"
MARGIN = timedelta(minutes=2)
SLACK = timedelta(seconds=1)
LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('openfunnels.analytics.rollup'))"
TRY_LOCK_SQL = (
    "SELECT pg_try_advisory_xact_lock(hashtext('openfunnels.analytics.rollup'))"
)
# Dropped at the start and the end of a run: ON COMMIT DROP alone is not enough when
# the run is nested in an outer transaction (a savepoint does not commit).
_DROP_SQL = (
    "DROP TABLE IF EXISTS _tail, _touched, _ev, _funnels, _old_fv, _old_fs, _new_fv, "
    "_new_fs, _old_fp, _new_fp, _days, _daily"
)
FACT_TABLES = (
    "analytics_funnelvisitor",
    "analytics_funnelvisitorstep",
    "analytics_funnelvisitorpath",
    "analytics_journeyrollup",
    "analytics_cohortfunnelrollup",
    "analytics_cohortsteprollup",
    "analytics_stepdailyrollup",
    "analytics_rollupfoldedevent",
)

# Per-visitor time to the goal, in whole seconds (the same in both paths, so that a
# rebuilt bucket equals an incrementally kept one).
_SECONDS_TO_GOAL = (
    "CASE WHEN fv.reached_goal "
    "THEN floor(extract(epoch FROM fv.goal_at - fv.entered_at))::bigint "
    "ELSE 0 END"
)

# Accepts and declines of downsells are their own event kinds; the rollups count
# them with the upsells' (a step is one or the other).
REVENUE_SQL = """coalesce(sum(CASE WHEN {p}kind IN ('order', 'bump', 'upsell_accept',
                                                'downsell_accept')
                         THEN {p}amount_minor
                         WHEN {p}kind = 'refund' THEN -{p}amount_minor
                         ELSE 0 END), 0)"""

# ---------------------------------------------------------------- facts
# Needs _touched (workspace_id, funnel_id, visitor_id); fills _ev with all of their
# events in the funnel (or takes the tail itself when it holds every event).
_EV_FROM_EVENTS_SQL = """
CREATE TEMP TABLE _ev ON COMMIT DROP AS
SELECT e.workspace_id, e.funnel_id, e.visitor_id, e.step_id, e.kind,
       coalesce(e.variant_id, 0) AS variant_id, e.amount_minor, e.occurred_at
FROM analytics_event e
JOIN _touched t ON t.workspace_id = e.workspace_id AND t.visitor_id = e.visitor_id
               AND t.funnel_id = e.funnel_id;
"""
_EV_BY_PROBES_SQL = """
CREATE TEMP TABLE _ev ON COMMIT DROP AS
SELECT e.workspace_id, e.funnel_id, e.visitor_id, e.step_id, e.kind,
       coalesce(e.variant_id, 0) AS variant_id, e.amount_minor, e.occurred_at
FROM _touched t
CROSS JOIN LATERAL (
  SELECT * FROM analytics_event e0
  WHERE e0.workspace_id = t.workspace_id AND e0.visitor_id = t.visitor_id
    AND e0.funnel_id = t.funnel_id) e;
"""
_EV_FROM_TAIL_SQL = """
CREATE TEMP TABLE _ev ON COMMIT DROP AS
SELECT workspace_id, funnel_id, visitor_id, step_id, kind, variant_id, amount_minor,
       occurred_at
FROM _tail WHERE visitor_id IS NOT NULL;
"""

_FACTS_SQL = (
    """
CREATE TEMP TABLE _funnels ON COMMIT DROP AS
SELECT * FROM unnest(%(p_funnel)s::bigint[], %(p_entry)s::bigint[],
                     %(p_goal_kind)s::text[], %(p_goal_step)s::bigint[])
  AS p(funnel_id, entry_step_id, goal_kind, goal_step_id);

INSERT INTO analytics_funnelvisitor AS fv
  (workspace_id, funnel_id, visitor_id, entered_at, entry_day, source, medium,
   campaign, events, bounced, reached_goal, bought, opted_in, goal_at)
SELECT ev.workspace_id, ev.funnel_id, ev.visitor_id, min(ev.occurred_at),
       (min(ev.occurred_at) AT TIME ZONE w.time_zone)::date,
       coalesce(min(v.utm_source), ''), coalesce(min(v.utm_medium), ''),
       coalesce(min(v.utm_campaign), ''),
       count(*),
       count(*) = 1 AND bool_and(ev.kind = 'view' AND ev.step_id = f.entry_step_id),
       bool_or(ev.kind = f.goal_kind
               AND (f.goal_step_id IS NULL OR ev.step_id = f.goal_step_id)),
       bool_or(ev.kind = 'order'),
       bool_or(ev.kind = 'optin'),
       min(ev.occurred_at) FILTER (WHERE ev.kind = f.goal_kind
               AND (f.goal_step_id IS NULL OR ev.step_id = f.goal_step_id))
FROM _ev ev
JOIN _funnels f ON f.funnel_id = ev.funnel_id
JOIN accounts_workspace w ON w.id = ev.workspace_id
/*visitor:ev*/
GROUP BY ev.workspace_id, ev.funnel_id, ev.visitor_id, w.time_zone
ON CONFLICT (funnel_id, visitor_id) DO UPDATE SET
  entered_at = EXCLUDED.entered_at, entry_day = EXCLUDED.entry_day,
  source = EXCLUDED.source, medium = EXCLUDED.medium, campaign = EXCLUDED.campaign,
  events = EXCLUDED.events, bounced = EXCLUDED.bounced,
  reached_goal = EXCLUDED.reached_goal, bought = EXCLUDED.bought,
  opted_in = EXCLUDED.opted_in, goal_at = EXCLUDED.goal_at
WHERE (fv.entered_at, fv.source, fv.medium, fv.campaign, fv.events, fv.bounced,
       fv.reached_goal, fv.bought, fv.opted_in, fv.goal_at)
  IS DISTINCT FROM
      (EXCLUDED.entered_at, EXCLUDED.source, EXCLUDED.medium, EXCLUDED.campaign,
       EXCLUDED.events, EXCLUDED.bounced, EXCLUDED.reached_goal, EXCLUDED.bought,
       EXCLUDED.opted_in, EXCLUDED.goal_at);

INSERT INTO analytics_funnelvisitorstep AS fs
  (workspace_id, funnel_id, visitor_id, step_id, variant_id, first_view_at,
   opted_in, ordered, upsell_accepted, revenue_minor)
SELECT workspace_id, funnel_id, visitor_id, step_id,
       coalesce((array_agg(variant_id ORDER BY occurred_at)
                 FILTER (WHERE kind = 'view'))[1], 0),
       min(occurred_at) FILTER (WHERE kind = 'view'),
       bool_or(kind = 'optin'), bool_or(kind = 'order'),
       bool_or(kind IN ('upsell_accept', 'downsell_accept')),
       """
    + REVENUE_SQL.format(p="")
    + """
FROM _ev WHERE step_id IS NOT NULL
GROUP BY workspace_id, funnel_id, visitor_id, step_id
ON CONFLICT (funnel_id, visitor_id, step_id) DO UPDATE SET
  variant_id = EXCLUDED.variant_id, first_view_at = EXCLUDED.first_view_at,
  opted_in = EXCLUDED.opted_in, ordered = EXCLUDED.ordered,
  upsell_accepted = EXCLUDED.upsell_accepted, revenue_minor = EXCLUDED.revenue_minor
WHERE (fs.variant_id, fs.first_view_at, fs.opted_in, fs.ordered, fs.upsell_accepted,
       fs.revenue_minor)
  IS DISTINCT FROM
      (EXCLUDED.variant_id, EXCLUDED.first_view_at, EXCLUDED.opted_in,
       EXCLUDED.ordered, EXCLUDED.upsell_accepted, EXCLUDED.revenue_minor);
"""
)

# Each touched visitor's path (see FunnelVisitorPath): the steps of their events in
# time order (ties: by step, then kind), a run on one step being one element with
# what they did there. Needs _ev and their (new) FunnelVisitor rows.
_KIND_RANK = (
    "CASE kind WHEN 'view' THEN 0 WHEN 'optin' THEN 1 WHEN 'order' THEN 2 "
    "WHEN 'bump' THEN 3 WHEN 'upsell_accept' THEN 4 WHEN 'downsell_accept' THEN 4 "
    "WHEN 'upsell_decline' THEN 5 WHEN 'downsell_decline' THEN 5 "
    "WHEN 'refund' THEN 6 ELSE 7 END"
)
_PATH_FACTS_SQL = (
    """
WITH e AS (
  SELECT funnel_id, visitor_id, step_id, kind, occurred_at, """
    + _KIND_RANK
    + """ AS rk
  FROM _ev WHERE step_id IS NOT NULL
), b AS (
  SELECT *, (step_id IS DISTINCT FROM lag(step_id) OVER w)::int AS brk FROM e
  WINDOW w AS (PARTITION BY funnel_id, visitor_id ORDER BY occurred_at, step_id, rk)
), r AS (
  SELECT *, sum(brk) OVER (PARTITION BY funnel_id, visitor_id
                           ORDER BY occurred_at, step_id, rk
                           ROWS UNBOUNDED PRECEDING) AS run
  FROM b
), el AS (
  SELECT funnel_id, visitor_id, run, step_id, max(occurred_at) AS at,
         step_id::text
         || CASE WHEN bool_or(kind = 'optin') THEN 'i' ELSE '' END
         || CASE WHEN bool_or(kind = 'order') THEN 'o' ELSE '' END
         || CASE WHEN bool_or(kind IN ('upsell_accept', 'downsell_accept'))
                 THEN 'a' ELSE '' END
         || CASE WHEN bool_or(kind IN ('upsell_decline', 'downsell_decline'))
                 THEN 'd' ELSE '' END AS token
  FROM r GROUP BY funnel_id, visitor_id, run, step_id
), pa AS (
  SELECT funnel_id, visitor_id,
         CASE WHEN count(*) > %(path_max)s
              THEN array_to_string(
                     (array_agg(token ORDER BY run))[1:%(path_max)s - 1], '>')
                   || '>+'
              ELSE string_agg(token, '>' ORDER BY run) END AS path,
         (array_agg(step_id ORDER BY run DESC))[1] AS last_step_id,
         max(at) AS last_at
  FROM el GROUP BY funnel_id, visitor_id
), va AS (
  SELECT funnel_id, visitor_id, array_agg(variant_id ORDER BY variant_id) AS variants
  FROM (SELECT funnel_id, visitor_id, step_id,
               (array_agg(variant_id ORDER BY occurred_at))[1] AS variant_id
        FROM _ev WHERE kind = 'view' AND step_id IS NOT NULL
        GROUP BY funnel_id, visitor_id, step_id) f
  WHERE variant_id <> 0
  GROUP BY funnel_id, visitor_id
), rv AS (
  SELECT funnel_id, visitor_id, """
    + REVENUE_SQL.format(p="")
    + """ AS revenue
  FROM _ev GROUP BY funnel_id, visitor_id
)
INSERT INTO analytics_funnelvisitorpath AS fp
  (workspace_id, funnel_id, visitor_id, day, source, medium, campaign, variants,
   path, revenue_minor, bought, last_step_id, last_at)
SELECT fv.workspace_id, fv.funnel_id, fv.visitor_id, fv.entry_day, fv.source,
       fv.medium, fv.campaign, coalesce(va.variants, '{}'), coalesce(pa.path, ''),
       rv.revenue, fv.bought, pa.last_step_id, coalesce(pa.last_at, fv.entered_at)
FROM rv
/*fv of rv*/
LEFT JOIN pa ON pa.funnel_id = rv.funnel_id AND pa.visitor_id = rv.visitor_id
LEFT JOIN va ON va.funnel_id = rv.funnel_id AND va.visitor_id = rv.visitor_id
ON CONFLICT (funnel_id, visitor_id) DO UPDATE SET
  day = EXCLUDED.day, source = EXCLUDED.source, medium = EXCLUDED.medium,
  campaign = EXCLUDED.campaign, variants = EXCLUDED.variants, path = EXCLUDED.path,
  revenue_minor = EXCLUDED.revenue_minor, bought = EXCLUDED.bought,
  last_step_id = EXCLUDED.last_step_id, last_at = EXCLUDED.last_at
WHERE (fp.day, fp.source, fp.medium, fp.campaign, fp.variants, fp.path,
       fp.revenue_minor, fp.bought, fp.last_step_id, fp.last_at)
  IS DISTINCT FROM
      (EXCLUDED.day, EXCLUDED.source, EXCLUDED.medium, EXCLUDED.campaign,
       EXCLUDED.variants, EXCLUDED.path, EXCLUDED.revenue_minor, EXCLUDED.bought,
       EXCLUDED.last_step_id, EXCLUDED.last_at);
"""
)

# The facts of the touched visitors as cohort contributions, one row per visitor
# (funnel) and per visitor-step (steps).
_CONTRIB_SQL = """
CREATE TEMP TABLE {name}_fv ON COMMIT DROP AS
SELECT fv.workspace_id, fv.funnel_id, fv.entry_day AS day, fv.source, fv.medium,
       fv.campaign, fv.bounced::int AS bounced, fv.reached_goal::int AS reached_goal,
       fv.bought::int AS buyers, fv.opted_in::int AS optins,
       {seconds} AS seconds_to_goal, fv.visitor_id
/*touched facts*/;

CREATE TEMP TABLE {name}_fs ON COMMIT DROP AS
SELECT c.workspace_id, c.funnel_id, fs.step_id, fs.variant_id, c.day, c.source,
       c.medium, c.campaign, (fs.first_view_at IS NOT NULL)::int AS visitors,
       fs.opted_in::int AS optins, fs.ordered::int AS buyers,
       fs.upsell_accepted::int AS upsell_accepts, fs.revenue_minor
FROM {name}_fv c
/*touched steps*/;

CREATE TEMP TABLE {name}_fp ON COMMIT DROP AS
SELECT p.workspace_id, p.funnel_id, p.day, p.source, p.medium, p.campaign,
       p.variants, p.path, 1 AS visitors, p.bought::int AS buyers, p.revenue_minor
/*touched paths*/;
"""

_COHORT_DELTA_SQL = """
INSERT INTO analytics_cohortfunnelrollup AS r
  (workspace_id, funnel_id, day, source, medium, campaign, entered, bounced,
   reached_goal, buyers, optins, seconds_to_goal)
SELECT workspace_id, funnel_id, day, source, medium, campaign, sum(sign),
       sum(sign * bounced), sum(sign * reached_goal), sum(sign * buyers),
       sum(sign * optins), sum(sign * seconds_to_goal)
FROM (SELECT 1 AS sign, * FROM _new_fv UNION ALL SELECT -1, * FROM _old_fv) d
GROUP BY workspace_id, funnel_id, day, source, medium, campaign
HAVING sum(sign) <> 0 OR sum(sign * bounced) <> 0 OR sum(sign * reached_goal) <> 0
    OR sum(sign * buyers) <> 0 OR sum(sign * optins) <> 0
    OR sum(sign * seconds_to_goal) <> 0
ON CONFLICT (funnel_id, day, source, medium, campaign) DO UPDATE SET
  entered = r.entered + EXCLUDED.entered, bounced = r.bounced + EXCLUDED.bounced,
  reached_goal = r.reached_goal + EXCLUDED.reached_goal,
  buyers = r.buyers + EXCLUDED.buyers, optins = r.optins + EXCLUDED.optins,
  seconds_to_goal = r.seconds_to_goal + EXCLUDED.seconds_to_goal;

DELETE FROM analytics_cohortfunnelrollup r
USING (SELECT DISTINCT funnel_id, day FROM _old_fv) d
WHERE r.funnel_id = d.funnel_id AND r.day = d.day AND r.entered = 0
  AND r.seconds_to_goal = 0;

INSERT INTO analytics_cohortsteprollup AS r
  (workspace_id, funnel_id, step_id, variant_id, day, source, medium, campaign,
   visitors, optins, buyers, upsell_accepts, revenue_minor)
SELECT workspace_id, funnel_id, step_id, variant_id, day, source, medium, campaign,
       sum(sign * visitors), sum(sign * optins), sum(sign * buyers),
       sum(sign * upsell_accepts), sum(sign * revenue_minor)
FROM (SELECT 1 AS sign, * FROM _new_fs UNION ALL SELECT -1, * FROM _old_fs) d
GROUP BY workspace_id, funnel_id, step_id, variant_id, day, source, medium, campaign
HAVING sum(sign * visitors) <> 0 OR sum(sign * optins) <> 0
    OR sum(sign * buyers) <> 0 OR sum(sign * upsell_accepts) <> 0
    OR sum(sign * revenue_minor) <> 0
ON CONFLICT (funnel_id, step_id, variant_id, day, source, medium, campaign)
DO UPDATE SET
  visitors = r.visitors + EXCLUDED.visitors, optins = r.optins + EXCLUDED.optins,
  buyers = r.buyers + EXCLUDED.buyers,
  upsell_accepts = r.upsell_accepts + EXCLUDED.upsell_accepts,
  revenue_minor = r.revenue_minor + EXCLUDED.revenue_minor;

DELETE FROM analytics_cohortsteprollup r
USING (SELECT DISTINCT funnel_id, day FROM _old_fs) d
WHERE r.funnel_id = d.funnel_id AND r.day = d.day AND r.visitors = 0
  AND r.optins = 0 AND r.buyers = 0 AND r.upsell_accepts = 0
  AND r.revenue_minor = 0;

INSERT INTO analytics_journeyrollup AS r
  (workspace_id, funnel_id, day, source, medium, campaign, variants, path,
   visitors, buyers, revenue_minor)
SELECT workspace_id, funnel_id, day, source, medium, campaign, variants, path,
       sum(sign * visitors), sum(sign * buyers), sum(sign * revenue_minor)
FROM (SELECT 1 AS sign, * FROM _new_fp UNION ALL SELECT -1, * FROM _old_fp) d
GROUP BY workspace_id, funnel_id, day, source, medium, campaign, variants, path
HAVING sum(sign * visitors) <> 0 OR sum(sign * buyers) <> 0
    OR sum(sign * revenue_minor) <> 0
ON CONFLICT (funnel_id, day, source, medium, campaign, variants, path)
DO UPDATE SET
  visitors = r.visitors + EXCLUDED.visitors, buyers = r.buyers + EXCLUDED.buyers,
  revenue_minor = r.revenue_minor + EXCLUDED.revenue_minor;

DELETE FROM analytics_journeyrollup r
USING (SELECT DISTINCT funnel_id, day FROM _old_fp) d
WHERE r.funnel_id = d.funnel_id AND r.day = d.day AND r.visitors = 0
  AND r.buyers = 0 AND r.revenue_minor = 0;
"""

_DAILY_DELTA_SQL = (
    """
INSERT INTO analytics_stepdailyrollup AS r
  (workspace_id, funnel_id, step_id, variant_id, day, source, medium, campaign,
   currency, views, optins, orders, bumps, upsell_accepts, upsell_declines,
   revenue_minor)
SELECT t.workspace_id, t.funnel_id, t.step_id, t.variant_id,
       (t.occurred_at AT TIME ZONE w.time_zone)::date,
       coalesce(v.utm_source, ''), coalesce(v.utm_medium, ''),
       coalesce(v.utm_campaign, ''),
       CASE WHEN t.amount_minor IS NULL THEN '' ELSE coalesce(t.currency, '') END,
       count(*) FILTER (WHERE t.kind = 'view'),
       count(*) FILTER (WHERE t.kind = 'optin'),
       count(*) FILTER (WHERE t.kind = 'order'),
       count(*) FILTER (WHERE t.kind = 'bump'),
       count(*) FILTER (WHERE t.kind IN ('upsell_accept', 'downsell_accept')),
       count(*) FILTER (WHERE t.kind IN ('upsell_decline', 'downsell_decline')),
       """
    + REVENUE_SQL.format(p="t.")
    + """
FROM _tail t
JOIN accounts_workspace w ON w.id = t.workspace_id
/*visitor:t*/
WHERE t.step_id IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
ON CONFLICT (funnel_id, step_id, variant_id, day, source, medium, campaign, currency)
DO UPDATE SET
  views = r.views + EXCLUDED.views, optins = r.optins + EXCLUDED.optins,
  orders = r.orders + EXCLUDED.orders, bumps = r.bumps + EXCLUDED.bumps,
  upsell_accepts = r.upsell_accepts + EXCLUDED.upsell_accepts,
  upsell_declines = r.upsell_declines + EXCLUDED.upsell_declines,
  revenue_minor = r.revenue_minor + EXCLUDED.revenue_minor;
"""
)

# ---------------------------------------------------------------- rebuild
_DAYS_TOUCHED_SQL = """
CREATE TEMP TABLE _days ON COMMIT DROP AS
SELECT DISTINCT funnel_id, day FROM _old_fv
UNION SELECT DISTINCT funnel_id, day FROM _new_fv;
"""
# A first run folds every event: the cohort buckets are the facts' sums, straight
# (copying every fact into snapshots to add their difference would be twice the
# work for the same numbers). The facts were all written by this run: fresh
# statistics keep the planner from guessing "empty tables".
_DAYS_ALL_SQL = """
ANALYZE analytics_funnelvisitor;
ANALYZE analytics_funnelvisitorstep;
ANALYZE analytics_funnelvisitorpath;
CREATE TEMP TABLE _days ON COMMIT DROP AS
SELECT DISTINCT funnel_id, entry_day AS day FROM analytics_funnelvisitor;
"""

# Needs _days (funnel_id, day): recomputes those cohort buckets from the facts.
_COHORT_RECOMPUTE_SQL = f"""
DELETE FROM analytics_cohortfunnelrollup r USING _days d
WHERE r.funnel_id = d.funnel_id AND r.day = d.day;

INSERT INTO analytics_cohortfunnelrollup
  (workspace_id, funnel_id, day, source, medium, campaign, entered, bounced,
   reached_goal, buyers, optins, seconds_to_goal)
SELECT fv.workspace_id, fv.funnel_id, fv.entry_day, fv.source, fv.medium,
       fv.campaign, count(*), count(*) FILTER (WHERE fv.bounced),
       count(*) FILTER (WHERE fv.reached_goal), count(*) FILTER (WHERE fv.bought),
       count(*) FILTER (WHERE fv.opted_in), sum({_SECONDS_TO_GOAL})
FROM analytics_funnelvisitor fv
JOIN _days d ON d.funnel_id = fv.funnel_id AND d.day = fv.entry_day
GROUP BY fv.workspace_id, fv.funnel_id, fv.entry_day, fv.source, fv.medium,
         fv.campaign;

DELETE FROM analytics_cohortsteprollup r USING _days d
WHERE r.funnel_id = d.funnel_id AND r.day = d.day;

INSERT INTO analytics_cohortsteprollup
  (workspace_id, funnel_id, step_id, variant_id, day, source, medium, campaign,
   visitors, optins, buyers, upsell_accepts, revenue_minor)
SELECT fv.workspace_id, fv.funnel_id, fs.step_id, fs.variant_id, fv.entry_day,
       fv.source, fv.medium, fv.campaign,
       count(*) FILTER (WHERE fs.first_view_at IS NOT NULL),
       count(*) FILTER (WHERE fs.opted_in), count(*) FILTER (WHERE fs.ordered),
       count(*) FILTER (WHERE fs.upsell_accepted), sum(fs.revenue_minor)
FROM analytics_funnelvisitor fv
JOIN _days d ON d.funnel_id = fv.funnel_id AND d.day = fv.entry_day
JOIN analytics_funnelvisitorstep fs
  ON fs.funnel_id = fv.funnel_id AND fs.visitor_id = fv.visitor_id
GROUP BY fv.workspace_id, fv.funnel_id, fs.step_id, fs.variant_id, fv.entry_day,
         fv.source, fv.medium, fv.campaign;

DELETE FROM analytics_journeyrollup r USING _days d
WHERE r.funnel_id = d.funnel_id AND r.day = d.day;

INSERT INTO analytics_journeyrollup
  (workspace_id, funnel_id, day, source, medium, campaign, variants, path,
   visitors, buyers, revenue_minor)
SELECT p.workspace_id, p.funnel_id, p.day, p.source, p.medium, p.campaign,
       p.variants, p.path, count(*), count(*) FILTER (WHERE p.bought),
       sum(p.revenue_minor)
FROM analytics_funnelvisitorpath p
JOIN _days d ON d.funnel_id = p.funnel_id AND d.day = p.day
GROUP BY p.workspace_id, p.funnel_id, p.day, p.source, p.medium, p.campaign,
         p.variants, p.path;
"""

_DAILY_RECOMPUTE_SQL = (
    """
DELETE FROM analytics_stepdailyrollup r USING _daily d
WHERE r.funnel_id = d.funnel_id AND r.day = d.day;

INSERT INTO analytics_stepdailyrollup
  (workspace_id, funnel_id, step_id, variant_id, day, source, medium, campaign,
   currency, views, optins, orders, bumps, upsell_accepts, upsell_declines,
   revenue_minor)
SELECT e.workspace_id, e.funnel_id, e.step_id, coalesce(e.variant_id, 0), d.day,
       coalesce(v.utm_source, ''), coalesce(v.utm_medium, ''),
       coalesce(v.utm_campaign, ''),
       CASE WHEN e.amount_minor IS NULL THEN '' ELSE coalesce(e.currency, '') END,
       count(*) FILTER (WHERE e.kind = 'view'),
       count(*) FILTER (WHERE e.kind = 'optin'),
       count(*) FILTER (WHERE e.kind = 'order'),
       count(*) FILTER (WHERE e.kind = 'bump'),
       count(*) FILTER (WHERE e.kind IN ('upsell_accept', 'downsell_accept')),
       count(*) FILTER (WHERE e.kind IN ('upsell_decline', 'downsell_decline')),
       """
    + REVENUE_SQL.format(p="e.")
    + """
FROM _daily d
JOIN analytics_event e
  ON e.funnel_id = d.funnel_id
 AND e.occurred_at >= (d.day::timestamp AT TIME ZONE d.tz)
 AND e.occurred_at < ((d.day + 1)::timestamp AT TIME ZONE d.tz)
LEFT JOIN analytics_visitor v
       ON v.workspace_id = e.workspace_id AND v.public_id = e.visitor_id
WHERE e.step_id IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9;

-- Events of these buckets that a later incremental run would read again are
-- counted now: remember them as folded.
INSERT INTO analytics_rollupfoldedevent (event_id, inserted_at)
SELECT e.id, e.inserted_at
FROM _daily d
JOIN analytics_event e
  ON e.funnel_id = d.funnel_id
 AND e.occurred_at >= (d.day::timestamp AT TIME ZONE d.tz)
 AND e.occurred_at < ((d.day + 1)::timestamp AT TIME ZONE d.tz)
WHERE e.inserted_at > %(folded_after)s
ON CONFLICT (event_id) DO NOTHING;
"""
)


def _clock_horizon_state(
    cursor,
) -> tuple[datetime, datetime, tuple[datetime, datetime | None] | None]:
    """The new watermark, where the next run must start reading, and the state.

    ``inserted_at`` is the inserting transaction's start time, so a row that this
    run cannot see yet belongs to a transaction open now (or starting later): its
    ``inserted_at`` is at least the oldest open transaction's start. The next run
    reads from there (minus a second of slack), but never from earlier than the
    watermark minus MARGIN — the old assumption that no write transaction stays
    open longer than that. When other sessions' transaction starts are hidden
    (a less privileged database user), it reads from watermark minus MARGIN.
    """
    cursor.execute(
        "SELECT clock_timestamp(), "
        "(SELECT min(xact_start) FROM pg_stat_activity "
        " WHERE datname = current_database()), "
        "EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
        "        AND query = '<insufficient privilege>'), "
        "s.watermark, s.read_from "
        "FROM (SELECT 1) one LEFT JOIN analytics_rollupstate s ON s.name = %s",
        [STATE],
    )
    now, oldest_open, hidden, watermark, read_from = cursor.fetchone()
    state = None if watermark is None else (watermark, read_from)
    if hidden or oldest_open is None:
        return now, now - MARGIN, state
    return now, max(now - MARGIN, min(now, oldest_open) - SLACK), state


def _since(watermark: datetime, read_from: datetime | None) -> datetime:
    return read_from if read_from is not None else watermark - MARGIN


_TAIL_SQL = """
CREATE TEMP TABLE _tail ON COMMIT DROP AS
SELECT e.id, e.workspace_id, e.funnel_id, e.step_id, e.visitor_id, e.kind,
       coalesce(e.variant_id, 0) AS variant_id, e.amount_minor, e.occurred_at,
       e.inserted_at, e.currency
FROM analytics_event e
WHERE e.inserted_at > %(since)s AND e.funnel_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM analytics_rollupfoldedevent f
                  WHERE f.event_id = e.id)
"""


# Joins from the touched rows into the big tables. A run after a minute of traffic
# touches a few thousand of millions of rows: LATERAL makes them index probes
# whatever the planner's estimates (a hash join would scan the whole table). A
# run that folds everything (the first one, a rebuild) joins them whole.
_JOINS = {
    "/*visitor:ev*/": (
        "LEFT JOIN analytics_visitor v ON v.workspace_id = ev.workspace_id "
        "AND v.public_id = ev.visitor_id",
        "LEFT JOIN LATERAL (SELECT vv.utm_source, vv.utm_medium, vv.utm_campaign "
        "FROM analytics_visitor vv WHERE vv.workspace_id = ev.workspace_id "
        "AND vv.public_id = ev.visitor_id) v ON true",
    ),
    "/*visitor:t*/": (
        "LEFT JOIN analytics_visitor v ON v.workspace_id = t.workspace_id "
        "AND v.public_id = t.visitor_id",
        "LEFT JOIN LATERAL (SELECT vv.utm_source, vv.utm_medium, vv.utm_campaign "
        "FROM analytics_visitor vv WHERE vv.workspace_id = t.workspace_id "
        "AND vv.public_id = t.visitor_id) v ON true",
    ),
    "/*touched facts*/": (
        "FROM analytics_funnelvisitor fv JOIN _touched t "
        "ON t.funnel_id = fv.funnel_id AND t.visitor_id = fv.visitor_id",
        "FROM _touched t CROSS JOIN LATERAL (SELECT * FROM analytics_funnelvisitor f0 "
        "WHERE f0.funnel_id = t.funnel_id AND f0.visitor_id = t.visitor_id) fv",
    ),
    "/*touched paths*/": (
        "FROM analytics_funnelvisitorpath p JOIN _touched t "
        "ON t.funnel_id = p.funnel_id AND t.visitor_id = p.visitor_id",
        "FROM _touched t CROSS JOIN LATERAL (SELECT * FROM "
        "analytics_funnelvisitorpath p0 WHERE p0.funnel_id = t.funnel_id "
        "AND p0.visitor_id = t.visitor_id) p",
    ),
    "/*fv of rv*/": (
        "JOIN analytics_funnelvisitor fv ON fv.funnel_id = rv.funnel_id "
        "AND fv.visitor_id = rv.visitor_id",
        "CROSS JOIN LATERAL (SELECT * FROM analytics_funnelvisitor f0 "
        "WHERE f0.funnel_id = rv.funnel_id AND f0.visitor_id = rv.visitor_id) fv",
    ),
    "/*touched steps*/": (
        "JOIN analytics_funnelvisitorstep fs "
        "ON fs.funnel_id = c.funnel_id AND fs.visitor_id = c.visitor_id",
        "CROSS JOIN LATERAL (SELECT * FROM analytics_funnelvisitorstep s0 "
        "WHERE s0.funnel_id = c.funnel_id AND s0.visitor_id = c.visitor_id) fs",
    ),
}


def _joined(sql: str, *, probes: bool) -> str:
    for marker, (whole, probe) in _JOINS.items():
        sql = sql.replace(marker, probe if probes else whole)
    return sql


@dataclass(frozen=True)
class RollupRun:
    events: int  # events folded (incremental runs)
    visitors: int  # visitors whose facts were recomputed
    days: int  # day buckets recomputed (rebuilds)
    watermark: datetime | None


def _batch_memory(cursor) -> None:
    """Sort and hash memory for a run over every event (a first run, a rebuild), in
    this transaction only. With the server's default (4 MB) a first run over 10 M
    events spilled its visitor join and day groups to disk in 128 passes: minutes
    instead of seconds. Incremental runs work on a small tail and keep the default."""
    cursor.execute("SELECT set_config('work_mem', %s, true)", [BATCH_WORK_MEM])


def _lock(cursor, wait: bool) -> bool:
    if wait:
        cursor.execute(LOCK_SQL)
        return True
    cursor.execute(TRY_LOCK_SQL)
    return bool(cursor.fetchone()[0])


def _paths_params(cursor) -> dict[str, int | paths.RollupArray]:
    """Entry step and goal of the funnels just selected (funnels.paths answers),
    and the longest path the path facts keep."""
    return {
        **paths.rollup_params(funnel_ids=[row[0] for row in cursor.fetchall()]),
        "path_max": FunnelVisitorPath.PATH_MAX,
    }


# The upserts of the facts, up to the end of their ON CONFLICT clause.
_UPSERT_RE = re.compile(
    r"\nON CONFLICT \((funnel_id, visitor_id[^)]*)\) DO UPDATE.*?;", re.S
)


def _sorted_insert(upsert: re.Match) -> str:
    """A plain insert in the order of the facts' unique key. Each fact SELECT lists
    workspace_id, then the key's columns in order (funnel_id, visitor_id[,
    step_id]): ORDER BY 2, 3[, 4]. Millions of rows in random visitor order would
    each touch a random page of a unique index larger than shared buffers."""
    keys = len(upsert.group(1).split(","))
    return f"\nORDER BY {', '.join(str(i + 2) for i in range(keys))};"


def _facts_and_contributions(
    *, ev_sql: str, probes: bool, snapshots: bool = True
) -> list[str]:
    """Snapshot the touched visitors' old facts, recompute them, snapshot again.

    Without ``snapshots`` the facts start empty (a first run deleted them): they are
    only computed, and written with plain inserts (an upsert checks each of
    millions of rows for a conflict that cannot happen).
    """
    statements = [ev_sql, "ANALYZE _ev", _FACTS_SQL, _PATH_FACTS_SQL]
    if not snapshots:
        statements = [_UPSERT_RE.sub(_sorted_insert, sql) for sql in statements]
    if snapshots:
        statements = [
            _CONTRIB_SQL.format(name="_old", seconds=_SECONDS_TO_GOAL),
            "ANALYZE _old_fv; ANALYZE _old_fs; ANALYZE _old_fp",
            *statements,
            _CONTRIB_SQL.format(name="_new", seconds=_SECONDS_TO_GOAL),
            "ANALYZE _new_fv; ANALYZE _new_fs; ANALYZE _new_fp",
        ]
    return [_joined(sql, probes=probes) for sql in statements]


def rollup_watermark() -> datetime | None:
    state = RollupState.objects.filter(name=STATE).first()
    return state.watermark if state else None


def rollups_update(*, wait: bool = True) -> RollupRun | None:
    """Fold events stored since the last run into the rollups (exactly once).

    With wait=False (a dashboard catching up on the tail) return None at once when
    another run is in progress.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        if not _lock(cursor, wait):
            return None  # another run holds the lock and will do the work
        # Taken under the lock, so watermarks only move forward.
        new_watermark, read_from, state = _clock_horizon_state(cursor)
        full = state is None
        if full:
            _batch_memory(cursor)
        params: dict[str, datetime | str | int | paths.RollupArray] = {
            "since": datetime(1970, 1, 1, tzinfo=UTC)
            if state is None
            else _since(*state),
            "read_from": read_from,
            "watermark": new_watermark,
            "state": STATE,
        }
        # Three round trips: the tail and its visitors; the funnels they touched;
        # then, with those funnels' entry step and goal (funnels.paths), the rest.
        sql = [_DROP_SQL]
        if full:
            # No watermark: start from empty rollups and fold every event.
            sql += [f"DELETE FROM {table}" for table in FACT_TABLES]
        sql += [
            _TAIL_SQL,
            # Temporary tables get no statistics by themselves: without them the
            # planner guesses (nested loops over millions of rows for a big tail,
            # scans of whole tables for three visitors).
            "ANALYZE _tail",
            _joined(_DAILY_DELTA_SQL, probes=not full),
            "CREATE TEMP TABLE _touched ON COMMIT DROP AS "
            "SELECT DISTINCT workspace_id, funnel_id, visitor_id FROM _tail "
            "WHERE visitor_id IS NOT NULL",
            "ANALYZE _touched",
        ]
        cursor.execute(";\n".join(sql), params)
        cursor.execute("SELECT DISTINCT funnel_id FROM _touched")
        params.update(_paths_params(cursor))
        sql = [
            *_facts_and_contributions(
                ev_sql=_EV_FROM_TAIL_SQL if full else _EV_BY_PROBES_SQL,
                probes=not full,
                snapshots=not full,
            ),
            *([_DAYS_ALL_SQL, _COHORT_RECOMPUTE_SQL] if full else [_COHORT_DELTA_SQL]),
            "INSERT INTO analytics_rollupfoldedevent (event_id, inserted_at) "
            "SELECT id, inserted_at FROM _tail WHERE inserted_at > %(read_from)s "
            "ON CONFLICT (event_id) DO NOTHING",
            "DELETE FROM analytics_rollupfoldedevent "
            "WHERE inserted_at <= %(read_from)s",
            "INSERT INTO analytics_rollupstate (name, watermark, read_from, "
            "updated_at) VALUES (%(state)s, %(watermark)s, %(read_from)s, now()) "
            "ON CONFLICT (name) DO UPDATE SET watermark = EXCLUDED.watermark, "
            "read_from = EXCLUDED.read_from, updated_at = EXCLUDED.updated_at",
        ]
        cursor.execute(";\n".join(sql), params)
        cursor.execute(
            "SELECT (SELECT count(*) FROM _tail), (SELECT count(*) FROM _touched)"
        )
        events, visitors = cursor.fetchone()
        cursor.execute(_DROP_SQL)
    return RollupRun(events, visitors, 0, new_watermark)


def rollups_rebuild(*, date_from: date, date_to: date) -> RollupRun:
    """Recompute every rollup bucket touched by events that occurred in the range.

    The facts of every visitor with an event in the range are recomputed, then the
    whole cohort buckets of their entry days and the whole day buckets of the range,
    straight from raw events.
    """
    start = datetime.combine(date_from, datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(date_to + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    # A day bucket in a far-east or far-west time zone straddles UTC days.
    params = {"start": start - timedelta(hours=14), "end": end + timedelta(hours=14)}
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor, True)
        _batch_memory(cursor)
        cursor.execute(_DROP_SQL)
        _now, _read_from, row = _clock_horizon_state(cursor)
        cursor.execute(
            "CREATE TEMP TABLE _touched ON COMMIT DROP AS "
            "SELECT DISTINCT workspace_id, funnel_id, visitor_id "
            "FROM analytics_event e "
            "WHERE e.occurred_at >= %(start)s AND e.occurred_at < %(end)s "
            "AND funnel_id IS NOT NULL AND visitor_id IS NOT NULL",
            params,
        )
        visitors = cursor.rowcount
        cursor.execute("ANALYZE _touched")
        cursor.execute(
            "CREATE TEMP TABLE _daily ON COMMIT DROP AS "
            "SELECT DISTINCT e.funnel_id, "
            "(e.occurred_at AT TIME ZONE w.time_zone)::date AS day, "
            "w.time_zone AS tz "
            "FROM analytics_event e JOIN accounts_workspace w ON w.id = e.workspace_id "
            "WHERE e.occurred_at >= %(start)s AND e.occurred_at < %(end)s "
            "AND e.funnel_id IS NOT NULL",
            params,
        )
        if visitors:
            cursor.execute("SELECT DISTINCT funnel_id FROM _touched")
            paths_params = _paths_params(cursor)
            for statement in _facts_and_contributions(
                ev_sql=_EV_FROM_EVENTS_SQL, probes=False
            ):
                cursor.execute(statement, paths_params)
            cursor.execute(_DAYS_TOUCHED_SQL)
            cursor.execute(_COHORT_RECOMPUTE_SQL)
        # Without a watermark the next incremental run starts over anyway.
        folded_after = _since(*row) if row else datetime.max.replace(tzinfo=UTC)
        cursor.execute(
            _joined(_DAILY_RECOMPUTE_SQL, probes=False), {"folded_after": folded_after}
        )
        cursor.execute("SELECT count(*) FROM _daily")
        days = cursor.fetchone()[0]
        cursor.execute(_DROP_SQL)
    return RollupRun(0, visitors, days, row[0] if row else None)


def rollup_tail_size() -> int:
    """How many stored events the rollups have not folded in yet."""
    state = RollupState.objects.filter(name=STATE).first()
    with connection.cursor() as cursor:
        if state is None:
            cursor.execute(
                "SELECT count(*) FROM analytics_event WHERE funnel_id IS NOT NULL"
            )
        else:
            cursor.execute(
                "SELECT count(*) FROM analytics_event e WHERE e.inserted_at > %s "
                "AND e.funnel_id IS NOT NULL AND NOT EXISTS "
                "(SELECT 1 FROM analytics_rollupfoldedevent f WHERE f.event_id = e.id)",
                [_since(state.watermark, state.read_from)],
            )
        return cursor.fetchone()[0]
