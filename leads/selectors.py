"""Reads for leads: the filtered, keyset-paginated list, details, exports."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import Workspace
from analytics import journeys
from analytics.reports import ReportFilters
from funnels.models import Funnel
from pages.models import Page

from .models import (
    Lead,
    LeadExport,
    Order,
    OrderStatus,
    Submission,
    Tag,
    Webhook,
    WebhookDelivery,
)

PAGE_SIZE = 50
SORTS = {
    "newest": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
    "email": ("email_l", "id"),
}


@dataclass
class LeadFilters:
    q: str = ""
    funnel_id: int | None = None
    step_id: int | None = None
    tag_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    source: str = ""
    sort: str = "newest"
    updated_since: datetime | None = None
    errors: list[str] = field(default_factory=list)


@dataclass
class LeadPage:
    leads: list[Lead]
    next_cursor: str | None


def _encode_cursor(values: list) -> str:
    raw = json.dumps(values, default=str, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> list | None:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        return None
    return values if isinstance(values, list) and len(values) == 2 else None


def lead_queryset(*, workspace: Workspace, filters: LeadFilters) -> QuerySet[Lead]:
    qs = Lead.objects.filter(workspace=workspace).annotate(email_l=Lower("email"))
    q = filters.q.strip().lower()
    if q:
        qs = qs.annotate(first_l=Lower("first_name"), last_l=Lower("last_name"))
        qs = qs.filter(
            Q(email_l__startswith=q)
            | Q(first_l__startswith=q)
            | Q(last_l__startswith=q)
        )
    subs = Submission.objects.filter(lead=OuterRef("pk"))
    if filters.step_id:
        qs = qs.filter(Exists(subs.filter(step_id=filters.step_id)))
    elif filters.funnel_id:
        qs = qs.filter(Exists(subs.filter(funnel_id=filters.funnel_id)))
    if filters.tag_id:
        qs = qs.filter(tags__id=filters.tag_id)
    tz = timezone.get_current_timezone()
    if filters.date_from:
        qs = qs.filter(
            created_at__gte=datetime.combine(filters.date_from, time.min, tzinfo=tz)
        )
    if filters.date_to:
        end = datetime.combine(filters.date_to + timedelta(days=1), time.min, tzinfo=tz)
        qs = qs.filter(created_at__lt=end)
    if filters.source:
        qs = qs.filter(first_source=filters.source)
    if filters.updated_since:
        qs = qs.filter(updated_at__gte=filters.updated_since)
    return qs


def lead_page(
    *, workspace: Workspace, filters: LeadFilters, cursor: str = ""
) -> LeadPage:
    """One page of leads after `cursor`, by keyset: fast on page 1 and page 20,000."""
    order = SORTS.get(filters.sort, SORTS["newest"])
    qs = lead_queryset(workspace=workspace, filters=filters)
    after = _decode_cursor(cursor) if cursor else None
    if after is not None:
        key, pk = after
        first = order[0]
        column = first.lstrip("-")
        if first.startswith("-"):
            qs = qs.filter(
                Q(**{f"{column}__lt": key}) | Q(**{column: key, "id__lt": pk})
            )
        else:
            qs = qs.filter(
                Q(**{f"{column}__gt": key}) | Q(**{column: key, "id__gt": pk})
            )
    rows = list(qs.order_by(*order).prefetch_related("tags")[: PAGE_SIZE + 1])
    next_cursor = None
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        last = rows[-1]
        column = order[0].lstrip("-")
        value = getattr(last, column)
        next_cursor = _encode_cursor(
            [value.isoformat() if isinstance(value, datetime) else value, last.pk]
        )
    return LeadPage(rows, next_cursor)


CSV_COLUMNS = [
    ("email", "E-mail"),
    ("first_name", "First name"),
    ("last_name", "Last name"),
    ("phone", "Phone"),
    ("first_funnel__name", "First funnel"),
    ("first_step__name", "First step"),
    ("first_source", "First source"),
    ("first_medium", "First medium"),
    ("first_campaign", "First campaign"),
    ("last_source", "Last source"),
    ("consent_given", "Consent"),
    ("submission_count", "Submissions"),
    ("created_at", "Created"),
]


def lead_export_rows(*, workspace: Workspace, filters: LeadFilters) -> Iterator[tuple]:
    """Stream rows with a server-side cursor: memory stays flat at a million leads."""
    qs = lead_queryset(workspace=workspace, filters=filters).order_by(
        "-created_at", "-id"
    )
    yield from qs.values_list(*(c for c, _ in CSV_COLUMNS)).iterator(chunk_size=2000)


def export_latest(*, workspace: Workspace, user) -> LeadExport | None:
    """This user's latest export still worth showing on the list (running or fresh)."""
    since = timezone.now() - timedelta(hours=settings.EXPORT_TTL_HOURS)
    return (
        LeadExport.objects.filter(
            workspace=workspace,
            requested_by=user,
            created_at__gte=since,
            expired_at__isnull=True,
        )
        .order_by("-created_at", "-id")
        .first()
    )


