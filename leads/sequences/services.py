"""Sequences: build them, enrol leads, send each step once, stop, unsubscribe.

Sending is at most once per (enrolment, step): the ``SequenceSend`` row is claimed
and committed *before* the mail goes out (unique constraint plus the enrolment's
row lock), so a second worker, a redelivered task or a retry finds the claim and
sends nothing. A failure that surely sent nothing (the SMTP server refused or was
unreachable) releases the claim for a retry with backoff; a worker that died while
sending leaves a claim the sweeper marks failed, never sent again.
"""

from __future__ import annotations

import html
import logging
import random
import re
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import formataddr, parseaddr

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, Max, OuterRef, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Workspace
from config.celery import enqueue_on_commit
from funnels.models import Funnel, Product, Step, StepKind

from ..models import (
    EnrollmentStatus,
    Lead,
    Order,
    OrderItem,
    OrderStatus,
    SendStatus,
    Sequence,
    SequenceEnrollment,
    SequenceSend,
    SequenceStep,
    SequenceTrigger,
)

logger = logging.getLogger(__name__)


def retry_schedule() -> list[int]:
    """Seconds to wait after failed attempt n (settings.SEQUENCE_RETRY_SECONDS;
    by default 5 tries over about 3 hours)."""
    return list(settings.SEQUENCE_RETRY_SECONDS)


def max_attempts() -> int:
    return len(retry_schedule()) + 1


EARLY = timedelta(seconds=5)  # a task this early for its step runs it
SWEEP_GRACE = timedelta(minutes=2)
STALE_CLAIM = timedelta(minutes=15)
PAID = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED)
# Addresses in an e-mail body; trailing punctuation belongs to the sentence.
_URL = re.compile(r"https?://[^\s<>\"'\]\[)(]+")
_TRAILING = ".,;:!?"


# ------------------------------------------------------------------ building


def sequence_save(
    *,
    workspace: Workspace,
    name: str,
    funnel: Funnel | None = None,
    trigger: str = SequenceTrigger.MANUAL,
    trigger_step: Step | None = None,
    track_opens: bool = False,
    is_active: bool = True,
    sequence: Sequence | None = None,
) -> Sequence:
    name = " ".join((name or "").split())
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Give the sequence a name."
    if funnel is not None and funnel.workspace_id != workspace.pk:
        errors["funnel"] = "Choose one of your funnels."
    if trigger not in SequenceTrigger.values:
        errors["trigger"] = "Choose how leads enter the sequence."
    elif trigger == SequenceTrigger.MANUAL:
        trigger_step = None
    elif trigger_step is None or trigger_step.workspace_id != workspace.pk:
        errors["trigger_step"] = "Choose the step that starts the sequence."
    elif trigger == SequenceTrigger.ABANDONED and trigger_step.kind != StepKind.ORDER:
        errors["trigger_step"] = "An abandoned checkout happens on an order form."
    if errors:
        raise ValidationError(errors)
    if funnel is None and trigger_step is not None:
        funnel = trigger_step.funnel
    if sequence is None:
        sequence = Sequence(workspace=workspace)
    elif sequence.workspace_id != workspace.pk:
        raise ValidationError("No such sequence.")
    sequence.name = name[:120]
    sequence.funnel = funnel
    sequence.trigger = trigger
    sequence.trigger_step = trigger_step
    sequence.track_opens = track_opens
    sequence.is_active = is_active
    sequence.save()
    return sequence


