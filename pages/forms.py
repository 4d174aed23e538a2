from __future__ import annotations

from django import forms

from accounts.models import Workspace
from funnels.models import Funnel

from .models import FunnelTheme, Page
from .sanitize import clean_text


class PageSettingsForm(forms.ModelForm):
    social_image = forms.URLField(max_length=500, required=False, assume_scheme="https")
    favicon = forms.URLField(max_length=500, required=False, assume_scheme="https")

    class Meta:
        model = Page
        fields = [
            "name",
            "title",
            "meta_description",
            "social_image",
            "favicon",
            "noindex",
            "head_code",
            "footer_code",
        ]
        widgets = {
            "meta_description": forms.Textarea(attrs={"rows": 2}),
            "head_code": forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
            "footer_code": forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        }
        help_texts = {
            "head_code": "Added to <head> of the published page only, never in the editor.",  # noqa: E501
            "footer_code": "Added before </body> of the published page only.",
        }

    def clean_title(self) -> str:
        return clean_text(self.cleaned_data["title"])

    def clean_meta_description(self) -> str:
        return clean_text(self.cleaned_data["meta_description"])

    def clean_name(self) -> str:
        return clean_text(self.cleaned_data["name"]) or "Variant A"


class ThemeForm(forms.ModelForm):
    class Meta:
        model = FunnelTheme
        fields = [
            "primary_color",
            "accent_color",
            "text_color",
            "background_color",
            "font_family",
            "button_style",
            "button_radius",
        ]
        widgets = {
            f: forms.TextInput(attrs={"type": "color"})
            for f in ("primary_color", "accent_color", "text_color", "background_color")
        }

    def clean(self) -> dict:
        data = super().clean()
        import re

        for key in ("primary_color", "accent_color", "text_color", "background_color"):
            value = data.get(key)
            if value and not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
                self.add_error(key, "Use a colour like #4f46e5.")
        radius = data.get("button_radius")
        if radius is not None and radius > 60:
            self.add_error("button_radius", "At most 60 px.")
        return data


class ImageUploadForm(forms.Form):
    image = forms.FileField()
    block_id = forms.CharField(max_length=40, required=False)


class TemplateCreateForm(forms.Form):
    template = forms.CharField(max_length=40)
    name = forms.CharField(max_length=120)

    def clean_name(self) -> str:
        name = clean_text(self.cleaned_data["name"]).strip()
        if not name:
            raise forms.ValidationError("Give your funnel a name.")
        return name


class DomainForm(forms.Form):
    host = forms.CharField(
        label="Domain name",
        max_length=300,
        widget=forms.TextInput(
            attrs={"placeholder": "shop.example.com", "autocomplete": "off"}
        ),
    )
    funnel = forms.ModelChoiceField(queryset=Funnel.objects.none(), empty_label=None)

    def __init__(self, *args, workspace: Workspace, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["funnel"].queryset = Funnel.objects.filter(
            workspace=workspace, archived_at__isnull=True
        ).order_by("name")
