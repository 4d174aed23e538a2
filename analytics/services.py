"""Tracking writes: events, visitors, retention and partitions.

Public pages call ``step_view_record`` (visitor + view event in one Redis append);
lead capture and orders call ``visitor_identify`` / ``event_record`` and
``visitor_link_lead``. All are cheap on the request path (no SQL at all while Redis
is up) and never raise: when Redis is down the rows go straight to Postgres.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import logging
import re
import struct
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.models import Workspace
from accounts.services import audit_record
from config import fastsign, proxies

from . import ingest
from .models import AdSpend, DeviceClass, Visitor

logger = logging.getLogger(__name__)

COOKIE_PREFIX = "ofv_"
COOKIE_MAX_AGE = 60 * 60 * 24 * 365
COOKIE_SALT = "analytics.visitor"
# A returning visitor's cookie is re-issued (and last_seen recorded) at most this
# often, so that most page views cost no visitor write at all.
COOKIE_REFRESH = timedelta(minutes=30)
EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(days=1)
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")


# ------------------------------------------------------------------ events
def _event_line(
    *,
    workspace_id: int,
    funnel_id: int | None,
    step_id: int | None,
    visitor_id: uuid.UUID | str | None,
    kind: str,
    occurred_at: datetime | None = None,
    event_id: uuid.UUID | str | None = None,
    page_version_id: int | None = None,
    variant_id: int | None = None,
    amount_minor: int | None = None,
    currency: str = "",
    properties: dict | None = None,
    received_at: datetime | None = None,
) -> tuple[uuid.UUID, bytes]:
    now = received_at or timezone.now()
    event_uuid = uuid.UUID(str(event_id)) if event_id else uuid.uuid4()
    if occurred_at is not None and not (
        EARLIEST_EVENT <= occurred_at <= now + MAX_CLOCK_SKEW
    ):
        # Each month needs a partition: refuse timestamps from nowhere.
        raise ValueError(f"occurred_at {occurred_at.isoformat()} is out of range")
    line = ingest.event_line(
        event_id=event_uuid,
        workspace_id=workspace_id,
        funnel_id=funnel_id,
        step_id=step_id,
        visitor_id=visitor_id,
        kind=kind,
        page_version_id=page_version_id,
        variant_id=variant_id,
        amount_minor=amount_minor,
        currency=currency,
        properties=properties,
        occurred_at=occurred_at or now,
        received_at=now,
    )
    return event_uuid, line


def _event_line_or_log(**fields: Any) -> tuple[uuid.UUID, bytes] | None:
    """``_event_line`` for one event, or None (logged) when it cannot be encoded."""
    try:
        return _event_line(**fields)
    except (TypeError, ValueError, AttributeError):
        logger.exception(
            "analytics: unusable event for workspace %s", fields.get("workspace_id")
        )
        return None


def event_record(
    *,
    workspace_id: int,
    funnel_id: int | None,
    step_id: int | None,
    visitor_id: uuid.UUID | str | None,
    kind: str,
    occurred_at: datetime | None = None,
    event_id: uuid.UUID | str | None = None,
    page_version_id: int | None = None,
    variant_id: int | None = None,
    amount_minor: int | None = None,
    currency: str = "",
    properties: dict | None = None,
) -> uuid.UUID | None:
    """Record one event; return its id (the idempotency key), None if unusable.

    Appends to the Redis stream (the flush stores it within seconds); if Redis is
    unavailable, inserts into Postgres directly. Never raises: tracking must not
    break the page or the opt-in that records it. Recording the same ``event_id``
    twice stores it once (as long as ``occurred_at`` is the same too).
    """
    encoded = _event_line_or_log(
        workspace_id=workspace_id,
        funnel_id=funnel_id,
        step_id=step_id,
        visitor_id=visitor_id,
        kind=kind,
        occurred_at=occurred_at,
        event_id=event_id,
        page_version_id=page_version_id,
        variant_id=variant_id,
        amount_minor=amount_minor,
        currency=currency,
        properties=properties,
    )
    if encoded is None:
        return None
    event_uuid, line = encoded
    if not ingest.stream_append(ingest.EVENT_FIELD, [line]):
        ingest.lines_write_direct([line])
    return event_uuid


def event_store(
    *,
    workspace_id: int,
    funnel_id: int | None,
    step_id: int | None,
    visitor_id: uuid.UUID | str | None,
    kind: str,
    occurred_at: datetime | None = None,
    event_id: uuid.UUID | str | None = None,
    page_version_id: int | None = None,
    variant_id: int | None = None,
    amount_minor: int | None = None,
    currency: str = "",
    properties: dict | None = None,
) -> uuid.UUID | None:
    """Store one event NOW, in the caller's transaction (the outbox of a row).

    For events that record a row (an opt-in's submission, an order, an upsell
    answer, a refund): called inside the transaction that writes that row, the
    event commits with it or not at all, so it cannot be lost while the row
    exists, whatever Redis or a worker does. A savepoint keeps a rejected event
    (bad data, logged) from failing the row; a database that is down fails both.
    Storing the same ``event_id`` twice stores it once.
    """
    encoded = _event_line_or_log(
        workspace_id=workspace_id,
        funnel_id=funnel_id,
        step_id=step_id,
        visitor_id=visitor_id,
        kind=kind,
        occurred_at=occurred_at,
        event_id=event_id,
        page_version_id=page_version_id,
        variant_id=variant_id,
        amount_minor=amount_minor,
        currency=currency,
        properties=properties,
    )
    if encoded is None:
        return None
    event_uuid, line = encoded
    try:
        ingest.lines_write([line])
    except ingest.BAD_DATA_ERRORS:
        logger.exception("analytics: event %s rejected", event_uuid)
        return None
    return event_uuid


def events_record_many(
    events: Iterable[Mapping[str, Any]], *, chunk_size: int = 2000
) -> int:
    """Record many events (keyword dicts as for ``event_record``), pipelined.

    For producers that have several events at once (imports, the order flow, the
    benchmark): one Redis round trip per ``chunk_size`` events. Returns how many
    events were accepted. Never raises.
    """
    accepted = 0
    chunk: list[bytes] = []
    now = timezone.now()

    def push() -> None:
        if not ingest.stream_append(ingest.EVENT_FIELD, chunk):
            ingest.lines_write_direct(chunk)

    for event in events:
        try:
            _, line = _event_line(received_at=now, **event)
        except (TypeError, ValueError, AttributeError):
            logger.exception("analytics: unusable event %r", event)
            continue
        chunk.append(line)
        accepted += 1
        if len(chunk) >= chunk_size:
            push()
            chunk = []
            now = timezone.now()
    if chunk:
        push()
    return accepted


def events_flush(*, max_seconds: float = 20.0, batch_size: int = 20000) -> int:
    """Store queued events and logged views in Postgres; return how many new
    events were stored (the shipper's work too, for callers that want it now)."""
    from . import shipper

    stored = shipper.ship_once()
    return stored + ingest.stream_flush(max_seconds=max_seconds, batch_size=batch_size)


# ------------------------------------------------------------------ bots, devices
_BOT_RE = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|scrap|archiver|facebookexternalhit|"
    r"facebookcatalog|embedly|quora link preview|outbrain|"
    r"whatsapp|telegrambot|skypeuripreview|vkshare|w3c_validator|lighthouse|"
    r"pagespeed|headlesschrome|phantomjs|python-requests|python-urllib|"
    r"aiohttp|httpx|go-http-client|java/|okhttp|curl/|wget|libwww|"
    r"apache-httpclient|node-fetch|axios/|postmanruntime|uptime|pingdom|"
    r"statuscake|monitor|preview|feedfetcher|mediapartners|adsbot|"
    r"bingpreview|yandex|baiduspider|duckduckgo|applebot|semrush|ahrefs|mj12",
    re.IGNORECASE,
)
_PREFETCH_HEADERS = ("Purpose", "Sec-Purpose", "X-Purpose", "X-Moz")
_TABLET_RE = re.compile(r"ipad|tablet|kindle|silk|playbook|nexus (7|9|10)", re.I)
_MOBILE_RE = re.compile(
    r"mobi|iphone|ipod|android|blackberry|opera mini|iemobile", re.I
)