@transaction.atomic
def sequence_step_save(
    *,
    sequence: Sequence,
    subject: str,
    body: str,
    delay_minutes: int,
    unless_bought: Product | None = None,
    step: SequenceStep | None = None,
) -> SequenceStep:
    subject = " ".join((subject or "").split())
    errors: dict[str, str] = {}
    if not subject:
        errors["subject"] = "Write a subject."
    if not (body or "").strip():
        errors["body"] = "Write the e-mail."
    if delay_minutes < 0 or delay_minutes > 60 * 24 * 365:
        errors["delay"] = "Wait between 0 minutes and a year."
    if unless_bought and unless_bought.workspace_id != sequence.workspace_id:
        errors["unless_bought"] = "Choose one of your products."
    if errors:
        raise ValidationError(errors)
    Sequence.objects.select_for_update().get(pk=sequence.pk)
    if step is None:
        last = sequence.steps.aggregate(m=Max("position"))["m"]
        step = SequenceStep(
            workspace_id=sequence.workspace_id,
            sequence=sequence,
            position=0 if last is None else last + 1,
        )
    elif step.sequence_id != sequence.pk:
        raise ValidationError("No such step.")
    step.subject = subject[:200]
    step.body = body.replace("\r\n", "\n")
    step.delay_minutes = delay_minutes
    step.unless_bought = unless_bought
    step.save()
    return step


# ------------------------------------------------------------------ enrolling


def sequence_enroll(
    *,
    sequence: Sequence,
    lead_ids: list[int],
    source: str,
    source_label: str = "",
    now: datetime | None = None,
) -> int:
    """Enrol these leads (the sequence's workspace's, not erased, not unsubscribed)
    once each; the ones already in it stay where they are. Returns how many are new.

    ``source_label`` says how they came, as the end of "Of 120 who …" (e.g.
    "dropped at Order form").
    """
    now = now or timezone.now()
    first = sequence.steps.order_by("position").first()
    due = now + timedelta(minutes=first.delay_minutes if first else 0)
    leads = list(
        Lead.objects.filter(
            workspace_id=sequence.workspace_id,
            pk__in=lead_ids,
            erased_at__isnull=True,
            unsubscribed_at__isnull=True,
        ).values_list("pk", flat=True)
    )
    with transaction.atomic():
        SequenceEnrollment.objects.bulk_create(
            [
                SequenceEnrollment(
                    workspace_id=sequence.workspace_id,
                    sequence=sequence,
                    lead_id=lead_id,
                    source=source,
                    source_label=source_label[:200],
                    next_position=first.position if first else 0,
                    next_send_at=due,
                    enrolled_at=now,
                )
                for lead_id in leads
            ],
            ignore_conflicts=True,
        )
        # ignore_conflicts leaves pk unset: find the rows this call created.
        new = list(
            SequenceEnrollment.objects.filter(
                sequence=sequence, lead_id__in=leads, enrolled_at=now
            ).values_list("pk", flat=True)
        )
        if first is not None and sequence.is_active:
            from ..tasks import sequence_send_task

            countdown = max(0, int((due - now).total_seconds()))
            for enrollment_id in new:
                enqueue_on_commit(
                    sequence_send_task, enrollment_id, countdown=countdown
                )
    return len(new)


def sequences_enroll_triggered(*, lead: Lead, step: Step, trigger: str) -> int:
    """Enrol a lead in the workspace's active sequences started by ``trigger`` on
    ``step`` (an opt-in there, or a checkout abandoned there)."""
    count = 0
    for sequence in Sequence.objects.filter(
        workspace_id=step.workspace_id,
        is_active=True,
        trigger=trigger,
        trigger_step=step,
    ):
        label = (
            f"opted in on {step.name}"
            if trigger == SequenceTrigger.OPTIN
            else f"abandoned the checkout on {step.name}"
        )
        count += sequence_enroll(
            sequence=sequence,
            lead_ids=[lead.pk],
            source=trigger,
            source_label=label,
        )
    return count


# ------------------------------------------------------------------ sending


@dataclass(frozen=True)
class SendOutcome:
    status: str  # sent, retry, failed, skipped, not due, claimed, completed, ...
    retry_in: int | None = None


