from __future__ import annotations

from datetime import date, timedelta

from django import forms
from django.utils import timezone

from .reports import ReportFilters

PRESETS = [
    ("today", "Today"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("90d", "Last 90 days"),
    ("custom", "Custom"),
]
MAX_DAYS = 366 * 3
EARLIEST = date(2000, 1, 1)
FIELD_LABELS = {
    "range": "date range",
    "date_from": "start date (use YYYY-MM-DD)",
    "date_to": "end date (use YYYY-MM-DD)",
    "source": "source (at most 200 characters)",
    "medium": "medium (at most 200 characters)",
    "campaign": "campaign (at most 200 characters)",
}


class RangeForm(forms.Form):
    range = forms.ChoiceField(choices=PRESETS, required=False)
    date_from = forms.DateField(required=False)
    date_to = forms.DateField(required=False)
    source = forms.CharField(required=False, max_length=200)
    medium = forms.CharField(required=False, max_length=200)
    campaign = forms.CharField(required=False, max_length=200)

    def resolve(self, today: date | None = None) -> tuple[date, date, list[str]]:
        """The period to show, and notes when the input had to be corrected."""
        today = today or timezone.localdate()
        notes: list[str] = []
        self.is_valid()
        # Valid fields are used; each invalid one is named and ignored.
        data = self.cleaned_data
        for name in self.errors:
            label = FIELD_LABELS.get(name, name)
            value = str(self.data.get(name, ""))[:40]
            notes.append(f"“{value}” is not a valid {label}; it was ignored.")
        preset = data.get("range") or ("custom" if data.get("date_from") else "30d")
        if preset != "custom":
            days = {"today": 1, "7d": 7, "30d": 30, "90d": 90}[preset]
            return today - timedelta(days=days - 1), today, notes
        start = data.get("date_from") or today - timedelta(days=29)
        end = data.get("date_to") or today
        if start > end:
            start, end = end, start
            notes.append("The start date was after the end date; they were swapped.")
        first, last = EARLIEST, today + timedelta(days=366)
        if start < first or end > last:
            start = min(max(start, first), last)
            end = min(max(end, first), last)
            notes.append(
                f"Only dates from {first:%b %-d, %Y} to {last:%b %-d, %Y} can hold "
                "data; the range was moved into them."
            )
        if (end - start).days + 1 > MAX_DAYS:
            start = end - timedelta(days=MAX_DAYS - 1)
            notes.append("Ranges are limited to three years; the start was moved.")
        return start, end, notes


def range_filters(data) -> tuple[RangeForm, ReportFilters, list[str]]:
    """The period and first-touch filters a dashboard URL asks for (30 days by
    default), with notes naming what was wrong and ignored."""
    form = RangeForm(data or None)
    if not form.is_bound:
        form = RangeForm({"range": "30d"})
    start, end, notes = form.resolve()
    cleaned = form.cleaned_data  # the valid fields; resolve() named the others
    filters = ReportFilters(
        start,
        end,
        source=cleaned.get("source") or "",
        medium=cleaned.get("medium") or "",
        campaign=cleaned.get("campaign") or "",
    )
    return form, filters, notes


class AdSpendForm(forms.Form):
    source = forms.CharField(max_length=200, help_text="The utm_source, e.g. facebook")
    date_from = forms.DateField(label="From")
    date_to = forms.DateField(label="To")
    amount = forms.CharField(max_length=20, help_text="e.g. 250 or 250.00")
    currency = forms.CharField(max_length=3, initial="USD")
    csv_file = forms.FileField(required=False, label="…or upload a CSV")

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return data
