"""Low-level event ingestion: encoding, the Redis stream, COPY into the event table.

Producers (the request path) encode each event once, as one line of PostgreSQL's COPY
text format, and append it to a Redis stream as a single field. The flush reads the
stream with a consumer group and hands the lines to COPY as they are: no parsing, no
per-row Python work on the hot path. Acknowledging only after the commit gives
at-least-once delivery; the ``(id, occurred_at)`` primary key plus ``ON CONFLICT DO
NOTHING`` makes the count exactly-once.

Fast path: one ``COPY analytics_event`` inside a savepoint. When it hits a duplicate
event id (a redelivery after a crash, or two flushes racing for the same entries) the
savepoint is rolled back and the batch goes through a temporary staging table and
``INSERT … SELECT … ON CONFLICT DO NOTHING``. When it hits a month without a
partition, the partitions are created and the batch retried.

Why partitions (not one table with a BRIN index): retention then drops whole months
(no vacuum debt from mass DELETEs), and time-bounded reads prune to a few months.
Django never manages the table: the migration creates it with RunSQL, the model is
unmanaged, and every read goes through ``analytics.selectors``.

Operations: Redis must not evict the stream (``maxmemory-policy noeviction``, the
default); entries are removed (XDEL) only after their batch is committed.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import psycopg.errors
import redis
from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction

logger = logging.getLogger(__name__)

STREAM_KEY = "of:analytics:stream"
GROUP = "flush"
EVENT_FIELD = b"e"
VISITOR_FIELD = b"v"

EVENT_COLUMNS = (
    "id",
    "workspace_id",
    "funnel_id",
    "step_id",
    "visitor_id",
    "kind",
    "page_version_id",
    "variant_id",
    "amount_minor",
    "currency",
    "properties",
    "occurred_at",
    "received_at",
)
OCCURRED_AT_INDEX = EVENT_COLUMNS.index("occurred_at")
VISITOR_COLUMNS = (
    "workspace_id",
    "public_id",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "referrer",
    "landing_funnel_id",
    "landing_step_id",
    "device_class",
    "ip",
    "first_seen",
    "last_seen",
)
_EVENT_COLS_SQL = ", ".join(EVENT_COLUMNS)
_VISITOR_COLS_SQL = ", ".join(VISITOR_COLUMNS)

# After Redis fails, producers write straight to Postgres for this long instead of
# paying a connection attempt on every request.
REDIS_RETRY_AFTER_S = 5.0


# ------------------------------------------------------------------ encoding
_ESCAPES = str.maketrans(
    {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": ""}
)


def copy_text(value: object) -> str:
    """One field in COPY text format (\\N for NULL)."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def properties_json(properties: dict | None) -> str:
    if not properties:
        return "{}"
    # jsonb rejects \u0000 and COPY rejects NUL bytes: drop them.
    return json.dumps(properties, separators=(",", ":"), default=str).replace(
        "\\u0000", ""
    )


def event_line(
    *,
    event_id: uuid.UUID,
    workspace_id: int,
    funnel_id: int | None,
    step_id: int | None,
    visitor_id: uuid.UUID | str | None,
    kind: str,
    page_version_id: int | None,
    variant_id: int | None,
    amount_minor: int | None,
    currency: str,
    properties: dict | None,
    occurred_at: datetime,
    received_at: datetime,
) -> bytes:
    if visitor_id is not None and not isinstance(visitor_id, uuid.UUID):
        visitor_id = uuid.UUID(str(visitor_id))
    return (
        "\t".join(
            (
                event_id.hex,
                str(int(workspace_id)),
                "\\N" if funnel_id is None else str(int(funnel_id)),
                "\\N" if step_id is None else str(int(step_id)),
                "\\N" if visitor_id is None else visitor_id.hex,
                copy_text(kind[:32]),
                "\\N" if page_version_id is None else str(int(page_version_id)),
                "\\N" if variant_id is None else str(int(variant_id)),
                "\\N" if amount_minor is None else str(int(amount_minor)),
                copy_text((currency or "")[:3].upper()),
                copy_text(properties_json(properties)),
                occurred_at.isoformat(),
                received_at.isoformat(),
            )
        ).encode()
        + b"\n"
    )


