from __future__ import annotations

import secrets
import uuid

from django.contrib.postgres.indexes import OpClass
from django.db import models
from django.db.models import F
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import Workspace
from funnels.models import Funnel, Step


class Tag(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=60)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                "workspace", Lower("name"), name="tag_name_ci_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Lead(models.Model):
    """One person per e-mail address per workspace (case-insensitive)."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="leads"
    )
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(max_length=254)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    fields = models.JSONField(default=dict, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="leads")
    consent_given = models.BooleanField(default=False)
    consent_text = models.TextField(blank=True)
    consent_at = models.DateTimeField(null=True, blank=True)
    first_funnel = models.ForeignKey(
        Funnel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_step = models.ForeignKey(
        Step, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # First touch comes from the visitor who became this lead; last touch from the
    # latest submission.
    first_source = models.CharField(max_length=120, blank=True)
    first_medium = models.CharField(max_length=120, blank=True)
    first_campaign = models.CharField(max_length=200, blank=True)
    first_referrer = models.CharField(max_length=500, blank=True)
    last_source = models.CharField(max_length=120, blank=True)
    last_medium = models.CharField(max_length=120, blank=True)
    last_campaign = models.CharField(max_length=200, blank=True)
    last_content = models.CharField(max_length=200, blank=True)
    last_term = models.CharField(max_length=200, blank=True)
    last_referrer = models.CharField(max_length=500, blank=True)
    visitor_id = models.UUIDField(null=True, blank=True)
    submission_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    erased_at = models.DateTimeField(null=True, blank=True)
    # One click on any sequence e-mail's unsubscribe link: no more sequence mail.
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                "workspace", Lower("email"), name="lead_email_ci_unique_in_workspace"
            ),
        ]
        indexes = [
            models.Index(
                fields=["workspace", "-created_at", "-id"], name="lead_ws_created"
            ),
            models.Index(fields=["workspace", "first_funnel"], name="lead_ws_funnel"),
            models.Index(fields=["workspace", "first_source"], name="lead_ws_source"),
            # Prefix search: LOWER(email) LIKE 'ann%' within a workspace.
            models.Index(
                F("workspace"),
                OpClass(Lower("email"), name="text_pattern_ops"),
                name="lead_ws_email_prefix",
            ),
            models.Index(
                F("workspace"),
                OpClass(Lower("first_name"), name="text_pattern_ops"),
                name="lead_ws_name_prefix",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Submission(models.Model):
    """What one form post sent: every field, where, when and with which consent."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="submissions")
    funnel = models.ForeignKey(
        Funnel, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    step = models.ForeignKey(
        Step, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    variant_id = models.BigIntegerField(null=True, blank=True)
    visitor_id = models.UUIDField(null=True, blank=True)
    data = models.JSONField(default=dict)
    consent_given = models.BooleanField(default=False)
    consent_text = models.TextField(blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    # The form's one-time token: a replayed post finds its submission and adds nothing.
    form_token = models.CharField(max_length=64, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "form_token"], name="submission_token_unique"
            ),
        ]
        indexes = [models.Index(fields=["step", "created_at"], name="sub_step_time")]

    def __str__(self) -> str:
        return f"Submission by {self.lead_id} on step {self.step_id}"


def _webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(24)


class WebhookEvent(models.TextChoices):
    LEAD_CREATED = "lead.created", "Lead created"
    LEAD_UPDATED = "lead.updated", "Lead updated"
    ORDER_CREATED = "order.created", "Order paid"
    ORDER_REFUNDED = "order.refunded", "Order refunded"
    CHECKOUT_ABANDONED = "checkout.abandoned", "Checkout abandoned"


class Webhook(models.Model):
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="webhooks"
    )
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=64, default=_webhook_secret)
    events = models.JSONField(default=list)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    webhook = models.ForeignKey(
        Webhook, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.UUIDField(default=uuid.uuid4)
    event = models.CharField(max_length=40)
    payload = models.JSONField()
    status = models.CharField(
        max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.CharField(max_length=300, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event} to {self.webhook_id} ({self.status})"


class FollowUpEmail(models.Model):
    """An optional e-mail sent after an opt-in on one step."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    step = models.OneToOneField(
        Step, on_delete=models.CASCADE, related_name="follow_up"
    )
    is_enabled = models.BooleanField(default=True)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.subject


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PAID = "paid", "Paid"
    FAILED = "failed", "Payment failed"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
    REFUNDED = "refunded", "Refunded"


class Order(models.Model):
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="orders"
    )
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    lead = models.ForeignKey(Lead, on_delete=models.RESTRICT, related_name="orders")
    funnel = models.ForeignKey(
        Funnel, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    step = models.ForeignKey(
        Step, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    visitor_id = models.UUIDField(null=True, blank=True)
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING
    )
    paid_minor = models.BigIntegerField(default=0)
    refunded_minor = models.BigIntegerField(default=0)
    gateway = models.CharField(max_length=20)
    gateway_customer = models.CharField(max_length=100, blank=True)
    gateway_payment_method = models.CharField(max_length=100, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    form_token = models.CharField(max_length=64, null=True, blank=True)
    # Attribution when the order was placed: the lead's first touch and its last
    # external touch (the funnel's own pages and posts are not touches).
    first_source = models.CharField(max_length=120, blank=True)
    first_medium = models.CharField(max_length=120, blank=True)
    first_campaign = models.CharField(max_length=200, blank=True)
    first_referrer = models.CharField(max_length=500, blank=True)
    last_source = models.CharField(max_length=120, blank=True)
    last_medium = models.CharField(max_length=120, blank=True)
    last_campaign = models.CharField(max_length=200, blank=True)
    last_referrer = models.CharField(max_length=500, blank=True)
    # The split-test variant (pages.Page pk) the buyer saw, per step: {"<step>": id}.
    variants = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)
    abandoned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "form_token"], name="order_token_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="order_ws_created"),
            models.Index(fields=["status", "created_at"], name="order_status_time"),
        ]

    def __str__(self) -> str:
        return f"Order {self.public_id}"

    @property
    def net_minor(self) -> int:
        return self.paid_minor - self.refunded_minor


class ItemKind(models.TextChoices):
    MAIN = "main", "Main product"
    BUMP = "bump", "Order bump"
    UPSELL = "upsell", "Upsell"
    DOWNSELL = "downsell", "Downsell"


class ItemStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed"


class OrderItem(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(
        "funnels.Product", on_delete=models.RESTRICT, related_name="+"
    )
    step = models.ForeignKey(
        Step, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=10, choices=ItemKind.choices)
    name = models.CharField(max_length=120)  # as sold, even if renamed later
    amount_minor = models.PositiveIntegerField()
    status = models.CharField(
        max_length=10, choices=ItemStatus.choices, default=ItemStatus.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # One upsell / downsell purchase per step per order: double clicks and
            # reloads cannot add a second one.
            models.UniqueConstraint(
                fields=["order", "step", "kind"], name="order_item_once_per_step"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class PaymentKind(models.TextChoices):
    CHARGE = "charge", "Charge"
    REFUND = "refund", "Refund"


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    DECLINED = "declined", "Declined"
    REQUIRES_ACTION = "requires_action", "Needs authentication"
    FAILED = "failed", "Failed"


class Payment(models.Model):
    """One call to the gateway, keyed so that it is never made twice.

    A charge belongs to one (order, step, attempt): the order form's main item and
    bump, or one upsell/downsell. A retry after a decline is the next attempt of
    the same step, numbered under the order's row lock.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="payments")
    items = models.ManyToManyField(OrderItem, related_name="payments", blank=True)
    kind = models.CharField(max_length=8, choices=PaymentKind.choices)
    step = models.ForeignKey(
        Step, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attempt = models.PositiveSmallIntegerField(default=1)
    idempotency_key = models.CharField(max_length=120, unique=True)
    amount_minor = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    reference = models.CharField(max_length=100, blank=True)
    message = models.CharField(max_length=300, blank=True)
    # Set when the gateway was asked and gave no answer (a timeout): the outcome
    # is unknown until the reconciler or a webhook settles it.
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "step", "attempt"],
                condition=models.Q(kind="charge"),
                name="payment_charge_once_per_attempt",
            ),
        ]
        indexes = [
            # Gateway webhooks find the payment by the gateway's id for it.
            models.Index(fields=["reference"], name="payment_reference"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_minor} {self.currency} ({self.status})"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class LeadExport(models.Model):
    """A CSV of the lead list, written by a worker so any size finishes, with progress.

    The file lives in EXPORTS_ROOT (never under the public media URL) and is
    removed after EXPORT_TTL_HOURS; the row keeps who exported what, and when.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    requested_by = models.ForeignKey(
        "accounts.User", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    query = models.CharField(max_length=2000, blank=True)
    status = models.CharField(
        max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    total = models.PositiveIntegerField(null=True, blank=True)
    done = models.PositiveIntegerField(default=0)
    file_name = models.CharField(max_length=200, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "-created_at"])]

    def __str__(self) -> str:
        return f"lead export {self.pk} ({self.status})"

    @property
    def percent(self) -> int:
        if self.status == ExportStatus.READY:
            return 100
        if not self.total:
            return 0
        return min(99, int(self.done * 100 / self.total))

    @property
    def is_active(self) -> bool:
        return self.status in {ExportStatus.QUEUED, ExportStatus.RUNNING}


class GatewayEventOutcome(models.TextChoices):
    APPLIED = "applied", "Applied"
    UNCHANGED = "unchanged", "Already up to date"
    IGNORED = "ignored", "Not used"


class GatewayEvent(models.Model):
    """A payment gateway webhook we processed, once per gateway event id.

    Gateways deliver at least once and in any order: the unique id makes a replay a
    no-op. The workspace is known only once the event matched a payment (events we
    do not use match none), so it may be null.
    """

    gateway = models.CharField(max_length=20)
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=80)
    reference = models.CharField(max_length=100, blank=True)
    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outcome = models.CharField(max_length=10, choices=GatewayEventOutcome.choices)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["gateway", "event_id"], name="gateway_event_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.gateway} {self.type} {self.event_id}"


class CheckoutAbandonment(models.Model):
    """A known lead reached an order form and did not pay: marked once per step.

    Either an order was submitted and never paid (``order`` set), or the lead viewed
    the order form and placed no order at all. Fires ``checkout.abandoned`` and, when
    the step has one enabled, its abandoned-checkout e-mail.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="abandonments"
    )
    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(
        "Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reached_at = models.DateTimeField()
    detected_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-detected_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["lead", "step"], name="abandonment_once_per_lead_step"
            )
        ]

    def __str__(self) -> str:
        return f"checkout abandoned by {self.lead_id} on {self.step_id}"


