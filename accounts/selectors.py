"""Reads for accounts and tenancy."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import (
    ApiToken,
    AuditEntry,
    Invitation,
    Membership,
    User,
    Workspace,
    token_hash,
)


def memberships_for_user(*, user: User) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(user=user)
        .select_related("workspace")
        .order_by("workspace__name", "workspace_id")
    )


def membership_for(*, user: User, workspace_id: int | None) -> Membership | None:
    qs = memberships_for_user(user=user)
    if workspace_id is not None:
        found = qs.filter(workspace_id=workspace_id).first()
        if found is not None:
            return found
    return qs.first()


def workspace_members(*, workspace: Workspace) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(workspace=workspace)
        .select_related("user")
        .order_by("created_at")
    )


def workspace_invitations_pending(*, workspace: Workspace) -> QuerySet[Invitation]:
    return workspace.invitations.pending().select_related("invited_by")


def invitation_by_token(*, token: str) -> Invitation | None:
    return (
        Invitation.objects.select_related("workspace", "invited_by")
        .filter(token=token)
        .first()
    )


def user_exists(*, email: str) -> bool:
    return User.objects.filter(email__iexact=email.strip()).exists()


SIGNUP_SALT = "accounts.signup"


@dataclass(frozen=True)
class PendingSignup:
    email: str
    full_name: str
    workspace_name: str


def signup_token_read(*, token: str) -> PendingSignup:
    """What a sign-up link stands for; ValidationError if forged or expired."""
    try:
        data = signing.loads(
            token,
            salt=SIGNUP_SALT,
            max_age=settings.SIGNUP_LINK_MAX_AGE,
        )
    except signing.SignatureExpired:
        raise ValidationError(
            "This sign-up link has expired. Please sign up again."
        ) from None
    except signing.BadSignature:
        raise ValidationError(
            "This sign-up link is not valid. Please sign up again."
        ) from None
    return PendingSignup(
        email=str(data.get("e", "")),
        full_name=str(data.get("n", "")),
        workspace_name=str(data.get("w", "")),
    )


# ---------------------------------------------------------------- API tokens
def api_tokens_for(*, workspace: Workspace) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(workspace=workspace).select_related("created_by")


def api_token_get(*, workspace: Workspace, pk: int) -> ApiToken | None:
    return ApiToken.objects.filter(workspace=workspace, pk=pk).first()


def api_token_for_secret(*, secret: str) -> ApiToken | None:
    """The token with this secret, usable or not (the caller says why not)."""
    if not secret or len(secret) > 200:
        return None
    return (
        ApiToken.objects.select_related("workspace")
        .filter(hashed=token_hash(secret))
        .first()
    )


# ---------------------------------------------------------------- audit log
AUDIT_PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditFilters:
    action: str = ""  # an exact action, or a prefix such as "member."
    actor: str = ""  # "user:<id>", "token:<id>" or "system"
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""  # in the target's label


@dataclass
class AuditPage:
    entries: list[AuditEntry]
    next_cursor: str | None


def audit_queryset(
    *, workspace: Workspace, filters: AuditFilters
) -> QuerySet[AuditEntry]:
    qs = AuditEntry.objects.filter(workspace=workspace)
    if filters.action:
        if filters.action.endswith("."):
            qs = qs.filter(action__startswith=filters.action)
        else:
            qs = qs.filter(action=filters.action)
    kind, _, ident = filters.actor.partition(":")
    if kind == "user" and ident.isdigit():
        qs = qs.filter(actor_user_id=int(ident))
    elif kind == "token" and ident.isdigit():
        qs = qs.filter(actor_token_id=int(ident))
    elif kind == "system":
        qs = qs.filter(actor_user__isnull=True, actor_token__isnull=True)
    tz = timezone.get_current_timezone()
    if filters.date_from:
        start = datetime.combine(filters.date_from, time.min, tzinfo=tz)
        qs = qs.filter(created_at__gte=start)
    if filters.date_to:
        end = datetime.combine(filters.date_to + timedelta(days=1), time.min, tzinfo=tz)
        qs = qs.filter(created_at__lt=end)
    if filters.q.strip():
        qs = qs.filter(target_label__icontains=filters.q.strip())
    return qs.order_by("-created_at", "-id")


def _cursor_encode(entry: AuditEntry) -> str:
    raw = json.dumps([entry.created_at.isoformat(), entry.pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_decode(cursor: str) -> tuple[datetime, int] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, pk = json.loads(raw)
        return datetime.fromisoformat(when), int(pk)
    except (ValueError, TypeError):
        return None


def audit_page(
    *, workspace: Workspace, filters: AuditFilters, cursor: str = ""
) -> AuditPage:
    """One page, newest first, by keyset (stable while new entries arrive)."""
    qs = audit_queryset(workspace=workspace, filters=filters)
    after = _cursor_decode(cursor) if cursor else None
    if after is not None:
        when, pk = after
        qs = qs.filter(Q(created_at__lt=when) | Q(created_at=when, id__lt=pk))
    rows = list(qs.select_related("actor_user", "actor_token")[: AUDIT_PAGE_SIZE + 1])
    next_cursor = None
    if len(rows) > AUDIT_PAGE_SIZE:
        rows = rows[:AUDIT_PAGE_SIZE]
        next_cursor = _cursor_encode(rows[-1])
    return AuditPage(rows, next_cursor)


def audit_export_rows(
    *, workspace: Workspace, filters: AuditFilters
) -> Iterator[tuple[object, ...]]:
    qs = audit_queryset(workspace=workspace, filters=filters)
    yield from qs.values_list(
        "created_at",
        "actor_label",
        "ip_address",
        "action",
        "target_type",
        "target_id",
        "target_label",
        "changes",
    ).iterator(chunk_size=2000)


def audit_actions(*, workspace: Workspace) -> list[str]:
    return list(
        AuditEntry.objects.filter(workspace=workspace)
        .values_list("action", flat=True)
        .distinct()
        .order_by("action")
    )