def visitor_line(values: Sequence[object]) -> bytes:
    """Encode a visitor row (in VISITOR_COLUMNS order) as a COPY line."""
    return ("\t".join(copy_text(v) for v in values) + "\n").encode()


# ------------------------------------------------------------------ redis
_clients: dict[str, redis.Redis] = {}
_down_until = 0.0
_lock = threading.Lock()


def redis_url() -> str:
    return getattr(settings, "ANALYTICS_REDIS_URL", None) or settings.REDIS_URL


def redis_client() -> redis.Redis:
    url = redis_url()
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.get(url)
            if client is None:
                client = redis.Redis.from_url(
                    url, socket_connect_timeout=0.25, socket_timeout=2
                )
                _clients[url] = client
    return client


def redis_reset() -> None:
    """Forget cached clients and the 'Redis is down' back-off (tests, settings)."""
    global _down_until
    _clients.clear()
    _down_until = 0.0


def _redis_usable() -> bool:
    return time.monotonic() >= _down_until


def _redis_failed(exc: Exception) -> None:
    global _down_until
    _down_until = time.monotonic() + REDIS_RETRY_AFTER_S
    logger.warning("analytics: Redis unavailable, writing to Postgres: %s", exc)


def stream_append(field: bytes, lines: Sequence[bytes], per_entry: int = 500) -> bool:
    """Append encoded lines to the stream; False when Redis is not usable.

    Up to ``per_entry`` lines share one stream entry (one blob, one XADD), and all
    XADDs go in one pipeline: the Redis cost per event is a few bytes, not a
    command. A stream entry is stored and acknowledged as a whole. Partially
    appended batches are harmless: the caller then writes the whole batch to
    Postgres and the flush's ON CONFLICT drops the duplicates.
    """
    if not _redis_usable():
        return False
    try:
        client = redis_client()
        if len(lines) == 1:
            client.xadd(STREAM_KEY, {field: lines[0]})
        else:
            pipe = client.pipeline(transaction=False)
            for start in range(0, len(lines), per_entry):
                pipe.xadd(
                    STREAM_KEY, {field: b"".join(lines[start : start + per_entry])}
                )
            pipe.execute()
    except Exception as exc:  # any Redis trouble: fall back, never raise
        _redis_failed(exc)
        return False
    return True


def stream_append_entry(fields: dict[bytes, bytes]) -> bool:
    """XADD one entry with several fields (a visitor and its view) in one trip."""
    if not _redis_usable():
        return False
    try:
        redis_client().xadd(STREAM_KEY, fields)
    except Exception as exc:  # any Redis trouble: fall back, never raise
        _redis_failed(exc)
        return False
    return True


def stream_append_entry_get(
    fields: dict[bytes, bytes] | None, key: str
) -> tuple[bool, bytes | None]:
    """XADD one entry (if any) and GET ``key``, pipelined: ONE round trip.

    For the public page server, which appends the view and learns whether the
    published state changed (pages.serving's generation key) at once. Returns
    (Redis usable, value of ``key``); never raises.
    """
    if not _redis_usable():
        return False, None
    commands: list[tuple] = []
    if fields:
        flat = [part for pair in fields.items() for part in pair]
        commands.append(("XADD", STREAM_KEY, "*", *flat))
    commands.append(("GET", key))
    try:
        # One connection, both commands written at once, both replies read: what
        # a pipeline does, minus its per-call bookkeeping (this runs per page view).
        pool = redis_client().connection_pool
        conn = pool.get_connection()
        try:
            conn.send_packed_command(conn.pack_commands(commands))
            replies = [conn.read_response() for _ in commands]
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return True, replies[-1]
    except Exception as exc:  # any Redis trouble: fall back, never raise
        _redis_failed(exc)
        return False, None


