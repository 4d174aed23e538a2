from __future__ import annotations

from django import forms

from accounts.models import Workspace
from funnels.models import Funnel

from .models import ButtonStyle, FunnelTheme, Page, SpeedBudget
from .sanitize import clean_text

MAX_RADIUS = 60


IMAGE_ACCEPT = "image/png,image/jpeg,image/gif,image/webp"


class PageSettingsForm(forms.ModelForm):
    social_image = forms.URLField(
        label="Social image URL",
        max_length=500,
        required=False,
        assume_scheme="https",
        help_text="Shown when the page is shared; or upload one below.",
    )
    social_image_upload = forms.FileField(
        label="Upload a social image",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": IMAGE_ACCEPT}),
        help_text="1200 × 630 px works best on every network.",
    )
    favicon = forms.CharField(
        label="Favicon URL",
        max_length=500,
        required=False,
        help_text="The small icon in the browser tab; or upload one below.",
    )
    favicon_upload = forms.FileField(
        label="Upload a favicon",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": IMAGE_ACCEPT}),
        help_text="Any square image; it is resized to 64 × 64 px.",
    )

    class Meta:
        model = Page
        fields = [
            "name",
            "title",
            "meta_description",
            "social_image",
            "social_image_upload",
            "favicon",
            "favicon_upload",
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

    def clean_favicon(self) -> str:
        """An uploaded favicon is stored as a path on this site (/media/...);
        a typed one must be an http(s) address."""
        value = (self.cleaned_data.get("favicon") or "").strip()
        if not value or (value.startswith("/") and not value.startswith("//")):
            return value
        return forms.URLField(assume_scheme="https").clean(value)

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
        if data.get("button_style") != ButtonStyle.ROUNDED and radius is not None:
            # Pill and square buttons ignore the radius: an old out-of-range value
            # must not stop a colour-only change from saving.
            data["button_radius"] = max(0, min(radius, MAX_RADIUS))
        elif radius is not None and radius > MAX_RADIUS:
            self.add_error("button_radius", f"At most {MAX_RADIUS} px.")
        if self.errors:
            self.add_error(
                None, "The theme was not saved: fix the fields marked below."
            )
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


class SpeedBudgetForm(forms.ModelForm):
    class Meta:
        model = SpeedBudget
        fields = [
            "mode",
            "max_html_css_kb",
            "max_first_view_image_kb",
            "allow_blocking_scripts",
        ]
        widgets = {"mode": forms.RadioSelect}
        help_texts = {
            "max_html_css_kb": "The page itself and its styles. 40 KB keeps a page "
            "fast on a slow phone connection.",
            "max_first_view_image_kb": "What a visitor downloads before scrolling.",
        }

    def clean_max_html_css_kb(self) -> int:
        value = self.cleaned_data["max_html_css_kb"]
        if not 10 <= value <= 2000:
            raise forms.ValidationError("Between 10 and 2,000 KB.")
        return value

    def clean_max_first_view_image_kb(self) -> int:
        value = self.cleaned_data["max_first_view_image_kb"]
        if not 20 <= value <= 20000:
            raise forms.ValidationError("Between 20 and 20,000 KB.")
        return value
