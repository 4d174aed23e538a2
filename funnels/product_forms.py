from __future__ import annotations

from django import forms

from .models import Billing, Interval
from .money import CURRENCIES, parse_money


class ProductForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False
    )
    price = forms.CharField(
        label="Price", max_length=20, help_text="For example 27 or 27.00"
    )
    compare_at = forms.CharField(
        label="Regular price (optional)",
        max_length=20,
        required=False,
        help_text="Shown as “normally …” and used for savings; above the price",
    )
    currency = forms.ChoiceField(choices=[(c, c) for c in CURRENCIES], initial="USD")
    billing = forms.ChoiceField(choices=Billing.choices, initial=Billing.ONE_TIME)
    interval = forms.ChoiceField(
        choices=[("", "—"), *Interval.choices], required=False, label="Billed"
    )
    image_url = forms.CharField(max_length=500, required=False, label="Image URL")

    def clean(self) -> dict:
        data = super().clean()
        if "price" in data and "currency" in data:
            try:
                data["price_minor"] = parse_money(data["price"], data["currency"])
            except ValueError as exc:
                self.add_error("price", str(exc))
            data["compare_at_minor"] = None
            if data.get("compare_at"):
                try:
                    regular = parse_money(data["compare_at"], data["currency"])
                except ValueError as exc:
                    self.add_error("compare_at", str(exc))
                else:
                    if regular <= data.get("price_minor", 0):
                        self.add_error(
                            "compare_at", "The regular price must be above the price."
                        )
                    data["compare_at_minor"] = regular
        if data.get("billing") == Billing.SUBSCRIPTION and not data.get("interval"):
            self.add_error("interval", "Choose how often a subscription is billed.")
        if data.get("billing") == Billing.ONE_TIME:
            data["interval"] = ""
        return data