def lines_write_direct(
    event_lines: Sequence[bytes], visitor_lines: Sequence[bytes] = ()
) -> int:
    """The Redis-down path: write lines straight to Postgres; never raises."""
    try:
        return lines_write(event_lines, visitor_lines)
    except Exception:
        logger.exception(
            "analytics: could not store %d events / %d visitors",
            len(event_lines),
            len(visitor_lines),
        )
        return 0


# ------------------------------------------------------------------ postgres
def partition_name(month: datetime) -> str:
    return f"analytics_event_p{month:%Y%m}"


def month_start(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    return datetime(value.year, value.month, 1, tzinfo=UTC)


def next_month(month: datetime) -> datetime:
    if month.month == 12:
        return month.replace(year=month.year + 1, month=1)
    return month.replace(month=month.month + 1)


_known_partitions: set[str] = set()


def partition_ensure(month: datetime) -> str:
    """Create the monthly partition holding ``month`` (idempotent, race-safe)."""
    start = month_start(month)
    name = partition_name(start)
    if name in _known_partitions:
        return name
    end = next_month(start)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF analytics_event "
                "FOR VALUES FROM (%s) TO (%s)",
                [start, end],
            )
    except (psycopg.errors.DuplicateTable, psycopg.errors.UniqueViolation):
        pass  # another process created it at the same moment
    except Exception as exc:
        # Django wraps psycopg errors; a concurrent creator is fine too.
        if "already exists" not in str(exc):
            raise
    _known_partitions.add(name)
    return name


def partitions_forget() -> None:
    _known_partitions.clear()


def _months_of(blobs: Iterable[bytes]) -> set[datetime]:
    months = set()
    for line in split_lines(blobs):
        try:
            raw = line.rstrip(b"\n").split(b"\t")[OCCURRED_AT_INDEX].decode()
            months.add(month_start(datetime.fromisoformat(raw)))
        except (IndexError, ValueError):
            continue  # a malformed line: COPY rejects it and the salvage drops it
    return months


_STAGING_SQL = (
    "CREATE TEMP TABLE IF NOT EXISTS analytics_event_staging "
    "(LIKE analytics_event INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_VISITOR_STAGING_SQL = (
    "CREATE TEMP TABLE IF NOT EXISTS analytics_visitor_staging ("
    "workspace_id bigint, public_id uuid, utm_source text, utm_medium text, "
    "utm_campaign text, utm_content text, utm_term text, referrer text, "
    "landing_funnel_id bigint, landing_step_id bigint, device_class text, "
    "ip inet, first_seen timestamptz, last_seen timestamptz) ON COMMIT DELETE ROWS"
)
_TOUCH_COLUMNS = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "referrer",
    "landing_funnel_id",
    "landing_step_id",
    "device_class",
    "ip",
)


# Earliest sighting wins the first touch; last_seen only moves forward. Rows of
# deleted workspaces are skipped rather than failing the whole batch. ``source`` is
# a relation (a staging table or a subquery) with the VISITOR_COLUMNS.
def visitor_upsert_sql(source: str) -> str:
    touch = ", ".join(
        f"{c} = CASE WHEN EXCLUDED.first_seen < analytics_visitor.first_seen "
        f"THEN EXCLUDED.{c} ELSE analytics_visitor.{c} END"
        for c in _TOUCH_COLUMNS
    )
    return f"""
INSERT INTO analytics_visitor ({_VISITOR_COLS_SQL}, lead_id)
SELECT {_VISITOR_COLS_SQL}, NULL FROM (
    SELECT DISTINCT ON (s.workspace_id, s.public_id)
        s.workspace_id, s.public_id, s.utm_source, s.utm_medium, s.utm_campaign,
        s.utm_content, s.utm_term, s.referrer, s.landing_funnel_id,
        s.landing_step_id, s.device_class, s.ip, s.first_seen,
        max(s.last_seen) OVER (PARTITION BY s.workspace_id, s.public_id)
            AS last_seen
    FROM {source} s
    WHERE EXISTS (SELECT 1 FROM accounts_workspace w WHERE w.id = s.workspace_id)
    ORDER BY s.workspace_id, s.public_id, s.first_seen
) AS v
ON CONFLICT (workspace_id, public_id) DO UPDATE SET
    last_seen = GREATEST(analytics_visitor.last_seen, EXCLUDED.last_seen),
    first_seen = LEAST(analytics_visitor.first_seen, EXCLUDED.first_seen),
    {touch}
"""