def is_bot(
    user_agent: str, method: str = "GET", headers: Mapping[str, str] | None = None
) -> bool:
    """True for requests that must not count as a visitor or a view.

    Known crawlers / link previewers / HTTP libraries by User-Agent, HEAD requests,
    and browser prefetch / prerender (``Purpose`` / ``Sec-Purpose`` headers). An
    empty User-Agent is not treated as a bot.
    """
    if method.upper() == "HEAD":
        return True
    if headers:
        for name in _PREFETCH_HEADERS:
            value = headers.get(name) or ""
            if "prefetch" in value.lower() or "prerender" in value.lower():
                return True
    return _ua_is_bot(user_agent)


@functools.lru_cache(maxsize=4096)
def _ua_is_bot(user_agent: str) -> bool:
    # User-Agent strings repeat a lot: match each one once per process.
    return bool(user_agent) and _BOT_RE.search(user_agent) is not None


@functools.lru_cache(maxsize=4096)
def device_class(user_agent: str) -> str:
    if user_agent and _BOT_RE.search(user_agent):
        return DeviceClass.BOT
    if _TABLET_RE.search(user_agent or ""):
        return DeviceClass.TABLET
    if _MOBILE_RE.search(user_agent or ""):
        # Android without "Mobile" is a tablet by Google's convention.
        if "android" in user_agent.lower() and "mobile" not in user_agent.lower():
            return DeviceClass.TABLET
        return DeviceClass.MOBILE
    return DeviceClass.DESKTOP


