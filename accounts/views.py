from __future__ import annotations

import json
import logging
import smtplib
from collections.abc import Iterator
from datetime import datetime, time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm, SetPasswordForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.utils import timezone
from django.views.decorators.http import require_POST

from config import csvsafe

from . import selectors, services, throttles
from .forms import (
    ApiTokenForm,
    AuditFilterForm,
    AuditRetentionForm,
    InviteForm,
    InviteSignupForm,
    LoginForm,
    RoleForm,
    SignupConfirmForm,
    SignupForm,
    WorkspaceCreateForm,
    WorkspaceSettingsForm,
    add_service_errors,
)
from .models import Membership, Role
from .tenancy import set_current_workspace, workspace_view

BACKEND = "django.contrib.auth.backends.ModelBackend"
MAIL_DOWN = "We could not send the e-mail just now. Please try again in a few minutes."
logger = logging.getLogger(__name__)


def signup(request: HttpRequest) -> HttpResponse:
    """Step one: name, e-mail, workspace. Every valid address gets the same answer
    ("check your inbox"); the e-mail says what happens next."""
    if request.user.is_authenticated:
        return redirect("funnels:list")
    form = SignupForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        if not throttles.signup_allowed(request, form.cleaned_data["email"]):
            form.add_error(None, throttles.SIGNUP_MESSAGE)
            status = 429
        else:
            try:
                services.signup_request(**form.cleaned_data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            except (OSError, smtplib.SMTPException):
                # The same for every address: the mail server, not the account.
                logger.exception("sign-up e-mail could not be sent")
                form.add_error(None, MAIL_DOWN)
                status = 503
            else:
                return redirect("accounts:signup_sent")
    return render(request, "accounts/signup.html", {"form": form}, status=status)


def signup_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/signup_sent.html")


def signup_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """Step two, from the e-mailed link: choose a password; the account is made."""
    try:
        pending = selectors.signup_token_read(token=token)
    except ValidationError as exc:
        return render(
            request,
            "accounts/signup_invalid.html",
            {"error": exc.messages[0]},
            status=410,
        )
    if selectors.user_exists(email=pending.email):
        messages.info(request, "Your account is ready: log in.")
        return redirect("accounts:login")
    form = SignupConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user, workspace = services.signup_confirm(
                token=token, password=form.cleaned_data["password"]
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            login(request, user, backend=BACKEND)
            set_current_workspace(request, workspace.pk)
            messages.success(request, f"Welcome to OpenFunnels, {user.display_name}!")
            return redirect("funnels:list")
    return render(
        request,
        "accounts/signup_confirm.html",
        {"form": form, "pending": pending},
        status=422 if form.errors else 200,
    )


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form: LoginForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.throttled:
            response.status_code = 429
        return response


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        # Counted for every address typed, so the limit reveals no accounts.
        if not throttles.reset_allowed(self.request, form.cleaned_data["email"]):
            form.add_error(None, throttles.RESET_MESSAGE)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form: SetPasswordForm) -> HttpResponse:
        response = super().form_valid(form)
        throttles.account_unlock(form.user.email)
        return response


def workspace_create(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("accounts:login")
    form = WorkspaceCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            workspace = services.workspace_create(
                name=form.cleaned_data["name"], owner=request.user
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            set_current_workspace(request, workspace.pk)
            messages.success(request, f"Workspace “{workspace.name}” created.")
            return redirect("funnels:list")
    return render(request, "accounts/workspace_create.html", {"form": form})


@require_POST
def workspace_switch(request: HttpRequest, public_id: str) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("accounts:login")
    membership = get_object_or_404(
        Membership, user=request.user, workspace__public_id=public_id
    )
    set_current_workspace(request, membership.workspace_id)
    messages.info(request, f"Switched to {membership.workspace.name}.")
    return redirect("funnels:list")


@workspace_view(write_role=Role.ADMIN)
def workspace_settings(request: HttpRequest) -> HttpResponse:
    workspace = request.workspace
    initial = {
        "name": workspace.name,
        "slug": workspace.slug,
        "timezone": workspace.time_zone,
        "drop_ip_addresses": workspace.drop_ip_addresses,
        "event_retention_days": workspace.event_retention_days,
    }
    form = WorkspaceSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.workspace_update(
                membership=request.membership,
                name=data["name"],
                timezone_name=data["timezone"],
                drop_ip_addresses=data["drop_ip_addresses"],
                event_retention_days=data["event_retention_days"],
                slug=data["slug"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Settings saved.")
            return redirect("accounts:settings")
    return render(
        request,
        "accounts/settings.html",
        {
            "form": form,
            "tab": "general",
            "public_domain": settings.PUBLIC_DOMAIN,
        },
        status=422 if form.errors else 200,
    )


def _members_context(request: HttpRequest, invite_form: InviteForm) -> dict:
    return {
        "members": selectors.workspace_members(workspace=request.workspace),
        "invitations": selectors.workspace_invitations_pending(
            workspace=request.workspace
        ),
        "invite_form": invite_form,
        "roles": Role.choices,
        "tab": "members",
    }


@workspace_view(write_role=Role.ADMIN)
def members(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            invitation = services.invitation_create(
                membership=request.membership, **form.cleaned_data
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("accounts:members")
    status = 422 if form.errors else 200
    return render(
        request, "accounts/members.html", _members_context(request, form), status=status
    )


@workspace_view(write_role=Role.ADMIN)
@require_POST
def member_role(request: HttpRequest, pk: int) -> HttpResponse:
    target = get_object_or_404(Membership, pk=pk, workspace=request.workspace)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid role.")
        return redirect("accounts:members")
    try:
        services.membership_set_role(
            membership=request.membership, target=target, role=form.cleaned_data["role"]
        )
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _message(exc))
    else:
        messages.success(
            request, f"{target.user.email} is now {target.get_role_display()}."
        )
    return redirect("accounts:members")


@workspace_view(write_role=Role.VIEWER)
@require_POST
def member_remove(request: HttpRequest, pk: int) -> HttpResponse:
    target = get_object_or_404(Membership, pk=pk, workspace=request.workspace)
    leaving = target.pk == request.membership.pk
    if not leaving and not request.membership.can_admin:
        raise PermissionDenied("Only owners and admins can remove members.")
    try:
        services.membership_remove(membership=request.membership, target=target)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _message(exc))
        return redirect("accounts:members")
    if leaving:
        messages.success(request, f"You left {request.workspace.name}.")
        request.session.pop("workspace_id", None)
        return redirect("funnels:list")
    messages.success(request, f"{target.user.email} was removed.")
    return redirect("accounts:members")


@workspace_view(write_role=Role.ADMIN)
@require_POST
def invitation_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = get_object_or_404(request.workspace.invitations.pending(), pk=pk)
    services.invitation_revoke(membership=request.membership, invitation=invitation)
    messages.success(request, f"Invitation to {invitation.email} withdrawn.")
    return redirect("accounts:members")


def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = selectors.invitation_by_token(token=token)
    error = None
    if invitation is None:
        error = "This invitation link is not valid."
    else:
        try:
            services.invitation_check(invitation=invitation)
        except ValidationError as exc:
            error = exc.messages[0]
    if error:
        return render(
            request, "accounts/invite_invalid.html", {"error": error}, status=410
        )

    signup_form = None
    if request.user.is_authenticated:
        if request.method == "POST":
            try:
                membership = services.invitation_accept(token=token, user=request.user)
            except ValidationError as exc:
                messages.error(request, exc.messages[0])
            else:
                set_current_workspace(request, membership.workspace_id)
                messages.success(request, f"You joined {membership.workspace.name}.")
                return redirect("funnels:list")
    else:
        if not selectors.user_exists(email=invitation.email):
            signup_form = InviteSignupForm(request.POST or None)
            if request.method == "POST" and signup_form.is_valid():
                try:
                    user, membership = services.user_signup_from_invitation(
                        token=token, **signup_form.cleaned_data
                    )
                except ValidationError as exc:
                    add_service_errors(signup_form, exc)
                else:
                    login(request, user, backend=BACKEND)
                    set_current_workspace(request, membership.workspace_id)
                    messages.success(
                        request, f"Welcome! You joined {membership.workspace.name}."
                    )
                    return redirect("funnels:list")
    return render(
        request,
        "accounts/invite_accept.html",
        {"invitation": invitation, "signup_form": signup_form},
    )


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or "You are not allowed to do this."


# ---------------------------------------------------------------- API tokens
@workspace_view(read_role=Role.ADMIN, write_role=Role.ADMIN)
def api_tokens(request: HttpRequest) -> HttpResponse:
    """Settings → API: create tokens (the secret is shown once, on this response)
    and see or revoke the existing ones."""
    form = ApiTokenForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        expires_at = None
        if data["expires_on"]:
            tz = timezone.get_current_timezone()
            expires_at = datetime.combine(data["expires_on"], time.max, tzinfo=tz)
        try:
            token, secret = services.api_token_create(
                workspace=request.workspace,
                name=data["name"],
                role=data["role"],
                expires_at=expires_at,
                created_by=request.user,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            created = {"token": token, "secret": secret}
            form = ApiTokenForm()
    status = 422 if form.errors else 200
    return render(
        request,
        "accounts/api_tokens.html",
        {
            "form": form,
            "created": created,
            "tokens": selectors.api_tokens_for(workspace=request.workspace),
            "api_base": request.build_absolute_uri("/api/v1/"),
            "tab": "api",
        },
        status=status,
    )


@workspace_view(read_role=Role.ADMIN, write_role=Role.ADMIN)
@require_POST
def api_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = selectors.api_token_get(workspace=request.workspace, pk=pk)
    if token is None:
        raise Http404("No such token")
    services.api_token_revoke(workspace=request.workspace, token=token)
    messages.success(request, f"Token “{token.name}” revoked; it no longer works.")
    return redirect("accounts:api_tokens")


# ---------------------------------------------------------------- audit log
def _audit_filters(
    request: HttpRequest,
) -> tuple[AuditFilterForm, selectors.AuditFilters, str]:
    form = AuditFilterForm(request.GET or None)
    if not form.is_bound or not form.is_valid():
        return form, selectors.AuditFilters(), ""
    d = form.cleaned_data
    filters = selectors.AuditFilters(
        action=d["action"] or "",
        actor=d["actor"] or "",
        date_from=d["date_from"],
        date_to=d["date_to"],
        q=d["q"] or "",
    )
    return form, filters, d["cursor"] or ""


@workspace_view(read_role=Role.ADMIN, write_role=Role.ADMIN)
def audit_log(request: HttpRequest) -> HttpResponse:
    """Settings → Audit log: who changed what, filterable, newest first."""
    retention_form = AuditRetentionForm(
        request.POST or None,
        initial={"audit_retention_days": request.workspace.audit_retention_days},
    )
    if request.method == "POST" and retention_form.is_valid():
        try:
            services.workspace_set_audit_retention(
                membership=request.membership,
                days=retention_form.cleaned_data["audit_retention_days"],
            )
        except ValidationError as exc:
            add_service_errors(retention_form, exc)
        else:
            messages.success(request, "Audit log retention saved.")
            return redirect("accounts:audit_log")
    form, filters, cursor = _audit_filters(request)
    page = selectors.audit_page(
        workspace=request.workspace, filters=filters, cursor=cursor
    )
    params = request.GET.copy()
    params.pop("cursor", None)
    actors = [("", "Anyone")] + [
        (f"user:{m.user_id}", m.user.email)
        for m in selectors.workspace_members(workspace=request.workspace)
    ]
    actors += [
        (f"token:{t.pk}", f"API token “{t.name}”")
        for t in selectors.api_tokens_for(workspace=request.workspace)
    ]
    actors.append(("system", "System"))
    return render(
        request,
        "accounts/audit_log.html",
        {
            "form": form,
            "retention_form": retention_form,
            "page": page,
            "query": params.urlencode(),
            "actions": selectors.audit_actions(workspace=request.workspace),
            "actors": actors,
            "is_first_page": not cursor,
            "tab": "audit",
        },
        status=422 if retention_form.errors else 200,
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


@workspace_view(read_role=Role.ADMIN)
def audit_export(request: HttpRequest) -> StreamingHttpResponse:
    _form, filters, _cursor = _audit_filters(request)
    rows = selectors.audit_export_rows(workspace=request.workspace, filters=filters)
    writer = csvsafe.writer(_Echo())
    header = ["When", "Who", "IP", "Action", "Type", "Id", "Object", "Changes"]

    def lines() -> Iterator[str]:
        yield "\ufeff"
        yield writer.writerow(header)
        for row in rows:
            *cells, changes = row
            yield writer.writerow(
                [
                    *("" if c is None else c for c in cells),
                    json.dumps(changes, ensure_ascii=False),
                ]
            )

    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
    return response