def enrollment_send_next(
    *, enrollment_id: int, now: datetime | None = None
) -> SendOutcome:
    """Send the enrolment's due step, at most once; then schedule the next one."""
    now = now or timezone.now()
    with transaction.atomic():
        enrollment = (
            SequenceEnrollment.objects.select_for_update(of=("self",))
            .select_related("sequence__funnel__workspace", "lead", "workspace")
            .filter(pk=enrollment_id)
            .first()
        )
        if enrollment is None or enrollment.status != EnrollmentStatus.ACTIVE:
            return SendOutcome("inactive")
        if not enrollment.sequence.is_active:
            return SendOutcome("paused")
        if enrollment.next_send_at and enrollment.next_send_at > now + EARLY:
            return SendOutcome("not due")
        stop = _stop_reason(enrollment)
        if stop is not None:
            enrollment.status = stop
            enrollment.stopped_at = now
            enrollment.next_send_at = None
            enrollment.save(update_fields=["status", "stopped_at", "next_send_at"])
            return SendOutcome(stop)
        step = _due_step(enrollment, now)
        if step is None:  # over, or a skipped step made the next one wait
            active = enrollment.status == EnrollmentStatus.ACTIVE
            return SendOutcome("not due" if active else enrollment.status)
        send = _claim(enrollment, step)
        if send is None:
            return SendOutcome("claimed")
    # Committed: from here on this send is ours alone, whatever else runs.
    try:
        _deliver(enrollment, step, send)
    except (OSError, smtplib.SMTPException) as exc:
        return _failed(enrollment, send, exc)
    with transaction.atomic():
        # The enrolment's lock first, as everywhere: the same order, no deadlock.
        enrollment = SequenceEnrollment.objects.select_for_update().get(
            pk=enrollment.pk
        )
        SequenceSend.objects.filter(pk=send.pk).update(
            status=SendStatus.SENT, sent_at=timezone.now(), error=""
        )
        if enrollment.status == EnrollmentStatus.ACTIVE:  # not stopped meanwhile
            _advance(enrollment, after=step, at=timezone.now())
    return SendOutcome(SendStatus.SENT)


def _stop_reason(enrollment: SequenceEnrollment) -> str | None:
    lead = enrollment.lead
    if lead.erased_at is not None:
        return EnrollmentStatus.STOPPED
    if lead.unsubscribed_at is not None:
        return EnrollmentStatus.UNSUBSCRIBED
    bought = Order.objects.filter(
        lead=lead,
        status__in=PAID,
        paid_minor__gt=0,
        paid_at__gte=enrollment.enrolled_at,
    )
    if enrollment.sequence.funnel_id:
        bought = bought.filter(funnel_id=enrollment.sequence.funnel_id)
    if bought.exists():
        return EnrollmentStatus.PURCHASED
    return None


def _has_bought(lead_id: int, product_id: int) -> bool:
    return OrderItem.objects.filter(
        order__lead_id=lead_id, product_id=product_id, status="paid"
    ).exists()


def _due_step(enrollment: SequenceEnrollment, now: datetime) -> SequenceStep | None:
    """The step to send now, skipping those whose "has not bought" fails; None when
    the sequence is over (then marked completed) or a skip made the next one wait."""
    steps = list(
        enrollment.sequence.steps.filter(position__gte=enrollment.next_position)
    )
    for step in steps:
        if step.unless_bought_id and _has_bought(
            enrollment.lead_id, step.unless_bought_id
        ):
            SequenceSend.objects.get_or_create(
                enrollment=enrollment,
                step=step,
                defaults={
                    "workspace_id": enrollment.workspace_id,
                    "status": SendStatus.SKIPPED,
                    "attempts": 0,
                },
            )
            _advance(enrollment, after=step, at=now)
            if enrollment.status != EnrollmentStatus.ACTIVE:
                return None
            if enrollment.next_send_at and enrollment.next_send_at > now + EARLY:
                return None
            continue
        return step
    enrollment.status = EnrollmentStatus.COMPLETED
    enrollment.next_send_at = None
    enrollment.save(update_fields=["status", "next_send_at"])
    return None