# ------------------------------------------------------------------ visitors
@dataclass(frozen=True)
class VisitorRef:
    """Who is looking at a page: the public id to put on events.

    ``cookie_value`` is set when the response must (re-)issue the visitor cookie.
    """

    public_id: uuid.UUID
    is_new: bool
    cookie_value: str | None = None
    device_class: str = DeviceClass.DESKTOP
    first_touch: dict[str, str] = field(default_factory=dict)


def visitor_cookie_name(workspace: Workspace) -> str:
    return f"{COOKIE_PREFIX}{workspace.public_id}"


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=COOKIE_SALT)


@functools.lru_cache(maxsize=20_000)
def _cookie_verify(value: str) -> tuple[uuid.UUID, datetime] | None:
    """Check a cookie's signature once per process (HMAC is the costly part)."""
    signer = _signer()
    try:
        raw = signer.unsign(value)
        _, _, stamp = value.rpartition(signer.sep)[0].rpartition(signer.sep)
        issued = datetime.fromtimestamp(signing.b62_decode(stamp), tz=UTC)
        return uuid.UUID(hex=raw), issued
    except (signing.BadSignature, ValueError, TypeError, OverflowError):
        return None


def visitor_cookie_read(value: str | None) -> tuple[uuid.UUID, datetime] | None:
    """(public id, issued at) from a cookie value, None if missing/forged/expired."""
    if not value or len(value) > 200:
        return None
    verified = _cookie_verify(value)
    if verified is None or timezone.now() - verified[1] > timedelta(
        seconds=COOKIE_MAX_AGE
    ):
        return None
    return verified


EDGE_COOKIE = "ofv"  # nginx's userid cookie on pages served by the edge


def edge_cookie_read(value: str | None) -> uuid.UUID | None:
    """The visitor id in nginx's ``userid`` cookie, as its log writes it.

    The cookie is base64 of four 32-bit integers in the server's (little-endian)
    byte order; the log's ``$uid_got`` prints them as hex, which the shipper reads
    as the visitor's UUID. Unsigned (nginx's core cannot sign): a made-up id only
    makes a made-up visitor, and the form token is checked against a logged view.
    """
    if not value or len(value) > 64:
        return None
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (ValueError, binascii.Error):
        return None
    if len(raw) != 16:
        return None
    return uuid.UUID(hex="".join(f"{part:08X}" for part in struct.unpack("<4I", raw)))


def visitor_cookie_value(public_id: uuid.UUID) -> str:
    # What _signer().sign(public_id.hex) returns, with the HMAC key kept.
    return fastsign.sign_timestamped(public_id.hex, salt=COOKIE_SALT)


