from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
import time
from datetime import timedelta

from celery import shared_task
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from config.celery import enqueue_on_commit

from . import outbound
from .models import DeliveryStatus, FollowUpEmail, Lead, WebhookDelivery

# Seconds to wait after failed attempt n (1-based): 7 tries over about 20 hours.
RETRY_SCHEDULE = (60, 300, 1800, 7200, 21600, 43200)
TIMEOUT_SECONDS = 10
USER_AGENT = "OpenFunnels-Webhook/1"


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the webhook secret>`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


@shared_task(acks_late=True)
def webhook_deliver_task(delivery_id: int) -> str:
    """POST one delivery; on failure schedule the next try with backoff and jitter."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .select_related("webhook")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            return "skipped"
        early = timezone.now() + timedelta(seconds=5)
        if delivery.next_attempt_at and delivery.next_attempt_at > early:
            return "not due"  # a duplicate from the sweeper; the timed retry follows
        delivery.attempts += 1
        body = json.dumps(
            {
                "id": str(delivery.event_id),
                "event": delivery.event,
                "created_at": delivery.created_at.isoformat(),
                "data": delivery.payload,
            },
            separators=(",", ":"),
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-OpenFunnels-Event": delivery.event,
            "X-OpenFunnels-Delivery": str(delivery.event_id),
            "X-OpenFunnels-Signature": webhook_signature(
                delivery.webhook.secret, int(time.time()), body
            ),
        }
        refused = False
        try:
            answer = outbound.post(
                delivery.webhook.url,
                body=body,
                headers=headers,
                timeout=TIMEOUT_SECONDS,
            )
            delivery.response_status = answer.status
            delivery.response_body = answer.text
            delivery.error = (
                "" if 200 <= answer.status < 300 else f"HTTP {answer.status}"
            )
            if 300 <= answer.status < 400:
                delivery.error += " (redirects are not followed: use the final URL)"
        except outbound.Refused as exc:
            # Never connected: the same words whatever is (or is not) listening.
            refused = True
            delivery.response_status, delivery.response_body = None, ""
            delivery.error = str(exc)[:300]
        except (OSError, ValueError) as exc:
            delivery.response_status, delivery.response_body = None, ""
            delivery.error = str(exc)[:300] or type(exc).__name__
        if not delivery.error:
            delivery.status = DeliveryStatus.SUCCEEDED
            delivery.delivered_at = timezone.now()
            delivery.next_attempt_at = None
        elif refused or delivery.attempts > len(RETRY_SCHEDULE):
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
        else:
            wait = RETRY_SCHEDULE[delivery.attempts - 1]
            wait = int(wait * random.uniform(0.9, 1.1))
            delivery.next_attempt_at = timezone.now() + timedelta(seconds=wait)
            enqueue_on_commit(webhook_deliver_task, delivery_id, countdown=wait)
        delivery.save()
    return delivery.status


_PLACEHOLDER = re.compile(r"{{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*}}")


def render_merge_fields(
    text: str,
    lead: Lead,
    *,
    funnel_url: str = "",
    system: dict[str, str] | None = None,
) -> str:
    """Replace {{ first_name }}-style fields; unknown fields become empty.

    ``{{ funnel_url }}`` is the public address of the e-mail's funnel. ``system``
    fields (e.g. ``unsubscribe_url``) win over a lead's own fields of that name."""
    values = {
        "funnel_url": funnel_url,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "name": lead.name,
        "email": lead.email,
        "phone": lead.phone,
        **{str(k): str(v) for k, v in lead.fields.items()},
        **(system or {}),
    }
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), text)


@shared_task(
    acks_late=True,
    autoretry_for=(OSError,),
    retry_backoff=60,
    retry_backoff_max=3600,
    retry_jitter=True,
    max_retries=6,
)
def follow_up_send_task(follow_up_id: int, lead_id: int) -> None:
    follow_up = FollowUpEmail.objects.filter(pk=follow_up_id, is_enabled=True).first()
    lead = Lead.objects.filter(pk=lead_id, erased_at__isnull=True).first()
    if follow_up is None or lead is None:
        return
    step = follow_up.step
    url = step.funnel.public_url() if step is not None else ""
    send_mail(
        subject=render_merge_fields(follow_up.subject, lead).replace("\n", " "),
        message=render_merge_fields(follow_up.body, lead, funnel_url=url),
        from_email=None,
        recipient_list=[lead.email],
    )


SWEEP_GRACE_SECONDS = 120


@shared_task(acks_late=True)
def webhooks_sweep_task() -> int:
    """Queue again deliveries that are due but were never picked up.

    The broker may have been down when a delivery (or its retry) was queued; the
    delivery row in Postgres is the source of truth, so nothing is lost. A
    duplicate task is harmless: the deliverer locks the row and skips it unless it
    is pending and due.
    """
    stale = timezone.now() - timedelta(seconds=SWEEP_GRACE_SECONDS)
    ids = list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=stale
        ).values_list("pk", flat=True)[:1000]
    )
    for delivery_id in ids:
        webhook_deliver_task.apply_async((delivery_id,))
    return len(ids)


@shared_task(acks_late=True)
def orders_reconcile_task() -> int:
    """Settle payments a gateway timeout left pending (idempotent: keyed payments)."""
    from .checkout import orders_reconcile

    return orders_reconcile()


@shared_task(acks_late=True)
def checkouts_abandoned_task() -> int:
    """Mark unpaid checkouts as abandoned and fire checkout.abandoned once each."""
    from .checkout import checkouts_mark_abandoned

    return checkouts_mark_abandoned()


@shared_task(acks_late=True)
def lead_export_task(export_id: int) -> str:
    from .exports import lead_export_run

    return lead_export_run(export_id=export_id)


@shared_task(acks_late=True)
def lead_exports_tidy_task() -> int:
    from .exports import lead_exports_tidy

    return lead_exports_tidy()


@shared_task(bind=True, acks_late=True, max_retries=None)
def sequence_send_task(self, enrollment_id: int) -> str:
    """Send an enrolment's due step once; retry with backoff when the mail server
    refused (the claim in the database keeps a retry from sending twice)."""
    from .sequences.services import enrollment_send_next

    outcome = enrollment_send_next(enrollment_id=enrollment_id)
    if outcome.retry_in is not None and not self.request.is_eager:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(acks_late=True)
def sequences_sweep_task() -> int:
    """Queue due sequence e-mails nobody picked up; give up dead workers' claims."""
    from .sequences.services import sequences_sweep

    return sequences_sweep()
