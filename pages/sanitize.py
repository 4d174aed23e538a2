"""Every text a marketer types is cleaned with nh3 before it is stored.

Rich text keeps a small set of formatting tags; plain text keeps none. nh3 drops
<script>/<style> with their content and every on* attribute, and only allows
http(s)/mailto/tel links.
"""

from __future__ import annotations

import html
import re

import nh3

RICH_TAGS = {
    "p",
    "br",
    "strong",
    "b",
    "em",
    "i",
    "u",
    "s",
    "a",
    "ul",
    "ol",
    "li",
    "h2",
    "h3",
    "h4",
    "blockquote",
    "span",
    "mark",
    "small",
}
RICH_ATTRIBUTES = {
    "a": {"href", "title", "target"},
    # Colour (span) and alignment (blocks) from the in-place editor; the style
    # filter below keeps only those two properties, with safe values.
    "span": {"style"},
    "p": {"style"},
    "h2": {"style"},
    "h3": {"style"},
    "h4": {"style"},
    "li": {"style"},
}
# Headlines and other one-line texts: formatting inside a line, no blocks.
INLINE_TAGS = {"strong", "b", "em", "i", "u", "s", "a", "span", "br", "mark"}
INLINE_ATTRIBUTES = {"a": {"href", "title", "target"}, "span": {"style"}}
URL_SCHEMES = {"http", "https", "mailto", "tel"}

_COLOR = re.compile(
    r"#[0-9a-f]{3}|#[0-9a-f]{6}|rgb\(\s*\d{1,3}\s*,\s*\d{1,3}\s*,\s*\d{1,3}\s*\)"
)
_ALIGN = {"left", "center", "right", "justify"}


def _style_filter(tag: str, attribute: str, value: str) -> str | None:
    """Keep ``color`` (spans) and ``text-align`` (blocks) with safe values only."""
    if attribute != "style":
        return value
    kept = []
    for declaration in value.split(";"):
        prop, _, val = declaration.partition(":")
        prop, val = prop.strip().lower(), val.strip().lower()
        if prop == "color" and tag == "span" and _COLOR.fullmatch(val):
            kept.append(f"color:{val}")
        elif prop == "text-align" and tag != "span" and val in _ALIGN:
            kept.append(f"text-align:{val}")
    return ";".join(kept) or None


def clean_rich(value: str) -> str:
    return nh3.clean(
        value,
        tags=RICH_TAGS,
        attributes=RICH_ATTRIBUTES,
        attribute_filter=_style_filter,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
    )


def clean_inline(value: str) -> str:
    """One line with bold, italic, links and coloured words (headlines)."""
    value = re.sub(r"(?i)</p>\s*<p[^>]*>", "<br>", value or "")
    return nh3.clean(
        value,
        tags=INLINE_TAGS,
        attributes=INLINE_ATTRIBUTES,
        attribute_filter=_style_filter,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
    ).strip()


def clean_text(value: str) -> str:
    """Plain text: all tags removed (the template escapes what remains)."""
    return html.unescape(nh3.clean(value, tags=set()))
