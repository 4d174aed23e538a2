from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Workspace


class FunnelQuerySet(models.QuerySet["Funnel"]):
    def for_workspace(self, workspace: Workspace) -> FunnelQuerySet:
        return self.filter(workspace=workspace)

    def active(self) -> FunnelQuerySet:
        return self.filter(archived_at__isnull=True)


class Funnel(models.Model):
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="funnels"
    )
    name = models.CharField(max_length=120)
    # Unique in its workspace: served at <workspace public host>/<slug>/.
    slug = models.SlugField(max_length=80)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)

    objects = FunnelQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "slug"], name="funnel_slug_unique_in_workspace"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_published(self) -> bool:
        return self.published_at is not None

    def public_url(self, step: Step | None = None) -> str:
        """Absolute URL of the funnel (or one of its steps) on its workspace's host."""
        base = f"{self.workspace.public_base_url}/{self.slug}/"
        return f"{base}{step.slug}/" if step is not None else base


class StepKind(models.TextChoices):
    OPTIN = "optin", "Opt-in"
    SALES = "sales", "Sales page"
    ORDER = "order", "Order form"
    UPSELL = "upsell", "Upsell"
    DOWNSELL = "downsell", "Downsell"
    THANKYOU = "thankyou", "Thank-you"
    PAGE = "page", "Page"


BRANCHING_KINDS = frozenset({StepKind.UPSELL, StepKind.DOWNSELL})


class Stage(models.TextChoices):
    """Where a step sits in the customer's journey."""

    AWARENESS = "awareness", "Awareness"
    CONSIDERATION = "consideration", "Consideration"
    PURCHASE = "purchase", "Purchase"
    RETENTION = "retention", "Retention"
    ADVOCACY = "advocacy", "Advocacy"


# A step's stage unless the marketer picks another.
DEFAULT_STAGES = {
    StepKind.OPTIN: Stage.AWARENESS,
    StepKind.PAGE: Stage.AWARENESS,
    StepKind.SALES: Stage.CONSIDERATION,
    StepKind.ORDER: Stage.PURCHASE,
    StepKind.UPSELL: Stage.PURCHASE,
    StepKind.DOWNSELL: Stage.PURCHASE,
    StepKind.THANKYOU: Stage.RETENTION,
}


class Step(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    funnel = models.ForeignKey(Funnel, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=80)
    kind = models.CharField(max_length=16, choices=StepKind.choices)
    position = models.PositiveIntegerField(default=0)
    # Upsell/downsell branches. The service refuses to delete a step that is still a
    # target, so SET_NULL only matters for whole-funnel deletes.
    accept_target = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decline_target = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The offer frozen by the last publish: what the live page shows and charges.
    live_offer = models.ForeignKey(
        "PublishedOffer",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Blank: the default for the step's kind (DEFAULT_STAGES).
    stage = models.CharField(max_length=16, choices=Stage.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["funnel", "slug"], name="step_slug_unique_in_funnel"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.funnel}: {self.name}"

    @property
    def journey_stage(self) -> str:
        return self.stage or DEFAULT_STAGES.get(self.kind, Stage.AWARENESS)

    def get_journey_stage_display(self) -> str:
        return Stage(self.journey_stage).label

    def get_default_stage_display(self) -> str:
        return Stage(DEFAULT_STAGES.get(self.kind, Stage.AWARENESS)).label

    @property
    def has_branches(self) -> bool:
        return self.kind in BRANCHING_KINDS


class ProductQuerySet(models.QuerySet["Product"]):
    def for_workspace(self, workspace: Workspace) -> ProductQuerySet:
        return self.filter(workspace=workspace)

    def active(self) -> ProductQuerySet:
        return self.filter(archived_at__isnull=True)


class Billing(models.TextChoices):
    ONE_TIME = "one_time", "One-time payment"
    SUBSCRIPTION = "subscription", "Subscription"


class Interval(models.TextChoices):
    MONTH = "month", "Monthly"
    YEAR = "year", "Yearly"


class Product(models.Model):
    """Something a funnel sells: on an order form, as a bump, upsell or downsell."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="products"
    )
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    image_url = models.CharField(max_length=500, blank=True)
    # Integer minor units (cents) so no float ever touches money.
    price_minor = models.PositiveIntegerField()
    # "Normally $47": the regular price that savings are shown against (optional).
    compare_at_minor = models.PositiveIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    billing = models.CharField(
        max_length=16, choices=Billing.choices, default=Billing.ONE_TIME
    )
    interval = models.CharField(max_length=8, choices=Interval.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # For syncing (the API's updated_since): any save, archiving included.
    updated_at = models.DateTimeField(auto_now=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class StepOffer(models.Model):
    """What an order form, upsell or downsell step sells (prices live on Product)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    step = models.OneToOneField(Step, on_delete=models.CASCADE, related_name="offer")
    product = models.ForeignKey(Product, on_delete=models.RESTRICT, related_name="+")
    bump_product = models.ForeignKey(
        Product,
        null=True,
        blank=True,
        on_delete=models.RESTRICT,
        related_name="+",
    )
    bump_headline = models.CharField(max_length=200, blank=True)
    bump_description = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"Offer on {self.step_id}"


class PublishedOffer(models.Model):
    """A step's offer frozen when the funnel was published (immutable).

    The live page shows it and the checkout charges it, whatever happens to the
    products or the step's offer afterwards, until the funnel is published again.
    ``fingerprint`` is the hash of the offer it was made from, to notice changes.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    step = models.ForeignKey(
        Step, on_delete=models.CASCADE, related_name="published_offers"
    )
    product = models.ForeignKey(Product, on_delete=models.RESTRICT, related_name="+")
    name = models.CharField(max_length=120)
    price_minor = models.PositiveIntegerField()
    compare_at_minor = models.PositiveIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3)
    bump_product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.RESTRICT, related_name="+"
    )
    bump_name = models.CharField(max_length=120, blank=True)
    bump_price_minor = models.PositiveIntegerField(null=True, blank=True)
    bump_compare_at_minor = models.PositiveIntegerField(null=True, blank=True)
    bump_headline = models.CharField(max_length=200, blank=True)
    bump_description = models.TextField(blank=True)
    fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} at {self.price_minor} {self.currency}"

    @property
    def has_bump(self) -> bool:
        return self.bump_product_id is not None and self.bump_price_minor is not None