def visitor_cookie(*, workspace: Workspace, value: str) -> dict[str, Any]:
    """Keyword arguments for ``response.set_cookie`` of the visitor cookie."""
    return {
        "key": visitor_cookie_name(workspace),
        "value": value,
        "max_age": COOKIE_MAX_AGE,
        "path": "/",
        "samesite": "Lax",
        "httponly": True,
        "secure": settings.SESSION_COOKIE_SECURE,
    }


def visitor_cookie_set(
    response: HttpResponse, *, workspace: Workspace, visitor: VisitorRef | None
) -> HttpResponse:
    """Set the visitor cookie on ``response`` when ``visitor`` asks for it."""
    if visitor is not None and visitor.cookie_value:
        response.set_cookie(
            **visitor_cookie(workspace=workspace, value=visitor.cookie_value)
        )
    return response


def _clean(value: str | None, limit: int) -> str:
    return (value or "").replace("\x00", "").strip()[:limit]


def _clean_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def _visitor_resolve(
    *,
    workspace: Workspace,
    funnel_id: int | None,
    step_id: int | None,
    cookie_value: str | None,
    user_agent: str = "",
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    referrer: str = "",
    ip: str | None = None,
    edge_cookie: str | None = None,
) -> tuple[VisitorRef | None, bytes | None]:
    """(visitor, encoded visitor row to queue or None); (None, None) for bots."""
    user_agent = user_agent or ""
    if is_bot(user_agent, method, headers):
        return None, None
    now = timezone.now()
    edge_id = edge_cookie_read(edge_cookie)
    if edge_id is not None:
        # A page served by nginx: the view's log line carries the sighting.
        return VisitorRef(public_id=edge_id, is_new=False), None
    known = visitor_cookie_read(cookie_value)
    if known is not None and now - known[1] < COOKIE_REFRESH:
        return VisitorRef(public_id=known[0], is_new=False), None

    query = query or {}
    touch = {name: _clean(query.get(name), 200) for name in UTM_FIELDS}
    touch["referrer"] = _clean(referrer, 500)
    device = device_class(user_agent)
    public_id = known[0] if known else uuid.uuid4()
    stored_ip = None if workspace.drop_ip_addresses else _clean_ip(ip)
    line = ingest.visitor_line(
        (
            workspace.pk,
            public_id,
            *(touch[name] for name in UTM_FIELDS),
            touch["referrer"],
            funnel_id,
            step_id,
            device,
            stored_ip,
            now,
            now,
        )
    )
    ref = VisitorRef(
        public_id=public_id,
        is_new=known is None,
        cookie_value=visitor_cookie_value(public_id),
        device_class=device,
        first_touch=touch,
    )
    return ref, line


def visitor_identify_from(**primitives: Any) -> VisitorRef | None:
    """Resolve the visitor from primitives; None for bots (do not track them).

    Takes ``step_view_visitor``'s arguments. A valid cookie means a known visitor
    and costs nothing (every 30 min the cookie is re-issued and ``last_seen``
    queued). A missing, forged or expired cookie gets a new random id whose Visitor
    row — first touch from UTM parameters and the referrer, landing step, device
    class, IP unless the workspace drops them — is queued on the stream and upserted
    by the flush (``ON CONFLICT`` on the id), or written directly when Redis is
    down. Never raises.
    """
    ref, line = step_view_visitor(**primitives)
    if line is not None and not ingest.stream_append(ingest.VISITOR_FIELD, [line]):
        ingest.lines_write_direct((), [line])
    return ref


def _request_primitives(request: HttpRequest, workspace: Workspace) -> dict[str, Any]:
    meta = request.META
    return {
        "cookie_value": request.COOKIES.get(visitor_cookie_name(workspace)),
        "user_agent": meta.get("HTTP_USER_AGENT", ""),
        "method": request.method or "GET",
        "headers": request.headers,
        "query": request.GET,
        "referrer": meta.get("HTTP_REFERER", ""),
        "ip": proxies.client_ip(meta),
        "edge_cookie": request.COOKIES.get(EDGE_COOKIE),
    }


