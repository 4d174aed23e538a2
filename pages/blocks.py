"""The block registry: every block type is declared here once.

A ``BlockType`` names its settings fields (from which the settings form is built),
their defaults and its one template ``pages/blocks/<type>.html``. That template
renders the block in the editor canvas and on the published page alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from .sanitize import clean_inline, clean_rich, clean_text


@dataclass(frozen=True)
class Field:
    name: str
    # text, inline, rich, textarea, lines, url, int, bool, choice, html, image,
    # step, datetime
    kind: str
    label: str
    default: Any = ""
    choices: tuple[tuple[str, str], ...] = ()
    help: str = ""
    min_value: int | None = None
    max_value: int | None = None
    # Editable in place on the canvas: "inline" (one formatted line), "rich"
    # (paragraphs and lists), "plain" (text only) or "lines" (list items).
    inplace: str = ""


@dataclass(frozen=True)
class BlockType:
    key: str
    label: str
    icon: str
    fields: tuple[Field, ...] = field(default_factory=tuple)
    group: str = "Content"

    @property
    def template(self) -> str:
        return f"pages/blocks/{self.key}.html"

    def defaults(self) -> dict[str, Any]:
        return {f.name: f.default for f in self.fields}


ALIGN = (("center", "Center"), ("left", "Left"), ("right", "Right"))
SIZES = (("xl", "Extra large"), ("lg", "Large"), ("md", "Medium"))
ACTIONS = (
    ("next", "Go to the next step"),
    ("step", "Go to a step"),
    ("url", "Open a URL"),
)

REGISTRY: dict[str, BlockType] = {}


def register(block: BlockType) -> BlockType:
    REGISTRY[block.key] = block
    return block


register(
    BlockType(
        "headline",
        "Headline",
        "H",
        (
            Field(
                "text",
                "inline",
                "Text",
                "Your big, bold promise goes here",
                inplace="inline",
            ),
            Field("size", "choice", "Size", "xl", SIZES),
            Field("align", "choice", "Alignment", "center", ALIGN),
        ),
        "Text",
    )
)
register(
    BlockType(
        "subheadline",
        "Sub-headline",
        "h",
        (
            Field(
                "text",
                "inline",
                "Text",
                "A supporting line that makes the promise concrete",
                inplace="inline",
            ),
            Field("align", "choice", "Alignment", "center", ALIGN),
        ),
        "Text",
    )
)
register(
    BlockType(
        "text",
        "Text",
        "¶",
        (
            Field(
                "html",
                "rich",
                "Text",
                "<p>Write a short paragraph that speaks to your visitor.</p>",
                help="Bold, italic, links and lists are kept; scripts are removed.",
                inplace="rich",
            ),
            Field("align", "choice", "Alignment", "left", ALIGN),
        ),
        "Text",
    )
)
register(
    BlockType(
        "bullets",
        "Bullet list",
        "•",
        (
            Field(
                "items",
                "lines",
                "Items (one per line)",
                ["First benefit", "Second benefit", "Third benefit"],
                inplace="lines",
            ),
            Field(
                "icon",
                "choice",
                "Icon",
                "check",
                (("check", "Check mark"), ("dot", "Dot"), ("arrow", "Arrow")),
            ),
        ),
        "Text",
    )
)
register(
    BlockType(
        "image",
        "Image",
        "▣",
        (
            Field("image_id", "image", "Image", None),
            Field(
                "alt",
                "text",
                "Alt text",
                "",
                help="Describe the image for screen readers.",
            ),
            Field(
                "width",
                "choice",
                "Width",
                "full",
                (("full", "Full width"), ("md", "Medium"), ("sm", "Small")),
            ),
            Field("link", "url", "Link (optional)", ""),
        ),
        "Media",
    )
)
register(
    BlockType(
        "video",
        "Video",
        "▶",
        (
            Field(
                "url",
                "url",
                "YouTube, Vimeo or MP4 URL",
                "",
                help="Nothing loads from the video's host until a visitor clicks play.",
            ),
            Field("caption", "text", "Button text", "Watch the video"),
        ),
        "Media",
    )
)
register(
    BlockType(
        "button",
        "Button",
        "▭",
        (
            Field("text", "text", "Button text", "Yes! I want this", inplace="plain"),
            Field("subtext", "text", "Small text under the label", ""),
            Field("action", "choice", "When clicked", "next", ACTIONS),
            Field("step_id", "step", "Step", None),
            Field("url", "url", "URL", ""),
            Field("align", "choice", "Alignment", "center", ALIGN),
            Field("size", "choice", "Size", "lg", (("lg", "Large"), ("md", "Medium"))),
        ),
        "Actions",
    )
)
register(
    BlockType(
        "optin_form",
        "Opt-in form",
        "✉",
        (
            Field("show_name", "bool", "Ask for first name", True),
            Field("show_phone", "bool", "Ask for phone", False),
            Field(
                "custom_fields", "lines", "Extra text fields (one label per line)", []
            ),
            Field("consent", "bool", "Consent checkbox", True),
            Field(
                "consent_text",
                "text",
                "Consent text",
                "I agree to receive emails. Unsubscribe anytime.",
            ),
            Field("button_text", "text", "Button text", "Send me the free guide"),
            Field("note", "text", "Note under the button", "We respect your privacy."),
        ),
        "Actions",
    )
)
register(
    BlockType(
        "order_form",
        "Order form",
        "$",
        (
            Field("heading", "text", "Heading", "Complete your order"),
            Field("bump", "bool", "Show order bump", True),
            Field(
                "bump_text",
                "text",
                "Order bump offer",
                "Yes! Add the express workbook for just $7",
            ),
            Field("button_text", "text", "Button text", "Complete my order"),
        ),
        "Actions",
    )
)
register(
    BlockType(
        "upsell_buttons",
        "Upsell accept / decline",
        "⇅",
        (
            Field("accept_text", "text", "Accept button", "Yes! Add this to my order"),
            Field(
                "decline_text",
                "text",
                "Decline link",
                "No thanks, I'll pass on this offer",
            ),
        ),
        "Actions",
    )
)
register(
    BlockType(
        "countdown",
        "Countdown",
        "◔",
        (
            Field(
                "mode",
                "choice",
                "Mode",
                "evergreen",
                (("evergreen", "Evergreen (per visitor)"), ("fixed", "Fixed deadline")),
            ),
            Field(
                "minutes", "int", "Evergreen minutes", 15, min_value=1, max_value=100000
            ),
            Field("deadline", "datetime", "Fixed deadline (UTC)", ""),
            Field("label", "text", "Label", "This offer expires in"),
        ),
        "Conversion",
    )
)
register(
    BlockType(
        "testimonial",
        "Testimonial",
        "❝",
        (
            Field(
                "quote",
                "textarea",
                "Quote",
                "This changed the way I run my business. Worth every penny.",
            ),
            Field("name", "text", "Name", "Sarah Jensen"),
            Field("role", "text", "Role", "Founder, Bloom Studio"),
            Field("image_id", "image", "Photo", None),
        ),
        "Conversion",
    )
)
register(
    BlockType(
        "faq",
        "FAQ / accordion",
        "?",
        (
            Field(
                "items",
                "lines",
                "Questions and answers (Question | Answer, one per line)",
                [
                    "How long do I get access? | Forever, including all future updates.",  # noqa: E501
                    "Is there a guarantee? | Yes, 30 days, no questions asked.",
                ],
            ),
        ),
        "Conversion",
    )
)
register(
    BlockType(
        "divider",
        "Divider",
        "—",
        (
            Field(
                "style",
                "choice",
                "Style",
                "solid",
                (("solid", "Solid"), ("dashed", "Dashed"), ("dotted", "Dotted")),
            ),
        ),
        "Layout",
    )
)
register(
    BlockType(
        "spacer",
        "Spacer",
        "↕",
        (Field("height", "int", "Height (px)", 40, min_value=0, max_value=400),),
        "Layout",
    )
)
register(
    BlockType(
        "custom_html",
        "Custom HTML",
        "</>",
        (
            Field(
                "html",
                "html",
                "HTML",
                "<p>Paste an embed or tracking pixel here.</p>",
                help="Runs in a sandboxed frame: it cannot read this site's cookies or pages.",  # noqa: E501
            ),
            Field(
                "height", "int", "Frame height (px)", 150, min_value=20, max_value=3000
            ),
        ),
        "Advanced",
    )
)


def get(key: str) -> BlockType:
    try:
        return REGISTRY[key]
    except KeyError:
        raise ValidationError(f"Unknown block type “{key}”.") from None


def groups() -> list[tuple[str, list[BlockType]]]:
    out: dict[str, list[BlockType]] = {}
    for block in REGISTRY.values():
        out.setdefault(block.group, []).append(block)
    return list(out.items())


def summary(block: dict[str, Any], limit: int = 60) -> str:
    """A block's accessible name on the canvas: its type and first words."""
    bt = REGISTRY.get(block.get("type", ""))
    if bt is None:
        return "Block"
    settings = settings_with_defaults(block)
    for f in bt.fields:
        if f.kind not in ("text", "inline", "rich", "textarea", "lines"):
            continue
        value = settings.get(f.name)
        if isinstance(value, list):
            value = value[0] if value else ""
        text = " ".join(clean_text(str(value or "")).split())
        if text:
            if len(text) > limit:
                text = text[: limit - 1].rstrip() + "…"
            return f"{bt.label}: {text}"
    return bt.label