def visitors_upsert(cursor, source: str) -> None:
    """Upsert the visitors of ``source`` (one statement); announce linked ones."""
    cursor.execute(
        f"WITH up AS ({visitor_upsert_sql(source)} RETURNING workspace_id, lead_id) "
        "SELECT workspace_id, lead_id FROM up WHERE lead_id IS NOT NULL"
    )
    linked = cursor.fetchall()
    if linked:
        from .signals import linked_visitors_stored

        linked_visitors_stored.send(sender=__name__, visitors=linked)


def _copy(cursor, sql: str, blobs: Sequence[bytes]) -> int:
    """COPY blobs of complete lines; large writes are much faster than small ones."""
    with cursor.copy(sql) as copy:
        for start in range(0, len(blobs), 200):
            copy.write(b"".join(blobs[start : start + 200]))
    return cursor.rowcount


def _events_write(cursor, lines: Sequence[bytes]) -> int:
    """COPY lines into analytics_event; return how many new rows were stored."""
    for attempt in range(2):
        try:
            with transaction.atomic():
                return _copy(
                    cursor,
                    f"COPY analytics_event ({_EVENT_COLS_SQL}) FROM STDIN",
                    lines,
                )
        except psycopg.errors.UniqueViolation:
            break  # a redelivery: go through the staging table
        except psycopg.errors.CheckViolation:
            if attempt:
                raise
            partitions_forget()  # the cache may be stale (e.g. a rolled-back create)
            for month in _months_of(lines):
                partition_ensure(month)
    cursor.execute(_STAGING_SQL)
    _copy(cursor, f"COPY analytics_event_staging ({_EVENT_COLS_SQL}) FROM STDIN", lines)
    cursor.execute(
        f"INSERT INTO analytics_event ({_EVENT_COLS_SQL}) "
        f"SELECT {_EVENT_COLS_SQL} FROM analytics_event_staging "
        "ON CONFLICT DO NOTHING"
    )
    stored = cursor.rowcount
    cursor.execute("TRUNCATE analytics_event_staging")
    return stored


def _visitors_write(cursor, lines: Sequence[bytes]) -> None:
    cursor.execute(_VISITOR_STAGING_SQL)
    _copy(
        cursor,
        f"COPY analytics_visitor_staging ({_VISITOR_COLS_SQL}) FROM STDIN",
        lines,
    )
    visitors_upsert(cursor, "analytics_visitor_staging")
    cursor.execute("TRUNCATE analytics_visitor_staging")


def lines_write(
    event_lines: Sequence[bytes], visitor_lines: Sequence[bytes] = ()
) -> int:
    """Store encoded events and visitors in one transaction; return new events."""
    stored = 0
    with transaction.atomic(), connection.cursor() as cursor:
        if visitor_lines:
            _visitors_write(cursor, visitor_lines)
        if event_lines:
            stored = _events_write(cursor, event_lines)
    return stored


# Errors caused by the data itself. Anything else (Postgres down, …) propagates so
# that the entries stay pending and are retried.
BAD_DATA_ERRORS = (
    ValueError,  # e.g. a timestamp no partition can be made for
    psycopg.errors.DataError,
    psycopg.errors.IntegrityError,
    DataError,
    IntegrityError,
)


def _lines_write_salvage(
    event_lines: Sequence[bytes], visitor_lines: Sequence[bytes]
) -> int:
    """A batch failed as a whole: store what can be stored, line by line.

    Producers encode every line, so this should not happen; if it does, one bad
    line must not block the stream forever. Lines that still fail are logged and
    dropped.
    """
    stored = 0
    for line in visitor_lines:
        try:
            lines_write((), [line])
        except BAD_DATA_ERRORS:
            logger.exception("analytics: dropping malformed visitor line %r", line)
    for line in event_lines:
        try:
            stored += lines_write([line])
        except BAD_DATA_ERRORS:
            logger.exception("analytics: dropping malformed event line %r", line)
    return stored


