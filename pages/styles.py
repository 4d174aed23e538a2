"""Block and section styles: what a marketer may set, how it is cleaned, how it
renders.

A block's style lives beside its settings in the page document
(``{"id", "type", "settings", "style": {...}}``); a section's extra style keys
live in its ``settings``. Every value is chosen from a short list (spacing and
radius in steps, not pixels) or is a ``#rrggbb`` colour, so a style can never
carry CSS of its own: ``clean_block_style`` drops unknown keys and refuses bad
values, and rendering only ever emits class names plus ``color`` and
``background-color`` declarations built from cleaned values. The same wrapper
is rendered on the canvas and on the published page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

HEX = re.compile(r"#[0-9a-fA-F]{6}")

# Theme colours are kept as names so that a block follows its funnel's theme.
COLOR_TOKENS = {
    "primary": ("Brand", "var(--of-primary)"),
    "accent": ("Accent", "var(--of-accent)"),
    "text": ("Ink", "var(--of-text)"),
    "muted": ("Soft", "color-mix(in srgb, var(--of-text) 65%, transparent)"),
    "light": ("Light", "color-mix(in srgb, var(--of-primary) 7%, #f8fafc)"),
    "white": ("White", "#ffffff"),
    "dark": ("Night", "#0f172a"),
}
# As text, brand and accent colours are deepened so small text stays readable
# (WCAG AA) on white and on the light section tints.
TEXT_TOKENS = {
    "primary": "color-mix(in srgb, var(--of-primary) 78%, #000)",
    "accent": "color-mix(in srgb, var(--of-accent) 55%, #000)",
}
STEPS = {"0": "None", "1": "S", "2": "M", "3": "L", "4": "XL"}
CHOICES: dict[str, dict[str, str]] = {
    "padding": STEPS,
    "margin": STEPS,
    "radius": {"0": "None", "1": "S", "2": "M", "3": "L", "4": "Round"},
    "shadow": {"0": "None", "1": "Soft", "2": "Lifted", "3": "Floating"},
    "align": {"left": "Left", "center": "Center", "right": "Right"},
    "width": {"full": "Full", "lg": "Wide", "md": "Medium", "sm": "Narrow"},
    "font": {"heading": "Heading font", "body": "Body font"},
}
FLAGS = ("hide_mobile", "hide_desktop")
COLORS = ("color", "background")
LABELS = {
    "color": "Text colour",
    "background": "Background",
    "padding": "Padding",
    "margin": "Space below",
    "radius": "Corners",
    "shadow": "Shadow",
    "align": "Alignment",
    "width": "Width",
    "font": "Font",
    "hide_mobile": "Hide on mobile",
    "hide_desktop": "Hide on desktop",
}

# Section extras (stored in section["settings"] beside background and width).
OVERLAYS = {str(n): f"{n} %" for n in range(0, 90, 10)}
SECTION_PADDING = {"0": "None", "1": "S", "2": "M", "3": "L", "4": "XL"}


def _color(key: str, value: Any) -> str:
    value = str(value or "").strip()
    if not value or value in COLOR_TOKENS:
        return value
    if HEX.fullmatch(value):
        return value.lower()
    raise ValidationError(
        f"{LABELS[key]}: use a theme colour or a colour like #4f46e5."
    )


def clean_block_style(data: Mapping[str, Any]) -> dict[str, Any]:
    """Only known keys with allowed values; empty values are left out.

    Raises ValidationError naming the first bad value (nothing is stored then).
    """
    out: dict[str, Any] = {}
    for key in COLORS:
        value = _color(key, data.get(key))
        if value:
            out[key] = value
    for key, allowed in CHOICES.items():
        value = str(data.get(key) or "").strip()
        if not value:
            continue
        if value not in allowed:
            raise ValidationError(f"{LABELS[key]}: “{value[:20]}” is not an option.")
        out[key] = value
    for key in FLAGS:
        if str(data.get(key, "")).lower() in ("1", "true", "on", "yes"):
            out[key] = True
    if out.get("hide_mobile") and out.get("hide_desktop"):
        raise ValidationError(
            "A block hidden on both mobile and desktop would never show: "
            "untick one of them."
        )
    return out


def _color_css(value: str, text: bool = False) -> str:
    if text and value in TEXT_TOKENS:
        return TEXT_TOKENS[value]
    if value in COLOR_TOKENS:
        return COLOR_TOKENS[value][1]
    return value if HEX.fullmatch(value) else ""


def block_classes(style: Mapping[str, Any]) -> str:
    classes = ["of-s"]
    for key, prefix in (
        ("padding", "of-p"),
        ("margin", "of-mb"),
        ("radius", "of-r"),
        ("shadow", "of-sh"),
        ("align", "of-ta"),
        ("width", "of-bw"),
        ("font", "of-f"),
    ):
        value = style.get(key)
        if value in CHOICES[key]:
            classes.append(f"{prefix}-{value}")
    if style.get("color"):
        classes.append("of-has-color")
    if style.get("background"):
        classes.append("of-has-bg")
    if style.get("hide_mobile"):
        classes.append("of-hide-m")
    if style.get("hide_desktop"):
        classes.append("of-hide-d")
    return " ".join(classes)


def inline_css(style: Mapping[str, Any]) -> str:
    parts = []
    color = _color_css(str(style.get("color") or ""), text=True)
    if color:
        parts.append(f"--of-c:{color};color:{color}")
    background = _color_css(str(style.get("background") or ""))
    if background:
        parts.append(f"background-color:{background}")
    return ";".join(parts)


def wrap_block(html: str, style: Mapping[str, Any] | None) -> SafeString:
    """The block's HTML inside its style wrapper (nothing added when unstyled)."""
    if not style:
        return mark_safe(html)
    css = inline_css(style)
    if css:
        return format_html(
            '<div class="{}" style="{}">{}</div>',
            block_classes(style),
            css,
            mark_safe(html),
        )
    return format_html(
        '<div class="{}">{}</div>', block_classes(style), mark_safe(html)
    )


