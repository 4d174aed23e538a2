from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from .models import Stage, StepKind


def add_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form's fields (or on top)."""
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


class FunnelCreateForm(forms.Form):
    name = forms.CharField(
        max_length=120,
        widget=forms.TextInput(
            attrs={"autofocus": True, "placeholder": "Free guide: 7 funnel mistakes"}
        ),
    )
    slug = forms.CharField(
        max_length=80,
        required=False,
        label="URL",
        help_text="Where visitors find it on your workspace's address. Leave blank "
        "to use the name.",
        widget=forms.TextInput(
            attrs={"placeholder": "free-guide", "data-slug-from": "#id_name"}
        ),
    )


class FunnelUpdateForm(forms.Form):
    name = forms.CharField(max_length=120)
    slug = forms.CharField(max_length=80, label="URL")


class FunnelDeleteForm(forms.Form):
    confirm_name = forms.CharField(
        max_length=200, label="Type the funnel name to confirm"
    )


class StepCreateForm(forms.Form):
    kind = forms.ChoiceField(choices=StepKind.choices)
    name = forms.CharField(max_length=120, required=False)


class StepUpdateForm(forms.Form):
    name = forms.CharField(max_length=120)
    slug = forms.CharField(max_length=80, label="URL")
    # Absent (older forms, API-less posts): unchanged; "" → the kind's default.
    stage = forms.ChoiceField(
        choices=[("", "Default for the kind"), *Stage.choices], required=False
    )
    accept_target = forms.IntegerField(required=False)
    decline_target = forms.IntegerField(required=False)


class StepReorderForm(forms.Form):
    order = forms.CharField(max_length=5000)

    def clean_order(self) -> list[int]:
        raw = [p for p in self.cleaned_data["order"].split(",") if p.strip()]
        try:
            return [int(p) for p in raw]
        except ValueError:
            raise ValidationError("The order must be a list of step ids.") from None