# ------------------------------------------------------------------ flush
def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def group_ensure(client: redis.Redis) -> None:
    try:
        client.xgroup_create(STREAM_KEY, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _split(entries) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """(entry ids, event blobs, visitor blobs); a blob holds one or more lines."""
    ids, events, visitors = [], [], []
    for entry_id, fields in entries:
        ids.append(entry_id)
        if not fields:
            continue  # deleted while pending: nothing to store
        # An entry may carry events, a visitor, or both (a page view).
        blob = fields.get(EVENT_FIELD)
        if blob is not None:
            events.append(blob)
        blob = fields.get(VISITOR_FIELD)
        if blob is not None:
            visitors.append(blob)
    return ids, events, visitors


def split_lines(blobs: Iterable[bytes]) -> list[bytes]:
    return [line + b"\n" for blob in blobs for line in blob.split(b"\n") if line]


def batch_store(entries) -> tuple[list[bytes], int]:
    """Write one batch of stream entries to Postgres; return (entry ids, stored)."""
    ids, events, visitors = _split(entries)
    if events or visitors:
        try:
            stored = lines_write(events, visitors)
        except BAD_DATA_ERRORS as exc:
            logger.warning(
                "analytics: batch rejected (%s), salvaging line by line", exc
            )
            stored = _lines_write_salvage(split_lines(events), split_lines(visitors))
    else:
        stored = 0
    return ids, stored


def batch_ack(client: redis.Redis, ids: Sequence[bytes]) -> None:
    if not ids:
        return
    pipe = client.pipeline(transaction=True)
    pipe.xack(STREAM_KEY, GROUP, *ids)
    pipe.xdel(STREAM_KEY, *ids)
    pipe.execute()


def stream_flush(
    *,
    batch_size: int = 20000,
    batch_bytes: int = 8 << 20,
    max_seconds: float = 20.0,
    claim_idle_ms: int = 60_000,
    consumer: str | None = None,
) -> int:
    """Move stream entries into Postgres until the stream is drained or time is up.

    Reads at most ``batch_size`` entries and about ``batch_bytes`` per batch.
    Returns the number of new events stored. Safe to run concurrently and to re-run:
    each batch is committed before it is acknowledged, and entries a crashed
    consumer left pending are claimed again after ``claim_idle_ms``.
    """
    client = redis_client()
    group_ensure(client)
    consumer = consumer or consumer_name()
    deadline = time.monotonic() + max_seconds
    stored = 0

    start = "0-0"
    while time.monotonic() < deadline:
        result = client.xautoclaim(
            STREAM_KEY, GROUP, consumer, claim_idle_ms, start_id=start, count=100
        )
        start, entries = result[0], result[1]
        if entries:
            ids, n = batch_store(entries)
            stored += n
            batch_ack(client, ids)
        if len(result) > 2 and result[2]:
            client.xack(STREAM_KEY, GROUP, *result[2])
        if start in (b"0-0", "0-0"):
            break

    count = batch_size
    while time.monotonic() < deadline:
        response = client.xreadgroup(GROUP, consumer, {STREAM_KEY: ">"}, count=count)
        if not response or not response[0][1]:
            break
        entries = response[0][1]
        ids, n = batch_store(entries)
        stored += n
        batch_ack(client, ids)
        # Entries hold one event (a page view) or hundreds (a batch producer):
        # size the next read to about ``batch_bytes`` of lines.
        size = sum(len(v) for _, fields in entries if fields for v in fields.values())
        per_entry = max(1, size // len(entries))
        count = max(1, min(batch_size, batch_bytes // per_entry))
    return stored


def stream_pending() -> int:
    """Entries in the stream not yet stored (queued + delivered-but-unacked)."""
    client = redis_client()
    return int(client.xlen(STREAM_KEY))


def new_event_id() -> uuid.UUID:
    return uuid.uuid4()