def clean_section_style(data: Mapping[str, Any]) -> dict[str, Any]:
    """Section extras: text colour, padding, overlay, visibility (the background
    image id is set by the upload service, not by this form)."""
    out: dict[str, Any] = {}
    value = _color("color", data.get("color"))
    out["color"] = value
    custom = str(data.get("bg_color") or "").strip()
    if custom and not HEX.fullmatch(custom):
        raise ValidationError("Background: use a colour like #4f46e5.")
    out["bg_color"] = custom.lower()
    for key, allowed in (("padding", SECTION_PADDING), ("overlay", OVERLAYS)):
        value = str(data.get(key) or "").strip()
        if value and value not in allowed:
            raise ValidationError(f"Section {key}: “{value[:20]}” is not an option.")
        out[key] = value
    for key in FLAGS:
        out[key] = str(data.get(key, "")).lower() in ("1", "true", "on", "yes")
    if out["hide_mobile"] and out["hide_desktop"]:
        raise ValidationError(
            "A section hidden on both mobile and desktop would never show: "
            "untick one of them."
        )
    return out


def section_classes(settings: Mapping[str, Any]) -> str:
    classes = []
    if settings.get("padding") in SECTION_PADDING:
        classes.append(f"of-sp-{settings['padding']}")
    if settings.get("hide_mobile"):
        classes.append("of-hide-m")
    if settings.get("hide_desktop"):
        classes.append("of-hide-d")
    if settings.get("bg_image"):
        classes.append("of-has-image")
    return " ".join(classes)


def section_css(settings: Mapping[str, Any], image_url: str = "") -> str:
    parts = []
    color = _color_css(str(settings.get("color") or ""), text=True)
    if color:
        parts.append(f"color:{color};--of-c:{color}")
    bg = str(settings.get("bg_color") or "")
    if HEX.fullmatch(bg):
        parts.append(f"background-color:{bg}")
    if image_url:
        overlay = (
            int(settings.get("overlay") or 0)
            if str(settings.get("overlay") or "0").isdigit()
            else 0
        )
        shade = f"rgba(15,23,42,{overlay / 100:.2f})"
        # The URL comes from our own storage (an ImageAsset of this workspace).
        parts.append(
            f"background-image:linear-gradient({shade},{shade}),url('{image_url}')"
        )
    return ";".join(parts)


def form_context(style: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the editor's style panel shows for a block's current style."""
    style = style or {}
    colors = []
    for key in COLORS:
        current = str(style.get(key) or "")
        colors.append(
            {
                "key": key,
                "label": LABELS[key],
                "current": current if current in COLOR_TOKENS else "",
                "custom": current if HEX.fullmatch(current) else "",
            }
        )
    return {
        "tokens": [(k, name, css) for k, (name, css) in COLOR_TOKENS.items()],
        "colors": colors,
        "choices": [
            {
                "key": key,
                "label": LABELS[key],
                "options": list(CHOICES[key].items()),
                "current": str(style.get(key) or ""),
            }
            for key in (
                "align",
                "width",
                "padding",
                "margin",
                "font",
                "radius",
                "shadow",
            )
        ],
        "current": style,
    }


def from_post(data: Mapping[str, Any]) -> dict[str, Any]:
    """The panel's fields as style values: "custom" takes the colour picker."""
    out = {key: data.get(key, "") for key in (*CHOICES, *FLAGS)}
    for key in COLORS:
        value = data.get(key, "")
        out[key] = data.get(f"{key}_custom", "") if value == "custom" else value
    return out
