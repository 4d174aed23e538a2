"""Abandoned checkouts: orders never paid, and known leads who reached an order
form and placed no order."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from analytics import selectors as analytics_selectors
from config.celery import enqueue_on_commit
from funnels.models import Step, StepKind

from .. import services
from ..models import (
    CheckoutAbandonment,
    FollowUpEmail,
    Lead,
    Order,
    OrderStatus,
    SequenceTrigger,
    WebhookEvent,
)
from .settlement import order_payload

ABANDON_AFTER = timedelta(minutes=30)
ABANDON_LOOKBACK = timedelta(days=2)  # order-form views older than this are history


def checkouts_mark_abandoned(*, now: datetime | None = None) -> int:
    """Mark checkouts left unpaid for ABANDON_AFTER, once per lead and order step.

    Two ways to abandon: an order submitted and never paid (declined, or pending
    past its reconciliation), or a known lead who reached the order form and placed
    no order. Each fires ``checkout.abandoned`` and the step's abandoned-checkout
    e-mail when one is enabled. A lead who already paid in that funnel is left alone.
    """
    now = now or timezone.now()
    cutoff = now - ABANDON_AFTER
    count = 0
    stale = Order.objects.filter(
        status__in=[OrderStatus.PENDING, OrderStatus.FAILED],
        paid_minor=0,
        abandoned_at__isnull=True,
        created_at__lt=cutoff,
    ).select_related("lead")
    for order in stale:
        with transaction.atomic():
            updated = Order.objects.filter(
                pk=order.pk, abandoned_at__isnull=True
            ).update(abandoned_at=now)
            # An order whose step was deleted cannot be recorded (the abandonment
            # needs a step): skipped, as the failed insert used to skip it.
            if (
                updated
                and order.step_id is not None
                and _abandon(
                    order.lead,
                    step_id=order.step_id,
                    order=order,
                    reached_at=order.created_at,
                )
            ):
                count += 1
    order_steps = list(
        Step.objects.filter(
            kind=StepKind.ORDER, funnel__published_at__isnull=False
        ).values_list("pk", flat=True)
    )
    views = analytics_selectors.lead_views_of_steps(
        step_ids=order_steps, since=now - ABANDON_LOOKBACK, until=cutoff
    )
    lead_ids = {view.lead_id for view in views}
    leads = Lead.objects.filter(pk__in=lead_ids, erased_at__isnull=True).in_bulk()
    marked = set(
        CheckoutAbandonment.objects.filter(lead_id__in=lead_ids).values_list(
            "lead_id", "step_id"
        )
    )
    orders: dict[tuple[int, int], list[tuple[int, datetime]]] = {}
    for lead_id, funnel_id, paid, created in Order.objects.filter(
        lead_id__in=lead_ids
    ).values_list("lead_id", "funnel_id", "paid_minor", "created_at"):
        orders.setdefault((lead_id, funnel_id), []).append((paid, created))
    for view in views:
        lead = leads.get(view.lead_id)
        if lead is None or lead.workspace_id != view.workspace_id:
            continue
        if (view.lead_id, view.step_id) in marked:
            continue
        if any(
            paid > 0 or created >= view.first_view_at
            for paid, created in orders.get((view.lead_id, view.funnel_id), [])
        ):
            continue  # bought, or an order of theirs is handled above
        with transaction.atomic():
            count += _abandon(
                lead, step_id=view.step_id, order=None, reached_at=view.first_view_at
            )
    return count


def _abandon(
    lead: Lead, *, step_id: int, order: Order | None, reached_at: datetime
) -> int:
    """Record one abandonment (once per lead and step); 1 if it is new."""
    try:
        with transaction.atomic():
            CheckoutAbandonment.objects.create(
                workspace_id=lead.workspace_id,
                lead=lead,
                step_id=step_id,
                order=order,
                reached_at=reached_at,
            )
    except IntegrityError:
        return 0
    payload = (
        order_payload(order)
        if order is not None
        else {
            "id": None,
            "status": "not_submitted",
            "lead": services.lead_payload(lead),
            "step_id": step_id,
            "reached_at": reached_at.isoformat(),
        }
    )
    services.webhooks_dispatch(
        workspace_id=lead.workspace_id,
        event=WebhookEvent.CHECKOUT_ABANDONED,
        payload=payload,
    )
    follow_up = FollowUpEmail.objects.filter(step_id=step_id, is_enabled=True).first()
    if follow_up is not None and lead.erased_at is None:
        from ..tasks import follow_up_send_task

        enqueue_on_commit(follow_up_send_task, follow_up.pk, lead.pk)
    if lead.erased_at is None:
        from ..sequences.services import sequences_enroll_triggered

        step = Step.objects.get(pk=step_id)
        sequences_enroll_triggered(
            lead=lead, step=step, trigger=SequenceTrigger.ABANDONED
        )
    return 1