def inplace_field(block_type: BlockType, name: str) -> Field | None:
    """The field of that name if it is edited in place on the canvas."""
    return next((f for f in block_type.fields if f.name == name and f.inplace), None)


def clean_inplace(f: Field, value: str) -> Any:
    """What the canvas editor sent, as the field stores it (sanitised)."""
    if f.inplace == "inline":
        return clean_inline(value)
    if f.inplace == "rich":
        return clean_rich(value)
    if f.inplace == "lines":
        items = [" ".join(clean_text(line).split()) for line in value.splitlines()]
        return [item for item in items if item][:50]
    return " ".join(clean_text(value).split())[:500]


def settings_with_defaults(block: dict[str, Any]) -> dict[str, Any]:
    bt = REGISTRY.get(block.get("type", ""))
    if bt is None:
        return dict(block.get("settings", {}))
    return {**bt.defaults(), **block.get("settings", {})}


# Settings forms ---------------------------------------------------------------


def _form_field(f: Field, step_choices: list[tuple[str, str]]) -> forms.Field:
    common = {"label": f.label, "required": False, "help_text": f.help}
    if f.kind in ("text", "inline"):
        return forms.CharField(max_length=500, **common)
    if f.kind in ("rich", "textarea", "html", "lines"):
        return forms.CharField(
            max_length=50000, widget=forms.Textarea(attrs={"rows": 4}), **common
        )
    if f.kind == "url":
        return forms.URLField(max_length=500, assume_scheme="https", **common)
    if f.kind == "int":
        return forms.IntegerField(
            min_value=f.min_value, max_value=f.max_value, **common
        )
    if f.kind == "bool":
        return forms.BooleanField(**common)
    if f.kind == "choice":
        return forms.ChoiceField(choices=f.choices, **common)
    if f.kind == "step":
        return forms.ChoiceField(choices=[("", "—"), *step_choices], **common)
    if f.kind == "datetime":
        return forms.DateTimeField(
            widget=forms.DateTimeInput(
                attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
            ),
            input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
            **common,
        )
    if f.kind == "image":
        return forms.IntegerField(widget=forms.HiddenInput, **common)
    raise ValueError(f.kind)


