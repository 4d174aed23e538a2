from __future__ import annotations

import hashlib
import re
import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: object) -> User:
        if not email:
            raise ValueError("An e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(
        self, email: str, password: str | None = None, **extra: object
    ) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str, **extra: object) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person who logs in; identified by e-mail address, no username."""

    username = None
    email = models.EmailField("e-mail address", unique=True)
    full_name = models.CharField(max_length=150, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def display_name(self) -> str:
        return self.full_name or self.email.split("@")[0]


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"


ROLE_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2, Role.OWNER: 3}


def _public_id() -> str:
    return secrets.token_urlsafe(9)


# A workspace's published funnels live at http://<slug>.<PUBLIC_DOMAIN>/, so a slug
# is one DNS label: lower-case letters, digits and inner hyphens, at most 63
# characters, and not an IDNA-reserved "xx--" label.
WORKSPACE_SLUG_MAX = 63
WORKSPACE_SLUG_RE = re.compile(r"^(?!..--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# Host labels an operator is likely to use for something else under PUBLIC_DOMAIN.
RESERVED_WORKSPACE_SLUGS = frozenset(
    {
        "admin",
        "api",
        "app",
        "assets",
        "blog",
        "cdn",
        "dashboard",
        "docs",
        "ftp",
        "help",
        "imap",
        "localhost",
        "mail",
        "media",
        "ns1",
        "ns2",
        "pop",
        "smtp",
        "static",
        "status",
        "support",
        "www",
    }
)


def _workspace_slug() -> str:
    """A placeholder slug for rows created without one (services pick a real one)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "ws-" + "".join(secrets.choice(alphabet) for _ in range(10))


class Workspace(models.Model):
    """The tenant: every customer-owned row belongs to exactly one workspace."""

    name = models.CharField(max_length=120)
    public_id = models.CharField(max_length=16, unique=True, default=_public_id)
    # The workspace's public host label: <slug>.<PUBLIC_DOMAIN> (accounts.services
    # workspace_slug_change keeps the old one as a redirect).
    slug = models.CharField(
        max_length=WORKSPACE_SLUG_MAX, unique=True, default=_workspace_slug
    )
    time_zone = models.CharField(max_length=64, default="UTC")
    drop_ip_addresses = models.BooleanField(
        default=False, help_text="Do not store visitors' IP addresses."
    )
    event_retention_days = models.PositiveIntegerField(
        default=395, help_text="Raw events older than this are deleted; totals stay."
    )
    audit_retention_days = models.PositiveIntegerField(
        default=365, help_text="Audit log entries older than this are deleted."
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name

    @property
    def public_host(self) -> str:
        """Host (and port, if PUBLIC_DOMAIN names one) of the workspace's pages."""
        return f"{self.slug}.{settings.PUBLIC_DOMAIN}"

    @property
    def public_base_url(self) -> str:
        """Origin of the workspace's published funnels, e.g. https://acme.example.page"""
        return f"{settings.PUBLIC_SCHEME}://{self.public_host}"


class WorkspaceSlugAlias(models.Model):
    """A slug the workspace used before: its host redirects to the current one."""

    slug = models.CharField(max_length=WORKSPACE_SLUG_MAX, unique=True)
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="slug_aliases"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.slug} → {self.workspace.slug}"


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.EDITOR)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "workspace"], name="membership_unique"
            ),
        ]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]

    @property
    def can_edit(self) -> bool:
        return self.has_role(Role.EDITOR)

    @property
    def can_admin(self) -> bool:
        return self.has_role(Role.ADMIN)


def _invitation_token() -> str:
    return secrets.token_urlsafe(32)


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def pending(self) -> InvitationQuerySet:
        return self.filter(
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
        )


class Invitation(models.Model):
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.EDITOR)
    token = models.CharField(max_length=64, unique=True, default=_invitation_token)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.workspace}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.is_expired:
            return "expired"
        return "pending"


# ---------------------------------------------------------------- API tokens
TOKEN_PREFIX = "of_"


class TokenRole(models.TextChoices):
    READ_ONLY = "read", "Read-only"
    READ_WRITE = "write", "Read-write"


def token_hash(raw: str) -> str:
    """Tokens are 256 random bits, so one SHA-256 is enough to store them safely
    (no slow hash needed) and lets the lookup be one indexed equality."""
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def usable(self) -> ApiTokenQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A workspace's key to the REST API. Only its hash is stored; the token itself
    is shown once, when it is created."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=80)
    role = models.CharField(
        max_length=8, choices=TokenRole.choices, default=TokenRole.READ_ONLY
    )
    # The first characters of the token, shown in lists to tell tokens apart.
    prefix = models.CharField(max_length=16)
    hashed = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def can_write(self) -> bool:
        return self.role == TokenRole.READ_WRITE

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"


# ---------------------------------------------------------------- audit log
class AuditEntry(models.Model):
    """One change in a workspace: who, what, when, from where, before/after.

    Append-only: a database trigger refuses UPDATE, and DELETE except from the
    retention purge (``services.audit_purge``), which switches it on for its own
    transaction only.
    """

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="audit_entries"
    )
    created_at = models.DateTimeField(default=timezone.now)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who, as they were called at the time (kept when the user or token goes).
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=60)
    target_type = models.CharField(max_length=40, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "-created_at", "-id"], name="audit_ws"),
            models.Index(
                fields=["workspace", "action", "-created_at"], name="audit_ws_action"
            ),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action}"


class ApiIdempotencyKey(models.Model):
    """A POST's Idempotency-Key and the response it got, so that a retry with the
    same key gets the same response instead of doing the work twice. Keys are
    scoped to the API token that sent them and kept for a day."""

    scope = models.CharField(max_length=64)  # a hash of the bearer token
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)  # method, path and body
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    body = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_key")
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]

    def __str__(self) -> str:
        return self.key
