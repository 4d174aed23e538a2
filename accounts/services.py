"""Writes for users, workspaces, memberships and invitations."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import validate_email
from django.db import connection, models, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from . import selectors
from .actors import acting_as, current_actor
from .models import (
    RESERVED_WORKSPACE_SLUGS,
    TOKEN_PREFIX,
    WORKSPACE_SLUG_RE,
    ApiToken,
    AuditEntry,
    Invitation,
    Membership,
    Role,
    TokenRole,
    User,
    Workspace,
    WorkspaceSlugAlias,
    token_hash,
)


def _clean_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": "Enter a valid e-mail address."}) from None
    return email


def _slug_taken(slug: str, *, workspace: Workspace | None = None) -> bool:
    """Another workspace uses ``slug``, now or as an old address that redirects."""
    others = Workspace.objects.filter(slug=slug)
    aliases = WorkspaceSlugAlias.objects.filter(slug=slug)
    if workspace is not None and workspace.pk:
        others = others.exclude(pk=workspace.pk)
        aliases = aliases.exclude(workspace=workspace)
    return others.exists() or aliases.exists()


def workspace_slug_suggest(*, value: str, workspace: Workspace | None = None) -> str:
    """A free DNS label for ``value``: itself when free, else with ``-2``, ``-3``..."""
    base = slugify(value or "").replace("_", "-")
    base = re.sub(r"-{2,}", "-", base)[:40].strip("-")
    if len(base) < 3 or base in RESERVED_WORKSPACE_SLUGS:
        base = (base + "-workspace").strip("-")[:40]
    if WORKSPACE_SLUG_RE.match(base) and not _slug_taken(base, workspace=workspace):
        return base
    for n in range(2, 1000):
        candidate = f"{base}-{n}"
        if not _slug_taken(candidate, workspace=workspace):
            return candidate
    return f"{base}-{secrets.token_hex(3)}"


def workspace_slug_check(slug: str, *, workspace: Workspace | None = None) -> str:
    """``slug`` cleaned, or a ValidationError a person can act on."""
    slug = (slug or "").strip().lower()
    if not WORKSPACE_SLUG_RE.match(slug) or len(slug) < 3:
        raise ValidationError(
            {
                "slug": "Use 3–63 lower-case letters, digits and hyphens, starting "
                "and ending with a letter or digit."
            }
        )
    if slug in RESERVED_WORKSPACE_SLUGS:
        raise ValidationError({"slug": f"“{slug}” is reserved; pick another."})
    if _slug_taken(slug, workspace=workspace):
        suggestion = workspace_slug_suggest(value=slug, workspace=workspace)
        raise ValidationError({"slug": f"{slug} is taken — try {suggestion}."})
    return slug


@transaction.atomic
def workspace_create(*, name: str, owner: User) -> Workspace:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the workspace a name."})
    workspace = Workspace.objects.create(
        name=name[:120], slug=workspace_slug_suggest(value=name)
    )
    Membership.objects.create(user=owner, workspace=workspace, role=Role.OWNER)
    return workspace


@transaction.atomic
def user_signup(
    *, email: str, password: str, full_name: str = "", workspace_name: str = ""
) -> tuple[User, Workspace]:
    """Create a user and their first workspace, or nothing at all."""
    email = _clean_email(email)
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError(
            {"email": "An account with this e-mail already exists. Log in instead."}
        )
    user = User(email=email, full_name=(full_name or "").strip()[:150])
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None
    user.set_password(password)
    user.save()
    workspace = workspace_create(
        name=workspace_name or f"{user.display_name}'s workspace", owner=user
    )
    return user, workspace


def signup_request(
    *, email: str, full_name: str = "", workspace_name: str = ""
) -> None:
    """Start a sign-up by e-mail, the same way whether or not the address has an
    account, so the answer tells nobody which addresses exist.

    A new address gets a link (signed, valid SIGNUP_LINK_MAX_AGE) to choose a
    password, which creates the account; an address with an account gets a note
    with links to log in or reset the password. Nothing is stored until the link
    is used, so nobody can hold an address they cannot read mail for.
    """
    email = _clean_email(email)
    site = settings.SITE_URL
    if selectors.user_exists(email=email):
        subject = "You already have an OpenFunnels account"
        body = render_to_string(
            "accounts/email/signup_existing.txt",
            {
                "email": email,
                "login_url": site + reverse("accounts:login"),
                "reset_url": site + reverse("accounts:password_reset"),
            },
        )
    else:
        token = signing.dumps(
            {
                "e": email,
                "n": (full_name or "").strip()[:150],
                "w": (workspace_name or "").strip()[:120],
            },
            salt=selectors.SIGNUP_SALT,
            compress=True,
        )
        subject = "Finish creating your OpenFunnels account"
        body = render_to_string(
            "accounts/email/signup_confirm.txt",
            {
                "email": email,
                "url": site + reverse("accounts:signup_confirm", args=[token]),
                "days": settings.SIGNUP_LINK_MAX_AGE.days,
            },
        )
    send_mail(subject=subject, message=body, from_email=None, recipient_list=[email])


@transaction.atomic
def signup_confirm(*, token: str, password: str) -> tuple[User, Workspace]:
    """Create the account a sign-up link stands for, with the password chosen now."""
    pending = selectors.signup_token_read(token=token)
    return user_signup(
        email=pending.email,
        password=password,
        full_name=pending.full_name,
        workspace_name=pending.workspace_name,
    )


def _require_admin(membership: Membership) -> None:
    if not membership.can_admin:
        raise PermissionDenied("Only owners and admins can manage members.")


SETTINGS_FIELDS = (
    "name",
    "slug",
    "time_zone",
    "drop_ip_addresses",
    "event_retention_days",
    "audit_retention_days",
)


@transaction.atomic
def workspace_slug_change(*, membership: Membership, slug: str) -> Workspace:
    """Move the workspace's public host; the old one keeps redirecting to it."""
    _require_admin(membership)
    workspace = Workspace.objects.select_for_update().get(pk=membership.workspace_id)
    slug = workspace_slug_check(slug, workspace=workspace)
    if slug == workspace.slug:
        return workspace
    WorkspaceSlugAlias.objects.filter(workspace=workspace, slug=slug).delete()
    WorkspaceSlugAlias.objects.create(workspace=workspace, slug=workspace.slug)
    workspace.slug = slug
    workspace.save(update_fields=["slug"])
    membership.workspace = workspace
    # Public serving (pages.serving) keeps a host lookup for at most a few seconds.
    return workspace