class SequenceTrigger(models.TextChoices):
    MANUAL = "manual", "Started by hand (a dropped-here cohort)"
    OPTIN = "optin", "Opt-in on a step"
    ABANDONED = "abandoned", "Abandoned checkout on an order form"


class Sequence(models.Model):
    """A follow-up: e-mails sent one after the other to each enrolled lead.

    Leads enter by opting in on ``trigger_step``, by abandoning the checkout of
    ``trigger_step`` or, whatever the trigger, by hand from a "dropped here" cohort.
    ``funnel`` is the funnel the sequence brings people back to: its address is
    ``{{ funnel_url }}``, and "came back" and "bought" are counted in it.
    """

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="sequences"
    )
    name = models.CharField(max_length=120)
    funnel = models.ForeignKey(
        Funnel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trigger = models.CharField(
        max_length=10, choices=SequenceTrigger.choices, default=SequenceTrigger.MANUAL
    )
    trigger_step = models.ForeignKey(
        Step, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_active = models.BooleanField(default=True)
    track_opens = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["trigger", "trigger_step"], name="seq_trigger")]

    def __str__(self) -> str:
        return self.name


class SequenceStep(models.Model):
    """One e-mail of a sequence, sent ``delay_minutes`` after the one before it
    (after enrolment for the first); skipped for a lead who bought
    ``unless_bought``."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    sequence = models.ForeignKey(
        Sequence, on_delete=models.CASCADE, related_name="steps"
    )
    position = models.PositiveSmallIntegerField()
    delay_minutes = models.PositiveIntegerField(default=0)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    unless_bought = models.ForeignKey(
        "funnels.Product",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["sequence", "position"], name="sequence_step_position"
            )
        ]

    def __str__(self) -> str:
        return self.subject

    @property
    def delay_text(self) -> str:
        minutes = self.delay_minutes
        for size, unit in ((60 * 24, "day"), (60, "hour"), (1, "minute")):
            if minutes and minutes % size == 0:
                n = minutes // size
                return f"{n} {unit}{'s' if n != 1 else ''}"
        return ""


class EnrollmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"
    PURCHASED = "purchased", "Stopped: bought"
    UNSUBSCRIBED = "unsubscribed", "Stopped: unsubscribed"
    STOPPED = "stopped", "Stopped"


class SequenceEnrollment(models.Model):
    """One lead in one sequence (once): where it is and when the next e-mail is due.

    ``public_id`` is the lead's unsubscribe token for this sequence's e-mails.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    sequence = models.ForeignKey(
        Sequence, on_delete=models.CASCADE, related_name="enrollments"
    )
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="enrollments")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    source = models.CharField(max_length=10, choices=SequenceTrigger.choices)
    source_label = models.CharField(max_length=200, blank=True)
    status = models.CharField(
        max_length=12, choices=EnrollmentStatus.choices, default=EnrollmentStatus.ACTIVE
    )
    next_position = models.PositiveSmallIntegerField(default=0)
    next_send_at = models.DateTimeField(null=True, blank=True)
    enrolled_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-enrolled_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["sequence", "lead"], name="enrollment_once_per_lead"
            )
        ]
        indexes = [
            models.Index(fields=["status", "next_send_at"], name="enrollment_due"),
        ]

    def __str__(self) -> str:
        return f"{self.lead_id} in {self.sequence_id} ({self.status})"


class SendStatus(models.TextChoices):
    SENDING = "sending", "Sending"
    RETRY = "retry", "Waiting to retry"
    SENT = "sent", "Sent"
    SKIPPED = "skipped", "Skipped (condition)"
    FAILED = "failed", "Failed"


class SequenceSend(models.Model):
    """One e-mail of one step to one enrolled lead: claimed here, once, before the
    mail goes out, so no retry or second worker ever sends it twice.

    ``links`` are the addresses the e-mail carried, in order: the click redirect
    goes only to one of them (never to an address a URL names).
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    enrollment = models.ForeignKey(
        SequenceEnrollment, on_delete=models.CASCADE, related_name="sends"
    )
    step = models.ForeignKey(SequenceStep, on_delete=models.CASCADE, related_name="+")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(
        max_length=8, choices=SendStatus.choices, default=SendStatus.SENDING
    )
    attempts = models.PositiveSmallIntegerField(default=1)
    error = models.CharField(max_length=300, blank=True)
    links = models.JSONField(default=list, blank=True)
    claimed_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    clicks = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["claimed_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment", "step"], name="sequence_send_once"
            )
        ]

    def __str__(self) -> str:
        return f"step {self.step_id} to enrollment {self.enrollment_id} ({self.status})"
