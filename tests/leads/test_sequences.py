"""Follow-up sequences: steps sent in order with merge fields and delays, each at
most once per lead; conditions, stops, retries, unsubscribes, tracking, results."""

from __future__ import annotations

import smtplib
import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from analytics import ingest
from analytics import services as analytics
from leads import checkout, services
from leads.models import (
    EnrollmentStatus,
    Lead,
    Order,
    OrderItem,
    SendStatus,
    SequenceEnrollment,
    SequenceSend,
    SequenceTrigger,
)
from leads.sequences import selectors
from leads.sequences import services as seq
from tests.factories import ProductFactory
from tests.leads.test_checkout import offer_steps  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def sequence(workspace, funnel):
    s = seq.sequence_save(workspace=workspace, name="Win back", funnel=funnel)
    seq.sequence_step_save(
        sequence=s,
        subject="{{ first_name }}, you left something",
        body="Hi {{ first_name }}, come back: {{ funnel_url }}.\n\n"
        "Or read https://blog.example.com/why?x=1, it helps.",
        delay_minutes=0,
    )
    seq.sequence_step_save(
        sequence=s, subject="Last call", body="Still there?", delay_minutes=60 * 24
    )
    return s


def _lead(workspace, email="ann@example.com", **kwargs) -> Lead:
    return Lead.objects.create(
        workspace=workspace, email=email, first_name="Ann", **kwargs
    )


def _enroll(sequence, lead, *, now=None) -> SequenceEnrollment:
    assert seq.sequence_enroll(
        sequence=sequence, lead_ids=[lead.pk], source="manual", now=now
    )
    return SequenceEnrollment.objects.get(sequence=sequence, lead=lead)


def _paid_order(lead, funnel, *, minor=700, currency="USD", product=None, at=None):
    at = at or timezone.now()
    order = Order.objects.create(
        workspace=lead.workspace,
        lead=lead,
        funnel=funnel,
        currency=currency,
        status="paid",
        paid_minor=minor,
        gateway="test",
        paid_at=at,
        created_at=at,
    )
    if product is not None:
        OrderItem.objects.create(
            workspace=lead.workspace,
            order=order,
            product=product,
            kind="main",
            name=product.name,
            amount_minor=minor,
            status="paid",
        )
    return order


def test_steps_go_out_in_order_with_merge_fields_and_delays(sequence, workspace):
    """The first step goes at once; the second only after its delay; then the
    enrolment is complete and nothing more is sent."""
    lead = _lead(workspace)
    enrollment = _enroll(sequence, lead)
    assert seq.enrollment_send_next(enrollment_id=enrollment.pk).status == "sent"
    assert seq.enrollment_send_next(enrollment_id=enrollment.pk).status == "not due"
    assert [m.subject for m in mail.outbox] == ["Ann, you left something"]
    later = timezone.now() + timedelta(days=1, minutes=1)
    assert seq.enrollment_send_next(enrollment_id=enrollment.pk, now=later).status == (
        "sent"
    )
    assert [m.subject for m in mail.outbox][1:] == ["Last call"]
    enrollment.refresh_from_db()
    assert enrollment.status == EnrollmentStatus.COMPLETED
    assert seq.enrollment_send_next(enrollment_id=enrollment.pk, now=later).status == (
        "inactive"
    )
    assert len(mail.outbox) == 2
    assert SequenceSend.objects.filter(status=SendStatus.SENT).count() == 2


