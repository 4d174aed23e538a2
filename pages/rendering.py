"""Render page documents to HTML: the editor canvas and the published page share
the same block templates."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

from django.template.loader import get_template, render_to_string
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from . import blocks, styles
from .documents import Doc, Node


@dataclass
class RenderContext:
    editor: bool = False
    next_url: str = "#"
    form_action: str = "#"
    step_urls: dict[str, str] = field(default_factory=dict)
    images: dict[int, Any] = field(default_factory=dict)
    page: Any = None
    selected_id: str | None = None
    request: Any = None
    # Published pages only: where this step's forms post, and what it sells.
    optin_action: str = "#"
    order_action: str = "#"
    accept_action: str = "#"
    decline_action: str = "#"
    offer: Any = None
    # A refused form post shown again: what the visitor typed and what was wrong.
    form_values: dict[str, str] = field(default_factory=dict)
    form_errors: dict[str, list[str]] = field(default_factory=dict)

    # Set when PAYMENT_GATEWAY=stripe: order forms collect the card with Stripe.js.
    stripe_key: str = ""
    # True while rendering the first section: its images load eagerly (the LCP).
    first_view: bool = False
    _urls: dict[str, str] | None = None


SECTION_BACKGROUNDS = [
    ("white", "White"),
    ("light", "Light"),
    ("dark", "Dark"),
    ("primary", "Brand colour"),
]
SECTION_WIDTHS = [("sm", "Narrow"), ("md", "Medium"), ("lg", "Wide")]


# What the browser should download for each image width setting: the column is
# at most 1120 px wide (a wide section), so full width gets the 1600 variant on
# high-density screens instead of an upscaled 960.
IMAGE_SIZES = {
    "full": "(max-width: 1120px) 100vw, 1120px",
    "md": "(max-width: 720px) 100vw, 780px",
    "sm": "(max-width: 720px) 100vw, 470px",
}


def video_embed(url: str) -> dict[str, str]:
    """YouTube/Vimeo/MP4 URL → what the click-to-load player needs."""
    url = (url or "").strip()
    parsed = urlparse(url)
    host = (parsed.hostname or "").lower().removeprefix("www.").removeprefix("m.")
    if host in ("youtube.com", "youtube-nocookie.com"):
        vid = parse_qs(parsed.query).get("v", [""])[0]
        if not vid and parsed.path.startswith(("/embed/", "/shorts/")):
            vid = parsed.path.split("/")[2]
        host = "youtu.be" if vid else host
        parsed_id = vid
    elif host == "youtu.be":
        parsed_id = parsed.path.strip("/").split("/")[0]
    else:
        parsed_id = ""
    if host == "youtu.be" and re.fullmatch(r"[\w-]{6,20}", parsed_id or ""):
        return {
            "kind": "youtube",
            "embed": f"https://www.youtube-nocookie.com/embed/{parsed_id}?autoplay=1",
            # No thumbnail from YouTube's host: nothing loads from outside
            # before the visitor clicks play (the poster is a local placeholder).
            "poster": "",
            "host": "youtube-nocookie.com",
        }
    if host == "vimeo.com" or host == "player.vimeo.com":
        m = re.search(r"(\d{5,})", parsed.path)
        if m:
            return {
                "kind": "vimeo",
                "embed": f"https://player.vimeo.com/video/{m.group(1)}?autoplay=1",
                "poster": "",
                "host": "vimeo.com",
            }
    if parsed.scheme in ("http", "https") and parsed.path.lower().endswith(
        (".mp4", ".webm")
    ):
        return {
            "kind": "mp4",
            "embed": url,
            "poster": "",
            "host": (parsed.hostname or "").lower(),
        }
    return {"kind": "", "embed": "", "poster": "", "host": ""}


def _button_href(s: dict[str, Any], ctx: RenderContext) -> str:
    action = s.get("action")
    if action == "url" and s.get("url"):
        return s["url"]
    if action == "step" and s.get("step_id"):
        return ctx.step_urls.get(str(s["step_id"]), ctx.next_url)
    return ctx.next_url


def block_context(block: Node, ctx: RenderContext) -> dict[str, Any]:
    s = blocks.settings_with_defaults(block)
    extra: dict[str, Any] = {}
    kind = block.get("type")
    if kind in ("image", "testimonial") and s.get("image_id"):
        try:
            extra["img"] = ctx.images.get(int(s["image_id"]))
        except (TypeError, ValueError):
            extra["img"] = None
        extra["sizes"] = IMAGE_SIZES.get(s.get("width"), IMAGE_SIZES["full"])
        extra["eager"] = ctx.first_view
    elif kind == "video":
        extra["video"] = video_embed(s.get("url", ""))
    elif kind == "button":
        extra["href"] = _button_href(s, ctx)
    elif kind == "faq":
        pairs = []
        for line in s.get("items") or []:
            q, _, a = str(line).partition("|")
            pairs.append((q.strip(), a.strip()))
        extra["pairs"] = pairs
    elif kind == "optin_form":
        custom = []
        for i, label in enumerate(s.get("custom_fields") or [], 1):
            key = re.sub(r"[^a-z0-9]+", "_", str(label).lower()).strip("_")[:40]
            name = f"custom_{key or f'field{i}'}"
            custom.append(
                {
                    "name": name,
                    "label": label,
                    "value": ctx.form_values.get(name, ""),
                    "errors": ctx.form_errors.get(name, []),
                }
            )
        extra["custom"] = custom
    return {"b": block, "s": s, "ctx": ctx, **extra}


def render_block(block: Node, ctx: RenderContext) -> SafeString:
    bt = blocks.REGISTRY.get(block.get("type", ""))
    if bt is None:
        return mark_safe("")
    html = styles.wrap_block(
        get_template(bt.template).render(block_context(block, ctx)),
        block.get("style"),
    )
    if ctx.editor and ctx.page is not None:
        return editor_chrome(block, bt, html, ctx)
    return mark_safe(html)


CHROME = (
    '<div class="pb-block{selected}" id="block-{id}" data-id="{id}" data-type="{type}" '
    'tabindex="0" role="group" aria-roledescription="block" aria-label="{name}" '
    'data-text-url="{text_url}">'
    '<div class="pb-block-bar" role="toolbar" aria-label="Block actions">'
    '<span class="pb-drag" title="Drag to move" aria-hidden="true">⠿</span>'
    '<a class="pb-block-name" href="{editor_url}?block={id}" hx-get="{settings_url}" '
    'hx-target="#settings-pane" hx-swap="innerHTML">{label}</a>'
    '<form method="post" action="{edit_url}" hx-post="{edit_url}">{csrf}'
    '<input type="hidden" name="block_id" value="{id}">'
    '<button name="action" value="block_up" type="submit" class="pb-icon" title="Move up" aria-label="Move up">↑</button>'  # noqa: E501
    '<button name="action" value="block_down" type="submit" class="pb-icon" title="Move down" aria-label="Move down">↓</button>'  # noqa: E501
    '<button name="action" value="duplicate_block" type="submit" class="pb-icon" title="Duplicate" aria-label="Duplicate"><svg viewBox="0 0 16 16" width="12" height="12" aria-hidden="true"><rect x="5.5" y="5.5" width="8" height="8" rx="1.5" fill="none" stroke="currentColor" stroke-width="1.6"/><path d="M3 10.5V3.8C3 3.4 3.4 3 3.8 3h6.7" fill="none" stroke="currentColor" stroke-width="1.6"/></svg></button>'  # noqa: E501
    '<button name="action" value="delete_block" type="submit" class="pb-icon pb-danger" title="Delete" aria-label="Delete">✕</button>'  # noqa: E501
    "</form></div>"
    '<div class="pb-block-body" hx-get="{settings_url}" hx-target="#settings-pane" '
    'hx-swap="innerHTML" hx-trigger="click">{html}</div></div>'
)


def _chrome_urls(ctx: RenderContext) -> dict[str, str]:
    """Reverse the editor URLs once per render, not once per block."""
    if ctx._urls is None:
        from django.middleware.csrf import get_token
        from django.urls import reverse

        pk = ctx.page.pk
        token = get_token(ctx.request) if ctx.request is not None else ""
        ctx._urls = {
            "editor_url": reverse("pages:editor", args=[pk]),
            "edit_url": reverse("pages:edit", args=[pk]),
            "settings_url": reverse("pages:block_settings", args=[pk, "__id__"]),
            "text_url": reverse("pages:block_inplace", args=[pk, "__id__"]),
            "csrf": format_html(
                '<input type="hidden" name="csrfmiddlewaretoken" value="{}">', token
            )
            if token
            else "",
        }
    return ctx._urls


def editor_chrome(
    block: Node, bt: blocks.BlockType, html: str, ctx: RenderContext
) -> SafeString:
    urls = _chrome_urls(ctx)
    block_id = escape(block["id"])
    return mark_safe(
        CHROME.format(
            selected=" is-selected" if ctx.selected_id == block["id"] else "",
            id=block_id,
            type=escape(bt.key),
            label=escape(bt.label),
            name=escape(blocks.summary(block)),
            editor_url=urls["editor_url"],
            edit_url=urls["edit_url"],
            settings_url=urls["settings_url"].replace("__id__", block_id),
            text_url=urls["text_url"].replace("__id__", block_id),
            csrf=urls["csrf"],
            html=html,
        )
    )


def _section_image(settings: dict[str, Any], ctx: RenderContext) -> str:
    """The URL of a section's background image: its largest variant up to 1600
    px (a background is never shown sharper than that)."""
    try:
        image = ctx.images.get(int(settings.get("bg_image") or 0))
    except (TypeError, ValueError):
        image = None
    if image is None:
        return ""
    return image.url_at(1600)


def render_document(doc: Doc, ctx: RenderContext) -> SafeString:
    """Whole page body. Block HTML is rendered first so the layout template stays
    a cheap loop."""
    sections = []
    for index, section in enumerate(doc.get("sections", [])):
        ctx.first_view = index == 0
        rows = []
        for row in section.get("rows", []):
            cols = []
            for column in row.get("columns", []):
                cols.append(
                    {
                        "column": column,
                        "blocks": [
                            {"block": b, "html": render_block(b, ctx)}
                            for b in column.get("blocks", [])
                        ],
                    }
                )
            rows.append({"row": row, "columns": cols})
        settings = section.get("settings", {})
        image = _section_image(settings, ctx)
        sections.append(
            {
                "section": section,
                "s": settings,
                "rows": rows,
                "classes": styles.section_classes(settings),
                "css": styles.section_css(settings, image),
            }
        )
    return mark_safe(
        render_to_string(
            "pages/_document.html",
            {
                "sections": sections,
                "ctx": ctx,
                "page": ctx.page,
                "selected_id": ctx.selected_id,
                "section_backgrounds": SECTION_BACKGROUNDS,
                "section_widths": SECTION_WIDTHS,
            },
            request=ctx.request,
        )
    )
