"""The template gallery: real thumbnails, previews with the shipped images, and
copy that is already clean."""

from __future__ import annotations

from html import unescape

import pytest
from django.conf import settings
from django.urls import reverse

from pages import blocks, documents, selectors

pytestmark = pytest.mark.django_db


def test_gallery_shows_a_real_thumbnail_per_template(owner_client):
    html = owner_client.get(reverse("pages:template_gallery")).content.decode()
    for key in selectors.funnel_templates():
        assert f'src="/static/img/templates/thumbs/{key}.webp"' in html
        thumb = settings.BASE_DIR / "static/img/templates/thumbs" / f"{key}.webp"
        assert thumb.stat().st_size > 5000, key
        assert 'aria-label="Preview the ' in html


def test_preview_renders_the_shipped_images(owner_client):
    html = owner_client.get(
        reverse("pages:template_preview_step", args=["free-plus-shipping", 0])
    ).content.decode()
    assert '<img src="/static/img/templates/shipping-book.webp"' in html
    assert 'width="1200" height="900"' in html
    assert "Grow half your vegetables in 10 m² — the book is free" in html


def test_template_copy_is_already_clean():
    """What a template ships is what the settings form would store."""
    for key, template in selectors.funnel_templates().items():
        for spec in template["steps"]:
            for block in documents.iter_blocks(spec["document"]):
                bt = blocks.get(block["type"])
                for f in bt.fields:
                    value = block["settings"].get(f.name)
                    if f.inplace and isinstance(value, str):
                        # Same text and tags once cleaned ("&" may become "&amp;").
                        assert unescape(blocks.clean_inplace(f, value)) == unescape(
                            value if f.inplace != "plain" else " ".join(value.split())
                        ), (key, spec["slug"], f.name)
                for name in block["settings"]:
                    assert name in bt.defaults() or name == "asset", (key, name)
                if block["settings"].get("asset"):
                    assert selectors.template_asset_path(block["settings"]["asset"])
                if block["type"] == "image":
                    assert block["settings"].get("alt"), (key, spec["slug"])
