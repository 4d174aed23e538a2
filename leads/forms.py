from __future__ import annotations

from django import forms

from accounts.forms import FilterDateField

from .models import SequenceTrigger, WebhookEvent
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


DELAY_UNITS = {"minutes": 1, "hours": 60, "days": 60 * 24}
MAX_DELAY = 365 * 60 * 24  # minutes


class SequenceForm(forms.Form):
    name = forms.CharField(max_length=120, label="Name")
    funnel = forms.ModelChoiceField(
        queryset=None,
        required=False,
        label="Funnel it brings people back to",
        help_text="Its address is {{ funnel_url }}; “came back” and “bought” are "
        "counted in it.",
    )
    trigger = forms.ChoiceField(
        choices=SequenceTrigger.choices, label="Leads enter the sequence by"
    )
    trigger_step = forms.ModelChoiceField(
        queryset=None,
        required=False,
        label="Step that starts it",
        help_text="For an opt-in: the step with the form. For an abandoned "
        "checkout: the order form.",
    )
    track_opens = forms.BooleanField(
        required=False, label="Count opens with a tracking pixel"
    )
    is_active = forms.BooleanField(
        required=False, initial=True, label="Active: send its e-mails"
    )

    def __init__(self, *args, workspace, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from funnels.models import Funnel, Step

        self.fields["funnel"].queryset = Funnel.objects.filter(
            workspace=workspace
        ).order_by("name")
        self.fields["trigger_step"].queryset = (
            Step.objects.filter(workspace=workspace)
            .select_related("funnel")
            .order_by("funnel__name", "position")
        )
        self.fields["trigger_step"].label_from_instance = (  # type: ignore[attr-defined]
            lambda step: f"{step.funnel.name} › {step.name}"
        )


class SequenceStepForm(forms.Form):
    delay = forms.IntegerField(
        min_value=0, max_value=60 * 24 * 365, initial=0, label="Wait"
    )
    unit = forms.ChoiceField(
        choices=[(k, k) for k in DELAY_UNITS], initial="days", label="Unit"
    )
    subject = forms.CharField(max_length=200, label="Subject")
    body = forms.CharField(
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 8}),
        label="E-mail",
        help_text="Merge fields: {{ first_name }} {{ last_name }} {{ name }} "
        "{{ email }} {{ funnel_url }} {{ unsubscribe_url }}. Every link is "
        "tracked; an unsubscribe link is added at the foot.",
    )
    unless_bought = forms.ModelChoiceField(
        queryset=None,
        required=False,
        label="Only to leads who have not bought",
        empty_label="(everyone)",
    )

    def __init__(self, *args, workspace, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from funnels.models import Product

        self.fields["unless_bought"].queryset = Product.objects.filter(
            workspace=workspace
        ).order_by("name")

    def clean(self) -> dict:
        data = super().clean()
        if "delay" in data and "unit" in data and self.delay_minutes > MAX_DELAY:
            self.add_error("delay", "Wait at most 365 days between two e-mails.")
        return data

    @property
    def delay_minutes(self) -> int:
        return self.cleaned_data["delay"] * DELAY_UNITS[self.cleaned_data["unit"]]

    @staticmethod
    def initial_for(step) -> dict:
        minutes = step.delay_minutes
        unit = next(
            (u for u in ("days", "hours") if minutes and minutes % DELAY_UNITS[u] == 0),
            "minutes",
        )
        return {
            "delay": minutes // DELAY_UNITS[unit],
            "unit": unit,
            "subject": step.subject,
            "body": step.body,
            "unless_bought": step.unless_bought_id,
        }


class CohortSequenceForm(forms.Form):
    sequence = forms.ModelChoiceField(queryset=None, label="Sequence")

    def __init__(self, *args, workspace, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from .models import Sequence

        self.fields["sequence"].queryset = Sequence.objects.filter(
            workspace=workspace
        ).order_by("name")