def step_view_record(
    *,
    request: HttpRequest,
    workspace: Workspace,
    funnel: Any,
    step: Any,
    page_version_id: int | None = None,
    variant_id: int | None = None,
    properties: dict | None = None,
) -> VisitorRef | None:
    """Identify the visitor and record the step view in ONE Redis round trip.

    Returns the visitor (set its cookie with ``visitor_cookie_set``) or None for
    bots, which are not counted. Never raises. The public page server uses the two
    halves (``step_view_visitor`` then ``step_view_fields``) itself, because it picks
    the split-test variant from the visitor id before it knows what it serves.
    """
    funnel_id = getattr(funnel, "pk", funnel)
    step_id = getattr(step, "pk", step)
    ref, visitor = step_view_visitor(
        workspace=workspace,
        funnel_id=funnel_id,
        step_id=step_id,
        **_request_primitives(request, workspace),
    )
    if ref is None:
        return None
    fields = step_view_fields(
        workspace=workspace,
        funnel_id=funnel_id,
        step_id=step_id,
        visitor=ref,
        visitor_line=visitor,
        page_version_id=page_version_id,
        variant_id=variant_id,
        properties=properties,
    )
    if fields is None:
        return None
    if not ingest.stream_append_entry(fields):
        step_view_store_direct(fields)
    return ref


def step_view_visitor(
    *,
    workspace: Workspace,
    funnel_id: int | None,
    step_id: int | None,
    cookie_value: str | None,
    user_agent: str = "",
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    referrer: str = "",
    ip: str | None = None,
    edge_cookie: str | None = None,
) -> tuple[VisitorRef | None, bytes | None]:
    """(visitor, encoded visitor row to queue or None); (None, None) for bots.

    Like ``visitor_identify_from`` but queues nothing: the caller puts the visitor
    row in the same stream entry as the view (``step_view_fields``). Never raises.
    """
    try:
        return _visitor_resolve(
            workspace=workspace,
            funnel_id=funnel_id,
            step_id=step_id,
            cookie_value=cookie_value,
            user_agent=user_agent,
            method=method,
            headers=headers,
            query=query,
            referrer=referrer,
            ip=ip,
            edge_cookie=edge_cookie,
        )
    except Exception:
        logger.exception("analytics: could not identify a visitor")
        return None, None


def step_view_fields(
    *,
    workspace: Workspace,
    funnel_id: int | None,
    step_id: int | None,
    visitor: VisitorRef,
    visitor_line: bytes | None,
    page_version_id: int | None = None,
    variant_id: int | None = None,
    properties: dict | None = None,
) -> dict[bytes, bytes] | None:
    """The stream entry of one step view (and its new visitor row); never raises."""
    try:
        _, event = _event_line(
            workspace_id=workspace.pk,
            funnel_id=funnel_id,
            step_id=step_id,
            visitor_id=visitor.public_id,
            kind="view",
            page_version_id=page_version_id,
            variant_id=variant_id,
            properties=properties,
        )
    except Exception:
        logger.exception("analytics: could not record a step view")
        return None
    fields = {ingest.EVENT_FIELD: event}
    if visitor_line is not None:
        fields[ingest.VISITOR_FIELD] = visitor_line
    return fields


def step_view_store_direct(fields: dict[bytes, bytes]) -> None:
    """The Redis-down path for a ``step_view_fields`` entry: straight to Postgres."""
    visitor = fields.get(ingest.VISITOR_FIELD)
    ingest.lines_write_direct(
        [fields[ingest.EVENT_FIELD]], [visitor] if visitor else ()
    )


def visitor_identify(
    *,
    request: HttpRequest,
    workspace: Workspace,
    funnel: Any = None,
    step: Any = None,
) -> VisitorRef | None:
    """``visitor_identify_from`` for a Django request (cookie, UA, UTM, Referer)."""
    return visitor_identify_from(
        workspace=workspace,
        funnel_id=getattr(funnel, "pk", funnel),
        step_id=getattr(step, "pk", step),
        **_request_primitives(request, workspace),
    )


