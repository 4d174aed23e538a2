from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Invitation
from accounts.tasks import invitation_send_task
from config.celery import app
from tests.worker import celery_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_task_runs_on_a_real_worker_through_redis(workspace, owner):
    """A task sent through real Redis runs in a real worker and writes to Postgres."""
    invitation = Invitation.objects.create(
        workspace=workspace,
        email="queued@acme.test",
        role="editor",
        invited_by=owner,
        expires_at=timezone.now() + timedelta(days=7),
    )
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        with celery_worker():
            invitation_send_task.delay(invitation.pk)
            sent = wait_for(
                lambda: Invitation.objects.get(pk=invitation.pk).sent_at is not None
            )
    finally:
        app.conf.task_always_eager = previous
    assert sent, "the worker did not mark the invitation as sent"
    invitation.refresh_from_db()
    assert invitation.sent_at is not None


def test_redelivered_task_does_nothing_twice(workspace, owner, mailoutbox):
    """Running the send task twice (a redelivery) sends one e-mail."""
    invitation = Invitation.objects.create(
        workspace=workspace,
        email="once@acme.test",
        role="viewer",
        expires_at=timezone.now() + timedelta(days=7),
    )
    invitation_send_task.apply(args=[invitation.pk])
    invitation_send_task.apply(args=[invitation.pk])
    assert len(mailoutbox) == 1