@transaction.atomic
def workspace_update(
    *,
    membership: Membership,
    name: str,
    timezone_name: str,
    drop_ip_addresses: bool,
    event_retention_days: int,
    slug: str | None = None,
    audit_retention_days: int | None = None,
) -> Workspace:
    _require_admin(membership)
    workspace = Workspace.objects.select_for_update().get(pk=membership.workspace_id)
    before = {f: getattr(workspace, f) for f in SETTINGS_FIELDS}
    if slug is not None and slug.strip().lower() != workspace.slug:
        workspace = workspace_slug_change(membership=membership, slug=slug)
    workspace.name = name.strip()[:120]
    workspace.time_zone = timezone_name
    workspace.drop_ip_addresses = drop_ip_addresses
    workspace.event_retention_days = event_retention_days
    if audit_retention_days is not None:
        if not AUDIT_RETENTION_MIN <= audit_retention_days <= AUDIT_RETENTION_MAX:
            raise ValidationError(
                {
                    "audit_retention_days": f"Keep the audit log between "
                    f"{AUDIT_RETENTION_MIN} and {AUDIT_RETENTION_MAX} days."
                }
            )
        workspace.audit_retention_days = audit_retention_days
    workspace.full_clean()
    workspace.save()
    audit_record(
        workspace=workspace,
        action="settings.update",
        target=workspace,
        before=before,
        after={f: getattr(workspace, f) for f in SETTINGS_FIELDS},
    )
    membership.workspace = workspace
    return workspace


@transaction.atomic
def invitation_create(*, membership: Membership, email: str, role: str) -> Invitation:
    _require_admin(membership)
    email = _clean_email(email)
    if role not in Role.values:
        raise ValidationError({"role": "Choose a role."})
    if role == Role.OWNER and not membership.has_role(Role.OWNER):
        raise ValidationError({"role": "Only an owner can invite another owner."})
    workspace = membership.workspace
    if workspace.memberships.filter(user__email__iexact=email).exists():
        raise ValidationError({"email": f"{email} is already a member."})
    # A new invitation replaces an older pending one to the same address.
    workspace.invitations.pending().filter(email__iexact=email).update(
        revoked_at=timezone.now()
    )
    invitation = Invitation.objects.create(
        workspace=workspace,
        email=email,
        role=role,
        invited_by=membership.user,
        expires_at=timezone.now() + settings.INVITATION_MAX_AGE,
    )
    from config.celery import enqueue_on_commit

    from .tasks import invitation_send_task

    enqueue_on_commit(invitation_send_task, invitation.pk)
    audit_record(
        workspace=workspace,
        action="member.invite",
        target=invitation,
        target_label=email,
        after={"email": email, "role": role},
    )
    return invitation


@transaction.atomic
def invitation_revoke(*, membership: Membership, invitation: Invitation) -> None:
    _require_admin(membership)
    if invitation.workspace_id != membership.workspace_id:
        raise PermissionDenied
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_record(
        workspace=membership.workspace,
        action="member.invite_revoke",
        target=invitation,
        target_label=invitation.email,
        before={"email": invitation.email, "role": invitation.role},
    )