def _claim(enrollment: SequenceEnrollment, step: SequenceStep) -> SequenceSend | None:
    """The (enrolment, step) row, claimed for this worker; None if it is not ours
    (sent, being sent elsewhere, or given up)."""
    links = _links(step.body, enrollment)
    try:
        with transaction.atomic():
            return SequenceSend.objects.create(
                workspace_id=enrollment.workspace_id,
                enrollment=enrollment,
                step=step,
                status=SendStatus.SENDING,
                links=links,
            )
    except IntegrityError:
        pass
    # A retry takes back its own released claim, by a conditional update.
    claimed = SequenceSend.objects.filter(
        enrollment=enrollment, step=step, status=SendStatus.RETRY
    ).update(
        status=SendStatus.SENDING,
        attempts=F("attempts") + 1,
        claimed_at=timezone.now(),
        links=links,
    )
    if not claimed:
        return None
    return SequenceSend.objects.get(enrollment=enrollment, step=step)


def _advance(enrollment: SequenceEnrollment, *, after: SequenceStep, at: datetime):
    """Point the enrolment at the step after ``after`` and queue it."""
    nxt = (
        enrollment.sequence.steps.filter(position__gt=after.position)
        .order_by("position")
        .first()
    )
    if nxt is None:
        enrollment.status = EnrollmentStatus.COMPLETED
        enrollment.next_position = after.position + 1
        enrollment.next_send_at = None
    else:
        enrollment.next_position = nxt.position
        enrollment.next_send_at = at + timedelta(minutes=nxt.delay_minutes)
        from ..tasks import sequence_send_task

        enqueue_on_commit(
            sequence_send_task, enrollment.pk, countdown=nxt.delay_minutes * 60
        )
    enrollment.save(update_fields=["status", "next_position", "next_send_at"])


def _failed(
    enrollment: SequenceEnrollment, send: SequenceSend, exc: Exception
) -> SendOutcome:
    """Nothing went out: release the claim for a retry, or give up after the last."""
    error = (str(exc) or type(exc).__name__)[:300]
    logger.warning("sequence mail %s failed: %s", send.pk, error)
    with transaction.atomic():
        enrollment = SequenceEnrollment.objects.select_for_update().get(
            pk=enrollment.pk
        )
        if send.attempts >= max_attempts():
            SequenceSend.objects.filter(pk=send.pk, status=SendStatus.SENDING).update(
                status=SendStatus.FAILED, error=error
            )
            _advance(enrollment, after=send.step, at=timezone.now())
            return SendOutcome(SendStatus.FAILED)
        wait = int(retry_schedule()[send.attempts - 1] * random.uniform(0.9, 1.1))
        SequenceSend.objects.filter(pk=send.pk, status=SendStatus.SENDING).update(
            status=SendStatus.RETRY, error=error
        )
        enrollment.next_send_at = timezone.now() + timedelta(seconds=wait)
        enrollment.save(update_fields=["next_send_at"])
    return SendOutcome(SendStatus.RETRY, retry_in=wait)


def enrollments_stop_bought(*, now: datetime | None = None) -> int:
    """Stop at once the enrolments whose lead bought (in the sequence's funnel,
    or anywhere when it names none) since entering: the sender checks too, but
    the sequence page should not count a buyer as "still receiving"."""
    now = now or timezone.now()
    paid = Order.objects.filter(
        lead_id=OuterRef("lead_id"),
        status__in=PAID,
        paid_minor__gt=0,
        paid_at__gte=OuterRef("enrolled_at"),
    )
    active = SequenceEnrollment.objects.filter(status=EnrollmentStatus.ACTIVE)
    stop = {
        "status": EnrollmentStatus.PURCHASED,
        "stopped_at": now,
        "next_send_at": None,
    }
    count = (
        active.filter(sequence__funnel__isnull=True).filter(Exists(paid)).update(**stop)
    )
    count += (
        active.filter(sequence__funnel__isnull=False)
        .filter(Exists(paid.filter(funnel_id=OuterRef("sequence__funnel_id"))))
        .update(**stop)
    )
    return count


