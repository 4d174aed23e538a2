"""Reads for sequences: the list, and what one sequence achieved.

"Came back" is a view of the sequence's funnel (any funnel of the workspace when
it names none) by one of the lead's visitors after the lead's first e-mail of the
sequence; a lead who bought came back too, on whatever device. "Bought" is an
order paid after that first e-mail, in the same funnel; revenue is what was paid
less refunds, per currency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, Min, Q

from accounts.models import Workspace
from analytics import selectors as analytics_selectors

from ..models import (
    EnrollmentStatus,
    Order,
    SendStatus,
    Sequence,
    SequenceEnrollment,
    SequenceSend,
    SequenceStep,
)
from .services import PAID


def sequences_for(*, workspace: Workspace) -> list[Sequence]:
    return list(
        Sequence.objects.filter(workspace=workspace)
        .select_related("funnel", "trigger_step")
        .annotate(
            step_count=Count("steps", distinct=True),
            enrolled=Count("enrollments", distinct=True),
        )
        .order_by("-created_at", "-id")
    )


def sequence_get(*, workspace: Workspace, pk: int) -> Sequence | None:
    return (
        Sequence.objects.filter(workspace=workspace, pk=pk)
        .select_related("funnel", "trigger_step")
        .first()
    )


@dataclass(frozen=True)
class StepStats:
    step: SequenceStep
    sent: int
    opened: int
    clicked: int
    skipped: int
    failed: int


@dataclass
class SequenceReport:
    enrolled: int = 0
    active: int = 0
    unsubscribed: int = 0
    reached: int = 0  # leads sent at least one e-mail
    sent: int = 0  # e-mails
    opened: int = 0  # leads
    clicked: int = 0  # leads
    came_back: int = 0
    bought: int = 0
    revenue: list[tuple[str, int]] = field(default_factory=list)
    sources: list[tuple[str, int]] = field(default_factory=list)
    steps: list[StepStats] = field(default_factory=list)
    # The leads behind the numbers (ids), for the people table.
    came_back_ids: set[int] = field(default_factory=set)
    buyer_ids: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Person:
    enrollment: SequenceEnrollment
    sent: int
    clicked: bool
    came_back: bool
    bought: bool


PEOPLE_LIMIT = 200


def sequence_people(
    *, workspace: Workspace, sequence: Sequence, report: SequenceReport
) -> list[Person]:
    """The latest enrolled leads with what each did (PEOPLE_LIMIT of them)."""
    rows = (
        SequenceEnrollment.objects.filter(workspace=workspace, sequence=sequence)
        .select_related("lead")
        .annotate(
            sent=Count("sends", filter=Q(sends__status=SendStatus.SENT)),
            clicked=Count("sends", filter=Q(sends__clicked_at__isnull=False)),
        )
        .order_by("-enrolled_at", "-id")[:PEOPLE_LIMIT]
    )
    return [
        Person(
            e,
            e.sent,
            e.clicked > 0,
            e.lead_id in report.came_back_ids,
            e.lead_id in report.buyer_ids,
        )
        for e in rows
    ]


def sequence_report(*, workspace: Workspace, sequence: Sequence) -> SequenceReport:
    report = SequenceReport()
    enrollments = SequenceEnrollment.objects.filter(
        workspace=workspace, sequence=sequence
    )
    totals = enrollments.aggregate(
        enrolled=Count("id"),
        active=Count("id", filter=Q(status=EnrollmentStatus.ACTIVE)),
        unsubscribed=Count("id", filter=Q(status=EnrollmentStatus.UNSUBSCRIBED)),
    )
    report.enrolled = totals["enrolled"]
    report.active = totals["active"]
    report.unsubscribed = totals["unsubscribed"]
    report.sources = [
        (row["source_label"] or "Added by hand", row["n"])
        for row in enrollments.values("source_label")
        .annotate(n=Count("id"))
        .order_by("-n", "source_label")
    ]
    sends = SequenceSend.objects.filter(
        workspace=workspace, enrollment__sequence=sequence
    )
    sent = sends.filter(status=SendStatus.SENT)
    report.sent = sent.count()
    report.opened = (
        sent.filter(opened_at__isnull=False).values("enrollment_id").distinct().count()
    )
    report.clicked = (
        sent.filter(clicked_at__isnull=False).values("enrollment_id").distinct().count()
    )
    per_step: dict[int, Mapping[str, Any]] = {
        row["step_id"]: row
        for row in sends.values("step_id").annotate(
            sent=Count("id", filter=Q(status=SendStatus.SENT)),
            opened=Count(
                "id", filter=Q(status=SendStatus.SENT, opened_at__isnull=False)
            ),
            clicked=Count(
                "id", filter=Q(status=SendStatus.SENT, clicked_at__isnull=False)
            ),
            skipped=Count("id", filter=Q(status=SendStatus.SKIPPED)),
            failed=Count("id", filter=Q(status=SendStatus.FAILED)),
        )
    }
    for step in sequence.steps.order_by("position"):
        row = per_step.get(step.pk, {})
        report.steps.append(
            StepStats(
                step,
                row.get("sent", 0),
                row.get("opened", 0),
                row.get("clicked", 0),
                row.get("skipped", 0),
                row.get("failed", 0),
            )
        )
    first_sent: dict[int, datetime] = {
        row["lead_id"]: row["first"]
        for row in enrollments.annotate(
            first=Min("sends__sent_at", filter=Q(sends__status=SendStatus.SENT))
        )
        .filter(first__isnull=False)
        .values("lead_id", "first")
    }
    report.reached = len(first_sent)
    if not first_sent:
        return report
    orders = Order.objects.filter(
        workspace=workspace,
        lead_id__in=list(first_sent),
        status__in=PAID,
        paid_minor__gt=0,
        paid_at__gte=min(first_sent.values()),
    )
    if sequence.funnel_id:
        orders = orders.filter(funnel_id=sequence.funnel_id)
    buyers: set[int] = set()
    revenue: dict[str, int] = {}
    for lead_id, currency, paid, refunded, paid_at in orders.values_list(
        "lead_id", "currency", "paid_minor", "refunded_minor", "paid_at"
    ):
        if paid_at is None or paid_at < first_sent[lead_id]:
            continue
        buyers.add(lead_id)
        revenue[currency] = revenue.get(currency, 0) + paid - refunded
    came_back = analytics_selectors.leads_viewed_since(
        workspace=workspace, since_by_lead=first_sent, funnel_id=sequence.funnel_id
    )
    report.buyer_ids = buyers
    report.came_back_ids = came_back | buyers
    report.bought = len(buyers)
    report.came_back = len(report.came_back_ids)
    report.revenue = sorted(revenue.items())
    return report
