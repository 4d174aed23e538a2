from __future__ import annotations

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import models
from django.utils import timezone

from accounts.models import Workspace
from funnels.models import Funnel, Step

from . import themes


def empty_document() -> dict:
    return {"sections": []}


class Page(models.Model):
    """One variant of a step's page: a draft document plus page-level settings."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="pages")
    name = models.CharField(max_length=80, default="Variant A")
    weight = models.PositiveSmallIntegerField(default=100)
    document = models.JSONField(default=empty_document)
    # Bumped on every edit; an edit based on an older revision is refused.
    draft_revision = models.PositiveIntegerField(default=0)
    # Position in the undo history (PageRevision.number of the current draft).
    history_pointer = models.PositiveIntegerField(default=0)
    title = models.CharField(max_length=160, blank=True)
    meta_description = models.CharField(max_length=300, blank=True)
    social_image = models.URLField(max_length=500, blank=True)
    noindex = models.BooleanField(default=False)
    # An http(s) URL, or the /media/ path of an uploaded icon.
    favicon = models.CharField(max_length=500, blank=True)
    head_code = models.TextField(blank=True)
    footer_code = models.TextField(blank=True)
    published_version = models.ForeignKey(
        "PageVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # A variant removed from its split test: kept (with its versions and events)
    # for the results history, never served again.
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.step} · {self.name}"

    @property
    def is_served(self) -> bool:
        """The serving contract: a variant is served iff published and weighted."""
        return (
            self.archived_at is None
            and self.published_version_id is not None
            and self.weight > 0
        )


class SplitTest(models.Model):
    """One split test of a step: from the moment two variants were live to the
    declared winner, with the final results frozen as a snapshot."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="split_tests")
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    winner = models.ForeignKey(
        Page, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The results as shown when the test ended (analytics.experiments snapshot).
    results = models.JSONField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["step"],
                condition=models.Q(ended_at__isnull=True),
                name="one_running_split_test_per_step",
            )
        ]

    def __str__(self) -> str:
        return f"Split test of {self.step_id} from {self.started_at:%Y-%m-%d}"

    @property
    def is_running(self) -> bool:
        return self.ended_at is None


class PageRevision(models.Model):
    """One entry of a page's undo/redo history: the draft after an edit."""

    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    label = models.CharField(max_length=80, blank=True)
    # Edits of one typing session on the canvas share a group and fold into one
    # revision, so one undo takes back the whole session.
    group = models.CharField(max_length=64, blank=True)
    document = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(
                fields=["page", "number"], name="page_revision_number_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.page_id} r{self.number}"


class PageVersion(models.Model):
    """An immutable published snapshot: the document and its HTML rendered once."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    document = models.JSONField()
    html = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The page-speed report measured when this version was published.
    speed = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["page", "number"], name="page_version_number_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.page} v{self.number}"


class ButtonStyle(models.TextChoices):
    ROUNDED = "rounded", "Rounded"
    PILL = "pill", "Pill"
    SQUARE = "square", "Square"


class FunnelTheme(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    funnel = models.OneToOneField(
        Funnel, on_delete=models.CASCADE, related_name="theme"
    )
    primary_color = models.CharField(max_length=7, default="#4f46e5")
    accent_color = models.CharField(max_length=7, default="#f59e0b")
    text_color = models.CharField(max_length=7, default="#1f2937")
    background_color = models.CharField(max_length=7, default="#ffffff")
    font_family = models.CharField(
        "Fonts", max_length=40, default="system", choices=themes.FONT_CHOICES
    )
    button_style = models.CharField(
        max_length=10, choices=ButtonStyle.choices, default=ButtonStyle.ROUNDED
    )
    button_radius = models.PositiveSmallIntegerField(default=8)

    def __str__(self) -> str:
        return f"Theme of {self.funnel_id}"

    @property
    def font_pair(self) -> themes.FontPair:
        return themes.pair(self.font_family)

    @property
    def font_stack(self) -> str:
        """The body font (``--of-font``)."""
        return self.font_pair.body_stack()

    @property
    def heading_stack(self) -> str:
        return self.font_pair.heading_stack()

    @property
    def radius_px(self) -> int:
        if self.button_style == ButtonStyle.PILL:
            return 999
        if self.button_style == ButtonStyle.SQUARE:
            return 0
        return self.button_radius


class ImageAsset(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    original = models.FileField(upload_to="images/%Y/%m/", max_length=300)
    # {"480": "images/..-480.webp", ...}; only widths smaller than the original.
    variants = models.JSONField(default=dict)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    alt_text = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.original.name

    @property
    def url(self) -> str:
        if self.variants:
            widest = max(self.variants, key=int)
            return default_storage.url(self.variants[widest])
        return self.original.url

    def url_at(self, width: int) -> str:
        """The URL of the widest variant not wider than ``width`` (or the
        narrowest one)."""
        if not self.variants:
            return self.original.url
        widths = sorted(int(w) for w in self.variants)
        best = max((w for w in widths if w <= width), default=widths[0])
        return default_storage.url(self.variants[str(best)])

    @property
    def srcset(self) -> str:
        return ", ".join(
            f"{default_storage.url(path)} {width}w"
            for width, path in sorted(self.variants.items(), key=lambda kv: int(kv[0]))
        )


class BudgetMode(models.TextChoices):
    OFF = "off", "Off: measure only"
    WARN = "warn", "Warn before publishing"
    BLOCK = "block", "Block publishing above the budget"


class SpeedBudget(models.Model):
    """A workspace's page-speed budget, checked every time a funnel is published."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, related_name="speed_budget"
    )
    mode = models.CharField(
        max_length=5, choices=BudgetMode.choices, default=BudgetMode.WARN
    )
    max_html_css_kb = models.PositiveSmallIntegerField("HTML + CSS (KB)", default=40)
    max_first_view_image_kb = models.PositiveIntegerField(
        "Images above the fold (KB)", default=200
    )
    allow_blocking_scripts = models.BooleanField(
        "Allow render-blocking scripts in head code", default=False
    )

    def __str__(self) -> str:
        return f"Speed budget of {self.workspace_id}"


from .domain_models import Domain  # noqa: E402, F401  (one module per concern)