def sequences_sweep(*, now: datetime | None = None) -> int:
    """Queue again what is due and was never picked up (the broker may have been
    down); give up claims whose worker died mid-send (never sent twice); stop the
    enrolments of leads who bought."""
    now = now or timezone.now()
    enrollments_stop_bought(now=now)
    for send in SequenceSend.objects.filter(
        status=SendStatus.SENDING, claimed_at__lt=now - STALE_CLAIM
    ).select_related("step")[:1000]:
        with transaction.atomic():
            enrollment = SequenceEnrollment.objects.select_for_update().get(
                pk=send.enrollment_id
            )
            given_up = SequenceSend.objects.filter(
                pk=send.pk, status=SendStatus.SENDING
            ).update(
                status=SendStatus.FAILED,
                error="The worker stopped while sending; not sent again.",
            )
            if given_up and enrollment.status == EnrollmentStatus.ACTIVE:
                _advance(enrollment, after=send.step, at=now)
    from ..tasks import sequence_send_task

    ids = list(
        SequenceEnrollment.objects.filter(
            status=EnrollmentStatus.ACTIVE,
            sequence__is_active=True,
            next_send_at__lte=now - SWEEP_GRACE,
        ).values_list("pk", flat=True)[:1000]
    )
    for enrollment_id in ids:
        sequence_send_task.apply_async((enrollment_id,))
    return len(ids)


# ------------------------------------------------------------------ the e-mail


def _public_base(workspace: Workspace) -> str:
    return workspace.public_base_url


def unsubscribe_url(enrollment: SequenceEnrollment) -> str:
    return f"{_public_base(enrollment.workspace)}/_seq/u/{enrollment.public_id}/"


def _system_fields(enrollment: SequenceEnrollment) -> dict[str, str]:
    funnel = enrollment.sequence.funnel
    return {
        "funnel_url": funnel.public_url() if funnel else "",
        "unsubscribe_url": unsubscribe_url(enrollment),
    }


def render_step_text(text: str, enrollment: SequenceEnrollment) -> str:
    from ..tasks import render_merge_fields

    return render_merge_fields(text, enrollment.lead, system=_system_fields(enrollment))


def _links(text: str, enrollment: SequenceEnrollment) -> list[str]:
    """The distinct addresses the marketer's text carries, in order: those it
    names itself or through {{ funnel_url }}; never one a lead's own field put
    there (a name like "https://evil.example" stays plain text, not a redirect
    on the workspace's host). The unsubscribe link is not counted as a click."""
    from ..tasks import _PLACEHOLDER

    fields = {"funnel_url": _system_fields(enrollment)["funnel_url"]}
    text = _PLACEHOLDER.sub(lambda m: fields.get(m.group(1), " "), text)
    out: list[str] = []
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        if url not in out:
            out.append(url)
    return out


def _tracked(text: str, links: list[str], base: str, send: SequenceSend) -> str:
    def swap(match: re.Match[str]) -> str:
        raw = match.group(0)
        url = raw.rstrip(_TRAILING)
        tail = raw[len(url) :]
        if url not in links:
            return raw
        return f"{base}/_seq/c/{send.public_id}/{links.index(url)}/{tail}"

    return _URL.sub(swap, text)