def test_the_mail_has_one_click_unsubscribe_and_tracked_links(sequence, workspace):
    """RFC 8058 headers name the public unsubscribe endpoint; every link of the
    body goes through the redirect, which knows only those links."""
    lead = _lead(workspace)
    enrollment = _enroll(sequence, lead)
    seq.enrollment_send_next(enrollment_id=enrollment.pk)
    message = mail.outbox[0]
    assert message.from_email == "Acme <noreply@localhost>"
    base = f"http://{workspace.slug}.localhost"
    unsubscribe = f"{base}/_seq/u/{enrollment.public_id}/"
    assert message.extra_headers["List-Unsubscribe"] == f"<{unsubscribe}>"
    assert message.extra_headers["List-Unsubscribe-Post"] == (
        "List-Unsubscribe=One-Click"
    )
    send = SequenceSend.objects.get()
    assert send.links == [
        f"{base}/guide/",
        "https://blog.example.com/why?x=1",
    ]
    click = f"{base}/_seq/c/{send.public_id}"
    assert message.body == (
        f"Hi Ann, come back: {click}/0/.\n\n"
        f"Or read {click}/1/, it helps.\n\n--\nUnsubscribe: {unsubscribe}\n"
    )
    markup = message.alternatives[0][0]
    assert f'<a href="{click}/0/">{click}/0/</a>.' in markup
    assert f'<a href="{unsubscribe}">Unsubscribe</a>' in markup
    assert "/_seq/o/" not in markup  # no pixel unless the sequence tracks opens


def test_opens_are_tracked_only_when_asked(sequence, workspace):
    sequence.track_opens = True
    sequence.save()
    enrollment = _enroll(sequence, _lead(workspace))
    seq.enrollment_send_next(enrollment_id=enrollment.pk)
    send = SequenceSend.objects.get()
    assert (
        f'<img src="http://{workspace.slug}.localhost/_seq/o/{send.public_id}.gif"'
        in mail.outbox[0].alternatives[0][0]
    )


def test_has_not_bought_condition_skips_the_step(sequence, workspace, funnel):
    """A step for those who have not bought X is skipped for a buyer of X (the
    purchase was before enrolment, so it does not stop the sequence)."""
    course = ProductFactory(workspace=workspace, name="Course")
    first = sequence.steps.get(position=0)
    first.unless_bought = course
    first.save()
    lead = _lead(workspace)
    _paid_order(lead, None, product=course, at=timezone.now() - timedelta(days=3))
    enrollment = _enroll(sequence, lead)
    assert seq.enrollment_send_next(enrollment_id=enrollment.pk).status == "not due"
    assert mail.outbox == []
    assert SequenceSend.objects.get(step=first).status == SendStatus.SKIPPED
    later = timezone.now() + timedelta(days=1, minutes=1)
    seq.enrollment_send_next(enrollment_id=enrollment.pk, now=later)
    assert [m.subject for m in mail.outbox] == ["Last call"]


def test_a_purchase_stops_the_sequence(sequence, workspace, funnel):
    lead = _lead(workspace)
    enrollment = _enroll(sequence, lead)
    seq.enrollment_send_next(enrollment_id=enrollment.pk)
    _paid_order(lead, funnel)
    later = timezone.now() + timedelta(days=2)
    assert seq.enrollment_send_next(enrollment_id=enrollment.pk, now=later).status == (
        "purchased"
    )
    assert len(mail.outbox) == 1
    enrollment.refresh_from_db()
    assert enrollment.status == EnrollmentStatus.PURCHASED


def test_unsubscribe_stops_every_sequence_and_refuses_new_ones(
    sequence, workspace, funnel, other_workspace
):
    lead = _lead(workspace)
    enrollment = _enroll(sequence, lead)
    other = seq.sequence_save(workspace=workspace, name="Other")
    seq.sequence_step_save(sequence=other, subject="S", body="B", delay_minutes=5)
    _enroll(other, lead)
    # Another workspace's host does not know the token.
    assert (
        seq.lead_unsubscribe(
            enrollment_public_id=str(enrollment.public_id),
            workspace_id=other_workspace.pk,
        )
        is None
    )
    assert seq.lead_unsubscribe(
        enrollment_public_id=str(enrollment.public_id), workspace_id=workspace.pk
    )
    assert set(SequenceEnrollment.objects.values_list("status", flat=True)) == {
        EnrollmentStatus.UNSUBSCRIBED
    }
    assert seq.enrollment_send_next(enrollment_id=enrollment.pk).status == "inactive"
    third = seq.sequence_save(workspace=workspace, name="Third")
    assert seq.sequence_enroll(sequence=third, lead_ids=[lead.pk], source="x") == 0
    assert mail.outbox == []


