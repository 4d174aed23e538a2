"""The shipper: page views from the view logs into the event table, none lost.

A page view is one JSON line in a log under ``EDGE_ROOT/logs/``: nginx writes them
(pages.edge's ``log_format``) and so does the Python serving path of ``make run``
(``view_log_write``), in the same format. The shipper tails every ``*.log`` file
there, turns each line into a view event and the visitor's sighting (first touch
from the UTM parameters and the referrer), and COPYs them into PostgreSQL.

Durability: the offset reached in each file is a row of ``analytics_logoffset``,
updated in the SAME transaction as the COPY of the lines before it, under a
transaction-level advisory lock per file. So a shipper killed at any moment
restarts exactly where the last commit left it, and two shippers never store a
line twice. The event id is the request id nginx gave the view (``$request_id``,
128 random bits), and the event table's key is (id, occurred_at), so even a line
read twice (a file copied elsewhere, an offset lost by hand) stores once.

Rules applied here, not at the edge: HEAD requests, prefetch/prerender and known
bots are not views (analytics.services.is_bot); answers other than 200/304 are
not views; a line older than its workspace's event retention is dropped.

Rotation: a file is known by its inode, so ``mv views.log views.log.1`` then
``nginx -s reopen`` is safe: the old file is finished under its new name (keep
rotated files matching ``*.log*`` until the shipper has passed them).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import logging
import os
import re
import socket
import time
import zlib
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qs

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from psycopg.errors import CheckViolation

from accounts.models import Workspace
from funnels.models import Step

from . import ingest
from .ingest import copy_text
from .services import UTM_FIELDS, device_class, is_bot

logger = logging.getLogger(__name__)

VIEW_STATUSES = frozenset({"200", "304"})
# Bytes per file per transaction (~4,000 views): small enough that a line waits
# little for its batch's commit, large enough for COPY to pay off.
MAX_READ = 1 << 20


def logs_dir() -> Path:
    return Path(settings.EDGE_ROOT) / "logs"


def source_name() -> str:
    """This node's name: each edge node ships its own logs."""
    return settings.EDGE_NODE or socket.gethostname()


def log_files() -> list[Path]:
    base = logs_dir()
    if not base.exists():
        return []
    return sorted(
        p for p in base.iterdir() if ".log" in p.name and not p.name.startswith("error")
    )


# ------------------------------------------------------------------ parsing
class _Context:
    """What lines need from the database: each step's workspace and funnel."""

    def __init__(self) -> None:
        self.steps: dict[int, tuple[int, int] | None] = {}
        self.workspaces: dict[int, tuple[bool, int]] = {}

    def load(self, step_ids: Iterable[int]) -> None:
        missing = {s for s in step_ids if s not in self.steps}
        if not missing:
            return
        for step in missing:
            self.steps[step] = None
        rows = Step.objects.filter(pk__in=missing).values_list(
            "pk", "workspace_id", "funnel_id"
        )
        for pk, workspace_id, funnel_id in rows:
            self.steps[pk] = (workspace_id, funnel_id)
        need = {v[0] for v in self.steps.values() if v and v[0] not in self.workspaces}
        for pk, drop_ip, days in Workspace.objects.filter(pk__in=need).values_list(
            "pk", "drop_ip_addresses", "event_retention_days"
        ):
            self.workspaces[pk] = (drop_ip, days)


def _parse(raw: bytes) -> dict | None:
    try:
        data = json.loads(raw)
    except ValueError:
        logger.warning("shipper: unreadable line %r", raw[:200])
        return None
    return data if isinstance(data, dict) else None


@functools.lru_cache(maxsize=4096)
def _not_a_view(user_agent: str, method: str, purpose: str) -> bool:
    # User agents repeat: apply the rules once per (agent, method, purpose).
    return is_bot(user_agent, method, {"Purpose": purpose})


