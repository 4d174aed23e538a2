from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from pages.sanitize import clean_inline

register = template.Library()


@register.filter
def inline_html(value: object) -> SafeString:
    """A one-line formatted text, cleaned again as it is rendered: older
    documents stored these fields as plain text."""
    return mark_safe(clean_inline(str(value or "")))
