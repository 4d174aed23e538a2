from __future__ import annotations

from django import forms

from accounts.forms import FilterDateField

from .models import WebhookEvent
from .selectors import SORTS


class LeadFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    funnel = forms.IntegerField(required=False, min_value=1)
    step = forms.IntegerField(required=False, min_value=1)
    tag = forms.IntegerField(required=False, min_value=1)
    date_from = FilterDateField(required=False, label="From")
    date_to = FilterDateField(required=False, label="To")
    source = forms.CharField(required=False, max_length=120)
    sort = forms.ChoiceField(
        required=False,
        choices=[(k, k) for k in SORTS],
    )
    cursor = forms.CharField(required=False, max_length=500)

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def to_filters(self):
        """The list's filters; no filter at all when the form is unbound or invalid."""
        from .selectors import LeadFilters

        if not self.is_bound or not self.is_valid():
            return LeadFilters()
        d = self.cleaned_data
        return LeadFilters(
            q=d["q"] or "",
            funnel_id=d["funnel"],
            step_id=d["step"],
            tag_id=d["tag"],
            date_from=d["date_from"],
            date_to=d["date_to"],
            source=d["source"] or "",
            sort=d["sort"] or "newest",
        )


class BulkTagForm(forms.Form):
    tag = forms.CharField(max_length=60, label="Tag")
    leads = forms.TypedMultipleChoiceField(coerce=int, choices=())

    def __init__(self, *args, lead_ids: list[int] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["leads"].choices = [(i, i) for i in (lead_ids or [])]


class WebhookForm(forms.Form):
    url = forms.URLField(label="Endpoint URL", max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple
    )