@functools.lru_cache(maxsize=4096)
def _ip(value: str) -> str:
    """The address as COPY text (\\N when it is not an address)."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return "\\N"


_HEX32 = re.compile(r"[0-9a-fA-F]{32}")


def _touch(query: str) -> str:
    """The UTM fields of a query string as COPY text (tab-separated)."""
    if "utm_" not in query:
        return "\t\t\t\t"
    found = parse_qs(query, keep_blank_values=False)
    return "\t".join(
        copy_text((found.get(name) or [""])[0].strip()[:200]) for name in UTM_FIELDS
    )


def lines_encode(raws: list[bytes], context: _Context, now: float) -> list[bytes]:
    """One staging row (COPY text, VIEW_COLUMNS) per view among ``raws``.

    The per-line work is kept to what only Python knows (the bot and device rules,
    the UTM parameters); PostgreSQL turns the rows into events and visitors.
    """
    parsed = []
    for raw in raws:
        data = _parse(raw)
        if data is None or data.get("st") not in VIEW_STATUSES:
            continue
        ua = data.get("ua") or ""
        if _not_a_view(ua, data.get("m") or "GET", data.get("pf") or ""):
            continue
        visitor = (data.get("v") or "")[-32:]
        try:
            step_id = int(data["s"])
            page_id, version_id = (int(x) for x in str(data["p"]).split("-", 1))
            event_id = str(data["id"])
            occurred = float(data["t"])
        except (KeyError, TypeError, ValueError):
            logger.warning("shipper: malformed view %r", raw[:200])
            continue
        if not _HEX32.fullmatch(visitor):
            continue  # no visitor cookie: not a countable view
        if not _HEX32.fullmatch(event_id):
            logger.warning("shipper: malformed view %r", raw[:200])
            continue
        parsed.append((data, step_id, page_id, version_id, event_id, occurred, visitor))
    context.load({p[1] for p in parsed})
    rows: list[bytes] = []
    for data, step_id, page_id, version_id, event_id, occurred, visitor in parsed:
        owner = context.steps.get(step_id)
        if owner is None:
            continue  # the step was deleted since
        workspace_id, funnel_id = owner
        drop_ip, days = context.workspaces.get(workspace_id, (True, 0))
        if not now - days * 86400.0 <= occurred <= now + 86400.0:
            continue  # past retention, or a clock from nowhere (or NaN)
        ip = "\\N" if drop_ip else _ip(data.get("ip") or "")
        rows.append(
            (
                f"{event_id}\t{workspace_id}\t{funnel_id}\t{step_id}\t{visitor}\t"
                f"{version_id}\t{page_id}\t{occurred!r}\t{_touch(data.get('q') or '')}"
                f"\t{copy_text((data.get('r') or '')[:500])}"
                f"\t{device_class(data.get('ua') or '')}\t{ip}\n"
            ).encode()
        )
    return rows


# ------------------------------------------------------------------ shipping
# One row per view; the events and the visitors are made from it in SQL.
VIEW_COLUMNS = (
    "id",
    "workspace_id",
    "funnel_id",
    "step_id",
    "visitor_id",
    "page_version_id",
    "variant_id",
    "t",
    *UTM_FIELDS,
    "referrer",
    "device_class",
    "ip",
)
_STAGING_SQL = (
    "CREATE TEMP TABLE IF NOT EXISTS shipper_views (id uuid, workspace_id bigint, "
    "funnel_id bigint, step_id bigint, visitor_id uuid, page_version_id bigint, "
    "variant_id bigint, t double precision, "
    + "".join(f"{name} text, " for name in UTM_FIELDS)
    + "referrer text, device_class text, ip inet) ON COMMIT DELETE ROWS"
)
_COPY_SQL = f"COPY shipper_views ({', '.join(VIEW_COLUMNS)}) FROM STDIN"
_VISITORS_OF_VIEWS = (
    f"(SELECT workspace_id, visitor_id AS public_id, {', '.join(UTM_FIELDS)}, "
    "referrer, funnel_id AS landing_funnel_id, step_id AS landing_step_id, "
    "device_class, ip, to_timestamp(t) AS first_seen, to_timestamp(t) AS last_seen "
    "FROM shipper_views)"
)
# received_at is when the view became visible to the dashboards (this statement,
# just before the commit), so received_at - occurred_at is the shipping latency.
_EVENTS_SQL = (
    "INSERT INTO analytics_event (id, workspace_id, funnel_id, step_id, visitor_id, "
    "kind, page_version_id, variant_id, amount_minor, currency, properties, "
    "occurred_at, received_at) "
    "SELECT id, workspace_id, funnel_id, step_id, visitor_id, 'view', "
    "page_version_id, variant_id, NULL, '', '{}', to_timestamp(t), "
    "statement_timestamp() FROM shipper_views ON CONFLICT DO NOTHING"
)
_MONTHS_SQL = (
    "SELECT DISTINCT date_trunc('month', to_timestamp(t), 'UTC') FROM shipper_views"
)


def views_write(rows: list[bytes]) -> int:
    """Store staged views as events and visitors; return the new events.

    Set-based: one COPY into a temporary table, then one INSERT … SELECT … ON
    CONFLICT for the visitors and one for the events (a line read twice stores
    once: the event id is the request id). Runs in the caller's transaction.
    """
    with connection.cursor() as cursor:
        cursor.execute(_STAGING_SQL)
        with cursor.copy(_COPY_SQL) as copy:
            for start in range(0, len(rows), 500):
                copy.write(b"".join(rows[start : start + 500]))
        ingest.visitors_upsert(cursor, _VISITORS_OF_VIEWS)
        for attempt in range(2):
            try:
                with transaction.atomic():
                    cursor.execute(_EVENTS_SQL)
                    stored = cursor.rowcount
                break
            except IntegrityError as exc:
                # A month without its partition yet: make it, then once more.
                if attempt or not isinstance(exc.__cause__, CheckViolation):
                    raise
                ingest.partitions_forget()
                cursor.execute(_MONTHS_SQL)
                for (month,) in cursor.fetchall():
                    ingest.partition_ensure(month)
        # The transaction may go on (several files, or a test's): empty it now.
        cursor.execute("TRUNCATE shipper_views")
    return stored


_OFFSET_SQL = (
    "SELECT position FROM analytics_logoffset WHERE source = %s AND inode = %s"
)
_SAVE_SQL = (
    "INSERT INTO analytics_logoffset (source, inode, path, position, updated_at) "
    "VALUES (%s, %s, %s, %s, now()) ON CONFLICT (source, inode) DO UPDATE SET "
    "path = EXCLUDED.path, position = EXCLUDED.position, updated_at = now()"
)


def _lock_key(source: str, inode: int) -> int:
    return zlib.crc32(f"shipper:{source}:{inode}".encode()) - (1 << 31)


# (source, inode) -> (size, mtime) of a file this process shipped to its end: while
# it has not changed since, polling it costs one stat() and no database round trip.
_shipped: dict[tuple[str, int], tuple[int, int]] = {}


def file_ship(
    path: Path, *, source: str, context: _Context, wait: bool = True
) -> tuple[int, int]:
    """Ship what is new in one file, in one transaction; return (lines, stored).

    ``wait=False`` skips a file another shipper is working on (returns (0, 0)).
    """
    try:
        stat = path.stat()
    except FileNotFoundError:
        return 0, 0
    seen = (stat.st_size, stat.st_mtime_ns)
    if _shipped.get((source, stat.st_ino)) == seen:
        return 0, 0  # nothing new since this process shipped it to the end
    with transaction.atomic(), connection.cursor() as cursor:
        # No wait for the WAL flush: a batch lost in a database crash loses its
        # offset with it, and the lines are read again from the log.
        cursor.execute("SET LOCAL synchronous_commit = off")
        key = _lock_key(source, stat.st_ino)
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
        else:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [key])
            if not cursor.fetchone()[0]:
                return 0, 0
        cursor.execute(_OFFSET_SQL, [source, stat.st_ino])
        row = cursor.fetchone()
        position = row[0] if row else 0
        size = path.stat().st_size
        if size < position:
            position = 0  # truncated, or a new file on a reused inode
        if size == position:
            if size == stat.st_size:
                _shipped[(source, stat.st_ino)] = seen
            return 0, 0
        with path.open("rb") as handle:
            handle.seek(position)
            data = handle.read(min(size - position, MAX_READ))
        end = data.rfind(b"\n")
        if end < 0:
            return 0, 0  # half a line: nginx finishes it on its next flush
        data = data[: end + 1]
        raws = data.splitlines()
        rows = lines_encode(raws, context, time.time())
        stored = views_write(rows) if rows else 0
        cursor.execute(
            _SAVE_SQL, [source, stat.st_ino, str(path), position + len(data)]
        )
    if position + len(data) == stat.st_size:
        # Only once committed: a rolled-back batch must be read again.
        _shipped[(source, stat.st_ino)] = seen
    return len(raws), stored


def ship_once(*, source: str | None = None, wait: bool = True) -> int:
    """Ship every log until its end; return the number of new events stored.

    ``wait=False`` (a web request that needs its view now) leaves files that a
    shipper is busy with to that shipper instead of queueing behind it.
    """
    source = source or source_name()
    context = _Context()
    total = 0
    for path in log_files():
        while True:
            lines, stored = file_ship(path, source=source, context=context, wait=wait)
            total += stored
            if not lines:
                break
    return total


def ship_forever(*, interval: float = 0.1, stop=lambda: False) -> None:
    """Follow the logs: a poll that finds nothing new costs a stat() per file."""
    while not stop():
        try:
            ship_once()
        except Exception:
            logger.exception("shipper: pass failed; retrying")
            connection.close()
            _shipped.clear()
            time.sleep(1.0)
        time.sleep(interval)


def view_in_logs(
    request_id: str, *, step_id: int, tail_bytes: int = 32 << 20
) -> dict | None:
    """The logged line of a view not yet shipped, found in the logs' tails.

    For the edge's form token when the shipper lags (or is down): the line nginx
    wrote is proof enough that the page was fetched. Scans the last
    ``tail_bytes`` of each log, newest first; None when it is not there.
    """
    if len(request_id) != 32 or not all(c in "0123456789abcdef" for c in request_id):
        return None
    needle = f'"id":"{request_id}"'.encode()
    for path in sorted(log_files(), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            with path.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - tail_bytes))
                data = handle.read()
        except OSError:
            continue
        at = data.rfind(needle)
        if at < 0:
            continue
        start = data.rfind(b"\n", 0, at) + 1
        end = data.find(b"\n", at)
        line = _parse(data[start : end if end >= 0 else len(data)])
        if line and str(line.get("s")) == str(step_id):
            return line
    return None


# ------------------------------------------------------------------ writing
_handle: tuple[int, int, Path] | None = None  # (pid, fd, folder)


def view_log_write(line: dict) -> None:
    """Append one view line to this node's app log (the Python serving path).

    One ``write`` of a whole line to a file opened with O_APPEND: lines of
    concurrent threads and processes never interleave. The page cache holds it
    from then on, so a killed web process loses nothing it has answered for.
    """
    global _handle
    pid = os.getpid()
    base = logs_dir()
    if _handle is None or _handle[0] != pid or _handle[2] != base:
        base.mkdir(parents=True, exist_ok=True)
        fd = os.open(base / "app.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _handle = (pid, fd, base)
    payload = json.dumps(line, separators=(",", ":"), ensure_ascii=False)
    os.write(_handle[1], payload.encode() + b"\n")


def view_log_reset() -> None:
    """Close the app log and forget what was shipped (tests move EDGE_ROOT)."""
    global _handle
    _shipped.clear()
    if _handle is not None:
        with contextlib.suppress(OSError):
            os.close(_handle[1])
    _handle = None
