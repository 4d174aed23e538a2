"""Dashboard benchmark: 10 M events and ~1 M leads over 90 days, rollups, dashboard.

Run from the repository root with DATABASE_URL and REDIS_URL set (``make bench`` sets
them):

    python bench/dashboard.py                 # the issue's scale: 10 M events
    BENCH_EVENTS=1000000 python bench/dashboard.py   # a quicker run

1. Creates its own database ``<name>_bench_dashboard`` next to DATABASE_URL's and
   migrates it (dropped again at the end, also on failure).
2. Generates, inside PostgreSQL (generate_series + INSERT … SELECT, ordered by time like
   a real stream), visitors over 90 days across 5 funnels — lead magnet, tripwire with
   bump / upsell / downsell, sales letter, webinar, product launch — with several
   source / medium / campaign first touches, repeat views, visitors coming back days
   later, opt-ins (each one a lead with its submission), orders with amounts, bumps,
   upsells and refunds. Visitor counts are sized so that the events come to
   BENCH_EVENTS (default 10,000,000).
3. Times the full rollup (``rollups_update`` from an empty state).
4. Stores 10,000 new events (a minute of traffic: new visitors and visitors continuing
   earlier visits) through the ingest write path (COPY), and times the incremental
   rollup.
5. Measures the funnel dashboard's server time with a logged-in owner through Django's
   test client: 50 requests of the full view (last 30 days, comparison period, charts),
   each after a few more events arrived, so every request also folds in the
   not-yet-rolled-up tail.

Last line: ``bench dashboard: events=… full_rollup_s=… incremental_rollup_s=…
dashboard_p50_ms=… dashboard_p95_ms=…``.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EVENTS = int(os.environ.get("BENCH_EVENTS") or (sys.argv[1] if sys.argv[1:] else 0))
EVENTS = EVENTS or 10_000_000
DAYS = 90
NEW_EVENTS = 10_000
REQUESTS = 50
TAIL_EVENTS_PER_REQUEST = 6


def _bench_database_url() -> tuple[str, str, str]:
    """(admin URL, bench URL, bench database name) derived from DATABASE_URL."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("bench/dashboard.py needs DATABASE_URL (make bench sets it)")
    parts = urlsplit(url)
    base = parts.path.lstrip("/") or "openfunnels"
    name = f"{base}_bench_dashboard"
    admin = urlunsplit(parts._replace(path="/postgres"))
    bench = urlunsplit(parts._replace(path=f"/{name}"))
    return admin, bench, name


def _admin_exec(admin_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql)


ADMIN_URL, BENCH_URL, BENCH_DB = _bench_database_url()
os.environ["DATABASE_URL"] = BENCH_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnop")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
os.environ.setdefault("PUBLIC_DOMAIN", "localhost")  # required with DEBUG off

# ----------------------------------------------------------------- the funnels
# A stage is one event every visitor whose random draws fall in the given intervals
# emits: (step index, kind, amount in cents, {draw: (lo, hi)}, order in the visit,
# delay) where delay is "" (same visit), "back" (days later for the 15 % of visitors
# who come back: r8 < 0.15) or "later" (always days later, e.g. a refund).
SOURCES = [
    # source, medium, campaign, share of visitors
    ("", "", "", 0.22),
    ("google", "cpc", "brand", 0.12),
    ("google", "cpc", "generic", 0.09),
    ("google", "organic", "", 0.10),
    ("facebook", "paid_social", "spring_sale", 0.13),
    ("facebook", "paid_social", "retargeting", 0.06),
    ("instagram", "paid_social", "reels", 0.06),
    ("newsletter", "email", "weekly", 0.09),
    ("youtube", "video", "launch", 0.06),
    ("tiktok", "paid_social", "ugc", 0.04),
    ("partner", "affiliate", "jv_launch", 0.03),
]

