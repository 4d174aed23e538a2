"""Tracking reads. Every read of raw events goes through this module, so that moving
the events table (Citus, a columnar store) touches one file."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Count

from accounts.models import Workspace
from funnels.models import Funnel, Step

from .models import Event, EventKind, Visitor


def visitor_get(*, workspace: Workspace, public_id: uuid.UUID | str) -> Visitor | None:
    try:
        public_uuid = uuid.UUID(str(public_id))
    except ValueError:
        return None
    return Visitor.objects.filter(workspace=workspace, public_id=public_uuid).first()


def visitors_for_lead(*, workspace: Workspace, lead_id: int) -> list[Visitor]:
    return list(
        Visitor.objects.filter(workspace=workspace, lead_id=lead_id).order_by(
            "first_seen"
        )
    )


def visitor_journey(
    *,
    workspace: Workspace,
    public_ids: list[uuid.UUID | str] | uuid.UUID | str,
    limit: int = 1000,
) -> list[Event]:
    """Events of one or more visitors (a lead may have several), oldest first."""
    if not isinstance(public_ids, list):
        public_ids = [public_ids]
    ids = []
    for value in public_ids:
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    if not ids:
        return []
    return list(
        Event.objects.filter(workspace_id=workspace.pk, visitor_id__in=ids).order_by(
            "occurred_at", "received_at"
        )[:limit]
    )


def lead_journey(
    *, workspace: Workspace, lead_id: int, limit: int = 1000
) -> list[Event]:
    """The timeline of every event of the visitors linked to a lead."""
    visitors = visitors_for_lead(workspace=workspace, lead_id=lead_id)
    return visitor_journey(
        workspace=workspace, public_ids=[v.public_id for v in visitors], limit=limit
    )


@dataclass(frozen=True)
class StepCounts:
    step_id: int
    views: int
    unique_visitors: int
    optins: int
    orders: int


def funnel_step_counts(
    *,
    workspace: Workspace,
    funnel_id: int,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[int, StepCounts]:
    """Per step of a funnel: all views, unique viewers, opt-ins (unique visitors),
    orders — from raw events. Dashboards should read rollups instead."""
    where = ["workspace_id = %s", "funnel_id = %s", "step_id IS NOT NULL"]
    params: list[Any] = [workspace.pk, funnel_id]
    if since is not None:
        where.append("occurred_at >= %s")
        params.append(since)
    if until is not None:
        where.append("occurred_at < %s")
        params.append(until)
    sql = (
        "SELECT step_id, "
        "count(*) FILTER (WHERE kind = %s), "
        "count(DISTINCT visitor_id) FILTER (WHERE kind = %s), "
        "count(DISTINCT visitor_id) FILTER (WHERE kind = %s), "
        "count(*) FILTER (WHERE kind = %s) "
        f"FROM analytics_event WHERE {' AND '.join(where)} GROUP BY step_id"
    )
    kinds = [EventKind.VIEW, EventKind.VIEW, EventKind.OPTIN, EventKind.ORDER]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*kinds, *params])
        rows = cursor.fetchall()
    return {
        row[0]: StepCounts(
            step_id=row[0],
            views=row[1],
            unique_visitors=row[2],
            optins=row[3],
            orders=row[4],
        )
        for row in rows
    }


def event_count(*, workspace: Workspace, kind: str | None = None) -> int:
    qs = Event.objects.filter(workspace_id=workspace.pk)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.count()


@dataclass(frozen=True)
class LeadStepView:
    workspace_id: int
    lead_id: int
    funnel_id: int
    step_id: int
    first_view_at: datetime


def lead_views_of_steps(
    *, step_ids: list[int], since: datetime, until: datetime
) -> list[LeadStepView]:
    """Known leads who viewed these steps in [since, until): their first view each.

    The events' time partitions and the visitor's (workspace, public id) index keep
    this a narrow scan; it serves the abandoned-checkout sweep.
    """
    if not step_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT e.workspace_id, v.lead_id, e.funnel_id, e.step_id,
                   min(e.occurred_at)
            FROM analytics_event e
            JOIN analytics_visitor v
              ON v.workspace_id = e.workspace_id AND v.public_id = e.visitor_id
            WHERE e.kind = %s AND e.step_id = ANY(%s)
              AND e.occurred_at >= %s AND e.occurred_at < %s
              AND v.lead_id IS NOT NULL
            GROUP BY e.workspace_id, v.lead_id, e.funnel_id, e.step_id
            """,
            [EventKind.VIEW, list(step_ids), since, until],
        )
        return [LeadStepView(*row) for row in cursor.fetchall()]


def view_logged(
    *, event_id: uuid.UUID, step_id: int
) -> tuple[datetime, int | None] | None:
    """(when, variant) of a stored view of ``step_id`` with this id, or None.

    The edge's form token: nginx gives each view a random request id, logs it and
    hands it to the visitor in a cookie; a form post proves its page was fetched
    when its id is a stored view of the same step.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT occurred_at, variant_id FROM analytics_event "
            "WHERE id = %s AND step_id = %s AND kind = 'view' LIMIT 1",
            [event_id, step_id],
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def leads_viewed_since(
    *,
    workspace: Workspace,
    since_by_lead: dict[int, datetime],
    funnel_id: int | None = None,
) -> set[int]:
    """Of these leads, those with a step view (by any of their visitors) at or
    after their own moment, in the funnel when one is named: "came back"."""
    if not since_by_lead:
        return set()
    lead_ids = list(since_by_lead)
    funnel_sql = "AND e.funnel_id = %s" if funnel_id is not None else ""
    params: list[Any] = [
        lead_ids,
        [since_by_lead[i] for i in lead_ids],
        workspace.pk,
        workspace.pk,
        EventKind.VIEW,
    ]
    if funnel_id is not None:
        params.append(funnel_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT DISTINCT v.lead_id
            FROM unnest(%s::bigint[], %s::timestamptz[]) AS s(lead_id, since)
            JOIN analytics_visitor v
              ON v.workspace_id = %s AND v.lead_id = s.lead_id
            WHERE EXISTS (
              SELECT 1 FROM analytics_event e
              WHERE e.workspace_id = %s AND e.visitor_id = v.public_id
                AND e.kind = %s AND e.occurred_at >= s.since {funnel_sql}
            )
            """,
            params,
        )
        return {row[0] for row in cursor.fetchall()}


def funnel_variant_choices(*, funnel: Funnel) -> list[tuple[int, str]]:
    """The funnel's page variants on steps that have more than one (split tests):
    (page id, "step · page"), what the journey map can be narrowed to."""
    # Counted apart: grouping the page rows themselves would count one page a step.
    split = (
        Step.objects.filter(funnel=funnel)
        .annotate(n=Count("pages"))
        .filter(n__gt=1)
        .values("pk")
    )
    rows = (
        Step.objects.filter(pk__in=split)
        .values_list("name", "pages__id", "pages__name")
        .order_by("position", "id", "pages__id")
    )
    return [(page_id, f"{step} · {page}") for step, page_id, page in rows]