def invitation_check(*, invitation: Invitation) -> None:
    """Raise a ValidationError naming why an invitation can no longer be used."""
    if invitation.accepted_at:
        raise ValidationError("This invitation has already been used.")
    if invitation.revoked_at:
        raise ValidationError("This invitation was withdrawn. Ask for a new one.")
    if invitation.is_expired:
        raise ValidationError("This invitation has expired. Ask for a new one.")


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    invitation = (
        Invitation.objects.select_for_update()
        .select_related("workspace")
        .filter(token=token)
        .first()
    )
    if invitation is None:
        raise ValidationError("This invitation link is not valid.")
    invitation_check(invitation=invitation)
    if invitation.email.lower() != user.email.lower():
        raise ValidationError(
            f"This invitation was sent to {invitation.email}, but you are logged in "
            f"as {user.email}. Log out and open the link again."
        )
    membership, _created = Membership.objects.get_or_create(
        user=user, workspace=invitation.workspace, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    # The person joining is the actor, also when they signed up a moment ago.
    actor = current_actor()
    with acting_as(replace(actor, label=user.email, user=user, token=None)):
        audit_record(
            workspace=invitation.workspace,
            action="member.join",
            target=membership,
            target_label=user.email,
            after={"role": membership.role},
        )
    return membership


@transaction.atomic
def user_signup_from_invitation(
    *, token: str, password: str, full_name: str = ""
) -> tuple[User, Membership]:
    invitation = Invitation.objects.filter(token=token).first()
    if invitation is None:
        raise ValidationError("This invitation link is not valid.")
    invitation_check(invitation=invitation)
    email = _clean_email(invitation.email)
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError("You already have an account: log in to accept.")
    user = User(email=email, full_name=(full_name or "").strip()[:150])
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None
    user.set_password(password)
    user.save()
    membership = invitation_accept(token=token, user=user)
    return user, membership


def _owner_count(workspace: Workspace) -> int:
    return workspace.memberships.filter(role=Role.OWNER).count()


@transaction.atomic
def membership_set_role(
    *, membership: Membership, target: Membership, role: str
) -> Membership:
    _require_admin(membership)
    if target.workspace_id != membership.workspace_id:
        raise PermissionDenied
    if role not in Role.values:
        raise ValidationError("Choose a role.")
    touches_owner = Role.OWNER in (role, target.role)
    if touches_owner and not membership.has_role(Role.OWNER):
        raise PermissionDenied("Only an owner can grant or take away ownership.")
    Workspace.objects.select_for_update().get(pk=membership.workspace_id)
    demoting_owner = target.role == Role.OWNER and role != Role.OWNER
    if demoting_owner and _owner_count(membership.workspace) <= 1:
        raise ValidationError("A workspace needs at least one owner.")
    before = target.role
    target.role = role
    target.save(update_fields=["role"])
    audit_record(
        workspace=membership.workspace,
        action="member.role",
        target=target,
        target_label=target.user.email,
        before={"role": before},
        after={"role": role},
    )
    return target


@transaction.atomic
def membership_remove(*, membership: Membership, target: Membership) -> None:
    if target.workspace_id != membership.workspace_id:
        raise PermissionDenied
    leaving_self = target.pk == membership.pk
    if not leaving_self:
        _require_admin(membership)
        if target.role == Role.OWNER and not membership.has_role(Role.OWNER):
            raise PermissionDenied("Only an owner can remove an owner.")
    Workspace.objects.select_for_update().get(pk=membership.workspace_id)
    if target.role == Role.OWNER and _owner_count(membership.workspace) <= 1:
        raise ValidationError("A workspace needs at least one owner.")
    audit_record(
        workspace=membership.workspace,
        action="member.leave" if leaving_self else "member.remove",
        target=target,
        target_label=target.user.email,
        before={"role": target.role},
    )
    target.delete()


# ---------------------------------------------------------------- audit log
AUDIT_RETENTION_MIN = 30
AUDIT_RETENTION_MAX = 3650


@transaction.atomic
def workspace_set_audit_retention(*, membership: Membership, days: int) -> Workspace:
    _require_admin(membership)
    workspace = Workspace.objects.select_for_update().get(pk=membership.workspace_id)
    if not AUDIT_RETENTION_MIN <= days <= AUDIT_RETENTION_MAX:
        raise ValidationError(
            {
                "audit_retention_days": f"Keep the audit log between "
                f"{AUDIT_RETENTION_MIN} and {AUDIT_RETENTION_MAX} days."
            }
        )
    before = workspace.audit_retention_days
    if before != days:
        workspace.audit_retention_days = days
        workspace.save(update_fields=["audit_retention_days"])
        audit_record(
            workspace=workspace,
            action="settings.update",
            target=workspace,
            before={"audit_retention_days": before},
            after={"audit_retention_days": days},
        )
    membership.workspace = workspace
    return workspace


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(values), cls=DjangoJSONEncoder, default=str))