def test_enrolment_is_once_per_lead_and_only_own_leads(
    sequence, workspace, other_workspace
):
    mine = _lead(workspace)
    theirs = _lead(other_workspace, email="t@example.com")
    assert (
        seq.sequence_enroll(
            sequence=sequence, lead_ids=[mine.pk, theirs.pk], source="manual"
        )
        == 1
    )
    assert seq.sequence_enroll(sequence=sequence, lead_ids=[mine.pk], source="m") == 0
    assert SequenceEnrollment.objects.get().lead == mine


class _Refusing:
    """An SMTP backend whose server refuses the first ``n`` messages."""

    failures = 0

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        if _Refusing.failures > 0:
            _Refusing.failures -= 1
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        mail.outbox.extend(messages)
        return len(messages)


def test_a_refused_send_is_retried_and_goes_out_once(sequence, workspace, settings):
    settings.EMAIL_BACKEND = "tests.leads.test_sequences._Refusing"
    _Refusing.failures = 2
    enrollment = _enroll(sequence, _lead(workspace))
    first = seq.enrollment_send_next(enrollment_id=enrollment.pk)
    assert first.status == "retry" and 54 <= first.retry_in <= 66
    send = SequenceSend.objects.get()
    assert (send.status, send.attempts) == (SendStatus.RETRY, 1)
    assert "unexpectedly closed" in send.error
    # The retry is not due before its backoff; then it takes the claim back.
    assert seq.enrollment_send_next(enrollment_id=enrollment.pk).status == "not due"
    soon = timezone.now() + timedelta(minutes=2)
    assert seq.enrollment_send_next(enrollment_id=enrollment.pk, now=soon).status == (
        "retry"
    )
    later = timezone.now() + timedelta(minutes=10)
    assert seq.enrollment_send_next(enrollment_id=enrollment.pk, now=later).status == (
        "sent"
    )
    send.refresh_from_db()
    assert (send.status, send.attempts, send.error) == (SendStatus.SENT, 3, "")
    assert len(mail.outbox) == 1


def test_after_the_last_attempt_the_step_fails_and_the_next_is_scheduled(
    sequence, workspace, settings
):
    settings.EMAIL_BACKEND = "tests.leads.test_sequences._Refusing"
    _Refusing.failures = 99
    enrollment = _enroll(sequence, _lead(workspace))
    when = timezone.now()
    for _ in range(seq.max_attempts()):
        when += timedelta(hours=3)
        seq.enrollment_send_next(enrollment_id=enrollment.pk, now=when)
    send = SequenceSend.objects.get()
    assert (send.status, send.attempts) == (SendStatus.FAILED, seq.max_attempts())
    enrollment.refresh_from_db()
    assert enrollment.next_position == 1 and enrollment.status == "active"
    _Refusing.failures = 0


def test_a_claim_left_by_a_dead_worker_is_given_up_never_resent(sequence, workspace):
    enrollment = _enroll(sequence, _lead(workspace))
    step = sequence.steps.get(position=0)
    SequenceSend.objects.create(
        workspace=workspace,
        enrollment=enrollment,
        step=step,
        claimed_at=timezone.now() - timedelta(hours=1),
    )
    assert seq.enrollment_send_next(enrollment_id=enrollment.pk).status == "claimed"
    seq.sequences_sweep()
    assert SequenceSend.objects.get().status == SendStatus.FAILED
    enrollment.refresh_from_db()
    assert enrollment.next_position == 1
    assert mail.outbox == []


