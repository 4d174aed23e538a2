"""Writes for leads: capture from public forms, tags, erasure, webhooks, follow-ups."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Workspace
from accounts.services import audit_record
from analytics import selectors as analytics_selectors
from analytics import services as analytics_services
from config.celery import enqueue_on_commit
from funnels.models import Step, StepKind

from . import outbound
from .models import (
    ExportStatus,
    FollowUpEmail,
    Lead,
    LeadExport,
    SequenceTrigger,
    Submission,
    Tag,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
)

MAX_CUSTOM_FIELDS = 20
MAX_CUSTOM_LENGTH = 1000
PHONE_RE = re.compile(r"^[0-9+()./\- ]{4,40}$")
TOUCH_KEYS = ("source", "medium", "campaign", "content", "term", "referrer")
EVENT_NAMESPACE = uuid.UUID("6f1f5a1e-2b7e-4d0e-9a57-0c1f2d3e4f50")


def event_id_for(key: str) -> uuid.UUID:
    """A stable event id per business fact, so recording it twice counts once."""
    return uuid.uuid5(EVENT_NAMESPACE, key)


def record_event(**event: Any) -> None:
    """Store the analytics event of a row in the transaction that writes the row
    (an outbox: the event commits with the lead, order or refund, or not at all)."""
    analytics_services.event_store(**event)


@dataclass(frozen=True)
class CaptureResult:
    lead: Lead
    submission: Submission
    lead_created: bool
    replayed: bool


def optin_clean(data: Mapping[str, str], *, consent_required: bool = False) -> dict:
    """Validate an opt-in post; return the known fields or raise a field-keyed error.

    Unknown fields are dropped, never stored.
    """
    errors: dict[str, str] = {}
    email = (data.get("email") or "").strip().lower()
    if not email:
        errors["email"] = "Enter your e-mail address."
    elif len(email) > 254:
        errors["email"] = "This e-mail address is too long."
    else:
        try:
            validate_email(email)
        except ValidationError:
            errors["email"] = "Enter a valid e-mail address, like name@example.com."
    cleaned: dict = {"email": email}
    for key, limit in (("first_name", 100), ("last_name", 100)):
        value = (data.get(key) or "").strip()
        if len(value) > limit:
            errors[key] = f"Please keep this under {limit} characters."
        cleaned[key] = value[:limit]
    if not cleaned["first_name"] and data.get("name"):
        first, _, last = (data.get("name") or "").strip().partition(" ")
        cleaned["first_name"], cleaned["last_name"] = first[:100], last.strip()[:100]
    phone = (data.get("phone") or "").strip()
    if phone and not PHONE_RE.match(phone):
        errors["phone"] = "Enter a phone number using digits, spaces and + - ( )."
    cleaned["phone"] = phone[:40]
    custom: dict[str, str] = {}
    for key in sorted(k for k in data if k.startswith("custom_"))[:MAX_CUSTOM_FIELDS]:
        value = (data.get(key) or "").strip()
        if len(value) > MAX_CUSTOM_LENGTH:
            errors[key] = f"Please keep this under {MAX_CUSTOM_LENGTH} characters."
        name = key.removeprefix("custom_")[:60]
        if value and name:
            custom[name] = value[:MAX_CUSTOM_LENGTH]
    cleaned["custom"] = custom
    consent = (data.get("consent") or "") in {"on", "1", "true", "yes"}
    if consent_required and not consent:
        errors["consent"] = "Please tick the box to agree before you continue."
    cleaned["consent"] = consent
    if errors:
        raise ValidationError(errors)
    return cleaned


def _record_optin(
    step: Step,
    visitor_id: uuid.UUID | None,
    variant_id: int | None,
    submission: Submission,
    lead: Lead,
) -> None:
    record_event(
        workspace_id=step.workspace_id,
        funnel_id=step.funnel_id,
        step_id=step.pk,
        visitor_id=visitor_id,
        kind="optin",
        variant_id=variant_id,
        event_id=event_id_for(f"optin:{submission.pk}"),
        properties={"lead": str(lead.public_id)},
    )


@transaction.atomic
def lead_capture(
    *,
    step: Step,
    data: Mapping[str, str],
    nonce: str | None = None,
    visitor_id: uuid.UUID | None = None,
    variant_id: int | None = None,
    touch: Mapping[str, str] | None = None,
    first_touch: Mapping[str, str] | None = None,
    consent_text: str = "",
    consent_required: bool = False,
    ip_address: str | None = None,
    user_agent: str = "",
    counts_as_optin: bool = True,
) -> CaptureResult:
    """Create or update the lead and store the submission, all or nothing.

    A replayed post (same form nonce) returns the first submission and changes nothing.
    An order form's submission creates or updates the lead too, but its event is the
    order (when paid), not an opt-in: ``counts_as_optin=False``.

    Last touch is the last *external* touch: a post that carries no UTM parameters
    and no other site as referrer (the funnel's own pages and posts) keeps it.
    """
    workspace_id = step.workspace_id
    if nonce:
        existing = (
            Submission.objects.select_related("lead")
            .filter(workspace_id=workspace_id, form_token=nonce)
            .first()
        )
        if existing is not None:
            return CaptureResult(existing.lead, existing, False, True)
    cleaned = optin_clean(data, consent_required=consent_required)
    now = timezone.now()
    touch = {k: (touch or {}).get(k, "") or "" for k in TOUCH_KEYS}
    lead, created = _lead_get_or_create(
        workspace_id=workspace_id, email=cleaned["email"], step=step, now=now
    )
    workspace = step.workspace
    if workspace.drop_ip_addresses:
        ip_address = None
    if created:
        carried = first_touch or {}
        has_utm = any(carried.get(f"utm_{k}") or carried.get(k) for k in TOUCH_KEYS[:5])
        first_touch = _first_touch(workspace, visitor_id, carried if has_utm else touch)
        lead.first_source = first_touch["source"][:120]
        lead.first_medium = first_touch["medium"][:120]
        lead.first_campaign = first_touch["campaign"][:200]
        lead.first_referrer = first_touch["referrer"][:500]
    for key in ("first_name", "last_name", "phone"):
        if cleaned[key]:
            setattr(lead, key, cleaned[key])
    lead.fields = {**lead.fields, **cleaned["custom"]}
    if cleaned["consent"]:
        lead.consent_given = True
        lead.consent_text = consent_text
        lead.consent_at = now
    if any(touch.values()):
        lead.last_source = touch["source"][:120]
        lead.last_medium = touch["medium"][:120]
        lead.last_campaign = touch["campaign"][:200]
        lead.last_content = touch["content"][:200]
        lead.last_term = touch["term"][:200]
        lead.last_referrer = touch["referrer"][:500]
    if visitor_id and not lead.visitor_id:
        lead.visitor_id = visitor_id
    lead.updated_at = now
    lead.submission_count = F("submission_count") + 1
    lead.save()
    lead.refresh_from_db(fields=["submission_count"])
    submission = Submission.objects.create(
        workspace_id=workspace_id,
        lead=lead,
        funnel_id=step.funnel_id,
        step=step,
        variant_id=variant_id,
        visitor_id=visitor_id,
        data={
            "email": cleaned["email"],
            **{
                k: cleaned[k]
                for k in ("first_name", "last_name", "phone")
                if cleaned[k]
            },
            **{f"custom_{k}": v for k, v in cleaned["custom"].items()},
            **({"consent": True} if cleaned["consent"] else {}),
        },
        consent_given=cleaned["consent"],
        consent_text=consent_text if cleaned["consent"] else "",
        ip_address=ip_address,
        user_agent=(user_agent or "")[:300],
        form_token=nonce,
        created_at=now,
    )
    if visitor_id:
        analytics_services.visitor_link_lead(
            workspace=workspace, public_id=visitor_id, lead_id=lead.pk
        )
    if counts_as_optin:
        _record_optin(step, visitor_id, variant_id, submission, lead)
    event = WebhookEvent.LEAD_CREATED if created else WebhookEvent.LEAD_UPDATED
    webhooks_dispatch(
        workspace_id=workspace_id,
        event=event,
        payload={**lead_payload(lead), "page_url": step.funnel.public_url(step)},
    )
    # An order step's e-mail goes to those who leave without paying (see
    # checkout.checkouts_mark_abandoned), not to those who submit it.
    follow_up = (
        FollowUpEmail.objects.filter(step=step, is_enabled=True).first()
        if step.kind != StepKind.ORDER
        else None
    )
    if follow_up is not None:
        from .tasks import follow_up_send_task

        enqueue_on_commit(follow_up_send_task, follow_up.pk, lead.pk)
    if step.kind != StepKind.ORDER:
        from .sequences.services import sequences_enroll_triggered

        sequences_enroll_triggered(lead=lead, step=step, trigger=SequenceTrigger.OPTIN)
    return CaptureResult(lead, submission, created, False)


def _first_touch(
    workspace: Workspace, visitor_id: uuid.UUID | None, fallback: Mapping[str, str]
) -> dict[str, str]:
    """A new lead's first touch: its visitor's, else what this request carried."""
    visitor = (
        analytics_selectors.visitor_get(workspace=workspace, public_id=visitor_id)
        if visitor_id
        else None
    )
    if visitor is not None and (visitor.utm_source or visitor.referrer):
        return {
            "source": visitor.utm_source,
            "medium": visitor.utm_medium,
            "campaign": visitor.utm_campaign,
            "referrer": visitor.referrer,
        }
    fallback = fallback or {}
    return {
        key: (fallback.get(key) or fallback.get(f"utm_{key}") or "")
        for key in ("source", "medium", "campaign", "referrer")
    }


def _lead_get_or_create(
    *, workspace_id: int, email: str, step: Step, now
) -> tuple[Lead, bool]:
    lead = (
        Lead.objects.select_for_update()
        .filter(workspace_id=workspace_id, email__iexact=email)
        .first()
    )
    if lead is not None:
        return lead, False
    try:
        with transaction.atomic():
            lead = Lead.objects.create(
                workspace_id=workspace_id,
                email=email,
                first_funnel_id=step.funnel_id,
                first_step=step,
                created_at=now,
                updated_at=now,
            )
    except IntegrityError:
        # Another request created the same lead a moment ago.
        lead = Lead.objects.select_for_update().get(
            workspace_id=workspace_id, email__iexact=email
        )
        return lead, False
    return lead, True


def lead_payload(lead: Lead) -> dict:
    return {
        "id": str(lead.public_id),
        "email": lead.email,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "phone": lead.phone,
        "fields": lead.fields,
        "consent": lead.consent_given,
        "tags": sorted(t.name for t in lead.tags.all()) if lead.pk else [],
        "source": lead.last_source,
        "created_at": lead.created_at.isoformat(),
        "updated_at": lead.updated_at.isoformat(),
    }


LEAD_UPSERT_FIELDS = ("first_name", "last_name", "phone")


@transaction.atomic
def lead_upsert(
    *,
    workspace: Workspace,
    email: str,
    first_name: str | None = None,
    last_name: str | None = None,
    phone: str | None = None,
    fields: Mapping[str, str] | None = None,
    tags: list[str] | None = None,
) -> tuple[Lead, bool]:
    """Create the workspace's lead with this e-mail, or update the one there is
    (fields not passed stay as they are). Validated like an opt-in form."""
    data: dict[str, str] = {"email": email or ""}
    for key, value in (
        ("first_name", first_name),
        ("last_name", last_name),
        ("phone", phone),
    ):
        if value is not None:
            data[key] = value
    for key, value in (fields or {}).items():
        data[f"custom_{key}"] = value
    if len(fields or {}) > MAX_CUSTOM_FIELDS:
        raise ValidationError(
            {"fields": f"Send at most {MAX_CUSTOM_FIELDS} custom fields."}
        )
    cleaned = optin_clean(data)
    now = timezone.now()
    lead = (
        Lead.objects.select_for_update()
        .filter(workspace=workspace, email__iexact=cleaned["email"])
        .first()
    )
    created = False
    if lead is None:
        try:
            with transaction.atomic():
                lead = Lead.objects.create(
                    workspace=workspace,
                    email=cleaned["email"],
                    created_at=now,
                    updated_at=now,
                )
                created = True
        except IntegrityError:  # created by a concurrent request a moment ago
            lead = Lead.objects.select_for_update().get(
                workspace=workspace, email__iexact=cleaned["email"]
            )
    before = {k: getattr(lead, k) for k in LEAD_UPSERT_FIELDS} | {
        "fields": dict(lead.fields)
    }
    for key in LEAD_UPSERT_FIELDS:
        if key in data:
            setattr(lead, key, cleaned[key])
    lead.fields = {**lead.fields, **cleaned["custom"]}
    lead.updated_at = now
    lead.save()
    for name in tags or []:
        _tag_add(workspace, [lead.pk], name)
    after = {k: getattr(lead, k) for k in LEAD_UPSERT_FIELDS} | {
        "fields": dict(lead.fields)
    }
    audit_record(
        workspace=workspace,
        action="lead.create" if created else "lead.update",
        target=lead,
        target_label=lead.email,
        before=None if created else before,
        after=after,
    )
    event = WebhookEvent.LEAD_CREATED if created else WebhookEvent.LEAD_UPDATED
    webhooks_dispatch(
        workspace_id=workspace.pk, event=event, payload=lead_payload(lead)
    )
    return lead, created


def _tag_add(workspace: Workspace, lead_ids: list[int], tag_name: str) -> int:
    name = " ".join((tag_name or "").split())[:60]
    if not name:
        raise ValidationError({"tags": "Give the tag a name."})
    tag = Tag.objects.filter(workspace=workspace, name__iexact=name).first()
    if tag is None:
        tag = Tag.objects.create(workspace=workspace, name=name)
    ids = list(
        Lead.objects.filter(workspace=workspace, pk__in=lead_ids).values_list(
            "pk", flat=True
        )
    )
    Through = Lead.tags.through
    Through.objects.bulk_create(
        [Through(lead_id=pk, tag_id=tag.pk) for pk in ids], ignore_conflicts=True
    )
    return len(ids)


@transaction.atomic
def leads_tag(*, workspace: Workspace, lead_ids: list[int], tag_name: str) -> int:
    """Add a tag to many leads of the workspace; returns how many were tagged."""
    name = " ".join((tag_name or "").split())[:60]
    if not name:
        raise ValidationError("Give the tag a name.")
    tag = Tag.objects.filter(workspace=workspace, name__iexact=name).first()
    if tag is None:
        tag = Tag.objects.create(workspace=workspace, name=name)
    ids = list(
        Lead.objects.filter(workspace=workspace, pk__in=lead_ids).values_list(
            "pk", flat=True
        )
    )
    Through = Lead.tags.through
    Through.objects.bulk_create(
        [Through(lead_id=pk, tag_id=tag.pk) for pk in ids], ignore_conflicts=True
    )
    return len(ids)


@transaction.atomic
def lead_erase(*, lead: Lead) -> Lead:
    """Remove a lead's personal data for good; anonymous counts stay."""
    lead.email = f"erased-{lead.public_id}@erased.invalid"
    lead.first_name = lead.last_name = lead.phone = ""
    lead.fields = {}
    lead.consent_text = ""
    for key in ("first", "last"):
        for part in ("source", "medium", "campaign", "referrer"):
            setattr(lead, f"{key}_{part}", "")
    lead.last_content = lead.last_term = ""
    lead.erased_at = timezone.now()
    lead.save()
    lead.tags.clear()
    lead.submissions.update(data={}, ip_address=None, user_agent="", consent_text="")
    analytics_services.visitors_forget_lead(
        workspace_id=lead.workspace_id, lead_id=lead.pk
    )
    # The entry names the lead by its random id only: its e-mail is gone for good.
    audit_record(
        workspace=lead.workspace_id,
        action="lead.erase",
        target=lead,
        target_label=f"lead {lead.public_id}",
    )
    return lead


@transaction.atomic
def lead_export(*, lead: Lead) -> dict:
    """Everything stored about one lead, for a data-access request (audited)."""
    audit_record(
        workspace=lead.workspace_id,
        action="lead.export",
        target=lead,
        target_label=lead.email,
    )
    return {
        **lead_payload(lead),
        "consent_text": lead.consent_text,
        "consent_at": lead.consent_at.isoformat() if lead.consent_at else None,
        "first_touch": {
            "source": lead.first_source,
            "medium": lead.first_medium,
            "campaign": lead.first_campaign,
            "referrer": lead.first_referrer,
        },
        "last_touch": {
            k: getattr(lead, f"last_{k}")
            for k in ("source", "medium", "campaign", "content", "term", "referrer")
        },
        "submissions": [
            {
                "created_at": s.created_at.isoformat(),
                "funnel": s.funnel.name if s.funnel else None,
                "step": s.step.name if s.step else None,
                "data": s.data,
                "consent_given": s.consent_given,
                "consent_text": s.consent_text,
                "ip_address": s.ip_address,
                "user_agent": s.user_agent,
            }
            for s in lead.submissions.select_related("funnel", "step")
        ],
        "unsubscribed_at": (
            lead.unsubscribed_at.isoformat() if lead.unsubscribed_at else None
        ),
        "sequences": [
            {
                "sequence": e.sequence.name,
                "entered_at": e.enrolled_at.isoformat(),
                "status": e.status,
                "emails": [
                    {
                        "subject": send.step.subject,
                        "status": send.status,
                        "sent_at": send.sent_at.isoformat() if send.sent_at else None,
                        "opened_at": (
                            send.opened_at.isoformat() if send.opened_at else None
                        ),
                        "clicked_at": (
                            send.clicked_at.isoformat() if send.clicked_at else None
                        ),
                    }
                    for send in e.sends.select_related("step")
                ],
            }
            for e in lead.enrollments.select_related("sequence")
        ],
    }


# ---------------------------------------------------------------- webhooks
def webhooks_dispatch(*, workspace_id: int, event: str, payload: dict) -> list[int]:
    """Queue one delivery per active webhook subscribed to the event."""
    from .tasks import webhook_deliver_task

    ids: list[int] = []
    for hook in Webhook.objects.filter(workspace_id=workspace_id, is_active=True):
        if event not in hook.events:
            continue
        delivery = WebhookDelivery.objects.create(
            workspace_id=workspace_id,
            webhook=hook,
            event=event,
            payload=payload,
            next_attempt_at=timezone.now(),
        )
        enqueue_on_commit(webhook_deliver_task, delivery.pk)
        ids.append(delivery.pk)
    return ids


def _clean_events(events: list[str]) -> list[str]:
    chosen = [e for e in events if e in WebhookEvent.values]
    if not chosen:
        raise ValidationError({"events": "Pick at least one event."})
    return chosen


@transaction.atomic
def webhook_create(*, workspace: Workspace, url: str, events: list[str]) -> Webhook:
    try:
        outbound.url_check(url.strip())
    except ValidationError as exc:
        raise ValidationError({"url": exc.messages}) from None
    hook = Webhook(workspace=workspace, url=url.strip(), events=_clean_events(events))
    hook.full_clean()
    hook.save()
    audit_record(
        workspace=workspace,
        action="webhook.create",
        target=hook,
        target_label=hook.url,
        after=_webhook_state(hook),
    )
    return hook


def _webhook_state(hook: Webhook) -> dict:
    return {"url": hook.url, "events": hook.events, "is_active": hook.is_active}


@transaction.atomic
def webhook_update(
    *,
    webhook: Webhook,
    url: str | None = None,
    events: list[str] | None = None,
    is_active: bool | None = None,
) -> Webhook:
    """Change any of a webhook's URL, events and active flag (only those passed)."""
    hook = Webhook.objects.select_for_update().get(pk=webhook.pk)
    before = _webhook_state(hook)
    if url is not None:
        hook.url = url.strip()
    if events is not None:
        hook.events = _clean_events(events)
    if is_active is not None:
        hook.is_active = is_active
    hook.full_clean()
    hook.save()
    audit_record(
        workspace=hook.workspace_id,
        action="webhook.update",
        target=hook,
        target_label=hook.url,
        before=before,
        after=_webhook_state(hook),
    )
    return hook


@transaction.atomic
def webhook_delete(*, webhook: Webhook) -> None:
    audit_record(
        workspace=webhook.workspace_id,
        action="webhook.delete",
        target=webhook,
        target_label=webhook.url,
        before=_webhook_state(webhook),
    )
    webhook.delete()


@transaction.atomic
def webhook_delivery_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    from .tasks import webhook_deliver_task

    copy = WebhookDelivery.objects.create(
        workspace_id=delivery.workspace_id,
        webhook_id=delivery.webhook_id,
        event_id=delivery.event_id,
        event=delivery.event,
        payload=delivery.payload,
        next_attempt_at=timezone.now(),
    )
    enqueue_on_commit(webhook_deliver_task, copy.pk)
    audit_record(
        workspace=delivery.workspace_id,
        action="webhook.resend",
        target=delivery.webhook,
        target_label=delivery.webhook.url,
        after={"event": delivery.event, "event_id": str(delivery.event_id)},
    )
    return copy


@transaction.atomic
def follow_up_save(
    *, step: Step, is_enabled: bool, subject: str, body: str
) -> FollowUpEmail:
    if is_enabled and not (subject.strip() and body.strip()):
        raise ValidationError("A follow-up e-mail needs a subject and a body.")
    follow_up, _ = FollowUpEmail.objects.update_or_create(
        step=step,
        defaults={
            "workspace_id": step.workspace_id,
            "is_enabled": is_enabled,
            "subject": subject.strip()[:200],
            "body": body,
        },
    )
    return follow_up


# ---------------------------------------------------------------- exports
MAX_ACTIVE_EXPORTS = 3


def lead_export_start(*, workspace: Workspace, user, query: str) -> LeadExport:
    """Queue a CSV export of the lead list as filtered by `query` (its GET string)."""
    from .tasks import lead_export_task

    active = LeadExport.objects.filter(
        workspace=workspace, status__in=[ExportStatus.QUEUED, ExportStatus.RUNNING]
    ).count()
    if active >= MAX_ACTIVE_EXPORTS:
        raise ValidationError(
            "Three exports are already running. Please wait for one to finish."
        )
    with transaction.atomic():
        export = LeadExport.objects.create(
            workspace=workspace, requested_by=user, query=query[:2000]
        )
        audit_record(
            workspace=workspace,
            action="leads.export_csv",
            target=export,
            target_label="lead list CSV",
            after={"filters": query[:500]},
        )
        enqueue_on_commit(lead_export_task, export.pk)
    return export


def leads_first_touch_backfill(*, visitors: list[tuple[int, int]], **_kw) -> int:
    """Give leads with a blank first touch their visitor's, once it is stored.

    A visitor who lands with UTM parameters and opts in on a later step within
    seconds is captured before the stream flush has stored their first sighting;
    the flush then calls this (inside its transaction). Erased leads stay blank.
    """
    from django.db import connection

    lead_ids = sorted({lead_id for _ws, lead_id in visitors})
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE leads_lead l
            SET first_source = left(v.utm_source, 120),
                first_medium = left(v.utm_medium, 120),
                first_campaign = left(v.utm_campaign, 200),
                first_referrer = left(v.referrer, 500)
            FROM analytics_visitor v
            WHERE l.id = ANY(%s) AND l.erased_at IS NULL
              AND v.workspace_id = l.workspace_id AND v.public_id = l.visitor_id
              AND v.lead_id = l.id
              AND l.first_source = '' AND l.first_medium = ''
              AND l.first_campaign = '' AND l.first_referrer = ''
              AND (v.utm_source <> '' OR v.referrer <> '')
            """,
            [lead_ids],
        )
        return cursor.rowcount
