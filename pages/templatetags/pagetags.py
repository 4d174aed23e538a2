from __future__ import annotations

import os
import re
from functools import lru_cache

from django import template
from django.contrib.staticfiles import finders
from django.utils.safestring import SafeString, mark_safe

from pages.sanitize import clean_inline

register = template.Library()


@register.filter
def inline_html(value: object) -> SafeString:
    """A one-line formatted text, cleaned again as it is rendered: older
    documents stored these fields as plain text."""
    return mark_safe(clean_inline(str(value or "")))


@lru_cache(maxsize=16)
def _minified(path: str, mtime: float) -> str:
    with open(path, encoding="utf-8") as fh:
        css = fh.read()
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    css = re.sub(r"\s*\n\s*", "", css)
    return re.sub(r"\s*([{};,])\s*", r"\1", css)


@register.simple_tag
def inline_static(name: str) -> SafeString:
    """A static CSS file's content, lightly minified, for a published page: one
    request fewer and nothing render-blocking (pages are rendered once, at
    publish, so the file is read then)."""
    path = finders.find(name)
    if not path:
        return mark_safe("")
    path = str(path)
    return mark_safe(_minified(path, os.path.getmtime(path)))
