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
import json
import logging
import os
import socket
import time
import uuid
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Workspace
from funnels.models import Step

from . import ingest
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
def visitor_from_uid(value: str) -> uuid.UUID | None:
    """The visitor id in a log line: nginx's ``$uid_got$uid_set`` ("ofv=" + 32 hex)."""
    _, _, hexed = value.rpartition("=")
    if len(hexed) != 32:
        return None
    try:
        return uuid.UUID(hex=hexed)
    except ValueError:
        return None


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
        data = json.loads(raw.decode("utf-8", "replace"))
    except ValueError:
        logger.warning("shipper: unreadable line %r", raw[:200])
        return None
    return data if isinstance(data, dict) else None


def lines_encode(
    raws: list[bytes], context: _Context, now: datetime
) -> tuple[list[bytes], list[bytes]]:
    """(event lines, visitor lines) in COPY format for the views among ``raws``."""
    parsed = []
    for raw in raws:
        data = _parse(raw)
        if data is None:
            continue
        if data.get("st") not in VIEW_STATUSES:
            continue
        ua = data.get("ua") or ""
        if is_bot(ua, data.get("m") or "GET", {"Purpose": data.get("pf") or ""}):
            continue
        visitor = visitor_from_uid(data.get("v") or "")
        try:
            step_id = int(data["s"])
            page_id, version_id = (int(x) for x in str(data["p"]).split("-", 1))
            event_id = uuid.UUID(hex=data["id"])
            occurred = datetime.fromtimestamp(float(data["t"]), UTC)
        except (KeyError, TypeError, ValueError):
            logger.warning("shipper: malformed view %r", raw[:200])
            continue
        if visitor is None:
            continue
        parsed.append((data, step_id, page_id, version_id, event_id, occurred, visitor))
    context.load(p[1] for p in parsed)
    events: list[bytes] = []
    visitors: list[bytes] = []
    for data, step_id, page_id, version_id, event_id, occurred, visitor in parsed:
        owner = context.steps.get(step_id)
        if owner is None:
            continue  # the step was deleted since
        workspace_id, funnel_id = owner
        drop_ip, days = context.workspaces.get(workspace_id, (True, 0))
        if occurred < now - timedelta(days=days) or occurred > now + timedelta(days=1):
            continue  # past retention, or a clock from nowhere
        events.append(
            ingest.event_line(
                event_id=event_id,
                workspace_id=workspace_id,
                funnel_id=funnel_id,
                step_id=step_id,
                visitor_id=visitor,
                kind="view",
                page_version_id=version_id,
                variant_id=page_id,
                amount_minor=None,
                currency="",
                properties=None,
                occurred_at=occurred,
                received_at=now,
            )
        )
        query = parse_qs(data.get("q") or "", keep_blank_values=False)
        touch = [(query.get(name) or [""])[0].strip()[:200] for name in UTM_FIELDS]
        ua = data.get("ua") or ""
        visitors.append(
            ingest.visitor_line(
                (
                    workspace_id,
                    visitor,
                    *touch,
                    (data.get("r") or "")[:500],
                    funnel_id,
                    step_id,
                    device_class(ua),
                    None if drop_ip else _ip(data.get("ip")),
                    occurred,
                    occurred,
                )
            )
        )
    return events, visitors


def _ip(value: str | None) -> str | None:
    import ipaddress

    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


# ------------------------------------------------------------------ shipping
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
    with transaction.atomic(), connection.cursor() as cursor:
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
            return 0, 0
        with path.open("rb") as handle:
            handle.seek(position)
            data = handle.read(min(size - position, MAX_READ))
        end = data.rfind(b"\n")
        if end < 0:
            return 0, 0  # half a line: nginx finishes it on its next flush
        data = data[: end + 1]
        raws = data.splitlines()
        now = timezone.now()
        events, visitors = lines_encode(raws, context, now)
        stored = 0
        if events or visitors:
            stored = ingest.lines_write(events, visitors)
        cursor.execute(
            _SAVE_SQL, [source, stat.st_ino, str(path), position + len(data)]
        )
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


def ship_forever(*, interval: float = 0.25, stop=lambda: False) -> None:
    while not stop():
        try:
            ship_once()
        except Exception:
            logger.exception("shipper: pass failed; retrying")
            connection.close()
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
    """Close the app log (tests move EDGE_ROOT)."""
    global _handle
    if _handle is not None:
        with contextlib.suppress(OSError):
            os.close(_handle[1])
    _handle = None
