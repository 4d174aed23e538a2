"""Visitors and raw step events.

The events table is range-partitioned by month on ``occurred_at`` and created by raw
SQL in the migration (Django cannot declare partitioned tables); the ``Event`` model
is unmanaged and only used for reads. Writes go through ``analytics.services`` (a
Redis stream flushed with COPY, or a direct INSERT … ON CONFLICT DO NOTHING).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from accounts.models import Workspace


class DeviceClass(models.TextChoices):
    DESKTOP = "desktop", "Desktop"
    MOBILE = "mobile", "Mobile"
    TABLET = "tablet", "Tablet"
    BOT = "bot", "Bot"


class EventKind(models.TextChoices):
    VIEW = "view", "Step view"
    OPTIN = "optin", "Opt-in"
    CLICK = "click", "Click"
    ORDER = "order", "Order"
    BUMP = "bump", "Order bump"
    UPSELL_ACCEPT = "upsell_accept", "Upsell accepted"
    UPSELL_DECLINE = "upsell_decline", "Upsell declined"
    REFUND = "refund", "Refund"


class Visitor(models.Model):
    """One first-party visitor id within one workspace, with its first touch.

    ``public_id`` is the random id carried (signed) in the visitor cookie; the same
    browser gets a separate cookie, hence a separate Visitor, per workspace.
    """

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="visitors"
    )
    public_id = models.UUIDField(default=uuid.uuid4)
    utm_source = models.CharField(max_length=200, blank=True)
    utm_medium = models.CharField(max_length=200, blank=True)
    utm_campaign = models.CharField(max_length=200, blank=True)
    utm_content = models.CharField(max_length=200, blank=True)
    utm_term = models.CharField(max_length=200, blank=True)
    referrer = models.CharField(max_length=500, blank=True)
    # No database constraint: rows are written in bulk by the flush and must not
    # fail when a funnel or step was deleted meanwhile.
    landing_funnel = models.ForeignKey(
        "funnels.Funnel",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    landing_step = models.ForeignKey(
        "funnels.Step",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    device_class = models.CharField(
        max_length=16, choices=DeviceClass.choices, default=DeviceClass.DESKTOP
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    # The leads app links a visitor to its lead; no FK because imports run
    # analytics ← leads.
    lead_id = models.BigIntegerField(null=True, blank=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "public_id"], name="visitor_public_id_unique"
            ),
        ]

    def __str__(self) -> str:
        return str(self.public_id)


class Event(models.Model):
    """A raw step event (read-only model over the partitioned ``analytics_event``).

    The real primary key is ``(id, occurred_at)``; ``id`` alone is unique in practice
    (producers generate uuid4s and redeliveries carry the same ``occurred_at``).
    """

    id = models.UUIDField(primary_key=True)
    workspace_id = models.BigIntegerField()
    funnel_id = models.BigIntegerField(null=True)
    step_id = models.BigIntegerField(null=True)
    visitor_id = models.UUIDField(null=True)
    kind = models.CharField(max_length=32, choices=EventKind.choices)
    page_version_id = models.BigIntegerField(null=True)
    variant_id = models.BigIntegerField(null=True)
    amount_minor = models.BigIntegerField(null=True)
    currency = models.CharField(max_length=3, blank=True)
    properties = models.JSONField(default=dict)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "analytics_event"
        ordering = ["occurred_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


class LogOffset(models.Model):
    """How far the shipper (analytics.shipper) has stored a view log of a node.

    Updated in the same transaction as the COPY of the lines before ``position``,
    so a restarted shipper resumes exactly there. A file is known by its inode,
    which survives a rename (log rotation).
    """

    source = models.CharField(max_length=200)
    inode = models.BigIntegerField()
    path = models.TextField()
    position = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "inode"], name="logoffset_source_inode"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.path}@{self.position}"


from .rollup_models import (  # noqa: E402  (rollups live in their own module)
    AdSpend,
    CohortFunnelRollup,
    CohortStepRollup,
    FunnelVisitor,
    FunnelVisitorPath,
    FunnelVisitorStep,
    JourneyRollup,
    RollupFoldedEvent,
    RollupState,
    StepDailyRollup,
)

__all__ = [
    "AdSpend",
    "CohortFunnelRollup",
    "CohortStepRollup",
    "DeviceClass",
    "Event",
    "EventKind",
    "FunnelVisitor",
    "FunnelVisitorPath",
    "FunnelVisitorStep",
    "JourneyRollup",
    "LogOffset",
    "RollupFoldedEvent",
    "RollupState",
    "StepDailyRollup",
    "Visitor",
]