def sequence_message(
    enrollment: SequenceEnrollment, step: SequenceStep, send: SequenceSend
) -> EmailMultiAlternatives:
    """The e-mail of one step to one lead: merge fields filled, links tracked, a
    one-click unsubscribe (RFC 8058) in the headers and at the foot."""
    base = _public_base(enrollment.workspace)
    unsubscribe = unsubscribe_url(enrollment)
    # One line whatever a lead's merge fields hold (no CR or LF in a header).
    subject = " ".join(render_step_text(step.subject, enrollment).split())
    body = _tracked(render_step_text(step.body, enrollment), send.links, base, send)
    text = f"{body}\n\n--\nUnsubscribe: {unsubscribe}\n"
    paragraphs = "".join(
        "<p>" + _linkify(html.escape(p)).replace("\n", "<br>\n") + "</p>\n"
        for p in re.split(r"\n\s*\n", body)
        if p.strip()
    )
    pixel = (
        f'<img src="{base}/_seq/o/{send.public_id}.gif" width="1" height="1" alt="">'
        if enrollment.sequence.track_opens
        else ""
    )
    markup = (
        '<!doctype html><html><body style="font-family:sans-serif;line-height:1.5">'
        f"{paragraphs}"
        '<p style="color:#667085;font-size:12px">'
        f'<a href="{html.escape(unsubscribe)}">Unsubscribe</a></p>{pixel}'
        "</body></html>"
    )
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=_sender(enrollment.workspace),
        to=[enrollment.lead.email],
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    message.attach_alternative(markup, "text/html")
    return message


def _sender(workspace: Workspace) -> str:
    """The site's sending address, under the workspace's name (the lead opted in
    to the workspace's funnel, not to OpenFunnels)."""
    address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or settings.DEFAULT_FROM_EMAIL
    return formataddr((workspace.name, address))


def _linkify(escaped: str) -> str:
    return _URL.sub(
        lambda m: (
            f'<a href="{m.group(0).rstrip(_TRAILING)}">{m.group(0).rstrip(_TRAILING)}'
            f"</a>{m.group(0)[len(m.group(0).rstrip(_TRAILING)) :]}"
        ),
        escaped,
    )


def _deliver(
    enrollment: SequenceEnrollment, step: SequenceStep, send: SequenceSend
) -> None:
    sequence_message(enrollment, step, send).send(fail_silently=False)


# ------------------------------------------------------------------ recipients


def lead_unsubscribe(*, enrollment_public_id: str, workspace_id: int) -> Lead | None:
    """One click: the lead gets no more sequence e-mail from this workspace. The
    token must belong to this workspace's host (else None, shown as 404)."""
    enrollment = (
        SequenceEnrollment.objects.select_related("lead")
        .filter(public_id=enrollment_public_id, workspace_id=workspace_id)
        .first()
    )
    if enrollment is None:
        return None
    now = timezone.now()
    with transaction.atomic():
        Lead.objects.filter(pk=enrollment.lead_id, unsubscribed_at__isnull=True).update(
            unsubscribed_at=now
        )
        SequenceEnrollment.objects.filter(
            lead_id=enrollment.lead_id, status=EnrollmentStatus.ACTIVE
        ).update(
            status=EnrollmentStatus.UNSUBSCRIBED, stopped_at=now, next_send_at=None
        )
    enrollment.lead.refresh_from_db(fields=["unsubscribed_at"])
    return enrollment.lead


def send_opened(*, send_public_id: str, workspace_id: int) -> bool:
    return bool(
        SequenceSend.objects.filter(
            public_id=send_public_id,
            workspace_id=workspace_id,
            opened_at__isnull=True,
        ).update(opened_at=timezone.now())
    )


def send_clicked(*, send_public_id: str, index: int, workspace_id: int) -> str | None:
    """The address the e-mail's ``index``-th link named (None if it had no such
    link: the redirect never goes anywhere else); counts the click."""
    send = SequenceSend.objects.filter(
        public_id=send_public_id, workspace_id=workspace_id
    ).first()
    if send is None or not (0 <= index < len(send.links)):
        return None
    now = timezone.now()
    # One statement: the count and the first click (a click proves the open).
    SequenceSend.objects.filter(pk=send.pk).update(
        clicks=F("clicks") + 1,
        clicked_at=Coalesce("clicked_at", Value(now)),
        opened_at=Coalesce("opened_at", Value(now)),
    )
    url = send.links[index]
    return url if isinstance(url, str) and _URL.fullmatch(url) else None