def lead_get(*, workspace: Workspace, pk: int) -> Lead | None:
    return (
        Lead.objects.filter(workspace=workspace, pk=pk)
        .select_related("first_funnel", "first_step")
        .prefetch_related("tags")
        .first()
    )


def lead_submissions(*, lead: Lead) -> QuerySet[Submission]:
    return lead.submissions.select_related("funnel", "step").order_by("-created_at")


def tags_for(*, workspace: Workspace) -> QuerySet[Tag]:
    return Tag.objects.filter(workspace=workspace).order_by(Lower("name"))


def lead_sources(*, workspace: Workspace) -> list[str]:
    return list(
        Lead.objects.filter(workspace=workspace)
        .exclude(first_source="")
        .values_list("first_source", flat=True)
        .distinct()
        .order_by("first_source")[:100]
    )


def webhooks_for(*, workspace: Workspace) -> QuerySet[Webhook]:
    return Webhook.objects.filter(workspace=workspace)


def deliveries_for(
    *, workspace: Workspace, limit: int = 50
) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(workspace=workspace).select_related(
        "webhook"
    )[:limit]


@dataclass
class OrderFilters:
    funnel_id: int | None = None
    product_id: int | None = None
    status: str = ""
    date_from: date | None = None
    date_to: date | None = None
    # "" orders (something was paid), "attempts" (declined, unconfirmed or
    # abandoned checkouts that paid nothing), "all".
    show: str = ""


ORDER_SHOW = [("", "Orders"), ("attempts", "Unpaid attempts"), ("all", "Both")]


def order_queryset(*, workspace: Workspace, filters: OrderFilters) -> QuerySet[Order]:
    """Orders are checkouts that paid something (refunded ones included); declined
    and abandoned attempts are not orders and show only when asked for."""
    qs = Order.objects.filter(workspace=workspace)
    if filters.show == "attempts":
        qs = qs.filter(paid_minor=0)
    elif filters.show != "all":
        qs = qs.filter(paid_minor__gt=0)
    if filters.funnel_id:
        qs = qs.filter(funnel_id=filters.funnel_id)
    if filters.product_id:
        qs = qs.filter(items__product_id=filters.product_id).distinct()
    if filters.status:
        qs = qs.filter(status=filters.status)
    tz = timezone.get_current_timezone()
    if filters.date_from:
        qs = qs.filter(
            created_at__gte=datetime.combine(filters.date_from, time.min, tzinfo=tz)
        )
    if filters.date_to:
        end = datetime.combine(filters.date_to + timedelta(days=1), time.min, tzinfo=tz)
        qs = qs.filter(created_at__lt=end)
    return qs.select_related("lead", "funnel").order_by("-created_at", "-id")


def order_get(*, workspace: Workspace, pk: int) -> Order | None:
    return (
        Order.objects.filter(workspace=workspace, pk=pk)
        .select_related("lead", "funnel", "step")
        .prefetch_related("items", "payments")
        .first()
    )