def settings_form(
    block_type: BlockType,
    *,
    data: Any = None,
    initial: dict[str, Any] | None = None,
    step_choices: list[tuple[str, str]] | None = None,
    prefix: str | None = None,
) -> forms.Form:
    fields = {f.name: _form_field(f, step_choices or []) for f in block_type.fields}
    form_class = type(f"{block_type.key.title()}SettingsForm", (forms.Form,), fields)
    initial = dict(initial or {})
    for f in block_type.fields:
        if f.kind == "lines" and isinstance(initial.get(f.name), list):
            initial[f.name] = "\n".join(initial[f.name])
    return form_class(data=data, initial=initial, prefix=prefix)


def clean_settings(block_type: BlockType, cleaned: dict[str, Any]) -> dict[str, Any]:
    """Turn a valid form's cleaned_data into stored settings (sanitized)."""
    out: dict[str, Any] = {}
    for f in block_type.fields:
        value = cleaned.get(f.name)
        if f.kind == "text":
            value = clean_text(value or "")
        elif f.kind == "inline":
            value = clean_inline(value or "")
        elif f.kind == "rich":
            value = clean_rich(value or "")
        elif f.kind == "textarea":
            value = clean_text(value or "")
        elif f.kind == "lines":
            value = [clean_text(line).strip() for line in (value or "").splitlines()]
            value = [line for line in value if line][:50]
        elif f.kind == "datetime":
            value = value.strftime("%Y-%m-%dT%H:%M") if value else ""
        elif f.kind == "int" and value is None:
            value = f.default
        elif f.kind == "html":
            value = value or ""
        elif f.kind in ("image", "step") and value in (None, ""):
            # Images are set by the upload/picker, not by the settings form.
            if f.kind == "image":
                continue
            value = None
        elif f.kind in ("url",):
            value = value or ""
        out[f.name] = value
    return out