def _compact(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Only what changed: keys whose value is the same before and after are left out."""
    old = _jsonable(before or {})
    new = _jsonable(after or {})
    if old and new:
        keys = [k for k in {**old, **new} if old.get(k) != new.get(k)]
        old = {k: old[k] for k in keys if k in old}
        new = {k: new[k] for k in keys if k in new}
    changes: dict[str, Any] = {}
    if old:
        changes["before"] = old
    if new:
        changes["after"] = new
    return changes


def audit_record(
    *,
    workspace: Workspace | int,
    action: str,
    target: models.Model | None = None,
    target_label: str = "",
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Write one audit entry for a change, inside the change's own transaction
    (so an entry exists exactly when the change does). Who and from where come from
    the current request, API token or ``actors.acting_as``."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record() must run in the transaction of the change")
    actor = current_actor()
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    target_type = target_id = ""
    if target is not None:
        target_type = target._meta.model_name or ""
        target_id = str(getattr(target, "public_id", None) or target.pk or "")
        target_label = target_label or str(target)
    return AuditEntry.objects.create(
        workspace_id=workspace_id,
        actor_user=actor.user,
        actor_token=actor.token,
        actor_label=actor.label[:200],
        action=action,
        target_type=target_type[:40],
        target_id=target_id[:64],
        target_label=target_label[:200],
        ip_address=actor.ip_address,
        changes=_compact(before, after),
    )


@contextmanager
def audit_erasable() -> Iterator[None]:
    """Inside this block (one transaction) audit entries may be deleted: the
    retention purge, and deleting a whole workspace. Nothing else may."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL openfunnels.audit_purge = 'on'")
        yield
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL openfunnels.audit_purge = 'off'")


def workspace_delete(*, workspace: Workspace) -> None:
    """Delete a workspace and everything it owns, its audit log included (the one
    time the log goes: nobody is left to read it)."""
    with audit_erasable():
        workspace.delete()


def audit_purge(*, now: datetime | None = None) -> int:
    """Delete the entries each workspace no longer keeps (its retention setting)."""
    now = now or timezone.now()
    with audit_erasable(), connection.cursor() as cursor:
        cursor.execute(
            """
            DELETE FROM accounts_auditentry a
            USING accounts_workspace w
            WHERE a.workspace_id = w.id
              AND a.created_at < %s - make_interval(days => w.audit_retention_days)
            """,
            [now],
        )
        return cursor.rowcount


# ---------------------------------------------------------------- API tokens
TOKEN_EXPIRY_MAX = timedelta(days=3660)


@transaction.atomic
def api_token_create(
    *,
    workspace: Workspace,
    name: str,
    role: str = TokenRole.READ_ONLY,
    expires_at: datetime | None = None,
    created_by: User | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; returns it and the secret, which is never available again."""
    name = " ".join((name or "").split())
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Give the token a name, like “Zapier” or “CRM sync”."
    elif len(name) > 80:
        errors["name"] = "Keep the name under 80 characters."
    if role not in TokenRole.values:
        errors["role"] = "Choose read-only or read-write."
    if expires_at is not None:
        if expires_at <= timezone.now():
            errors["expires_at"] = "Pick an expiry date in the future."
        elif expires_at > timezone.now() + TOKEN_EXPIRY_MAX:
            errors["expires_at"] = "Pick an expiry date within ten years."
    if errors:
        raise ValidationError(errors)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        workspace=workspace,
        name=name,
        role=role,
        prefix=secret[:10],
        hashed=token_hash(secret),
        created_by=created_by,
        expires_at=expires_at,
    )
    audit_record(
        workspace=workspace,
        action="api_token.create",
        target=token,
        after={
            "name": name,
            "role": role,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return token, secret


@transaction.atomic
def api_token_revoke(*, workspace: Workspace, token: ApiToken) -> ApiToken:
    if token.workspace_id != workspace.pk:
        raise PermissionDenied
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            workspace=workspace,
            action="api_token.revoke",
            target=token,
            before={"status": "active"},
            after={"status": "revoked"},
        )
    return token


LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_token_touch(*, token: ApiToken, ip_address: str | None) -> None:
    """Note when and from where a token was last used, at most once a minute
    (a conditional UPDATE, so a busy token costs one write a minute, not one a
    request)."""
    now = timezone.now()
    if token.last_used_at and now - token.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiToken.objects.filter(pk=token.pk).filter(
        models.Q(last_used_at__isnull=True)
        | models.Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used_at=now, last_used_ip=ip_address)