OPT = {1: (0, 0.32)}  # opted in
FUNNELS = [
    {
        "name": "Free guide",
        "share": 0.30,
        "steps": [("Get the guide", "optin"), ("Download", "thankyou")],
        "lead": {1: (0, 0.33)},
        "stages": [
            (0, "view", None, {}, 0, ""),
            (0, "click", None, {5: (0, 0.6)}, 1, ""),
            (0, "view", None, {6: (0, 0.25)}, 1, ""),
            (0, "optin", None, {1: (0, 0.33)}, 2, ""),
            (1, "view", None, {1: (0, 0.33)}, 3, ""),
            (0, "view", None, {8: (0, 0.15)}, 4, "back"),
        ],
    },
    {
        "name": "Tripwire",
        "share": 0.25,
        "steps": [
            ("Opt-in", "optin"),
            ("Special offer", "order"),
            ("Upgrade", "upsell"),
            ("Lite version", "downsell"),
            ("Thank you", "thankyou"),
        ],
        "lead": {1: (0, 0.30)},
        "stages": [
            (0, "view", None, {}, 0, ""),
            (0, "click", None, {5: (0, 0.6)}, 1, ""),
            (0, "view", None, {6: (0, 0.2)}, 1, ""),
            (0, "optin", None, {1: (0, 0.30)}, 2, ""),
            (1, "view", None, {1: (0, 0.30)}, 3, ""),
            (1, "view", None, {1: (0, 0.30), 8: (0, 0.15)}, 4, "back"),
            (1, "order", 700, {1: (0, 0.30), 2: (0, 0.22)}, 5, "back"),
            (1, "bump", 900, {1: (0, 0.30), 2: (0, 0.22), 3: (0, 0.35)}, 5, "back"),
            (2, "view", None, {1: (0, 0.30), 2: (0, 0.22)}, 6, "back"),
            (
                2,
                "upsell_accept",
                9700,
                {1: (0, 0.30), 2: (0, 0.22), 4: (0, 0.25)},
                7,
                "back",
            ),
            (
                2,
                "upsell_decline",
                None,
                {1: (0, 0.30), 2: (0, 0.22), 4: (0.25, 1)},
                7,
                "back",
            ),
            (3, "view", None, {1: (0, 0.30), 2: (0, 0.22), 4: (0.25, 1)}, 8, "back"),
            (
                3,
                "upsell_accept",
                4700,
                {1: (0, 0.30), 2: (0, 0.22), 4: (0.25, 1), 5: (0, 0.3)},
                9,
                "back",
            ),
            (
                3,
                "upsell_decline",
                None,
                {1: (0, 0.30), 2: (0, 0.22), 4: (0.25, 1), 5: (0.3, 1)},
                9,
                "back",
            ),
            (4, "view", None, {1: (0, 0.30), 2: (0, 0.22)}, 10, "back"),
            (1, "refund", 700, {1: (0, 0.30), 2: (0, 0.22), 6: (0.97, 1)}, 11, "later"),
        ],
    },
    {
        "name": "Sales letter",
        "share": 0.15,
        "steps": [
            ("Sales letter", "sales"),
            ("Checkout", "order"),
            ("Coaching upsell", "upsell"),
            ("Welcome", "thankyou"),
        ],
        "lead": {1: (0, 0.30), 2: (0, 0.16)},  # buyers become leads at checkout
        "stages": [
            (0, "view", None, {}, 0, ""),
            (0, "click", None, {5: (0, 0.6)}, 1, ""),
            (0, "view", None, {6: (0, 0.3)}, 1, ""),
            (0, "click", None, {1: (0, 0.30)}, 2, ""),
            (1, "view", None, {1: (0, 0.30)}, 3, ""),
            (1, "order", 4700, {1: (0, 0.30), 2: (0, 0.16)}, 4, "back"),
            (1, "bump", 1900, {1: (0, 0.30), 2: (0, 0.16), 3: (0, 0.3)}, 4, "back"),
            (2, "view", None, {1: (0, 0.30), 2: (0, 0.16)}, 5, "back"),
            (
                2,
                "upsell_accept",
                14700,
                {1: (0, 0.30), 2: (0, 0.16), 4: (0, 0.2)},
                6,
                "back",
            ),
            (
                2,
                "upsell_decline",
                None,
                {1: (0, 0.30), 2: (0, 0.16), 4: (0.2, 1)},
                6,
                "back",
            ),
            (3, "view", None, {1: (0, 0.30), 2: (0, 0.16)}, 7, "back"),
        ],
    },
    {
        "name": "Webinar",
        "share": 0.15,
        "steps": [
            ("Register", "optin"),
            ("Confirmed", "thankyou"),
            ("Replay", "sales"),
            ("Enroll", "order"),
            ("Welcome aboard", "thankyou"),
        ],
        "lead": {1: (0, 0.35)},
        "stages": [
            (0, "view", None, {}, 0, ""),
            (0, "click", None, {5: (0, 0.6)}, 1, ""),
            (0, "optin", None, {1: (0, 0.35)}, 1, ""),
            (1, "view", None, {1: (0, 0.35)}, 2, ""),
            (2, "view", None, {1: (0, 0.35), 2: (0, 0.5)}, 3, "back"),
            (2, "view", None, {1: (0, 0.35), 2: (0, 0.5), 6: (0, 0.3)}, 4, "back"),
            (3, "view", None, {1: (0, 0.35), 2: (0, 0.5), 3: (0, 0.3)}, 5, "back"),
            (
                3,
                "order",
                29700,
                {1: (0, 0.35), 2: (0, 0.5), 3: (0, 0.3), 4: (0, 0.25)},
                6,
                "back",
            ),
            (
                4,
                "view",
                None,
                {1: (0, 0.35), 2: (0, 0.5), 3: (0, 0.3), 4: (0, 0.25)},
                7,
                "back",
            ),
        ],
    },
    {
        "name": "Product launch",
        "share": 0.15,
        "steps": [
            ("Video 1", "optin"),
            ("Video 2", "sales"),
            ("Cart", "order"),
            ("You're in", "thankyou"),
        ],
        "lead": {1: (0, 0.32)},
        "stages": [
            (0, "view", None, {}, 0, ""),
            (0, "click", None, {5: (0, 0.6)}, 1, ""),
            (0, "view", None, {6: (0, 0.2)}, 1, ""),
            (0, "optin", None, {1: (0, 0.32)}, 2, ""),
            (1, "view", None, {1: (0, 0.32), 2: (0, 0.6)}, 3, "back"),
            (2, "view", None, {1: (0, 0.32), 2: (0, 0.6), 3: (0, 0.35)}, 4, "back"),
            (
                2,
                "order",
                49700,
                {1: (0, 0.32), 2: (0, 0.6), 3: (0, 0.35), 4: (0, 0.3)},
                5,
                "back",
            ),
            (
                2,
                "bump",
                2700,
                {1: (0, 0.32), 2: (0, 0.6), 3: (0, 0.35), 4: (0, 0.3), 5: (0, 0.4)},
                5,
                "back",
            ),
            (
                3,
                "view",
                None,
                {1: (0, 0.32), 2: (0, 0.6), 3: (0, 0.35), 4: (0, 0.3)},
                6,
                "back",
            ),
        ],
    },
]


