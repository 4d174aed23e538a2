from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from .models import Invitation


@shared_task(
    acks_late=True,
    autoretry_for=(OSError,),
    retry_backoff=30,
    retry_backoff_max=3600,
    retry_jitter=True,
    max_retries=8,
)
def invitation_send_task(invitation_id: int) -> None:
    """E-mail an invitation link; marks it sent, so a redelivery sends nothing twice."""
    invitation = (
        Invitation.objects.select_related("workspace", "invited_by")
        .filter(pk=invitation_id, sent_at__isnull=True)
        .first()
    )
    if invitation is None or invitation.status != "pending":
        return
    url = settings.SITE_URL + reverse("accounts:invite_accept", args=[invitation.token])
    context = {"invitation": invitation, "url": url}
    send_mail(
        subject=f"You're invited to {invitation.workspace.name} on OpenFunnels",
        message=render_to_string("accounts/email/invitation.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )
    Invitation.objects.filter(pk=invitation.pk).update(sent_at=timezone.now())


@shared_task(acks_late=True)
def invitations_purge_task() -> int:
    """Delete invitations that ended more than 30 days ago."""
    cutoff = timezone.now() - timedelta(days=30)
    deleted, _ = Invitation.objects.filter(expires_at__lt=cutoff).delete()
    return deleted


@shared_task(acks_late=True)
def audit_purge_task() -> int:
    """Delete audit entries past each workspace's retention (idempotent)."""
    from .services import audit_purge

    return audit_purge()


@shared_task(acks_late=True)
def idempotency_keys_purge_task() -> int:
    """Forget API idempotency keys older than a day."""
    from .apikit import idempotency_keys_purge

    return idempotency_keys_purge()