def test_opt_in_on_the_trigger_step_enrols(
    workspace, optin_step, django_capture_on_commit_callbacks
):
    s = seq.sequence_save(
        workspace=workspace,
        name="Welcome",
        trigger=SequenceTrigger.OPTIN,
        trigger_step=optin_step,
    )
    seq.sequence_step_save(sequence=s, subject="Welcome", body="Hi", delay_minutes=0)
    with django_capture_on_commit_callbacks(execute=True):
        services.lead_capture(step=optin_step, data={"email": "new@example.com"})
    enrollment = SequenceEnrollment.objects.get()
    assert (enrollment.source, enrollment.source_label) == (
        "optin",
        "opted in on Opt-in",
    )
    assert [m.subject for m in mail.outbox] == ["Welcome"]
    assert s.funnel == optin_step.funnel


def test_abandoned_checkout_enrols(
    workspace,
    offer_steps,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    order_step = offer_steps[0]
    s = seq.sequence_save(
        workspace=workspace,
        name="Cart",
        trigger=SequenceTrigger.ABANDONED,
        trigger_step=order_step,
    )
    seq.sequence_step_save(sequence=s, subject="Your cart", body="B", delay_minutes=0)
    lead = _lead(workspace, email="vi@example.com")
    visitor = uuid.uuid4()
    analytics.visitor_link_lead(workspace=workspace, public_id=visitor, lead_id=lead.pk)
    ingest.partitions_forget()
    analytics.event_record(
        workspace_id=workspace.pk,
        funnel_id=order_step.funnel_id,
        step_id=order_step.pk,
        visitor_id=visitor,
        kind="view",
        occurred_at=timezone.now() - timedelta(minutes=45),
    )
    analytics.events_flush()
    with django_capture_on_commit_callbacks(execute=True):
        assert checkout.checkouts_mark_abandoned() == 1
    enrollment = SequenceEnrollment.objects.get()
    assert enrollment.source == "abandoned"
    assert enrollment.source_label == "abandoned the checkout on Order"
    assert [m.subject for m in mail.outbox] == ["Your cart"]


def test_an_abandoned_trigger_needs_an_order_form(workspace, optin_step):
    with pytest.raises(Exception, match="order form"):
        seq.sequence_save(
            workspace=workspace,
            name="Cart",
            trigger=SequenceTrigger.ABANDONED,
            trigger_step=optin_step,
        )


def test_report_counts_sent_opened_clicked_came_back_bought(
    sequence, workspace, funnel, optin_step
):
    """Of three enrolled: all sent, one opened and clicked, two came back (one
    viewed the funnel, one bought twice in two currencies), one bought; an order
    from before the mail and one in another funnel do not count."""
    ann, bob, cat = (
        _lead(workspace, email=f"{n}@example.com") for n in ("ann", "bob", "cat")
    )
    _paid_order(cat, funnel, minor=999, at=timezone.now() - timedelta(days=1))
    for lead in (ann, bob, cat):
        seq.enrollment_send_next(enrollment_id=_enroll(sequence, lead).pk)
    sent = {s.enrollment.lead_id: s for s in SequenceSend.objects.all()}
    assert seq.send_clicked(
        send_public_id=str(sent[ann.pk].public_id), index=1, workspace_id=workspace.pk
    ) == ("https://blog.example.com/why?x=1")
    visitor = uuid.uuid4()
    analytics.visitor_link_lead(workspace=workspace, public_id=visitor, lead_id=ann.pk)
    ingest.partitions_forget()
    analytics.event_record(
        workspace_id=workspace.pk,
        funnel_id=funnel.pk,
        step_id=optin_step.pk,
        visitor_id=visitor,
        kind="view",
        occurred_at=timezone.now() + timedelta(seconds=1),
    )
    analytics.events_flush()
    _paid_order(bob, funnel, minor=4700)
    _paid_order(bob, funnel, minor=900, currency="EUR")
    _paid_order(bob, None, minor=5000)  # another funnel's sale
    report = selectors.sequence_report(workspace=workspace, sequence=sequence)
    assert (report.enrolled, report.reached, report.sent) == (3, 3, 3)
    assert (report.opened, report.clicked) == (1, 1)
    assert (report.came_back, report.bought) == (2, 1)
    assert report.revenue == [("EUR", 900), ("USD", 4700)]
    assert [(s.sent, s.opened, s.clicked) for s in report.steps] == [
        (3, 1, 1),
        (0, 0, 0),
    ]


def test_click_goes_only_to_a_link_of_the_mail(sequence, workspace, other_workspace):
    seq.enrollment_send_next(enrollment_id=_enroll(sequence, _lead(workspace)).pk)
    send = SequenceSend.objects.get()
    public_id = str(send.public_id)
    assert (
        seq.send_clicked(send_public_id=public_id, index=2, workspace_id=workspace.pk)
        is None
    )
    assert (
        seq.send_clicked(send_public_id=public_id, index=-1, workspace_id=workspace.pk)
        is None
    )
    assert (
        seq.send_clicked(
            send_public_id=public_id, index=0, workspace_id=other_workspace.pk
        )
        is None
    )
    send.refresh_from_db()
    assert (send.clicks, send.clicked_at) == (0, None)


def test_a_url_from_a_leads_own_field_is_never_a_tracked_redirect(workspace, funnel):
    """A lead who opts in as "https://evil.example/x" gets that text as it is:
    the redirect on the workspace's host knows only the marketer's links. The
    {{ unsubscribe_url }} field is the lead's unsubscribe address, untracked, and
    a lead's own field of that name cannot replace it."""
    s = seq.sequence_save(workspace=workspace, name="Hi", funnel=funnel)
    seq.sequence_step_save(
        sequence=s,
        subject="Hi",
        body="Hi {{ first_name }}, see {{ funnel_url }} "
        "or https://shop.example/{{ first_name }} — stop: {{ unsubscribe_url }}",
        delay_minutes=0,
    )
    lead = Lead.objects.create(
        workspace=workspace,
        email="eve@example.com",
        first_name="https://evil.example/x",
        fields={"unsubscribe_url": "https://evil.example/u"},
    )
    enrollment = _enroll(s, lead)
    seq.enrollment_send_next(enrollment_id=enrollment.pk)
    send = SequenceSend.objects.get()
    base = f"http://{workspace.slug}.localhost"
    assert send.links == [f"{base}/guide/", "https://shop.example/"]
    unsubscribe = f"{base}/_seq/u/{enrollment.public_id}/"
    assert mail.outbox[0].body.startswith(
        f"Hi https://evil.example/x, see {base}/_seq/c/{send.public_id}/0/ "
        "or https://shop.example/https://evil.example/x — stop: "
        f"{unsubscribe}\n"
    )


def test_the_sweep_stops_buyers_at_once(sequence, workspace, funnel):
    """A lead who bought in the sequence's funnel after entering is stopped by the
    next sweep; a purchase elsewhere, or from before, stops nothing."""
    ann, bob, cat = (
        _lead(workspace, email=f"{n}@example.com") for n in ("ann", "bob", "cat")
    )
    for lead in (ann, bob, cat):
        _enroll(sequence, lead)
    _paid_order(ann, funnel)
    _paid_order(bob, None)  # another funnel
    _paid_order(cat, funnel, at=timezone.now() - timedelta(days=1))
    assert seq.enrollments_stop_bought() == 1
    assert dict(SequenceEnrollment.objects.values_list("lead__email", "status")) == {
        "ann@example.com": EnrollmentStatus.PURCHASED,
        "bob@example.com": EnrollmentStatus.ACTIVE,
        "cat@example.com": EnrollmentStatus.ACTIVE,
    }


def test_a_line_break_in_a_leads_name_cannot_break_the_subject(sequence, workspace):
    """A merge field with CR/LF (a header injection, or a refused send) becomes
    spaces in the subject."""
    lead = _lead(workspace, email="cr@example.com")
    Lead.objects.filter(pk=lead.pk).update(first_name="Ann\r\nBcc: x@evil.example")
    enrollment = _enroll(sequence, lead)
    assert seq.enrollment_send_next(enrollment_id=enrollment.pk).status == "sent"
    assert [m.subject for m in mail.outbox] == [
        "Ann Bcc: x@evil.example, you left something"
    ]