@transaction.atomic
def visitor_link_lead(
    *, workspace: Workspace, public_id: uuid.UUID | str, lead_id: int
) -> Visitor:
    """Attach a lead to the visitor (creating the row if the flush has not yet).

    Called by lead capture in its own transaction. If the visitor's queued first
    sighting arrives later, the flush still fills in the first touch (the earliest
    sighting wins).
    """
    public_uuid = uuid.UUID(str(public_id))
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO analytics_visitor (workspace_id, public_id, utm_source, "
            "utm_medium, utm_campaign, utm_content, utm_term, referrer, device_class, "
            "first_seen, last_seen, lead_id) "
            "VALUES (%s, %s, '', '', '', '', '', '', %s, %s, %s, %s) "
            "ON CONFLICT (workspace_id, public_id) DO UPDATE SET "
            "lead_id = EXCLUDED.lead_id, "
            "last_seen = GREATEST(analytics_visitor.last_seen, EXCLUDED.last_seen)",
            [workspace.pk, public_uuid, DeviceClass.DESKTOP, now, now, lead_id],
        )
    return Visitor.objects.get(workspace=workspace, public_id=public_uuid)


# ------------------------------------------ partitions, retention
def event_partitions_ensure(
    *, months_ahead: int = 2, now: datetime | None = None
) -> list[str]:
    """Create this month's partition and the next ``months_ahead`` ones."""
    month = ingest.month_start(now or timezone.now())
    names = []
    for _ in range(months_ahead + 1):
        ingest.partitions_forget()
        names.append(ingest.partition_ensure(month))
        month = ingest.next_month(month)
    return names


def _partitions() -> list[tuple[str, datetime, datetime]]:
    """(name, from, to) of each monthly partition, from the catalog."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'analytics_event'::regclass"
        )
        rows = cursor.fetchall()
    result = []
    bound_re = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")
    for name, bound in rows:
        match = bound_re.search(bound or "")
        if match:
            start = datetime.fromisoformat(match.group(1))
            end = datetime.fromisoformat(match.group(2))
            result.append((name, start, end))
    return sorted(result, key=lambda row: row[1])


def events_retention_apply(
    *, now: datetime | None = None, batch: int = 50_000
) -> dict[str, int]:
    """Delete raw events older than each workspace's ``event_retention_days``.

    Whole partitions that are past every workspace's retention are dropped (cheap);
    otherwise rows are deleted per workspace in batches.
    Returns {"partitions_dropped": n, "rows_deleted": n}.
    """
    now = now or timezone.now()
    retention = dict(Workspace.objects.values_list("pk", "event_retention_days"))
    longest = max(retention.values(), default=0)
    oldest_kept = now - timedelta(days=longest)
    dropped = 0
    for name, _start, end in _partitions():
        if end <= oldest_kept:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {name}")
            ingest.partitions_forget()
            dropped += 1
    deleted = 0
    with connection.cursor() as cursor:
        for workspace_id, days in retention.items():
            cutoff = now - timedelta(days=days)
            while True:
                cursor.execute(
                    "DELETE FROM analytics_event WHERE occurred_at < %s AND "
                    "(id, occurred_at) IN (SELECT id, occurred_at FROM analytics_event "
                    "WHERE workspace_id = %s AND occurred_at < %s LIMIT %s)",
                    [cutoff, workspace_id, cutoff, batch],
                )
                deleted += cursor.rowcount
                if cursor.rowcount < batch:
                    break
    return {"partitions_dropped": dropped, "rows_deleted": deleted}


def visitors_forget_lead(*, workspace_id: int, lead_id: int) -> int:
    """GDPR erase: drop the IP addresses of the visitors linked to a lead."""
    return Visitor.objects.filter(workspace_id=workspace_id, lead_id=lead_id).update(
        ip=None
    )


@transaction.atomic
def ad_spend_delete(*, spend: AdSpend) -> None:
    """Remove an ad spend row (CAC and ROAS change with it): audited."""
    audit_record(
        workspace=spend.workspace_id,
        action="ad_spend.delete",
        target=spend,
        before={
            "source": spend.source,
            "date_from": spend.date_from,
            "date_to": spend.date_to,
            "amount_minor": spend.amount_minor,
            "currency": spend.currency,
        },
    )
    spend.delete()
