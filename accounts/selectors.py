"""Reads for accounts and tenancy."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from .models import Invitation, Membership, User, Workspace


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
            max_age=settings.SIGNUP_LINK_MAX_AGE.total_seconds(),
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
