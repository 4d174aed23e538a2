from __future__ import annotations

import zoneinfo
from datetime import date

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from . import throttles
from .models import Role, TokenRole

TIMEZONES = sorted(zoneinfo.available_timezones())


def add_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form it came from."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


class SignupForm(forms.Form):
    full_name = forms.CharField(label="Your name", max_length=150, required=False)
    email = forms.EmailField(
        label="Work e-mail",
        max_length=254,
        help_text="We'll e-mail you a link to choose your password.",
    )
    workspace_name = forms.CharField(
        label="Company or workspace name", max_length=120, required=False
    )


class SignupConfirmForm(forms.Form):
    password = forms.CharField(
        label="Choose a password",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 10 characters; not a common password.",
        max_length=128,
    )


class InviteSignupForm(forms.Form):
    full_name = forms.CharField(label="Your name", max_length=150, required=False)
    password = forms.CharField(
        label="Choose a password",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        max_length=128,
    )


class LoginForm(AuthenticationForm):
    username = forms.EmailField(
        label="E-mail", widget=forms.EmailInput(attrs={"autofocus": True})
    )
    error_messages = {
        "invalid_login": "That e-mail and password do not match an account.",
        "inactive": "This account is disabled.",
    }

    def clean(self) -> dict:
        email = self.cleaned_data.get("username")
        if not (email and self.cleaned_data.get("password") and self.request):
            return super().clean()
        # Refused before the password is checked: guessing on reveals nothing.
        if throttles.login_blocked(self.request, email):
            raise ValidationError(throttles.LOGIN_MESSAGE, code="throttled")
        try:
            cleaned = super().clean()
        except ValidationError:
            throttles.login_failed(self.request, email)
            raise
        throttles.login_succeeded(self.request, email)
        return cleaned

    @property
    def throttled(self) -> bool:
        return self.has_error(NON_FIELD_ERRORS, code="throttled")


class WorkspaceCreateForm(forms.Form):
    name = forms.CharField(label="Workspace name", max_length=120)


class WorkspaceSettingsForm(forms.Form):
    name = forms.CharField(label="Workspace name", max_length=120)
    slug = forms.CharField(
        label="Public address",
        max_length=63,
        help_text="Your published funnels live at this subdomain. If you change it, "
        "the old address keeps redirecting to the new one.",
    )
    timezone = forms.ChoiceField(
        label="Time zone", choices=[(tz, tz) for tz in TIMEZONES]
    )
    drop_ip_addresses = forms.BooleanField(
        label="Do not store visitors' IP addresses", required=False
    )
    event_retention_days = forms.IntegerField(
        label="Keep raw events for (days)", min_value=7, max_value=3650
    )


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail", max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.EDITOR)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class FilterDateField(forms.DateField):
    """A date for list and report filters: a clear error for dates no report can
    hold (year 1 or 9999 would overflow the day arithmetic behind the filter)."""

    MIN = date(2000, 1, 1)
    MAX = date(2100, 12, 31)

    def clean(self, value):
        day = super().clean(value)
        if day is not None and not self.MIN <= day <= self.MAX:
            raise forms.ValidationError("Pick a date between the years 2000 and 2100.")
        return day


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        label="Token name",
        max_length=80,
        help_text="Who uses it, e.g. “Zapier” or “CRM sync”.",
    )
    role = forms.ChoiceField(
        label="Access",
        choices=TokenRole.choices,
        initial=TokenRole.READ_ONLY,
        widget=forms.RadioSelect,
    )
    expires_on = forms.DateField(
        label="Expires on",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Leave empty for a token that does not expire.",
    )


class AuditFilterForm(forms.Form):
    action = forms.CharField(required=False, max_length=60, label="Action")
    actor = forms.CharField(required=False, max_length=40, label="Who")
    date_from = FilterDateField(required=False, label="From")
    date_to = FilterDateField(required=False, label="To")
    q = forms.CharField(required=False, max_length=200, label="Object")
    cursor = forms.CharField(required=False, max_length=200)

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return data


class AuditRetentionForm(forms.Form):
    audit_retention_days = forms.IntegerField(
        label="Keep audit entries for (days)", min_value=30, max_value=3650
    )