def orders_for_lead(*, lead: Lead) -> QuerySet[Order]:
    """The lead's orders and failed attempts (their status says which)."""
    return lead.orders.exclude(status=OrderStatus.PENDING).prefetch_related("items")


ORDER_CSV_COLUMNS = [
    ("public_id", "Order"),
    ("created_at", "Created"),
    ("status", "Status"),
    ("lead__email", "E-mail"),
    ("funnel__name", "Funnel"),
    ("currency", "Currency"),
    ("paid_minor", "Paid (minor units)"),
    ("refunded_minor", "Refunded (minor units)"),
    ("first_source", "First source"),
    ("first_medium", "First medium"),
    ("first_campaign", "First campaign"),
    ("first_referrer", "First referrer"),
    ("last_source", "Last source"),
    ("last_medium", "Last medium"),
    ("last_campaign", "Last campaign"),
    ("last_referrer", "Last referrer"),
    ("variants", "Split-test variants"),
]


def order_variants(
    *, workspace: Workspace, variants: dict[str, int]
) -> list[tuple[str, str]]:
    """(step name, variant name) for an order's ``variants``, in funnel order."""
    ids = [v for v in variants.values() if isinstance(v, int)]
    pages = {
        p.pk: p
        for p in Page.objects.filter(workspace=workspace, pk__in=ids).select_related(
            "step"
        )
    }
    shown = [
        pages[v]
        for step, v in variants.items()
        if v in pages and str(pages[v].step_id) == step
    ]
    shown.sort(key=lambda p: (p.step.position, p.step_id))
    return [(p.step.name, p.name) for p in shown]


def order_export_rows(
    *, workspace: Workspace, filters: OrderFilters
) -> Iterator[tuple]:
    qs = order_queryset(workspace=workspace, filters=filters)
    columns = [c for c, _ in ORDER_CSV_COLUMNS]
    at = columns.index("variants")
    for row in qs.values_list(*columns).iterator(chunk_size=2000):
        seen = order_variants(workspace=workspace, variants=row[at] or {})
        variants = "; ".join(f"{step}: {variant}" for step, variant in seen)
        yield (*row[:at], variants, *row[at + 1 :])


@dataclass(frozen=True)
class DroppedLead:
    lead: Lead
    dropped_at: datetime
    source: str
    medium: str
    campaign: str


DROPPED_LIMIT = 5000


def dropped_leads(
    *,
    workspace: Workspace,
    funnel: Funnel,
    filters: ReportFilters,
    step_id: int | None = None,
    path: str | None = None,
    variant: int | None = None,
    limit: int | None = DROPPED_LIMIT,
) -> list[DroppedLead]:
    """The leads behind a leak: whose visitor (of the period's cohort) went no
    further than the step, or took exactly the path; with their first touch and
    when they dropped (their last event in the funnel), latest first."""
    sql, params = journeys.dropped_visitors_sql(
        workspace=workspace,
        funnel=funnel,
        filters=filters,
        step_id=step_id,
        path=path,
        variant=variant,
    )
    query = (
        f"WITH d AS ({sql}) "
        "SELECT v.lead_id, max(d.last_at), "
        "(array_agg(d.source ORDER BY d.last_at DESC))[1], "
        "(array_agg(d.medium ORDER BY d.last_at DESC))[1], "
        "(array_agg(d.campaign ORDER BY d.last_at DESC))[1] "
        "FROM d JOIN analytics_visitor v "
        "ON v.workspace_id = d.workspace_id AND v.public_id = d.visitor_id "
        "WHERE v.lead_id IS NOT NULL GROUP BY v.lead_id ORDER BY 2 DESC, 1 DESC"
    )
    if limit:
        query += f" LIMIT {int(limit)}"
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        rows = cursor.fetchall()
    leads = Lead.objects.filter(
        workspace=workspace, erased_at__isnull=True, pk__in=[r[0] for r in rows]
    ).in_bulk()
    return [
        DroppedLead(leads[r[0]], r[1], r[2], r[3], r[4]) for r in rows if r[0] in leads
    ]
