"""Abandoned checkouts: unpaid orders, and known leads who left the order form."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from analytics import ingest
from analytics import services as analytics
from leads import checkout
from leads.gateways.testgateway import DECLINED_CARD, SUCCESS_CARD
from leads.models import (
    CheckoutAbandonment,
    FollowUpEmail,
    Lead,
    Order,
    Webhook,
    WebhookDelivery,
)
from tests.leads.test_checkout import offer_steps  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def order_step(offer_steps, workspace):  # noqa: F811
    step = offer_steps[0]
    Webhook.objects.create(
        workspace=workspace, url="http://127.0.0.1:9/", events=["checkout.abandoned"]
    )
    FollowUpEmail.objects.create(
        workspace=workspace,
        step=step,
        subject="{{ first_name }}, your order is waiting",
        body="Hi {{ first_name }}, finish your order any time.",
    )
    return step


def _lead_views(step, *, email="vi@example.com", minutes_ago=45) -> Lead:
    """A lead whose visitor viewed the order form `minutes_ago` minutes ago."""
    lead = Lead.objects.create(workspace=step.workspace, email=email, first_name="Vi")
    visitor = uuid.uuid4()
    analytics.visitor_link_lead(
        workspace=step.workspace, public_id=visitor, lead_id=lead.pk
    )
    ingest.partitions_forget()
    analytics.event_record(
        workspace_id=step.workspace_id,
        funnel_id=step.funnel_id,
        step_id=step.pk,
        visitor_id=visitor,
        kind="view",
        occurred_at=timezone.now() - timedelta(minutes=minutes_ago),
    )
    analytics.events_flush()
    return lead


def _sweep(capture) -> int:
    with capture(execute=True):
        return checkout.checkouts_mark_abandoned()


def test_lead_who_left_the_order_form_is_marked_once_and_emailed(
    order_step, django_capture_on_commit_callbacks
):
    lead = _lead_views(order_step)
    assert _sweep(django_capture_on_commit_callbacks) == 1
    assert _sweep(django_capture_on_commit_callbacks) == 0
    mark = CheckoutAbandonment.objects.get()
    assert (mark.lead, mark.step, mark.order) == (lead, order_step, None)
    delivery = WebhookDelivery.objects.get(event="checkout.abandoned")
    assert delivery.payload["status"] == "not_submitted"
    assert delivery.payload["lead"]["email"] == "vi@example.com"
    assert [m.subject for m in mail.outbox] == ["Vi, your order is waiting"]
    assert mail.outbox[0].to == ["vi@example.com"]


def test_a_recent_view_is_not_abandoned_yet(
    order_step, django_capture_on_commit_callbacks
):
    _lead_views(order_step, minutes_ago=10)
    assert _sweep(django_capture_on_commit_callbacks) == 0


def test_a_lead_who_paid_is_not_abandoned(
    order_step, django_capture_on_commit_callbacks
):
    lead = _lead_views(order_step, email="buyer@x.io")
    with django_capture_on_commit_callbacks(execute=True):
        checkout.order_checkout(
            step=order_step,
            data={"email": "buyer@x.io"},
            payment_token=SUCCESS_CARD,
            with_bump=False,
            nonce="paid",
        )
    assert Order.objects.get().lead == lead
    assert mail.outbox == []  # submitting the order form sends no reminder
    Order.objects.update(created_at=timezone.now() - timedelta(hours=1))
    assert _sweep(django_capture_on_commit_callbacks) == 0


def test_declined_order_is_abandoned_once_with_its_order(
    order_step, django_capture_on_commit_callbacks
):
    lead = _lead_views(order_step, email="buyer@x.io")
    checkout.order_checkout(
        step=order_step,
        data={"email": "buyer@x.io", "first_name": "Bea"},
        payment_token=DECLINED_CARD,
        with_bump=False,
        nonce="declined",
    )
    order = Order.objects.get()
    Order.objects.update(created_at=timezone.now() - timedelta(hours=1))
    assert _sweep(django_capture_on_commit_callbacks) == 1
    mark = CheckoutAbandonment.objects.get()
    assert (mark.lead, mark.order) == (lead, order)
    assert WebhookDelivery.objects.get().payload["id"] == str(order.public_id)
    assert len(mail.outbox) == 1


def test_unpaid_order_whose_step_was_deleted_is_swept_without_a_mark(
    order_step, django_capture_on_commit_callbacks
):
    """The step is gone (SET_NULL): the order is marked abandoned, but no
    abandonment, webhook or reminder can name its step."""
    checkout.order_checkout(
        step=order_step,
        data={"email": "buyer@x.io", "first_name": "Bea"},
        payment_token=DECLINED_CARD,
        with_bump=False,
        nonce="declined",
    )
    Order.objects.update(step=None, created_at=timezone.now() - timedelta(hours=1))
    assert _sweep(django_capture_on_commit_callbacks) == 0
    assert Order.objects.get().abandoned_at is not None
    assert not CheckoutAbandonment.objects.exists()
    assert not WebhookDelivery.objects.filter(event="checkout.abandoned").exists()
    assert mail.outbox == []