def _probability(conds: dict[int, tuple[float, float]]) -> float:
    p = 1.0
    for lo, hi in conds.values():
        p *= hi - lo
    return p


def _visitors_needed(events: int) -> int:
    per_visitor = sum(
        f["share"] * sum(_probability(s[3]) for s in f["stages"]) for f in FUNNELS
    )
    return max(50, round(events / per_visitor))


def _cond_sql(conds: dict[int, tuple[float, float]]) -> str:
    parts = [f"v.r{i} >= {lo} AND v.r{i} < {hi}" for i, (lo, hi) in conds.items()]
    return " AND ".join(parts) or "true"


def _say(msg: str) -> None:
    print(msg, flush=True)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


# ------------------------------------------------------------------- generation
def generate(
    cursor,
    workspace_id: int,
    funnels: list[dict],
    visitors: int,
    leads: bool = True,
    variants: dict[int, tuple[int, int]] | None = None,
) -> None:
    """Fill the database (see the module's docstring). Without ``leads`` no lead or
    submission rows (the journey bench needs only visitors and events); ``variants``
    maps a step to the two pages of its split test, each visitor's events on the
    step carry one of them (half of the visitors each)."""
    cursor.execute("SET work_mem = '256MB'")
    cursor.execute("SET maintenance_work_mem = '512MB'")
    cursor.execute("SET synchronous_commit = off")
    cursor.execute("SELECT setseed(0.42)")
    cursor.execute("SELECT now() - interval '5 minutes'")
    end = cursor.fetchone()[0]
    cursor.execute("SELECT date_trunc('day', %s::timestamptz)", [end])
    start = cursor.fetchone()[0] - timedelta(days=DAYS - 1)
    cursor.execute(
        "CREATE UNLOGGED TABLE bench_source (n int, source text, medium text, "
        "campaign text, lo float8, hi float8)"
    )
    acc = 0.0
    total = sum(s[3] for s in SOURCES)
    source_his = []
    for n, (source, medium, campaign, share) in enumerate(SOURCES):
        cursor.execute(
            "INSERT INTO bench_source VALUES (%s, %s, %s, %s, %s, %s)",
            [n, source, medium, campaign, acc / total, (acc + share) / total],
        )
        acc += share
        source_his.append(acc / total)
    cursor.execute(
        "CREATE UNLOGGED TABLE bench_funnel (f int, funnel_id bigint, "
        "entry_step bigint, lo float8, hi float8)"
    )
    acc = 0.0
    funnel_his = []
    for i, f in enumerate(funnels):
        cursor.execute(
            "INSERT INTO bench_funnel VALUES (%s, %s, %s, %s, %s)",
            [i, f["id"], f["step_ids"][0], acc, acc + f["share"]],
        )
        acc += f["share"]
        funnel_his.append(acc)
    # One row per visitor: funnel, first touch, entry time, its random draws.
    # Arrivals follow a daily curve (more in the afternoon) and grow over 90 days.
    cursor.execute(
        f"""
        CREATE UNLOGGED TABLE bench_visitor AS
        SELECT gen_random_uuid() AS vid, bf.f, bf.funnel_id, bf.entry_step, s.n AS src,
               %(start)s::timestamptz
                 + (sqrt(random()) * {DAYS - 1})::int * interval '1 day'
                 + (14 * 3600 + (random() + random() + random() - 1.5) * 6 * 3600)
                   * interval '1 second' AS entry_at,
               random() AS r1, random() AS r2, random() AS r3, random() AS r4,
               random() AS r5, random() AS r6, random() AS r7, random() AS r8,
               random() AS r9
        FROM (SELECT {_bucket("uf", funnel_his)} AS f,
                     {_bucket("us", source_his)} AS n
              FROM (SELECT random() AS uf, random() AS us
                    FROM generate_series(1, %(n)s)) r) g
        JOIN bench_funnel bf ON bf.f = g.f
        JOIN bench_source s ON s.n = g.n
        """,
        {"start": start, "n": visitors},
    )
    cursor.execute("DELETE FROM bench_visitor WHERE entry_at >= %s", [end])
    cursor.execute("CREATE INDEX ON bench_visitor (entry_at)")
    cursor.execute("ANALYZE bench_visitor")

    if leads:
        _leads(cursor, workspace_id, funnels)
    else:
        cursor.execute("CREATE UNLOGGED TABLE bench_lead (vid uuid, lead_id bigint)")
    with _bulk_load(cursor, "analytics_visitor"):
        _visitors(cursor, workspace_id)

    # Events: every stage of every funnel is a row of bench_stage (its step, kind,
    # amount, order in the visit, delay and the intervals its draws must fall in),
    # so one join of the visitors with their funnel's stages emits all events. It
    # runs in chunks of days so that the table is written roughly in time order (as
    # a real stream is) without sorting everything at once.
    draws = range(1, 10)
    cursor.execute(
        "CREATE UNLOGGED TABLE bench_stage (f int, step_id bigint, kind text, "
        "amount bigint, ord int, delay text, variant_a bigint, variant_b bigint, "
        + ", ".join(f"lo{d} float8, hi{d} float8" for d in draws)
        + ")"
    )
    for i, f in enumerate(funnels):
        for step_index, kind, amount, conds, order, delay in f["stages"]:
            step_id = f["step_ids"][step_index]
            split = (variants or {}).get(step_id, (None, None))
            bounds = [b for d in draws for b in conds.get(d, (0.0, 2.0))]
            cursor.execute(
                f"INSERT INTO bench_stage VALUES ({', '.join(['%s'] * 26)})",
                [i, step_id, kind, amount, order, delay, *split, *bounds],
            )
    cursor.execute("ANALYZE bench_stage")
    within = " AND ".join(f"v.r{d} >= st.lo{d} AND v.r{d} < st.hi{d}" for d in draws)
    events_sql = f"""
        SELECT v.funnel_id, st.step_id, v.vid, st.kind, st.amount,
               CASE WHEN get_byte(uuid_send(v.vid), 0) < 128 THEN st.variant_a
                    ELSE st.variant_b END AS variant_id,
               v.entry_at + st.ord * (20 + 100 * v.r7) * interval '1 second'
               + CASE WHEN st.delay = 'back' AND v.r8 < 0.15
                      THEN (1 + floor(v.r9 * 6)) * interval '1 day'
                      WHEN st.delay = 'later'
                      THEN (3 + floor(v.r9 * 10)) * interval '1 day'
                      ELSE interval '0' END AS at
        FROM bench_visitor v JOIN bench_stage st ON st.f = v.f
        WHERE v.entry_at >= %(lo)s AND v.entry_at < %(hi)s AND {within}
    """
    # Bulk load: the month partitions are detached and stripped of their indexes,
    # filled in time order, then attached again, which builds each index once by
    # sorting (10 M random-uuid index inserts would take far longer).
    parts = _detach_partitions(cursor, start - timedelta(days=1), end)
    cursor.execute(
        "CREATE UNLOGGED TABLE bench_chunk (LIKE analytics_event INCLUDING DEFAULTS)"
    )
    chunk = timedelta(days=5)
    lo = start - timedelta(days=1)
    while lo < end:
        hi = lo + chunk
        cursor.execute(
            f"""
            INSERT INTO bench_chunk (id, workspace_id, funnel_id, step_id,
              visitor_id, kind, page_version_id, variant_id, amount_minor, currency,
              properties, occurred_at, received_at, inserted_at)
            SELECT gen_random_uuid(), %(ws)s, e.funnel_id, e.step_id, e.vid, e.kind,
              NULL, e.variant_id, e.amount, 'USD', '{{}}', e.at,
              e.at + interval '1 second', e.at + interval '4 seconds'
            FROM ({events_sql}) e WHERE e.at < %(end)s
            """,
            {"ws": workspace_id, "lo": lo, "hi": hi, "end": end},
        )
        for name, month_lo, month_hi in parts:
            cursor.execute(
                f"INSERT INTO {name} SELECT * FROM bench_chunk "
                "WHERE occurred_at >= %s AND occurred_at < %s ORDER BY occurred_at",
                [month_lo, month_hi],
            )
        cursor.execute("TRUNCATE bench_chunk")
        lo = hi
    cursor.execute("DROP TABLE bench_chunk, bench_stage")
    for name, month_lo, month_hi in parts:
        cursor.execute(
            f"ALTER TABLE analytics_event ATTACH PARTITION {name} "
            "FOR VALUES FROM (%s) TO (%s)",
            [month_lo, month_hi],
        )
    cursor.execute("ANALYZE")


