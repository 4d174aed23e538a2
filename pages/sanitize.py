"""Every text a marketer types is cleaned with nh3 before it is stored.

Rich text keeps a small set of formatting tags; plain text keeps none. nh3 drops
<script>/<style> with their content and every on* attribute, and only allows
http(s)/mailto/tel links.
"""

from __future__ import annotations

import html

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
RICH_ATTRIBUTES = {"a": {"href", "title", "target"}}


def clean_rich(value: str) -> str:
    return nh3.clean(
        value,
        tags=RICH_TAGS,
        attributes=RICH_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "tel"},
        link_rel="noopener noreferrer",
    )


def clean_text(value: str) -> str:
    """Plain text: all tags removed (the template escapes what remains)."""
    return html.unescape(nh3.clean(value, tags=set()))