def _bucket(draw: str, his: list[float]) -> str:
    """SQL: the number of the ``[lo, hi)`` interval (consecutive, from 0, ending at
    ``his``) that ``draw`` falls in, NULL past the last (a join on the ranges would
    test every interval for every visitor)."""
    whens = " ".join(f"WHEN {draw} < {hi!r} THEN {i}" for i, hi in enumerate(his))
    return f"CASE {whens} END"


@contextmanager
def _bulk_load(cursor, table: str) -> Iterator[None]:
    """Load ``table`` without its indexes and constraints, then build them once
    (millions of index inserts in random uuid order, and a deferred foreign-key
    check queued per row, take far longer)."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid), contype FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'f') "
        "ORDER BY contype = 'f'",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) "
        "FROM pg_index i WHERE indrelid = %s::regclass AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        [table],
    )
    indexes = cursor.fetchall()
    for name, _definition, _kind in reversed(constraints):
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _definition in indexes:
        cursor.execute(f"DROP INDEX {name}")
    yield
    for name, definition, _kind in constraints:
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for _name, definition in indexes:
        cursor.execute(definition)


def _visitors(cursor, workspace_id: int) -> None:
    cursor.execute(
        """
        INSERT INTO analytics_visitor (workspace_id, public_id, utm_source, utm_medium,
          utm_campaign, utm_content, utm_term, referrer, landing_funnel_id,
          landing_step_id, device_class, ip, first_seen, last_seen, lead_id)
        SELECT %(ws)s, v.vid, s.source, s.medium, s.campaign, '', '',
          CASE WHEN s.source = '' THEN ''
               ELSE 'https://' || s.source || '.example/' END,
          v.funnel_id, v.entry_step,
          CASE WHEN v.r9 < 0.62 THEN 'mobile' WHEN v.r9 < 0.68 THEN 'tablet'
               ELSE 'desktop' END,
          NULL, v.entry_at, v.entry_at, l.lead_id
        FROM bench_visitor v JOIN bench_source s ON s.n = v.src
        LEFT JOIN bench_lead l ON l.vid = v.vid
        """,
        {"ws": workspace_id},
    )


def _leads(cursor, workspace_id: int, funnels: list[dict]) -> None:
    # Leads (one per visitor who opted in, or bought on the sales letter), each with
    # the submission on its opt-in / order step.
    lead_selects = []
    for i, f in enumerate(funnels):
        step_kinds = [k for _, k in f["steps"]]
        lead_step = f["step_ids"][
            step_kinds.index("optin" if "optin" in step_kinds else "order")
        ]
        lead_selects.append(
            f"SELECT v.*, {lead_step}::bigint AS lead_step FROM bench_visitor v "
            f"WHERE v.f = {i} AND {_cond_sql(f['lead'])}"
        )
    cursor.execute(
        "CREATE UNLOGGED TABLE bench_lead AS "
        "SELECT nextval(pg_get_serial_sequence('leads_lead', 'id')) AS lead_id, l.* "
        f"FROM ({' UNION ALL '.join(lead_selects)}) l"
    )
    cursor.execute(
        """
        INSERT INTO leads_lead (id, workspace_id, public_id, email, first_name,
          last_name, phone, fields, consent_given, consent_text, consent_at,
          first_funnel_id, first_step_id, first_source, first_medium, first_campaign,
          first_referrer, last_source, last_medium, last_campaign, last_content,
          last_term, last_referrer, visitor_id, submission_count, created_at,
          updated_at)
        SELECT l.lead_id, %(ws)s, gen_random_uuid(),
          'lead' || l.lead_id || '@bench.invalid',
          'Lead', '#' || l.lead_id, '', '{}', true, 'Send me the guide',
          l.entry_at + interval '40 seconds', l.funnel_id, l.lead_step, s.source,
          s.medium, s.campaign, '', s.source, s.medium, s.campaign, '', '', '', l.vid,
          1, l.entry_at + interval '40 seconds', l.entry_at + interval '40 seconds'
        FROM bench_lead l JOIN bench_source s ON s.n = l.src
        """,
        {"ws": workspace_id},
    )
    cursor.execute(
        """
        INSERT INTO leads_submission (workspace_id, lead_id, funnel_id, step_id,
          variant_id, visitor_id, data, consent_given, consent_text, ip_address,
          user_agent, form_token, created_at)
        SELECT %(ws)s, l.lead_id, l.funnel_id, l.lead_step, NULL, l.vid,
          '{}', true, 'Send me the guide', NULL, 'bench', NULL,
          l.entry_at + interval '40 seconds'
        FROM bench_lead l
        """,
        {"ws": workspace_id},
    )


def _detach_partitions(cursor, start, end) -> list[tuple[str, object, object]]:
    """Detach the month partitions covering [start, end] and drop their indexes."""
    from analytics import ingest

    parts = []
    month = ingest.month_start(start)
    while month <= end:
        name = ingest.partition_name(month)
        parts.append((name, month, ingest.next_month(month)))
        cursor.execute(f"ALTER TABLE analytics_event DETACH PARTITION {name}")
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass "
            "AND contype = 'p'",
            [name],
        )
        for (constraint,) in cursor.fetchall():
            cursor.execute(f'ALTER TABLE {name} DROP CONSTRAINT "{constraint}"')
        cursor.execute(
            "SELECT indexrelid::regclass::text FROM pg_index "
            "WHERE indrelid = %s::regclass",
            [name],
        )
        for (index,) in cursor.fetchall():
            cursor.execute(f"DROP INDEX {index}")
        month = ingest.next_month(month)
    return parts


def _partitions(cursor, start, end) -> None:
    from analytics import ingest

    month = ingest.month_start(start)
    while month <= end:
        ingest.partition_ensure(month)
        month = ingest.next_month(month)


def returning_visitors(workspace_id: int) -> list[tuple[uuid.UUID, int]]:
    """Visitors of the last few days (not today) who may come back now."""
    from django.db import connection
    from django.utils import timezone

    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT public_id, landing_funnel_id FROM analytics_visitor "
            "WHERE workspace_id = %s AND first_seen > %s AND first_seen < %s "
            "LIMIT 3000",
            [workspace_id, now - timedelta(days=6), now - timedelta(days=1)],
        )
        return cursor.fetchall()


def new_events(
    workspace_id: int,
    funnels: list[dict],
    count: int,
    rng: random.Random,
    returning: list[tuple[uuid.UUID, int]],
) -> tuple[list[bytes], list[bytes]]:
    """``count`` events of the last minute: new visitors entering the funnels and
    earlier visitors coming back to the next step. Returns (event lines, visitor
    lines)."""
    from django.utils import timezone

    from analytics import ingest

    now = timezone.now()
    by_id = {f["id"]: f for f in funnels}
    events: list[bytes] = []
    visitors: list[bytes] = []

    def add(funnel, step_index, kind, visitor, amount=None):
        at = now - timedelta(seconds=rng.uniform(0, 60))
        events.append(
            ingest.event_line(
                event_id=uuid.uuid4(),
                workspace_id=workspace_id,
                funnel_id=funnel["id"],
                step_id=funnel["step_ids"][step_index],
                visitor_id=visitor,
                kind=kind,
                page_version_id=None,
                variant_id=None,
                amount_minor=amount,
                currency="USD",
                properties=None,
                occurred_at=at,
                received_at=at,
            )
        )

    while len(events) < count:
        if returning and rng.random() < 0.25:
            visitor, funnel_id = returning[rng.randrange(len(returning))]
            funnel = by_id[funnel_id]
            add(funnel, 1, "view", visitor)
            if funnel["steps"][1][1] == "order" and rng.random() < 0.3:
                add(funnel, 1, "order", visitor, 2700)
            continue
        funnel = rng.choices(funnels, weights=[f["share"] for f in funnels])[0]
        visitor = uuid.uuid4()
        source, medium, campaign, _ = rng.choices(
            SOURCES, weights=[s[3] for s in SOURCES]
        )[0]
        visitors.append(
            ingest.visitor_line(
                [
                    workspace_id,
                    visitor,
                    source,
                    medium,
                    campaign,
                    "",
                    "",
                    "",
                    funnel["id"],
                    funnel["step_ids"][0],
                    "desktop",
                    None,
                    now,
                    now,
                ]
            )
        )
        add(funnel, 0, "view", visitor)
        if rng.random() < 0.4:
            kind = "optin" if funnel["steps"][0][1] == "optin" else "click"
            add(funnel, 0, kind, visitor)
            add(funnel, 1, "view", visitor)
    return events[:count], visitors


# ------------------------------------------------------------------------ main
def main() -> None:
    import django

    _admin_exec(ADMIN_URL, f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    _admin_exec(ADMIN_URL, f'CREATE DATABASE "{BENCH_DB}"')
    try:
        django.setup()
        from django.conf import settings

        # DEBUG is off (no query log); serve static names without a collected
        # manifest, as the browser tests do.
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
            _admin_exec(ADMIN_URL, f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')


def run() -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from accounts.models import Membership, User, Workspace
    from analytics import ingest, rollups
    from funnels.models import Funnel, Step

    call_command("migrate", verbosity=0)
    workspace = Workspace.objects.create(name="Bench marketing")
    user = User.objects.create_user(email="owner@bench.invalid", password=None)
    Membership.objects.create(user=user, workspace=workspace, role="owner")
    funnels = []
    for n, spec in enumerate(FUNNELS):
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

    visitors = _visitors_needed(EVENTS)
    _say(f"generating ~{EVENTS:,} events from {visitors:,} visitors over {DAYS} days")
    started = time.perf_counter()
    now = timezone.now()
    _partitions(None, now - timedelta(days=DAYS + 2), now + timedelta(days=1))
    with connection.cursor() as cursor:
        generate(cursor, workspace.pk, funnels, visitors)
        cursor.execute("SELECT count(*) FROM analytics_event")
        events = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM leads_lead")
        leads = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM analytics_visitor")
        visitor_rows = cursor.fetchone()[0]
        cursor.execute(
            "DROP TABLE bench_visitor, bench_lead, bench_source, bench_funnel"
        )
    _say(
        f"generated events={events:,} visitors={visitor_rows:,} leads={leads:,} "
        f"in {time.perf_counter() - started:.1f}s"
    )

    started = time.perf_counter()
    rollups.rollups_update()
    full_s = time.perf_counter() - started
    _say(f"full rollup: {full_s:.2f}s")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")

    rng = random.Random(7)
    ingest.partitions_forget()
    returning = returning_visitors(workspace.pk)
    lines, visitor_lines = new_events(workspace.pk, funnels, NEW_EVENTS, rng, returning)
    stored = ingest.lines_write(lines, visitor_lines)
    started = time.perf_counter()
    run_ = rollups.rollups_update()
    incremental_s = time.perf_counter() - started
    _say(
        f"incremental rollup: {stored:,} new events, {run_.visitors:,} visitors, "
        f"{incremental_s:.3f}s"
    )

    client = Client()
    client.force_login(user)
    funnel = max(funnels, key=lambda f: len(f["steps"]))
    url = reverse("analytics:funnel", args=[funnel["id"]])
    response = client.get(url)  # warm-up (connections, templates)
    assert response.status_code == 200, response.status_code
    timings = []
    for _ in range(REQUESTS):
        lines, visitor_lines = new_events(
            workspace.pk, funnels, TAIL_EVENTS_PER_REQUEST, rng, returning
        )
        ingest.lines_write(lines, visitor_lines)
        started = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    assert rollups.rollup_tail_size() == 0, "the dashboard left a tail unfolded"
    p50, p95 = statistics.median(timings), pct(timings, 95)
    _say(
        f"dashboard {funnel['name']!r} (30 days, {TAIL_EVENTS_PER_REQUEST} new events "
        f"before each request): p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
        f"max {max(timings):.1f} ms"
    )
    print(
        f"bench dashboard: events={events} full_rollup_s={full_s:.2f} "
        f"incremental_rollup_s={incremental_s:.3f} dashboard_p50_ms={p50:.1f} "
        f"dashboard_p95_ms={p95:.1f}"
    )


if __name__ == "__main__":
    main()
